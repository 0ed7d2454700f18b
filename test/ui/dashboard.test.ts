import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadConfig } from '../../src/config.js';
import { defineHandler } from '../../src/handlers/handler.js';
import { newJobId } from '../../src/jobs/job-id.js';
import { MemoryOpsStore } from '../../src/ops/memory-ops-store.js';
import { WorkerControl } from '../../src/worker/worker-control.js';
import { createJob, startHarness, waitForStatus, type Harness } from '../routes/helpers.js';

/*
 * The dashboard in a real headless Chromium (Debian's `chromium` package, driven by playwright-core), against
 * the app with a real worker pool on 127.0.0.1: sign in, find a failed job, retry it and watch it succeed;
 * follow a job over the event stream; bulk actions by filter and by selection; pause a type, drain a worker.
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOTS = new URL('../../test-results/screenshots/', import.meta.url);
const STEP_TIMEOUT_MS = 15_000;

const VIEWER = 'viewer-key-0123456789abcdef';
const OPERATOR = 'operator-key-0123456789abcdef';
const ADMIN = 'admin-key-0123456789abcdef';
const adminKeys = loadConfig({ ADMIN_KEYS: `${VIEWER}:viewer,${OPERATOR}:operator,${ADMIN}:admin` }).ADMIN_KEYS!;
/** The key id the API shows for a key: the first 8 hex digits of its SHA-256. */
const keyId = (key: string) => createHash('sha256').update(key).digest('hex').slice(0, 8);

