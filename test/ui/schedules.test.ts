import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { parseApiKeys } from '../../src/http/api-auth.js';
import { startHarness, type Harness } from '../routes/helpers.js';

/*
 * The dashboard's Schedules view in a real headless Chromium (see dashboard.test.ts for the harness): every
 * tenant's schedules with their next runs, Pause, Run now and the job it makes in the schedule's jobs, and a
 * viewer who is shown no write buttons.
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOTS = new URL('../../test-results/screenshots/', import.meta.url);
const STEP_TIMEOUT_MS = 15_000;

const VIEWER = 'viewer-key-0123456789abcdef';
const OPERATOR = 'operator-key-0123456789abcdef';
const ACME = 'acme-api-key-0123456789abcdef';
const GLOBEX = 'globex-api-key-0123456789abcdef';
const adminKeys = loadConfig({ ADMIN_KEYS: `${VIEWER}:viewer,${OPERATOR}:operator` }).ADMIN_KEYS!;
const keyId = (key: string) => createHash('sha256').update(key).digest('hex').slice(0, 8);

let harness: Harness;
let baseUrl: string;
let browser: Browser;
const contexts: BrowserContext[] = [];

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
    apiKeys: parseApiKeys([
      { key: ACME, tenant: 'acme' },
      { key: GLOBEX, tenant: 'globex' },
    ]),
  });
  await harness.app.listen({ port: 0, host: '127.0.0.1' });
  baseUrl = `http://127.0.0.1:${(harness.app.server.address() as AddressInfo).port}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
    timeout: 30_000,
  });
  // Two tenants' schedules, made through the client API as their owners would. Markup in a value is text.
  for (const [key, body] of [
    [ACME, { id: 'nightly', cron: '0 3 * * *', timezone: 'Europe/Paris', metadata: { note: '<b>bold</b>' } }],
    [GLOBEX, { id: 'reports', every_s: 3600 }],
  ] as const) {
    const response = await harness.app.inject({
      method: 'POST',
      url: '/v1/schedules',
      headers: { authorization: `Bearer ${key}` },
      payload: { type: 'echo', input: { value: 'from a schedule' }, ...body },
    });
    expect(response.statusCode, response.body).toBe(201);
  }
});

afterEach(async () => {
  for (const context of contexts.splice(0)) await context.close();
});

afterAll(async () => {
  await browser?.close();
  await harness?.close();
});

/** A fresh browser profile whose page fails the test on a script error or a CSP violation. */
async function openPage(viewport = { width: 1280, height: 900 }): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.newContext({ viewport });
  contexts.push(context);
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && !/status of 40[13]/.test(message.text()))
      problems.push(`console: ${message.text()}`);
  });
  return { page, problems };
}

async function signIn(page: Page, key: string): Promise<void> {
  await page.fill('#admin-key', key);
  await page.click('#signin-form button[type=submit]');
}

const row = (page: Page, tenant: string, id: string) =>
  page.locator(`tr[data-tenant="${tenant}"][data-schedule-id="${id}"]`);

const scheduleOf = async (tenant: string, id: string) =>
  (
    await harness.app.inject({
      method: 'GET',
      url: `/admin/schedules/${tenant}/${id}`,
      headers: { authorization: `Bearer ${VIEWER}` },
    })
  ).json<{ paused: boolean; last_job: { id: string } | null }>();

