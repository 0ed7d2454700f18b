import { existsSync, mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadConfig } from '../../src/config.js';
import { defineHandler } from '../../src/handlers/handler.js';
import { MemoryOpsStore } from '../../src/ops/memory-ops-store.js';
import { createJob, startHarness, waitForStatus, type Harness } from '../routes/helpers.js';

/*
 * The dashboard in a real headless Chromium (Debian's `chromium` package, driven by playwright-core), against
 * the app with a real worker pool on 127.0.0.1: sign in, find a failed job, retry it and watch it succeed.
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOTS = new URL('../../test-results/screenshots/', import.meta.url);
const STEP_TIMEOUT_MS = 15_000;

const VIEWER = 'viewer-key-0123456789abcdef';
const OPERATOR = 'operator-key-0123456789abcdef';
const adminKeys = loadConfig({ ADMIN_KEYS: `${VIEWER}:viewer,${OPERATOR}:operator` }).ADMIN_KEYS!;

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
  harness = await startHarness({ workers: true, adminKeys, extraHandlers: [flaky], ops });
  await harness.app.listen({ port: 0, host: '127.0.0.1' });
  baseUrl = `http://127.0.0.1:${(harness.app.server.address() as AddressInfo).port}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'], timeout: 30_000 });
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
    id: pool.workerId, host: 'test-host', pid: process.pid, version: '0.1.0', role: 'all', started_at: now - 60_000, beat_at: now,
    types: ['echo', 'flaky', 'sleep'], slots_total: pool.concurrency, slots_busy: pool.busy, job_ids: [], leases_lost: 0, draining: false,
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
    if (message.type() === 'error' && !/status of 40[13]/.test(message.text())) problems.push(`console: ${message.text()}`);
  });
  return { page, problems };
}

async function signIn(page: Page, key: string): Promise<void> {
  await page.fill('#admin-key', key);
  await page.click('#signin-form button[type=submit]');
}

/** A `flaky` job with one attempt: it fails, and a retry then succeeds. */
async function failedJob(label: string): Promise<string> {
  const job = await createJob(harness.app, { type: 'flaky', input: { label }, max_attempts: 1 });
  await waitForStatus(harness.app, job.id, 'failed');
  return job.id;
}

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
    await page.click('#action-retry');
    await page.locator('#confirm').waitFor({ state: 'visible' });
    expect(await page.locator('#confirm-text').textContent()).toBe(`Retry 1 job ${id}?`);
    await page.click('#confirm-ok');
    await page.locator('#job-status .status-succeeded').waitFor({ timeout: 20_000 });
    expect(await page.evaluate(() => (globalThis as { notReloaded?: boolean }).notReloaded)).toBe(true);
    expect(await page.locator('#flash').textContent()).toMatch(new RegExp(`Retried job ${id}`));
    expect(await page.locator('#job-progress').textContent()).toMatch(/100%/);
    // Both attempts on the timeline (when the service records them), the failed one with its error.
    if ((await page.locator('#attempts').count()) > 0) {
      await page.locator('#attempts .attempt').nth(1).waitFor();
      expect(await page.locator('#attempts .attempt').first().textContent()).toMatch(/upstream refused/);
    }
    await page.click('details[data-key=result] > summary');
    expect(await page.locator('details[data-key=result] pre').textContent()).toContain('"ok": true');
    await page.screenshot({ path: new URL('job.png', SCREENSHOTS).pathname, fullPage: true });
    expect(problems).toEqual([]);
  });

  it('shows a viewer the API\'s 403 when it tries to retry', async () => {
    const id = await failedJob('viewer');
    const { page, problems } = await openPage();
    await page.goto(`${baseUrl}/admin/ui/jobs/${id}`);
    await signIn(page, VIEWER);
    await page.locator('#job-status .status-failed').waitFor();
    await page.click('#action-retry');
    await page.click('#confirm-ok');
    const flash = page.locator('#flash.flash-error');
    await flash.waitFor();
    expect(await flash.textContent()).toMatch(/Retry failed: POST \/admin\/jobs\/:id\/retry needs the operator role; this key has the viewer role/);
    expect((await harness.app.inject({ method: 'GET', url: `/v1/jobs/${id}` })).json<{ status: string }>().status).toBe('failed');
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
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await harness.app.inject({ method: 'GET', url: `/v1/jobs/${id}` })).json<{ status: string }>().status).toBe('failed');
  });
});