/** Fails its first attempt and succeeds on the next (slowly, with progress, so the page shows it running). */
const flaky = defineHandler({
  type: 'flaky',
  input: z.object({ label: z.string().optional() }).strict(),
  async run(_input, ctx) {
    ctx.log.info({ attempt: ctx.attempt }, 'starting');
    if (ctx.attempt === 1) throw new Error('upstream refused the first attempt');
    for (let step = 1; step <= 4; step += 1) {
      ctx.progress(step * 25, { step: 'working', message: `step ${step}/4` });
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    return { ok: true, attempt: ctx.attempt };
  },
});

/** Runs until the test releases it (`releaseGate`): a long job without a fixed sleep. */
const gateReleases = new Map<string, () => void>();
const gate = defineHandler({
  type: 'gate',
  input: z.object({}).strict(),
  async run(_input, ctx) {
    await new Promise<void>((release) => gateReleases.set(ctx.jobId, release));
    return { ok: true };
  },
});

/** A type with key_concurrency 1 and no handler: the tests' own claims decide which of its jobs run. */
const KEYED = 'ui.keyed';

let harness: Harness;
const ops = new MemoryOpsStore();
let baseUrl: string;
let browser: Browser;
const contexts: BrowserContext[] = [];

/** The bits of the browser's `document` the page scripts below read (this project compiles without DOM types). */
interface PageDocument {
  documentElement: { scrollWidth: number; clientWidth: number };
  cookie: string;
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is not installed at ${CHROMIUM}: the dashboard tests drive Debian's chromium package. Install it with \`apt-get install chromium\` (bash .ci/run does), or set CHROMIUM_PATH.`,
    );
  }
  mkdirSync(SCREENSHOTS, { recursive: true });
  harness = await startHarness({
    workers: true,
    adminKeys,
    extraHandlers: [flaky, gate],
    ops,
    // A type no worker here runs, whose jobs wait at one running job per concurrency key.
    typeLimits: { [KEYED]: { keyConcurrency: 1 } },
  });
  await harness.app.listen({ port: 0, host: '127.0.0.1' });
  baseUrl = `http://127.0.0.1:${(harness.app.server.address() as AddressInfo).port}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
    timeout: 30_000,
  });
});

afterEach(async () => {
  for (const context of contexts.splice(0)) await context.close();
});

afterAll(async () => {
  await browser?.close();
  await harness?.close();
  await ops.close();
});

/** An hour of history and this pool's registry entry, as a service's worker control would record them. */
async function seedOperatorState(): Promise<void> {
  const now = Date.now();
  const samples = Array.from({ length: 60 }, (_, minute) =>
    Array.from({ length: 3 + ((minute * 7) % 11) }, (_, i) => ({
      type: i % 2 === 0 ? 'echo' : 'flaky',
      status: i === 0 && minute % 9 === 0 ? ('failed' as const) : ('succeeded' as const),
      waitMs: 20 + i,
      runMs: 100 + i * 10,
      at: now - (60 - minute) * 60_000 + 1000,
    })),
  ).flat();
  await ops.recordFinished(samples);
  const pool = harness.pool!;
  await ops.beat({
    id: pool.workerId,
    host: 'test-host',
    pid: process.pid,
    version: '0.1.0',
    role: 'all',
    started_at: now - 60_000,
    beat_at: now,
    types: ['echo', 'flaky', 'sleep'],
    slots_total: pool.concurrency,
    slots_busy: pool.busy,
    job_ids: [],
    leases_lost: 0,
    draining: false,
  });
}

/** A fresh browser profile (no cookie) whose page fails the test on a script error or a CSP violation. */
async function openPage(viewport = { width: 1280, height: 900 }): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.newContext({ viewport });
  contexts.push(context);
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    // API refusals the page shows (401 at sign-in, 403 for a viewer) are logged by Chromium as failed loads; those are expected.
    if (message.type() === 'error' && !/status of 40[13]/.test(message.text()))
      problems.push(`console: ${message.text()}`);
  });
  return { page, problems };
}

async function signIn(page: Page, key: string): Promise<void> {
  await page.fill('#admin-key', key);
  await page.click('#signin-form button[type=submit]');
}

/** A `flaky` job with one attempt: it fails, and a retry then succeeds. */
async function failedJob(label: string, metadata: Record<string, string> = {}): Promise<string> {
  const job = await createJob(harness.app, { type: 'flaky', input: { label }, max_attempts: 1, metadata });
  await waitForStatus(harness.app, job.id, 'failed');
  return job.id;
}

/** Records every EventSource the page opens (in `streams`), so a test can see which are still open. */
const RECORD_STREAMS = `(() => {
  const Native = window.EventSource;
  window.streams = [];
  window.EventSource = class extends Native {
    constructor(...args) {
      super(...args);
      window.streams.push(this);
    }
  };
})()`;

/**
 * Records what the job page shows after each change of the page (in `renders`): the status badge, the
 * attempt named in "attempt N of M", and the attempts listed on the timeline.
 */
const RECORD_RENDERS = `(() => {
  window.renders = [];
  const read = () => {
    const status = document.querySelector('#job-status .badge')?.textContent ?? '';
    const named = /attempt (\\d+) of/.exec(document.querySelector('.job-status')?.textContent ?? '');
    const timeline = [...document.querySelectorAll('#attempts .attempt-head strong')].map((node) => Number(/\\d+/.exec(node.textContent)?.[0]));
    const render = { status, attempt: named ? Number(named[1]) : 0, timeline };
    const last = window.renders[window.renders.length - 1];
    if (JSON.stringify(last) !== JSON.stringify(render)) window.renders.push(render);
  };
  new MutationObserver(read).observe(document.getElementById('main'), { childList: true, subtree: true, characterData: true });
  read();
})()`;

/** readyState of each EventSource the page opened, oldest first: 0 connecting, 1 open, 2 closed. */
const streamStates = (page: Page) => page.evaluate<number[]>('window.streams.map((stream) => stream.readyState)');

/** What a browser does when the tab is hidden or shown again. */
const setVisibility = (page: Page, visibility: 'hidden' | 'visible') =>
  page.evaluate(`(() => {
    Object.defineProperty(document, 'visibilityState', { value: '${visibility}', configurable: true });
    document.dispatchEvent(new Event('visibilitychange'));
  })()`);

/** The admin API as a script calls it (Bearer key), next to the browser. */
async function adminCall(
  method: 'GET' | 'POST',
  url: string,
  key = ADMIN,
): Promise<{ statusCode: number; body: string; json<T>(): T }> {
  return harness.app.inject({ method, url, headers: { authorization: `Bearer ${key}` } });
}

const statusOf = async (id: string) =>
  (await harness.app.inject({ method: 'GET', url: `/v1/jobs/${id}` })).json<{ status: string }>().status;

describe('the dashboard in Chromium', () => {
  it('refuses a wrong key, signs in, finds a failed job by filter, retries it and shows it succeed live', async () => {
    for (let i = 0; i < 3; i += 1) await createJob(harness.app, { type: 'echo', input: { value: i } });
    await createJob(harness.app, { type: 'sleep', input: { ms: 60_000 }, delay_s: 600 });
    const id = await failedJob('retry me');
    await seedOperatorState();
    const { page, problems } = await openPage();

    await page.goto(`${baseUrl}/admin`);
    expect(new URL(page.url()).pathname).toBe('/admin/ui');
    await signIn(page, 'not-the-key-0123456789abcdef');
    const error = page.locator('#signin-error');
    await error.waitFor({ state: 'visible' });
    expect(await error.textContent()).toMatch(/not valid/);

    await signIn(page, OPERATOR);
    await page.locator('#status-tiles').waitFor();
    expect(await page.locator('#identity').textContent()).toMatch(/^operator · key [0-9a-f]{8}$/);
    expect(await page.locator('.tile-failed .tile-value').textContent()).toBe('1');
    await page.locator('table.grid >> text=flaky').first().waitFor();
    expect(await page.locator('svg.chart rect.bar-failed').count()).toBeGreaterThan(0);
    expect(await page.locator('table.grid >> text=test-host').count()).toBe(1);
    await page.screenshot({ path: new URL('overview.png', SCREENSHOTS).pathname, fullPage: true });

    // The jobs list, filtered through its form: the filter lands in the URL.
    await page.click('#nav a[data-view=jobs]');
    await page.locator('#filters').waitFor();
    await page.selectOption('#f-status', 'failed');
    await page.waitForURL(/\/admin\/ui\/jobs\?status=failed$/);
    const row = page.locator(`tr[data-job-id="${id}"]`);
    await row.waitFor();
    expect(await page.locator('tr[data-job-id]').count()).toBe(1);
    expect(await row.locator('.badge').textContent()).toBe('failed');

    // A bookmark of a filtered list opens as it was.
    await page.goto(`${baseUrl}/admin/ui/jobs?status=failed&type=flaky`);
    await row.waitFor();
    expect(await page.inputValue('#f-type')).toBe('flaky');
    expect(await page.inputValue('#f-status')).toBe('failed');

    // The job page, then Retry with its confirmation; the page follows the job without a reload.
    await row.locator('a').click();
    await page.waitForURL(`**/admin/ui/jobs/${id}`);
    await page.locator('#job-status .status-failed').waitFor();
    expect(await page.locator('.job-error').textContent()).toMatch(/upstream refused the first attempt/);
    await page.evaluate(() => Object.assign(globalThis, { notReloaded: true }));
    await page.evaluate(RECORD_RENDERS);
    await page.click('#action-retry');
    await page.locator('#confirm').waitFor({ state: 'visible' });
    expect(await page.locator('#confirm-text').textContent()).toBe(`Retry 1 job ${id}?`);
    await page.click('#confirm-ok');
    await page.locator('#job-status .status-succeeded').waitFor({ timeout: 20_000 });
    expect(await page.evaluate(() => (globalThis as { notReloaded?: boolean }).notReloaded)).toBe(true);
    expect(await page.locator('#flash').textContent()).toMatch(new RegExp(`Retried job ${id}`));
    expect(await page.locator('#job-progress').textContent()).toMatch(/100%/);
    // Both attempts on the timeline, the failed one with its error...
    expect(await page.locator('#attempts .attempt').count()).toBe(2);
    expect(await page.locator('#attempts .attempt').first().textContent()).toMatch(/upstream refused/);
    // ...and in every state the page showed on the way (queued, running, succeeded), the attempt it named was
    // on the timeline in the same render: status and timeline come from one read, never one ahead of the other.
    const renders = await page.evaluate<{ status: string; attempt: number; timeline: number[] }[]>('window.renders');
    expect(renders.map((render) => render.status)).toContain('succeeded');
    for (const render of renders) {
      if (render.status !== 'queued' && render.attempt > 0)
        expect(render.timeline, JSON.stringify(render)).toContain(render.attempt);
    }
    await page.click('details[data-key=result] > summary');
    expect(await page.locator('details[data-key=result] pre').textContent()).toContain('"ok": true');
    await page.screenshot({ path: new URL('job.png', SCREENSHOTS).pathname, fullPage: true });
    expect(problems).toEqual([]);
  });

  it("shows a viewer the API's 403 when it tries to retry", async () => {
    const id = await failedJob('viewer');
    const { page, problems } = await openPage();
    await page.goto(`${baseUrl}/admin/ui/jobs/${id}`);
    await signIn(page, VIEWER);
    await page.locator('#job-status .status-failed').waitFor();
    await page.click('#action-retry');
    await page.click('#confirm-ok');
    const flash = page.locator('#flash.flash-error');
    await flash.waitFor();
    expect(await flash.textContent()).toMatch(
      /Retry failed: POST \/admin\/jobs\/:id\/retry needs the operator role; this key has the viewer role/,
    );
    expect((await harness.app.inject({ method: 'GET', url: `/v1/jobs/${id}` })).json<{ status: string }>().status).toBe(
      'failed',
    );
    expect(problems).toEqual([]);
  });

  it('fits a phone: no sideways scrolling of the page, tables become cards; signing out ends the session', async () => {
    const { page, problems } = await openPage({ width: 390, height: 844 });
    await page.goto(`${baseUrl}/admin/ui/jobs`);
    await signIn(page, OPERATOR);
    await page.locator('tr[data-job-id]').first().waitFor();
    const overflow = () =>
      page.evaluate(() => {
        const { documentElement } = (globalThis as unknown as { document: PageDocument }).document;
        return documentElement.scrollWidth - documentElement.clientWidth;
      });
    expect(await overflow()).toBeLessThanOrEqual(0);
    await page.screenshot({ path: new URL('jobs-phone.png', SCREENSHOTS).pathname, fullPage: true });
    await page.click('#nav a[data-view=overview]');
    await page.locator('#status-tiles').waitFor();
    expect(await overflow()).toBeLessThanOrEqual(0);

    await page.click('#sign-out');
    await page.locator('#signin-form').waitFor();
    const cookies = await page.context().cookies();
    expect(cookies.filter((cookie) => cookie.name === 'ajs_admin')).toEqual([]);
    await page.reload();
    await page.locator('#signin-form').waitFor();
    expect(problems).toEqual([]);
  });

  it('keeps the session in an HttpOnly, SameSite=Strict cookie that page scripts cannot read', async () => {
    const { page } = await openPage();
    await page.goto(`${baseUrl}/admin/ui`);
    await signIn(page, OPERATOR);
    await page.locator('#status-tiles').waitFor();
    const [cookie] = (await page.context().cookies()).filter((candidate) => candidate.name === 'ajs_admin');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/admin' });
    expect(cookie!.value).not.toContain(OPERATOR);
    expect(await page.evaluate(() => (globalThis as unknown as { document: PageDocument }).document.cookie)).toBe('');

    // What a hostile page on another site would do: POST to the admin API with the browser's cookies.
    const id = await failedJob('csrf');
    const otherSite = baseUrl.replace('127.0.0.1', 'localhost');
    await page.goto(`${otherSite}/health/live`);
    await page.evaluate(async (url) => {
      await fetch(url, { method: 'POST', mode: 'no-cors', credentials: 'include' }).catch(() => undefined);
    }, `${baseUrl}/admin/jobs/${id}/retry`);
    // No wait needed: the page awaited that fetch, so the server had answered it (or the browser never sent it).
    expect((await harness.app.inject({ method: 'GET', url: `/v1/jobs/${id}` })).json<{ status: string }>().status).toBe(
      'failed',
    );
  });
  it('follows a job over the event stream: a change made elsewhere shows at once, without polling or a reload', async () => {
    const job = await createJob(harness.app, { type: 'echo', input: { value: 'later' }, delay_s: 600 });
    const { page, problems } = await openPage();
    await page.addInitScript(RECORD_STREAMS);
    const streams: string[] = [];
    const detailReads: number[] = [];
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (url.pathname === '/admin/events') streams.push(url.search);
      if (url.pathname === `/admin/jobs/${job.id}`) detailReads.push(Date.now());
    });
    await page.goto(`${baseUrl}/admin/ui/jobs/${job.id}`);
    await signIn(page, OPERATOR);
    await page.locator('#job-status .status-queued').waitFor();
    await page.locator('#live-mode[data-mode=live]').waitFor();
    expect(await page.locator('#live-mode').textContent()).toBe('live');
    expect(streams).toEqual([`?job_id=${job.id}`]);

    // Live: no polling. Nothing is read again over more than two polling intervals: elapsed time is the point, so fixed waits
    // (the first lets the page's start-up reads finish; nothing marks their end).
    await page.waitForTimeout(1000);
    const readsBefore = detailReads.length;
    await page.waitForTimeout(5500);
    expect(detailReads.length).toBe(readsBefore);

    await page.evaluate(() => Object.assign(globalThis, { notReloaded: true }));
    const changedAt = Date.now();
    const runNow = await adminCall('POST', `/admin/jobs/${job.id}/run-now`, OPERATOR);
    expect(runNow.statusCode, runNow.body).toBe(200);
    await page.locator('#job-status .status-succeeded').waitFor({ timeout: 5000 });
    // Well within the 15 s the live page waits before reading again by itself: the stream said so.
    expect(Date.now() - changedAt).toBeLessThan(5000);
    await page.click('details[data-key=result] > summary');
    expect(await page.locator('details[data-key=result] pre').textContent()).toContain('"value": "later"');
    expect(await page.evaluate(() => (globalThis as { notReloaded?: boolean }).notReloaded)).toBe(true);
    expect(await page.locator('#live-mode').textContent()).toBe('live');

    // Leaving the job for the list closes its stream and opens one watching the jobs the list shows.
    await page.click('.crumbs a');
    await page.locator(`tr[data-job-id="${job.id}"]`).waitFor();
    await expect
      .poll(() =>
        streams.some(
          (search) =>
            new URLSearchParams(search).getAll('job_id').includes(job.id) &&
            new URLSearchParams(search).getAll('job_id').length > 1,
        ),
      )
      .toBe(true);
    await page.locator('#live-mode[data-mode=live]').waitFor();
    await expect.poll(async () => (await streamStates(page)).filter((readyState) => readyState !== 2).length).toBe(1);
    expect((await streamStates(page))[0]).toBe(2);

    // A hidden tab keeps no stream open; shown again, it opens one.
    await setVisibility(page, 'hidden');
    await page.locator('#live-mode[data-mode=paused]').waitFor();
    expect((await streamStates(page)).every((readyState) => readyState === 2)).toBe(true);
    const opened = (await streamStates(page)).length;
    await setVisibility(page, 'visible');
    await page.locator('#live-mode[data-mode=live]').waitFor();
    expect((await streamStates(page)).length).toBe(opened + 1);
    expect(problems).toEqual([]);
  });

  it('falls back to polling, and says so, when the event stream is refused', async () => {
    const job = await createJob(harness.app, { type: 'echo', input: { value: 'polled' }, delay_s: 600 });
    const { page, problems } = await openPage();
    let refused = 0;
    await page.route('**/admin/events**', (route) => {
      refused += 1;
      return route.fulfill({
        status: 503,
        contentType: 'application/problem+json',
        body: JSON.stringify({ title: 'Service Unavailable', status: 503, detail: 'down for the test' }),
      });
    });
    await page.goto(`${baseUrl}/admin/ui/jobs/${job.id}`);
    await signIn(page, OPERATOR);
    await page.locator('#job-status .status-queued').waitFor();
    await page.locator('#live-mode[data-mode=polling]').waitFor();
    expect(await page.locator('#live-mode').textContent()).toBe('polling');
    const runNow = await adminCall('POST', `/admin/jobs/${job.id}/run-now`, OPERATOR);
    expect(runNow.statusCode, runNow.body).toBe(200);
    await page.locator('#job-status .status-succeeded').waitFor({ timeout: 10_000 });
    // Tried once; not again before its back-off (30 s), not even on another view.
    await page.click('.crumbs a');
    await page.locator(`tr[data-job-id="${job.id}"]`).waitFor();
    expect(await page.locator('#live-mode').textContent()).toBe('polling');
    expect(refused).toBe(1);
    expect(problems.filter((problem) => !/status of 503/.test(problem))).toEqual([]);
  });

  it("retries every failed job of the list's filters by snapshot, after a confirmation that states the count", async () => {
    const batch = `bulk-${Date.now()}`;
    const ids = await Promise.all([1, 2, 3].map((n) => failedJob(`bulk ${n}`, { batch })));
    const { page, problems } = await openPage();
    await page.goto(`${baseUrl}/admin/ui/jobs?status=failed&metadata.batch=${batch}`);
    await signIn(page, OPERATOR);
    for (const id of ids) await page.locator(`tr[data-job-id="${id}"]`).waitFor();
    expect(await page.locator('tr[data-job-id]').count()).toBe(3);
    expect(await page.locator('#bulk-bar .bulk-filter').textContent()).toBe(`status=failed, metadata.batch=${batch}`);
    // Ticking a row shows what the selection can do (the screenshot shows both bars).
    await page.locator(`tr[data-job-id="${ids[0]}"] input.pick`).check();
    await page.locator('#bulk-selected').waitFor();
    expect(await page.locator('#selected-count').textContent()).toBe('1 job selected:');
    await page.screenshot({ path: new URL('jobs-bulk.png', SCREENSHOTS).pathname, fullPage: true });
    await page.click('#selected-clear');
    await page.locator('#bulk-selected').waitFor({ state: 'hidden' });

    await page.click('#bulk-retry');
    await page.locator('#confirm').waitFor({ state: 'visible' });
    const question = await page.locator('#confirm-text').textContent();
    expect(question).toContain('3 jobs');
    expect(question).toBe(
      `Retry 3 jobs matching status=failed, metadata.batch=${batch}? Jobs that match later are not included.`,
    );
    await page.click('#confirm-ok');
    const flash = page.locator('#flash.flash-ok');
    await flash.waitFor();
    expect(await flash.textContent()).toMatch(/^Retried 3 jobs\./);
    for (const id of ids) await waitForStatus(harness.app, id, 'succeeded');
    // The list follows: none of them is failed any more.
    await page.locator('#job-list .empty').waitFor();

    // Nothing matches now: nothing to do, no confirmation.
    await page.click('#bulk-retry');
    await page.locator('#flash.flash-info').waitFor();
    expect(await page.locator('#flash').textContent()).toMatch(
      new RegExp(`No job matches status=failed, metadata.batch=${batch}: nothing to retry`),
    );
    expect(await page.locator('#confirm').isVisible()).toBe(false);
    expect(problems).toEqual([]);
  });

  it('cancels the ticked jobs only, after a confirmation that states how many', async () => {
    const batch = `pick-${Date.now()}`;
    const jobs = [];
    for (let n = 0; n < 3; n += 1)
      jobs.push(await createJob(harness.app, { type: 'sleep', input: { ms: 10 }, delay_s: 600, metadata: { batch } }));
    const { page, problems } = await openPage();
    await page.goto(`${baseUrl}/admin/ui/jobs?metadata.batch=${batch}`);
    await signIn(page, OPERATOR);
    for (const job of jobs) await page.locator(`tr[data-job-id="${job.id}"]`).waitFor();
    await page.locator(`tr[data-job-id="${jobs[0]!.id}"] input.pick`).check();
    await page.locator(`tr[data-job-id="${jobs[2]!.id}"] input.pick`).check();
    expect(await page.locator('#selected-count').textContent()).toBe('2 jobs selected:');
    await page.click('#selected-cancel');
    await page.locator('#confirm').waitFor({ state: 'visible' });
    expect(await page.locator('#confirm-text').textContent()).toBe('Cancel 2 selected jobs?');
    await page.click('#confirm-ok');
    await page.locator('#flash.flash-ok').waitFor();
    expect(await page.locator('#flash').textContent()).toMatch(/^Canceled 2 jobs\./);
    await page.locator(`tr[data-job-id="${jobs[0]!.id}"] .status-canceled`).waitFor();
    expect([await statusOf(jobs[0]!.id), await statusOf(jobs[1]!.id), await statusOf(jobs[2]!.id)]).toEqual([
      'canceled',
      'queued',
      'canceled',
    ]);
    expect(await page.locator('#bulk-selected').isVisible()).toBe(false);
    expect(problems).toEqual([]);
  });

  it("shows a viewer the API's 403 when it presses Retry all, and touches nothing", async () => {
    const id = await failedJob('viewer bulk');
    const { page, problems } = await openPage();
    await page.goto(`${baseUrl}/admin/ui/jobs?status=failed`);
    await signIn(page, VIEWER);
    await page.locator(`tr[data-job-id="${id}"]`).waitFor();
    await page.click('#bulk-retry');
    const flash = page.locator('#flash.flash-error');
    await flash.waitFor();
    expect(await flash.textContent()).toMatch(
      /Retry all failed: POST \/admin\/bulk needs the operator role; this key has the viewer role/,
    );
    expect(await page.locator('#confirm').isVisible()).toBe(false);
    expect(await statusOf(id)).toBe('failed');
    expect(problems).toEqual([]);
  });

  it('pauses and resumes a job type (admin; an operator reads the 403), and drains and resumes a worker', async () => {
    await seedOperatorState();
    const { page, problems } = await openPage();
    await page.goto(`${baseUrl}/admin/ui`);
    await signIn(page, OPERATOR);
    const sleepRow = page.locator('#types tr[data-type="sleep"]');
    await sleepRow.locator('button[data-action=pause]').click();
    await page.fill('#confirm-input', 'not mine to pause');
    await page.click('#confirm-ok');
    await page.locator('#flash.flash-error').waitFor();
    expect(await page.locator('#flash').textContent()).toMatch(
      /Pause failed: POST \/admin\/types\/:type\/pause needs the admin role; this key has the operator role/,
    );

    await page.click('#sign-out');
    await signIn(page, ADMIN);
    await sleepRow.locator('button[data-action=pause]').click();
    await page.locator('#confirm').waitFor({ state: 'visible' });
    expect(await page.locator('#confirm-text').textContent()).toMatch(
      /^Pause job type sleep\? \d+ queued jobs? of it waits? until it is resumed\.$/,
    );
    await page.click('#confirm-ok'); // no reason yet: the dialog asks for one
    await page.locator('#confirm-error').waitFor();
    expect(await page.locator('#confirm').isVisible()).toBe(true);
    await page.fill('#confirm-input', 'upstream maintenance');
    await page.click('#confirm-ok');
    const note = sleepRow.locator('.pause-note');
    await note.waitFor();
    expect(await note.textContent()).toMatch(new RegExp(`^Paused by ${keyId(ADMIN)} .+: upstream maintenance$`));
    expect(await sleepRow.locator('.badge', { hasText: 'paused' }).count()).toBe(1);
    const types = (await adminCall('GET', '/admin/types')).json<{
      data: { type: string; paused: { by: string; reason: string } | null }[];
    }>().data;
    expect(types.find((entry) => entry.type === 'sleep')!.paused).toMatchObject({
      by: keyId(ADMIN),
      reason: 'upstream maintenance',
    });
    await page.screenshot({ path: new URL('overview-paused.png', SCREENSHOTS).pathname, fullPage: true });

    await sleepRow.locator('button[data-action=resume]').click();
    await page.locator('#confirm').waitFor({ state: 'visible' });
    expect(await page.locator('#confirm-text').textContent()).toMatch(
      /^Resume job type sleep\? Workers claim its \d+ queued jobs? again\.$/,
    );
    expect(await page.locator('#confirm-note').textContent()).toMatch(/upstream maintenance/);
    await page.click('#confirm-ok');
    await sleepRow.locator('button[data-action=pause]').waitFor();
    expect(await note.count()).toBe(0);
    const after = (await adminCall('GET', '/admin/types')).json<{ data: { type: string; paused: unknown }[] }>().data;
    expect(after.find((entry) => entry.type === 'sleep')!.paused).toBeNull();

    // A worker: drain, then resume.
    const workerRow = page.locator(`tr[data-worker-id="${harness.pool!.workerId}"]`);
    await workerRow.locator('button[data-action=drain]').click();
    expect(await page.locator('#confirm-text').textContent()).toMatch(
      new RegExp(
        `^Drain worker ${harness.pool!.workerId}\\? (It runs no job now|It finishes the \\d+ jobs? it runs) and claims no new ones\\.$`,
      ),
    );
    await page.click('#confirm-ok');
    await workerRow.locator('.badge', { hasText: 'draining' }).waitFor();
    await workerRow.locator('button[data-action=resume]').click();
    await page.click('#confirm-ok');
    await workerRow.locator('button[data-action=drain]').waitFor();
    expect(await workerRow.locator('.badge', { hasText: 'draining' }).count()).toBe(0);
    expect(problems).toEqual([]);
  });

  it('shows a remote worker beside the in-process pool: its name, kind, slots, the job it holds and its state', async () => {
    await seedOperatorState(); // the in-process pool's registry entry
    const declared = await harness.app.inject({
      method: 'PUT',
      url: '/admin/job-types/ui.remote',
      headers: { authorization: `Bearer ${ADMIN}` },
      payload: { input_schema: { type: 'object' } },
    });
    expect(declared.statusCode, declared.body).toBe(201);
    const registered = await harness.app.inject({
      method: 'POST',
      url: '/v1/workers',
      payload: { name: 'py-gpu-1', types: ['ui.remote'], slots: 2, labels: { host: 'gpu-1' } },
    });
    expect(registered.statusCode, registered.body).toBe(201);
    const workerId = registered.json<{ worker_id: string }>().worker_id;
    const job = await createJob(harness.app, { type: 'ui.remote', input: { n: 1 } });
    const claim = await harness.app.inject({
      method: 'POST',
      url: `/v1/workers/${workerId}/leases`,
      payload: { max: 2 },
    });
    expect(claim.json<{ leases: { job: { id: string } }[] }>().leases.map((lease) => lease.job.id)).toEqual([job.id]);

    const { page, problems } = await openPage();
    await page.goto(`${baseUrl}/admin/ui`);
    await signIn(page, VIEWER);
    const row = page.locator(`tr[data-worker-id="${workerId}"]`);
    await row.waitFor();
    expect(await row.locator('td[data-label=Worker] strong').textContent()).toBe('py-gpu-1');
    expect(await row.locator('td[data-label=Kind]').textContent()).toBe('remote (key anonymous)');
    expect(await row.locator('td[data-label=Slots]').textContent()).toBe('1 / 2');
    expect(await row.locator('td[data-label=State] .badge').first().textContent()).toBe('live');
    await row.locator(`td[data-label=Running] a[href="/admin/ui/jobs/${job.id}"]`).waitFor();
    // The in-process pool is listed beside it.
    expect(await page.locator(`tr[data-worker-id="${harness.pool!.workerId}"] td[data-label=Kind]`).textContent()).toBe(
      'in-process',
    );
    await page.screenshot({ path: new URL('overview-remote-worker.png', SCREENSHOTS).pathname, fullPage: true });

    const gone = await harness.app.inject({ method: 'DELETE', url: `/v1/workers/${workerId}` });
    expect(gone.statusCode).toBe(204);
    expect(problems).toEqual([]);
  });

  it("shows a running job in its worker's row within moments, and clears it when the job ends (the registry follows the work)", async () => {
    const pool = harness.pool!;
    // The service's worker control: writes the registry when the pool's work changes (its beat is 10 s).
    const control = new WorkerControl({
      ops,
      store: harness.store,
      pool,
      log: pino({ level: 'silent' }),
      version: '0.1.0',
      role: 'all',
    });
    await control.start();
    try {
      const { page, problems } = await openPage();
      await page.goto(`${baseUrl}/admin/ui`);
      await signIn(page, OPERATOR);
      const workerRow = page.locator(`tr[data-worker-id="${pool.workerId}"]`);
      await workerRow.waitFor();
      const job = await createJob(harness.app, { type: 'gate', input: {} });
      await expect.poll(() => gateReleases.has(job.id)).toBe(true);
      // The overview reads the registry again soon after the counts change (stats event, then a reload).
      await workerRow.locator(`td[data-label=Running] a[href="/admin/ui/jobs/${job.id}"]`).waitFor({ timeout: 10_000 });
      expect(await workerRow.locator('td[data-label=Slots]').textContent()).toBe(`1 / ${pool.concurrency}`);
      const registry = (await adminCall('GET', '/admin/workers')).json<{
        data: { id: string; slots_busy: number; job_ids: string[] }[];
      }>().data;
      expect(registry.find((worker) => worker.id === pool.workerId)).toMatchObject({
        slots_busy: 1,
        job_ids: [job.id],
      });
      expect(
        (await harness.app.inject({ method: 'GET', url: '/health' })).json<{ checks: { workers: { busy: number } } }>()
          .checks.workers.busy,
      ).toBe(1);
      await page.screenshot({ path: new URL('overview-busy.png', SCREENSHOTS).pathname, fullPage: true });

      gateReleases.get(job.id)!();
      await waitForStatus(harness.app, job.id, 'succeeded');
      await workerRow.locator('td[data-label=Running]', { hasText: '—' }).waitFor({ timeout: 10_000 });
      expect(await workerRow.locator('td[data-label=Slots]').textContent()).toBe(`0 / ${pool.concurrency}`);
      // The job just finished: the "Last hour" panel is not empty next to "finished last minute".
      expect(
        Number(
          await page
            .locator('.tile-label', { hasText: 'finished last minute' })
            .locator('..')
            .locator('.tile-value')
            .textContent(),
        ),
      ).toBeGreaterThan(0);
      expect(await page.locator('#history-empty').count()).toBe(0);
      expect(problems).toEqual([]);
    } finally {
      await control.stop();
    }
  });
  it('shows the tenants with the largest backlog and the keys waiting at their cap; finds jobs by concurrency key', async () => {
    const type = KEYED;
    // Keys come from clients: one with markup, which the page must show as text.
    const key = '<b>cust</b>&1';
    const keyed = async (tenant: string, concurrencyKey: string | null) => {
      const now = Date.now();
      return harness.store.create({
        id: newJobId(now),
        type,
        tenant,
        input: {},
        metadata: {},
        priority: 0,
        maxAttempts: 1,
        timeoutS: null,
        createdAt: now,
        runAt: now,
        concurrencyKey,
      });
    };
    const first = await keyed('acme', key);
    const second = await keyed('acme', key);
    const other = await keyed('acme', 'cust-2');
    // One job per key runs; the key's second job waits at its cap.
    const claimed = await harness.store.claim({
      types: [type],
      limits: { [type]: { keyConcurrency: 1 } },
      max: 10,
      workerId: 'ui-test',
      leaseId: 'ui-lease',
      leaseMs: 120_000,
      now: Date.now(),
    });
    expect(claimed.map((job) => job.id).sort()).toEqual([first.id, other.id].sort());
    await keyed('globex', null);
    await keyed('globex', null);

    const { page, problems } = await openPage();
    await page.goto(`${baseUrl}/admin/ui`);
    await signIn(page, VIEWER);
    const acme = page.locator('#tenants tr[data-tenant="acme"]');
    const globex = page.locator('#tenants tr[data-tenant="globex"]');
    await acme.waitFor();
    expect(await acme.locator('td[data-label=queued]').textContent()).toBe('1');
    expect(await acme.locator('td[data-label=running]').textContent()).toBe('2');
    expect(await globex.locator('td[data-label=queued]').textContent()).toBe('2');
    expect(await globex.locator('td[data-label=running]').textContent()).toBe('0');
    // The largest backlog first.
    const order = await page
      .locator('#tenants tbody tr')
      .evaluateAll((rows) => rows.map((row) => (row as unknown as { dataset: { tenant: string } }).dataset.tenant));
    expect(order.indexOf('globex')).toBeLessThan(order.indexOf('acme'));
    expect(await acme.locator('td[data-label=queued] a').getAttribute('href')).toBe(
      '/admin/ui/jobs?tenant=acme&status=queued',
    );
    expect(await page.locator(`#types tr[data-type="${type}"] .keys-at-cap`).textContent()).toBe('1 key at cap');
    await page.screenshot({ path: new URL('overview-tenants.png', SCREENSHOTS).pathname, fullPage: true });

    // The jobs list, searched by concurrency key: that key's jobs only.
    await page.click('#nav a[data-view=jobs]');
    await page.locator('#filters').waitFor();
    await page.fill('#f-concurrency_key', key);
    await page.click('#filters button[type=submit]');
    await page.waitForURL((url) => url.searchParams.get('concurrency_key') === key);
    await page.locator(`tr[data-job-id="${second.id}"]`).waitFor();
    const listed = await page
      .locator('tr[data-job-id]')
      .evaluateAll((rows) => rows.map((row) => (row as unknown as { dataset: { jobId: string } }).dataset.jobId));
    expect(listed.sort()).toEqual([first.id, second.id].sort());
    expect(await page.inputValue('#f-concurrency_key')).toBe(key);

    // The waiting job's page names its key (as text) and what it waits for.
    await page.locator(`tr[data-job-id="${second.id}"] a`).first().click();
    await page.waitForURL(`**/admin/ui/jobs/${second.id}`);
    const keyFact = page.locator('dt', { hasText: 'Concurrency key' }).locator('xpath=following-sibling::dd[1]');
    await keyFact.waitFor();
    expect(await keyFact.textContent()).toBe(key);
    expect(await keyFact.locator('b').count()).toBe(0);
    expect(await keyFact.locator('a').getAttribute('href')).toBe(
      `/admin/ui/jobs?${new URLSearchParams({ tenant: 'acme', concurrency_key: key }).toString()}`,
    );
    expect(await page.locator('#job-waiting-for').getAttribute('data-reason')).toBe('concurrency_key');
    expect(await page.locator('#job-waiting-for').textContent()).toMatch(/key_concurrency/);
    await page.screenshot({ path: new URL('job-waiting.png', SCREENSHOTS).pathname, fullPage: true });
    // The running one waits for nothing.
    await page.goto(`${baseUrl}/admin/ui/jobs/${first.id}`);
    await page.locator('#job-status .status-running').waitFor();
    expect(await page.locator('#job-waiting-for').count()).toBe(0);
    expect(problems).toEqual([]);
  });
});
