import fs from 'node:fs';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSite } from '../../admin/site.js';
import { appendAudit, DAY_MS, enqueue, newQueueId, queueBlobKey, recordDownload, recordScan, seedRetentionRules } from '../../storage/index.js';
import { addTransfer, makeEnv, type Env, type Fixture } from '../web/helpers.js';
import { chromiumMissing, launchChromium, screenshot, DESKTOP_UA } from './chromium.js';

// Accessibility and small screens (issue 16 item 6): axe-core, injected through playwright-core
// into Debian's Chromium, on every admin page and every download page (landing, 404, 410), at a
// phone's 390x844 and a laptop's 1280x800: no serious or critical violation, nothing wider than
// the screen, a navigation that leaves the phone's screen to the page. Screenshots of each go to
// test/artifacts/browser/ (axe-NAME-WxH.png).

declare const document: any, window: any;

const missing = chromiumMissing();
if (missing) console.warn(`SKIPPED axe browser tests: ${missing}`);

const TOKEN = 'axe-admin-token-0123456789abcdefghij';
const bounds = { defaultMs: 30 * DAY_MS, minMs: DAY_MS, maxMs: 365 * DAY_MS };
const AXE_SOURCE = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const SIZES = [
  { name: 'phone', width: 390, height: 844 },
  { name: 'desktop', width: 1280, height: 800 },
] as const;

let env: Env;
let app: FastifyInstance;
let base: string;
let browser: Browser;
let live: Fixture;
let revoked: Fixture;
let queueId: string;

interface Violation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: unknown[]; html: string }[];
}

