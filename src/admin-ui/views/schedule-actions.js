// @ts-check
/*
 * A schedule's buttons, on the schedules list and on a schedule's page: Pause or Resume, Run now (trigger) and,
 * on its page, Delete (POST /admin/schedules/{tenant}/{id}/pause|resume|trigger, DELETE …; the operator role).
 * Each says what it does and asks first; a viewer is shown none (the API would refuse them).
 */

/** @import { Job, Schedule } from '../api-types.js' */
import { api, messageOf } from '../api.js';
import { confirmDialog } from '../confirm.js';
import { flash, h } from '../dom.js';
import { canAct } from '../state.js';

/** @typedef {'pause' | 'resume' | 'trigger' | 'delete'} ScheduleAction */

/** "acme/nightly": how the dashboard names a schedule (ids are unique per tenant). @param {Schedule} schedule */
export const scheduleName = (schedule) => `${schedule.tenant}/${schedule.id}`;

/** The schedule's path in the admin API. @param {Schedule} schedule */
const apiPath = (schedule) =>
  `/admin/schedules/${encodeURIComponent(schedule.tenant)}/${encodeURIComponent(schedule.id)}`;

/**
 * The buttons for `schedule`, or null for a viewer.
 * @param {Schedule} schedule
 * @param {() => Promise<void>} reload reads the view again after an action
 * @param {{ withDelete?: boolean, deleted?: () => void, small?: boolean }} [options] `deleted`: where to go once it is deleted
 */
export function scheduleButtons(schedule, reload, { withDelete = false, deleted, small = true } = {}) {
  if (!canAct()) return null;
  /** @param {ScheduleAction} action @param {string} label @param {string} title */
  const button = (action, label, title) =>
    h(
      'button',
      {
        type: 'button',
        class: [small ? 'small' : '', action === 'delete' ? 'danger' : ''].filter(Boolean).join(' ') || undefined,
        'data-action': action,
        title,
        onclick: () => void act(schedule, action, reload, deleted),
      },
      label,
    );
  return h(
    'span',
    { class: 'schedule-actions' },
    schedule.paused
      ? button('resume', 'Resume', 'It fires again from its next fire time (operator role)')
      : button('pause', 'Pause', 'It makes no jobs until resumed (operator role)'),
    button('trigger', 'Run now', 'One job of its definition, now, outside its fire times (operator role)'),
    withDelete ? button('delete', 'Delete', 'It makes no more jobs; the jobs it made stay (operator role)') : null,
  );
}

/** What each action asks before it is done, and what it says once done. */
const WORDS = {
  pause: {
    verb: 'Pause',
    ask: 'Pause schedule',
    note: 'It makes no jobs until it is resumed; jobs it already made are not touched.',
    done: 'Paused schedule',
  },
  resume: {
    verb: 'Resume',
    ask: 'Resume schedule',
    note: 'It fires next at its first fire time from now on: the times passed while it was paused make no jobs.',
    done: 'Resumed schedule',
  },
  trigger: {
    verb: 'Run now',
    ask: 'Run schedule',
    note: 'One job of its definition is made now, outside its fire times (also while it is paused).',
    done: 'Ran schedule',
  },
  delete: {
    verb: 'Delete',
    ask: 'Delete schedule',
    note: 'It makes no more jobs. The jobs it made stay as they are.',
    done: 'Deleted schedule',
  },
};

/**
 * @param {Schedule} schedule
 * @param {ScheduleAction} action
 * @param {() => Promise<void>} reload
 * @param {(() => void) | undefined} deleted
 */
async function act(schedule, action, reload, deleted) {
  const words = WORDS[action];
  const name = scheduleName(schedule);
  if (!(await confirmDialog(`${words.ask} ${name}${action === 'trigger' ? ' now' : ''}?`, words.note, words.verb)))
    return;
  /** @type {Job | null} */
  let job = null;
  try {
    if (action === 'delete') await api('DELETE', apiPath(schedule));
    else if (action === 'trigger') job = await api('POST', `${apiPath(schedule)}/trigger`);
    else await api('POST', `${apiPath(schedule)}/${action}`);
  } catch (error) {
    flash(`${words.verb} failed: ${messageOf(error)}`, 'error');
    return;
  }
  flash(`${words.done} ${name}${job ? `: job ${job.id}` : ''}.`, 'ok');
  if (action === 'delete' && deleted) deleted();
  else await reload();
}