describe('the Schedules view in Chromium', () => {
  it("lists both tenants' schedules with their next runs; Pause changes the state; Run now makes a job shown in its jobs", async () => {
    const { page, problems } = await openPage();
    await page.goto(`${baseUrl}/admin/ui`);
    await signIn(page, OPERATOR);
    await page.locator('#status-tiles').waitFor();
    await page.click('#nav a[data-view=schedules]');
    await page.waitForURL(/\/admin\/ui\/schedules$/);
    expect(await page.locator('#nav a[data-view=schedules]').getAttribute('aria-current')).toBe('page');

    const nightly = row(page, 'acme', 'nightly');
    const reports = row(page, 'globex', 'reports');
    await nightly.waitFor();
    await reports.waitFor();
    expect(await page.locator('#schedules tbody tr').count()).toBe(2);
    expect(await nightly.locator('.rule').textContent()).toBe('cron 0 3 * * * (Europe/Paris)');
    expect(await reports.locator('.rule').textContent()).toBe('every 1 h');
    for (const schedule of [nightly, reports]) {
      expect(await schedule.locator('.next-run time').textContent()).toMatch(/^in /);
      expect(await schedule.locator('.schedule-state').getAttribute('data-state')).toBe('active');
      expect(await schedule.locator('.last-job').textContent()).toBe('none yet');
    }
    await page.screenshot({ path: new URL('schedules.png', SCREENSHOTS).pathname, fullPage: true });

    // Pause acme's, after the confirmation: the row says so, and so does the API.
    await nightly.locator('button[data-action=pause]').click();
    await page.locator('#confirm').waitFor({ state: 'visible' });
    expect(await page.locator('#confirm-text').textContent()).toBe('Pause schedule acme/nightly?');
    await page.click('#confirm-ok');
    await nightly.locator('.schedule-state[data-state=paused]').waitFor();
    expect(await nightly.locator('.next-run').textContent()).toBe('none while paused');
    expect(await nightly.locator('button[data-action=resume]').count()).toBe(1);
    expect((await scheduleOf('acme', 'nightly')).paused).toBe(true);
    expect(await page.locator('#flash').textContent()).toMatch(/Paused schedule acme\/nightly/);

    // The filters are the URL's query.
    await page.selectOption('#s-paused', 'true');
    await page.waitForURL(/\/admin\/ui\/schedules\?paused=true$/);
    await page.locator('#schedules tbody tr').first().waitFor();
    await expect.poll(() => page.locator('#schedules tbody tr').count()).toBe(1);
    await page.click('#schedule-filters button[type=button]');
    await reports.waitFor();

    // globex's page: no jobs yet; Run now makes one, which shows in its jobs and becomes its last job.
    await reports.locator('a').first().click();
    await page.waitForURL('**/admin/ui/schedules/globex/reports');
    await page.locator('.schedule-summary').waitFor();
    expect(await page.locator('.schedule').textContent()).toContain('It has made no job yet.');
    await page.click('button[data-action=trigger]');
    expect(await page.locator('#confirm-text').textContent()).toBe('Run schedule globex/reports now?');
    await page.click('#confirm-ok');
    const jobRow = page.locator('#schedule-jobs tr[data-job-id]');
    await jobRow.waitFor();
    const jobId = (await jobRow.getAttribute('data-job-id'))!;
    expect((await scheduleOf('globex', 'reports')).last_job?.id).toBe(jobId);
    // A worker runs it; the page follows.
    await jobRow.locator('.status-succeeded').waitFor();
    await page.locator('#schedule-last-job .status-succeeded').waitFor();
    expect(await page.locator('#flash').textContent()).toContain(`Ran schedule globex/reports: job ${jobId}`);

    // The job links back to the schedule that made it.
    await jobRow.locator('a').click();
    await page.waitForURL(`**/admin/ui/jobs/${jobId}`);
    await page.locator(`.facts a[href="/admin/ui/schedules/globex/reports"]`).waitFor();

    // acme's page shows the metadata's markup as text.
    await page.goto(`${baseUrl}/admin/ui/schedules/acme/nightly`);
    await page.locator('.schedule-summary').waitFor();
    expect(await page.locator('.chip').textContent()).toBe('note=<b>bold</b>');
    expect(await page.locator('main b').count()).toBe(0);
    await page.screenshot({ path: new URL('schedule.png', SCREENSHOTS).pathname, fullPage: true });
    expect(problems).toEqual([]);
  });

  it('shows a viewer the schedules and their jobs, but no write buttons', async () => {
    const trigger = await harness.app.inject({
      method: 'POST',
      url: '/admin/schedules/globex/reports/trigger',
      headers: { authorization: `Bearer ${OPERATOR}` },
    });
    expect(trigger.statusCode, trigger.body).toBe(201);
    const { page, problems } = await openPage();
    await page.goto(`${baseUrl}/admin/ui/schedules`);
    await signIn(page, VIEWER);
    await row(page, 'globex', 'reports').waitFor();
    expect(await page.locator('#identity').textContent()).toBe(`viewer · key ${keyId(VIEWER)}`);
    expect(await page.locator('#schedules tbody tr').count()).toBe(2);
    expect(await page.locator('#schedules th').allTextContents()).not.toContain('Actions');
    expect(await page.locator('button[data-action]').count()).toBe(0);
    await row(page, 'globex', 'reports').locator('a').first().click();
    await page.locator('.schedule-summary').waitFor();
    await page.locator('#schedule-jobs tr[data-job-id]').first().waitFor();
    expect(await page.locator('button[data-action]').count()).toBe(0);
    expect(problems).toEqual([]);
  });

  it('fits a phone: the schedules become cards and nothing scrolls sideways', async () => {
    const { page, problems } = await openPage({ width: 390, height: 844 });
    await page.goto(`${baseUrl}/admin/ui/schedules`);
    await signIn(page, OPERATOR);
    await row(page, 'acme', 'nightly').waitFor();
    const overflow = () =>
      page.evaluate(() => {
        const { documentElement } = (
          globalThis as unknown as { document: { documentElement: { scrollWidth: number; clientWidth: number } } }
        ).document;
        return documentElement.scrollWidth - documentElement.clientWidth;
      });
    expect(await overflow()).toBeLessThanOrEqual(0);
    await page.screenshot({ path: new URL('schedules-phone.png', SCREENSHOTS).pathname, fullPage: true });
    await row(page, 'acme', 'nightly').locator('a').first().click();
    await page.locator('.schedule-summary').waitFor();
    expect(await overflow()).toBeLessThanOrEqual(0);
    expect(problems).toEqual([]);
  });
});