/** axe-core's serious and critical findings on the page, in a form a failure message can show. */
async function seriousViolations(page: Page): Promise<string[]> {
  // NB evaluate() runs through the DevTools protocol, which the pages' CSP (no script at all)
  // does not govern; the context bypasses CSP as well so axe's own checks can run.
  await page.evaluate(AXE_SOURCE);
  const result = (await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations;
  })) as Violation[];
  return result.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.map((n) => JSON.stringify(n.target)).join(', ')}`);
}

describe.skipIf(Boolean(missing))('axe-core and small screens in Chromium', () => {
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    env = await makeEnv();
    await seedRetentionRules(env.db, bounds);
    await appendAudit(env.db, { actor: 'admin:alice', action: 'rule_set', detail: { rule: 'recipient_domain:partner.example', periodMs: 14 * DAY_MS, downloadLimit: 3 } });
    app = await buildSite({ publicUrl: 'http://127.0.0.1', db: env.db, blobs: env.blobs, rateLimit: false, logger: false, admin: { tokens: [`alice:${TOKEN}`], retention: bounds } });
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    for (let i = 0; i < 4; i++) {
      const t = await addTransfer(env, {
        sender: `very.long.sender.address.number${i}@subsidiary.corp.example`,
        files: [{ name: `weekly-report-${i}.pdf`, data: Buffer.alloc(1_500_000 * (i + 1)) }],
        createdAt: Date.now() - i * DAY_MS,
        expiresAt: Date.now() + 10 * DAY_MS,
      });
      await recordDownload(env.db, { transferId: t.transferId, fileIdx: 1, status: 200, bytesSent: 1000, range: null, client: '192.0.2.1', userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X)', counted: true, method: 'GET' });
    }
    live = await addTransfer(env, {
      sender: 'alice.martin@example.org',
      subject: 'Q3 figures',
      files: [
        { name: 'Quarterly report Q3 2025 (final).pdf', contentType: 'application/pdf', data: Buffer.alloc(1_234_567) },
        { name: 'invoice\u202Efdp.exe', data: Buffer.from('x') },
      ],
    });
    await recordDownload(env.db, { transferId: live.transferId, fileIdx: 1, status: 200, bytesSent: 1_234_567, range: null, client: '2001:db8::1', userAgent: 'Mozilla/5.0 (X11; Linux x86_64)', counted: true, method: 'GET' });
    revoked = await addTransfer(env, { sender: 'dave@example.org', state: 'revoked', files: [{ name: 'withdrawn.pdf', data: Buffer.from('no') }] });
    // A file held by the malware scan, for the quarantine page.
    const held = await addTransfer(env, { sender: 'mallory.longname@subsidiary.corp.example', files: [{ name: 'Invoice 2025-11 payment details.exe', data: Buffer.from('held') }] });
    await recordScan(env.db, held.transferId, 1, { verdict: 'infected', engine: 'clamav', version: 'ClamAV 1.4.6/27471/Wed Dec  2 09:25:02 2026', signature: 'Win.Trojan.Agent-1234567', at: Date.now() }, { actor: 'system:scan' });
    queueId = newQueueId();
    const raw = Buffer.from('From: dana@corp.example\r\nTo: partner@partner.example\r\nSubject: contract\r\n\r\nsee link\r\n');
    await env.blobs.put(queueBlobKey(queueId), Readable.from([raw]));
    await enqueue(env.db, {
      id: queueId,
      kind: 'message',
      transferId: live.transferId,
      sender: 'dana.longname@corp.example',
      recipients: [{ address: 'partner.procurement@partner.example', state: 'pending', code: 421, response: '421 4.3.2 Service not available' }],
      blobKey: queueBlobKey(queueId),
      size: raw.length,
      createdAt: Date.now() - 95 * 60_000,
      nextAttemptAt: Date.now() + 40 * 60_000,
      attempts: 3,
      lastError: 'connect ECONNREFUSED 192.0.2.25:25',
    });
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    for (const c of contexts) await c.close();
    await browser?.close();
    await app?.close();
    await env?.close();
  });

  for (const size of SIZES) {
    describe(`at ${size.width}x${size.height}`, () => {
      let page: Page;
      const pages = () => [
        ['admin-dashboard', '/admin'],
        ['admin-transfers', '/admin/transfers'],
        ['admin-transfer', `/admin/transfers/${live.transferId}`],
        ['admin-rules', '/admin/rules'],
        ['admin-queue', '/admin/queue'],
        ['admin-queue-entry', `/admin/queue/${queueId}`],
        ['admin-queue-delete', `/admin/queue/${queueId}/delete?mode=bounce`],
        ['admin-quarantine', '/admin/quarantine'],
        ['admin-audit', '/admin/audit'],
        ['admin-sessions', '/admin/sessions'],
        ['admin-not-found', '/admin/no-such-page'],
      ];

      beforeAll(async () => {
        const context = await browser.newContext({ viewport: { width: size.width, height: size.height }, userAgent: DESKTOP_UA, bypassCSP: true });
        contexts.push(context);
        page = await context.newPage();
      });

      it('the login page', async () => {
        await page.goto(`${base}/admin/login`);
        expect(await seriousViolations(page)).toEqual([]);
        await screenshot(page, `axe-admin-login-${size.width}x${size.height}`);
        await page.getByLabel(/Admin token/).fill(TOKEN);
        await page.getByRole('button', { name: /Log in/ }).click();
        await page.waitForURL(`${base}/admin`);
      }, 120_000);

      it('every admin page: no serious or critical violation, nothing wider than the screen', async () => {
        for (const [name, url] of pages()) {
          await page.goto(`${base}${url}`);
          expect(await seriousViolations(page), name).toEqual([]);
          const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
          expect(overflow, `${name} scrolls sideways by ${overflow}px`).toBeLessThanOrEqual(0);
          await screenshot(page, `axe-${name}-${size.width}x${size.height}`);
        }
      }, 240_000);

      it('the header with the navigation stays small, and tables show every column', async () => {
        await page.goto(`${base}/admin/transfers`);
        const header = await page.locator('header.site').boundingBox();
        expect(header!.height, 'header height').toBeLessThanOrEqual(size.width < 600 ? 130 : 90);
        // The Size column is on screen, whole, for every row.
        const cells = page.locator('#transfers td[data-label="Size"]');
        expect(await cells.count()).toBeGreaterThan(3);
        for (let i = 0; i < (await cells.count()); i++) {
          const box = await cells.nth(i).boundingBox();
          expect(box!.x + box!.width).toBeLessThanOrEqual(size.width);
        }
        // No word is broken inside: each text without a space lies on one line (a <wbr> starts a
        // new text node, so an address may still wrap at its dots and its @).
        const broken = await page.evaluate(() => {
          const out: string[] = [];
          const walker = document.createTreeWalker(document.querySelector('#transfers tbody'), 4 /* NodeFilter.SHOW_TEXT */);
          for (let n = walker.nextNode(); n; n = walker.nextNode()) {
            const text = n.textContent.trim();
            if (!text || /\s/.test(text)) continue;
            const r = document.createRange();
            r.selectNodeContents(n);
            if (new Set([...r.getClientRects()].map((b: any) => Math.round(b.top))).size > 1) out.push(text);
          }
          return out;
        });
        expect(broken).toEqual([]);
      });

      it('the dashboard cards fill whole rows', async () => {
        await page.goto(`${base}/admin`);
        const tops = await page.locator('.stats .stat').evaluateAll((els: any[]) => els.map((e) => Math.round(e.getBoundingClientRect().top)));
        const perRow = new Map<number, number>();
        for (const t of tops) perRow.set(t, (perRow.get(t) ?? 0) + 1);
        const counts = [...perRow.values()];
        expect(new Set(counts).size, `cards per row: ${counts.join(', ')}`).toBe(1);
      });

      it('audit and history rows read as words, not JSON', async () => {
        await page.goto(`${base}/admin/audit`);
        const detail = await page.locator('#audit td[data-label="Detail"]').allInnerTexts();
        expect(detail.join('\n')).not.toMatch(/[{}"]/);
        expect(detail.join('\n')).toMatch(/download limit:?\s*3/);
      });

      it('shows file names as the landing page does: no bidi override', async () => {
        await page.goto(`${base}/admin/transfers/${live.transferId}`);
        const names = await page.locator('#files td[data-label="Name"]').allInnerTexts();
        expect(names).toContain('invoicefdp.exe');
        expect(names.join('')).not.toContain('\u202E');
      });

      it('the download pages: landing, 404 and 410', async () => {
        for (const [name, url, status] of [
          ['landing', `/t/${live.token}`, 200],
          ['not-found', '/t/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 404],
          ['revoked', `/t/${revoked.token}`, 410],
        ] as const) {
          const res = await page.goto(`${base}${url}`);
          expect(res!.status(), name).toBe(status);
          expect(await seriousViolations(page), name).toEqual([]);
          const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
          expect(overflow, `${name} scrolls sideways`).toBeLessThanOrEqual(0);
          await screenshot(page, `axe-download-${name}-${size.width}x${size.height}`);
        }
      }, 120_000);
    });
  }
});
