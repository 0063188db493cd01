import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSite } from '../../admin/site.js';
import { addFile, createTransfer, DAY_MS, hashToken, markLive, newBlobKey, newId, newLinkId, newQueueId, newToken, recordDownload, seedRetentionRules } from '../../storage/index.js';
import { httpRequest, makeEnv, sha256, type Env } from '../web/helpers.js';
import { ARTIFACTS, chromiumMissing, launchChromium, screenshot, watchedContext } from './chromium.js';

// The per-recipient table of the admin transfer page (issue 17 item 6) in Chromium, on a phone
// and a laptop: long addresses and file names fit the screen, axe finds nothing serious, no
// console error or CSP violation, and an admin revokes one recipient's link with the keyboard
// alone, after which that link answers 410 and the other still works.

declare const document: any, window: any;

const missing = chromiumMissing();
if (missing) console.warn(`SKIPPED admin recipients browser tests: ${missing}`);

const TOKEN = 'browser-recipients-token-0123456789ab';
const bounds = { defaultMs: 30 * DAY_MS, minMs: DAY_MS, maxMs: 365 * DAY_MS };
const AXE_SOURCE = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const RECIPIENTS = ['procurement.department.head@subsidiary.partner-company.example', 'bob@example.net', 'carol.o-connor@example.org'];

let env: Env;
let app: FastifyInstance;
let base: string;
let browser: Browser;

async function transfer() {
  const id = newId();
  const links = RECIPIENTS.map((recipient) => ({ id: newLinkId(), recipient, token: newToken() }));
  await createTransfer(env.db, {
    id,
    tokenHash: hashToken(newToken()),
    queueId: newQueueId(),
    sender: 'alice.martin@corp.example',
    recipients: RECIPIENTS,
    subject: 'Tender documents',
    messageId: null,
    createdAt: Date.now() - 60_000,
    expiresAt: Date.now() + 7 * DAY_MS,
    links: links.map((l) => ({ id: l.id, recipient: l.recipient, tokenHash: hashToken(l.token) })),
  });
  for (const [i, name] of ['Tender documents part 1 of 3 — technical specification (final).pdf', 'prices.xlsx'].entries()) {
    const data = Buffer.from(`${name} contents`);
    const blobKey = newBlobKey(id, i + 1);
    await env.blobs.put(blobKey, Readable.from([data]));
    await addFile(env.db, { transferId: id, idx: i + 1, name, contentType: 'application/octet-stream', size: data.length, sha256: sha256(data), blobKey });
  }
  await markLive(env.db, id);
  const d = (link: number, fileIdx: number | null, counted: boolean, scanner = false) =>
    recordDownload(env.db, { transferId: id, linkId: links[link]!.id, fileIdx, status: 200, bytesSent: counted ? 80 : 5, range: null, client: '192.0.2.1', userAgent: scanner ? 'Mimecast' : 'Mozilla/5.0', counted, scanner, method: 'GET' });
  await d(0, null, true);
  await d(0, 1, false, true);
  await d(1, 2, false);
  return { id, links };
}

describe.skipIf(Boolean(missing))('per-recipient table of the admin transfer page in Chromium', () => {
  beforeAll(async () => {
    env = await makeEnv();
    await seedRetentionRules(env.db, bounds);
    app = await buildSite({ publicUrl: 'http://127.0.0.1', db: env.db, blobs: env.blobs, rateLimit: false, logger: false, admin: { token: TOKEN, retention: bounds } });
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await env?.close();
  });

  for (const size of [
    { name: 'phone', width: 390, height: 844 },
    { name: 'desktop', width: 1280, height: 800 },
  ]) {
    it(`at ${size.width}x${size.height}: fits the screen, no serious axe finding, one link revoked with the keyboard`, async () => {
      const { id, links } = await transfer();
      const { context, problems } = await watchedContext(browser, { viewport: { width: size.width, height: size.height } });
      try {
        const page = await context.newPage();
        await page.goto(`${base}/admin/login`);
        await page.getByLabel(/Admin token/).fill(TOKEN);
        await page.getByRole('button', { name: /Log in/ }).click();
        // Wait for the dashboard's own requests (its icon), or leaving it aborts them and the page reports a failed request.
        await page.waitForURL(`${base}/admin`, { waitUntil: 'networkidle' });
        await page.goto(`${base}/admin/transfers/${id}`);

        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
        expect(overflow, `scrolls sideways by ${overflow}px`).toBeLessThanOrEqual(0);
        const cells = page.locator('#recipients td');
        for (let i = 0; i < (await cells.count()); i++) {
          const box = await cells.nth(i).boundingBox();
          expect(box!.x + box!.width, `cell ${i}`).toBeLessThanOrEqual(size.width);
        }
        // In address order: bob, carol, procurement.
        const rows = await page.locator('#recipients tbody tr').allInnerTexts();
        expect(rows.map((r) => r.split(/\s/)[0])).toEqual([RECIPIENTS[1], RECIPIENTS[2], RECIPIENTS[0]]);
        expect(rows[2]).toMatch(/\(final\)\.pdf: downloaded \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC \(1 scanner fetch\)/);
        expect(rows[2]).toMatch(/prices\.xlsx: downloaded \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC/);
        expect(rows[0]).toMatch(/prices\.xlsx: not downloaded completely \(1 partial download\)/);
        expect(rows[1]).not.toMatch(/downloaded \d/);

        await page.evaluate(AXE_SOURCE);
        const violations = (await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] })).violations)) as { id: string; impact: string }[];
        expect(violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id)).toEqual([]);
        await screenshot(page, `admin-recipients-${size.width}x${size.height}`);
        await page.locator('#recipients').screenshot({ path: path.join(ARTIFACTS, `admin-recipients-table-${size.width}x${size.height}.png`) });

        // Keyboard only: Tab until Bob's button has the focus, then Enter.
        const bob = page.getByRole('button', { name: 'Revoke link of bob@example.net' });
        for (let i = 0; i < 60 && !(await bob.evaluate((el: any) => el === document.activeElement)); i++) await page.keyboard.press('Tab');
        await expect(bob.evaluate((el: any) => el === document.activeElement)).resolves.toBe(true);
        await page.keyboard.press('Enter');
        await page.waitForURL(/done=recipient-revoked/);
        await expect(page.getByRole('status').innerText()).resolves.toContain("Recipient's link revoked");
        const after = await page.locator('#recipients tbody tr').allInnerTexts();
        expect(after[0]).toMatch(/revoked \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC/);
        expect(await page.getByRole('button', { name: /Revoke link of/ }).count()).toBe(2);
        expect((await httpRequest(`${base}/t/${links[1]!.token}`)).status).toBe(410);
        expect((await httpRequest(`${base}/t/${links[2]!.token}`)).status).toBe(200);
        expect(problems).toEqual([]);
      } finally {
        await context.close();
      }
    }, 120_000);
  }
});
