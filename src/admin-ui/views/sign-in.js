// @ts-check
/*
 * The sign-in view: one admin key in a password field, exchanged for the session cookie by POST
 * /admin/session. The page keeps the key nowhere: the field is emptied once the cookie is set.
 */

import { api, messageOf } from '../api.js';
import { clearFlash, h, main } from '../dom.js';
import { route } from '../router.js';
import { state } from '../state.js';

/** Shows the sign-in form, with `message` (why it is shown: signed out, session over) as its error line. */
export function signInView(/** @type {string | undefined} */ message) {
  const input = h('input', {
    type: 'password',
    id: 'admin-key',
    name: 'key',
    required: true,
    autocomplete: 'current-password',
    spellcheck: 'false',
  });
  const error = h('p', { class: 'form-error', id: 'signin-error', role: 'alert', hidden: !message }, message ?? '');
  const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h(
    'form',
    { class: 'signin-form', id: 'signin-form', novalidate: true },
    h('label', { for: 'admin-key' }, 'Admin key'),
    input,
    button,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!input.value) {
      error.textContent = 'Enter an admin key.';
      error.hidden = false;
      return;
    }
    button.disabled = true;
    try {
      state.me = await api('POST', '/admin/session', { key: input.value });
      input.value = '';
      clearFlash();
      route();
    } catch (failure) {
      error.textContent = messageOf(failure);
      error.hidden = false;
      input.select();
    } finally {
      button.disabled = false;
    }
  });
  main.replaceChildren(
    h(
      'section',
      { class: 'card signin' },
      h('h1', {}, 'Sign in'),
      h(
        'p',
        { class: 'muted' },
        'Use an admin key (ADMIN_KEYS or ADMIN_TOKEN). The browser keeps a signed session cookie for 12 hours, never the key itself.',
      ),
      form,
      error,
    ),
  );
  input.focus();
}
