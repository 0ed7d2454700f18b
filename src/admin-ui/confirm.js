// @ts-check
/*
 * The confirmation dialog (index.html's <dialog id="confirm">): every action says, before it is done, what
 * it does to how many jobs, and the operator confirms it or keeps things as they are.
 */

import { byId } from './dom.js';

/**
 * A text the dialog also asks for (a reason): what its field is called, and an example.
 * @typedef {{ label: string, placeholder?: string }} Ask
 */

/**
 * Asks, in a modal, `text` (what is done to how many) with `note` under it; `verb` names the button. Resolves
 * to true, or false when refused. With `input` it also asks for a text (a reason) and resolves to that text,
 * trimmed and not empty, or false.
 *
 * @overload
 * @param {string} text
 * @param {string | null | undefined} note
 * @param {string} verb
 * @returns {Promise<boolean>}
 */
/**
 * @overload
 * @param {string} text
 * @param {string | null | undefined} note
 * @param {string} verb
 * @param {Ask} input
 * @returns {Promise<string | false>}
 */
/**
 * @param {string} text
 * @param {string | null | undefined} note
 * @param {string} verb
 * @param {Ask} [input]
 * @returns {Promise<string | boolean>}
 */
export function confirmDialog(text, note, verb, input) {
  const dialog = byId('confirm', HTMLDialogElement);
  const ok = byId('confirm-ok', HTMLButtonElement);
  const cancel = byId('confirm-cancel', HTMLButtonElement);
  const field = byId('confirm-field', HTMLDivElement);
  const entry = byId('confirm-input', HTMLInputElement);
  const error = byId('confirm-error', HTMLParagraphElement);
  byId('confirm-text', HTMLParagraphElement).textContent = text;
  byId('confirm-note', HTMLParagraphElement).textContent = note ?? '';
  field.hidden = !input;
  error.hidden = true;
  entry.value = '';
  if (input) {
    byId('confirm-label', HTMLLabelElement).textContent = input.label;
    entry.placeholder = input.placeholder ?? '';
  }
  ok.textContent = verb;
  ok.className = verb === 'Delete' ? 'danger' : 'primary';
  return new Promise((resolve) => {
    /** @param {string | boolean} answer */
    const finish = (answer) => {
      ok.removeEventListener('click', yes);
      cancel.removeEventListener('click', no);
      dialog.removeEventListener('cancel', no);
      entry.removeEventListener('keydown', enter);
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    const yes = () => {
      if (!input) return finish(true);
      const value = entry.value.trim();
      if (value) return finish(value);
      error.textContent = `${input.label.replace(/ \(.*$/, '')} is needed.`;
      error.hidden = false;
      entry.focus();
    };
    /** @param {Event} [event] Escape: the dialog's `cancel` event, which would close it without an answer. */
    const no = (event) => {
      event?.preventDefault();
      finish(false);
    };
    /** @param {KeyboardEvent} event */
    const enter = (event) => {
      if (event.key !== 'Enter') return;
      event.preventDefault();
      yes();
    };
    ok.addEventListener('click', yes);
    cancel.addEventListener('click', no);
    dialog.addEventListener('cancel', no);
    entry.addEventListener('keydown', enter);
    dialog.showModal();
    (input ? entry : cancel).focus();
  });
}
