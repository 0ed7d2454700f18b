// @ts-check
/*
 * DOM helpers: elements with attributes, listeners and children only. Strings always become text nodes,
 * never HTML, so a job's input, error or log line cannot put markup into the page.
 */

import { ago, fmtTime } from './format.js';
import { STATUSES } from './filters.js';

/**
 * Attributes by name (true: present and empty; false, null, undefined: left out), and listeners as `on<event>`.
 * @typedef {Record<string, string | number | boolean | null | undefined | ((event: Event) => void)>} Props
 */
/**
 * What an element holds: nodes and text; arrays are flattened, and null, undefined, false and '' are left out.
 * Arrays nest up to three deep (a JSDoc type cannot name itself, so the depth is spelt out).
 * @typedef {Node | string | number | null | undefined | false} Leaf
 * @typedef {Leaf | readonly (Leaf | readonly (Leaf | readonly Leaf[])[])[]} Child
 */

/**
 * An HTML element.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Props | null} [props]
 * @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, props, ...children) {
  const element = document.createElement(tag);
  setProps(element, props);
  appendAll(element, children);
  return element;
}

const SVG = 'http://www.w3.org/2000/svg';

/**
 * An SVG element (the overview's chart).
 * @template {keyof SVGElementTagNameMap} K
 * @param {K} tag
 * @param {Props | null} [props]
 * @param {...Child} children
 * @returns {SVGElementTagNameMap[K]}
 */
export function svg(tag, props, ...children) {
  const element = document.createElementNS(SVG, tag);
  setProps(element, props);
  appendAll(element, children);
  return element;
}

/** @param {Element} element @param {Props | null | undefined} props */
function setProps(element, props) {
  for (const [name, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
}

/** @param {Element} element @param {Child[]} children */
function appendAll(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false || child === '') continue;
    element.append(child instanceof Node ? child : String(child));
  }
}

/**
 * An element of index.html the page cannot work without, checked to be of the kind the code expects.
 * @template {HTMLElement} T
 * @param {string} id
 * @param {{ new (): T, prototype: T }} kind
 * @returns {T}
 */
export function byId(id, kind) {
  const element = document.getElementById(id);
  if (!(element instanceof kind)) throw new Error(`index.html has no ${kind.name} #${id}`);
  return element;
}

/** @param {string} href @param {...Child} children */
export const link = (href, ...children) => h('a', { href }, ...children);

/** A job status as a coloured badge (an unknown status in grey). */
export const badge = (/** @type {string} */ status) =>
  h('span', { class: `badge status-${STATUSES.includes(status) ? status : 'other'}` }, status);

/** A time as text with its exact value (ISO) on hover. */
export const when = (/** @type {string | null | undefined} */ iso) =>
  h(
    'time',
    { datetime: iso ?? undefined, title: iso ?? undefined },
    iso ? `${fmtTime(iso)} (${ago(iso, Date.now())})` : '—',
  );

/** A time as "3 min ago", its exact value on hover. */
export const agoTime = (/** @type {string} */ iso) => h('time', { datetime: iso, title: iso }, ago(iso, Date.now()));

/** A card with a heading. @param {string} title @param {...Child} content */
export const section = (title, ...content) => h('section', { class: 'card' }, h('h2', {}, title), ...content);

/** An error line of a view (hidden until there is a problem to say). */
export const problemLine = () => h('p', { class: 'form-error', role: 'alert', hidden: true });

/** Where the views draw themselves. */
export const main = byId('main', HTMLElement);

const flashBox = byId('flash', HTMLDivElement);
/** @type {number | undefined} */
let flashTimer;

/** A message in the bar under the header; other than errors, it goes away after 6 s. */
export function flash(/** @type {string} */ message, /** @type {'info' | 'ok' | 'error'} */ kind = 'info') {
  flashBox.replaceChildren(
    h('span', {}, message),
    h(
      'button',
      { type: 'button', class: 'link', 'aria-label': 'Dismiss', onclick: () => (flashBox.hidden = true) },
      '×',
    ),
  );
  flashBox.className = `flash flash-${kind}`;
  flashBox.hidden = false;
  clearTimeout(flashTimer);
  if (kind !== 'error') flashTimer = setTimeout(() => (flashBox.hidden = true), 6000);
}

/** Hides the flash message (a new sign-in starts clean). */
export const clearFlash = () => {
  flashBox.hidden = true;
};
