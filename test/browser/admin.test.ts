import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { DAY_MS, enqueue, getQueueEntry, getRule, getTransfer, newQueueId, queueBlobKey, recordDownload, seedRetentionRules } from '../../storage/index.js';
import { buildSite } from '../../admin/site.js';
import { addTransfer, makeEnv, type Env, type Fixture } from '../web/helpers.js';
import { chromiumMissing, launchChromium, screenshot, watchedContext, type Problem } from './chromium.js';

// The admin UI in real Chromium, as an admin uses it: log in with the token, find a transfer by
// file name, revoke it (its landing page then answers 410), edit a rule, see the charts; and a
// form whose CSRF token was taken out is refused. No console error or CSP violation on the way.

declare const document: any;

const missing = chromiumMissing();
if (missing) console.warn(`SKIPPED admin browser tests: ${missing}`);

const TOKEN = 'browser-admin-token-0123456789abcdef';
const bounds = { defaultMs: 30 * DAY_MS, minMs: DAY_MS, maxMs: 365 * DAY_MS };

let env: Env;
let app: FastifyInstance;
let base: string;
let browser: Browser;
let target: Fixture;

describe.skipIf(Boolean(missing))('admin UI in Chromium', () => {
  let page: Page;
  let problems: Problem[];

  beforeAll(async () => {
    env = await makeEnv();
    await seedRetentionRules(env.db, bounds);
    app = await buildSite({ publicUrl: 'http://127.0.0.1', db: env.db, blobs: env.blobs, rateLimit: false, logger: false, admin: { token: TOKEN, retention: bounds } });
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    // Some history for the charts: transfers and downloads over the last days.
    for (let i = 0; i < 6; i++) {
      const t = await addTransfer(env, { files: [{ name: `weekly-${i}.pdf`, data: Buffer.alloc(1000 * (i + 1)) }], createdAt: Date.now() - i * DAY_MS, expiresAt: Date.now() + 10 * DAY_MS });
      for (let d = 0; d <= i % 3; d++) {
        await recordDownload(env.db, { transferId: t.transferId, fileIdx: 1, status: 200, bytesSent: 1000, range: null, client: '192.0.2.1', userAgent: 'x', counted: true, method: 'GET' });
      }
    }
    target = await addTransfer(env, { files: [{ name: 'Merger agreement draft.docx', data: Buffer.from('secret draft') }], sender: 'cfo@corp.example' });
    browser = await launchChromium();
    const watched = await watchedContext(browser, { viewport: { width: 1280, height: 900 } });
    problems = watched.problems;
    page = await watched.context.newPage();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await env?.close();
  });

  it('logs in with the admin token and shows the dashboard with its charts', async () => {
    await page.goto(`${base}/admin`);
    expect(new URL(page.url()).pathname).toBe('/admin/login');
    await page.getByLabel(/Admin token/).fill(TOKEN);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(`${base}/admin`);
    await expect(page.getByRole('heading', { name: 'Dashboard' }).isVisible()).resolves.toBe(true);
    const charts = page.locator('figure.chart svg');
    expect(await charts.count()).toBe(3);
    for (let i = 0; i < 3; i++) {
      const box = await charts.nth(i).boundingBox();
      expect(box!.width).toBeGreaterThan(300);
      expect(box!.height).toBeGreaterThan(60);
    }
    // 30 days of bars per chart; the bars of days with data have a height and the accent colour.
    expect(await page.locator('#chart-downloads rect.bar').count()).toBe(30);
    const tallest = await page.locator('#chart-downloads rect.bar').evaluateAll((rects: any[]) => Math.max(...rects.map((r) => r.getBBox().height)));
    expect(tallest).toBeGreaterThan(20);
    const fill = await page.locator('#chart-transfers rect.bar').first().evaluate((r: any) => document.defaultView.getComputedStyle(r).fill);
    expect(fill).not.toBe('rgb(0, 0, 0)');
    await screenshot(page, 'admin-dashboard');
  });

  it('finds a transfer by file name and revokes it; its landing page then answers 410', async () => {
    await page.getByRole('link', { name: 'Transfers' }).click();
    await page.getByLabel('File name').fill('merger');
    await page.getByRole('button', { name: 'Search' }).click();
    const rows = page.locator('#transfers tbody tr');
    expect(await rows.count()).toBe(1);
    await expect(rows.first().textContent()).resolves.toContain('cfo@corp.example');
    await rows.first().getByRole('link').click();
    await expect(page.getByRole('heading', { name: `Transfer ${target.transferId}` }).isVisible()).resolves.toBe(true);
    await expect(page.locator('#files').textContent()).resolves.toContain('Merger agreement draft.docx');
    const before = await page.context().request.get(`${base}/t/${target.token}`);
    expect(before.status()).toBe(200);
    await page.getByRole('button', { name: 'Revoke links' }).click();
    await expect(page.getByRole('status').textContent()).resolves.toContain('Revoked');
    await screenshot(page, 'admin-transfer-revoked');
    const landing = await page.context().newPage();
    const res = await landing.goto(`${base}/t/${target.token}`);
    expect(res!.status()).toBe(410);
    await landing.close();
    expect((await getTransfer(env.db, target.transferId))!.state).toBe('revoked');
  });

  it('edits a rule and shows a validation message for a bad one', async () => {
    await page.getByRole('link', { name: 'Retention rules' }).click();
    await page.getByLabel('Days for default').fill('21');
    await page.locator('#rule-default').getByRole('button', { name: 'Save' }).click();
    await expect(page.getByRole('status').textContent()).resolves.toContain('Rule saved');
    expect(await page.getByLabel('Days for default').inputValue()).toBe('21');
    expect((await getRule(env.db, 'default'))!.periodMs).toBe(21 * DAY_MS);
    await page.getByLabel('Address or domain').fill('not a domain');
    await page.getByLabel('Days', { exact: true }).fill('7');
    await page.getByRole('button', { name: 'Add rule' }).click();
    await expect(page.locator('#rule-error').textContent()).resolves.toContain('is not a domain');
    expect(await page.getByLabel('Address or domain').inputValue()).toBe('not a domain');
    await page.getByLabel('Address or domain').fill('partner.example');
    await page.getByRole('button', { name: 'Add rule' }).click();
    await expect(page.locator('#rules').textContent()).resolves.toContain('partner.example');
    await screenshot(page, 'admin-rules');
  });

  it('refuses a form post whose CSRF token was removed', async () => {
    const other = await addTransfer(env, { files: [{ name: 'keep.txt', data: Buffer.from('k') }] });
    await page.goto(`${base}/admin/transfers/${other.transferId}`);
    await page.evaluate(() => {
      for (const el of document.querySelectorAll('input[name="_csrf"]')) el.remove();
    });
    const [response] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.getByRole('button', { name: 'Place hold' }).click()]);
    expect(response.status()).toBe(403);
    await expect(page.getByRole('heading', { name: 'Form refused' }).isVisible()).resolves.toBe(true);
    expect((await getTransfer(env.db, other.transferId))!.held).toBe(false);
  });

  it('shows the audit log and exports it as CSV', async () => {
    await page.goto(`${base}/admin`);
    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.getByLabel('Action').selectOption('revoked');
    await page.getByRole('button', { name: 'Filter' }).click();
    const rows = page.locator('#audit tbody tr');
    expect(await rows.count()).toBe(1);
    await expect(rows.first().textContent()).resolves.toContain(target.transferId);
    await screenshot(page, 'admin-audit');
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Export CSV' }).click()]);
    expect(download.suggestedFilename()).toMatch(/^ferry-audit-.*\.csv$/);
    const csv = await (await import('node:fs')).promises.readFile((await download.path())!, 'utf8');
    expect(csv.split('\r\n')[0]).toBe('id,time,actor,action,transfer_id,detail');
    expect(csv).toContain(`,revoked,${target.transferId},`);
    expect(csv).not.toContain(',stored,');
  });

  it('shows the delivery queue; retries an entry and deletes it silently after the confirmation step', async () => {
    const id = newQueueId();
    const raw = Buffer.from('From: dana@corp.example\r\nTo: partner@partner.example\r\nSubject: contract\r\n\r\nsee link\r\n');
    await env.blobs.put(queueBlobKey(id), Readable.from([raw]));
    const created = Date.now() - 95 * 60_000;
    await enqueue(env.db, {
      id,
      kind: 'message',
      transferId: target.transferId,
      sender: 'dana@corp.example',
      recipients: [{ address: 'partner@partner.example', state: 'pending', code: 421, response: '421 4.3.2 Service not available' }],
      blobKey: queueBlobKey(id),
      size: raw.length,
      createdAt: created,
      nextAttemptAt: Date.now() + 40 * 60_000,
      attempts: 3,
      lastError: 'connect ECONNREFUSED 192.0.2.25:25',
    });
    await page.goto(`${base}/admin`);
    await expect(page.locator('#dash-queue-size').textContent()).resolves.toBe('1');
    await page.getByRole('link', { name: 'Queue', exact: true }).click();
    const rows = page.locator('#queue tbody tr');
    expect(await rows.count()).toBe(1);
    await expect(rows.first().textContent()).resolves.toMatch(/dana@corp\.example.*partner@partner\.example.*pending.*1 h 35 min.*ECONNREFUSED/s);
    await screenshot(page, 'admin-queue');
    await rows.first().getByRole('link', { name: id }).click();
    await page.getByRole('button', { name: 'Retry now' }).click();
    await expect(page.getByRole('status').textContent()).resolves.toContain('Due now');
    await screenshot(page, 'admin-queue-entry');
    expect((await getQueueEntry(env.db, id))!.nextAttemptAt).toBeLessThanOrEqual(Date.now());
    await page.getByLabel(/Delete silently/).check();
    await page.getByRole('button', { name: 'Delete…' }).click();
    await expect(page.getByRole('heading', { name: `Delete ${id} silently?` }).isVisible()).resolves.toBe(true);
    expect(await getQueueEntry(env.db, id)).toBeDefined();
    await page.getByRole('button', { name: 'Delete silently' }).click();
    await expect(page.getByRole('status').textContent()).resolves.toContain('Deleted');
    expect(await getQueueEntry(env.db, id)).toBeUndefined();
    await screenshot(page, 'admin-queue-deleted');
  });

  it('had no console error and no CSP violation', () => {
    // The 400 (invalid rule), 403 (refused form) and 410 (revoked link) pages are answers the
    // test asked for; Chromium logs every 4xx document as a console error.
    expect(problems.filter((p) => !(p.kind === 'console' && /status of (400|403|410) /.test(p.text)))).toEqual([]);
  });
});
