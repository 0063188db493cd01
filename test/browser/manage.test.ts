import fs from 'node:fs';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { Browser, BrowserContextOptions, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addFile,
  createTransfer,
  DAY_MS,
  getTransfer,
  hashToken,
  listAudit,
  listQueue,
  markLive,
  newBlobKey,
  newId,
  newLinkId,
  newQueueId,
  newToken,
  recordDownload,
  seedRetentionRules,
  setCopyBlobKey,
} from '../../storage/index.js';
import { buildWebApp } from '../../web/app.js';
import { makeEnv, type Env } from '../web/helpers.js';
import { chromiumMissing, launchChromium, screenshot, watchedContext, type Problem } from './chromium.js';

// The sender's management page in real Chromium: on a phone and a desktop, used with the keyboard
// alone (revoke one recipient, after which that recipient's link answers 410 and the other's still
// works; move the expiry; send a copy again; withdraw everything), in the four languages, with not
// one console error or CSP violation, and with the browser's own form POSTs passing the
// same-origin check (Chromium sends Origin: null under Referrer-Policy: no-referrer, plus
// Sec-Fetch-Site: same-origin).

declare const document: any, getComputedStyle: any, window: any;

const AXE_SOURCE = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const missing = chromiumMissing();
if (missing) console.warn(`SKIPPED browser tests: ${missing}`);

const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };
const BOUNDS = { defaultMs: 7 * DAY_MS, minMs: DAY_MS, maxMs: 30 * DAY_MS };
const SENDER = 'alice.martin@example.org';

interface Managed {
  transferId: string;
  manageToken: string;
  links: { recipient: string; id: string; token: string }[];
}

let env: Env;
let app: FastifyInstance;
let base: string;
let browser: Browser;

async function addManaged(recipients = ['bob@example.net', 'carol.longname-with-many-parts@subsidiary.example.com']): Promise<Managed> {
  const transferId = newId();
  const manageToken = newToken();
  const createdAt = Date.now() - 2 * 3_600_000;
  const links = recipients.map((recipient) => ({ recipient, id: newLinkId(), token: newToken() }));
  await createTransfer(env.db, {
    id: transferId,
    tokenHash: hashToken(newToken()),
    queueId: newQueueId(),
    sender: SENDER,
    recipients,
    subject: 'Q3 figures and the site photos',
    messageId: `<${newId()}@example.org>`,
    createdAt,
    expiresAt: createdAt + 7 * DAY_MS,
    retentionRule: 'default',
    manageTokenHash: hashToken(manageToken),
    links: links.map((l) => ({ id: l.id, recipient: l.recipient, tokenHash: hashToken(l.token) })),
  });
  for (const [i, name] of ['Quarterly report Q3 2025 (final).pdf', 'site-photos.zip'].entries()) {
    const blobKey = newBlobKey(transferId, i + 1);
    const data = Buffer.alloc(5000 * (i + 1), i);
    await env.blobs.put(blobKey, Readable.from([data]));
    await addFile(env.db, { transferId, idx: i + 1, name, contentType: 'application/octet-stream', size: data.length, sha256: 'ab'.repeat(32), blobKey });
  }
  for (const l of links) {
    const key = `t/${transferId}/copy-${l.id}`;
    await env.blobs.put(key, Readable.from([Buffer.from(`To: ${l.recipient}\r\n\r\nhello\r\n`)]));
    await setCopyBlobKey(env.db, l.id, key);
  }
  await markLive(env.db, transferId);
  return { transferId, manageToken, links };
}

describe.skipIf(Boolean(missing))('management page in Chromium', () => {
  beforeAll(async () => {
    env = await makeEnv();
    await seedRetentionRules(env.db, BOUNDS);
    app = await buildWebApp({ publicUrl: 'http://ferry.invalid', db: env.db, blobs: env.blobs, retention: BOUNDS });
    await app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await env?.close();
  });

  async function open(url: string, opts: BrowserContextOptions = {}): Promise<{ page: Page; problems: Problem[]; status: number; close(): Promise<void> }> {
    const { context, problems } = await watchedContext(browser, { viewport: DESKTOP, locale: 'en-GB', timezoneId: 'Europe/Berlin', ...opts });
    const page = await context.newPage();
    const res = await page.goto(`${base}${url}`, { waitUntil: 'load' });
    return { page, problems, status: res?.status() ?? 0, close: () => context.close() };
  }

  async function expectNoOverflow(page: Page, width: number) {
    const out = await page.evaluate(() => {
      const vw = document.documentElement.clientWidth;
      const wide = [...document.querySelectorAll('body *')]
        .filter((el: any) => {
          const r = el.getBoundingClientRect();
          return r.width > 0 && !el.closest('.vh') && (r.right > vw + 0.5 || r.left < -0.5);
        })
        .map((el: any) => `${el.tagName.toLowerCase()}.${el.className}`);
      return { scrollWidth: document.documentElement.scrollWidth, vw, wide };
    });
    expect(out.vw).toBe(width);
    expect(out.scrollWidth, 'horizontal scrolling').toBeLessThanOrEqual(width);
    expect(out.wide, 'elements outside the viewport').toEqual([]);
  }

  /** Tabs through the page: the accessible name of each control reached, and its focus outline. */
  async function tabOrder(page: Page, max = 20): Promise<{ name: string; outline: string }[]> {
    const order: { name: string; outline: string }[] = [];
    for (let i = 0; i < max; i++) {
      await page.keyboard.press('Tab');
      const el = await page.evaluate(() => {
        const a = document.activeElement;
        if (!a || a === document.body) return undefined;
        const s = getComputedStyle(a);
        const label = a.labels?.[0]?.textContent ?? '';
        return { name: (a.getAttribute('aria-label') ?? (a.textContent || label) ?? '').trim().replace(/\s+/g, ' '), outline: `${s.outlineStyle} ${s.outlineWidth}` };
      });
      if (!el) break;
      order.push(el);
      if (el.name === 'Español') break;
    }
    return order;
  }

  /** Presses Tab until the control with this accessible name has the focus. */
  async function tabTo(page: Page, name: string) {
    for (let i = 0; i < 30; i++) {
      await page.keyboard.press('Tab');
      const now = await page.evaluate(() => {
        const a = document.activeElement;
        const label = a?.labels?.[0]?.textContent ?? '';
        return (a?.getAttribute('aria-label') ?? (a?.textContent || label) ?? '').trim().replace(/\s+/g, ' ');
      });
      if (now === name) return;
    }
    throw new Error(`never reached "${name}" with Tab`);
  }

  for (const [device, viewport] of [
    ['phone', PHONE],
    ['desktop', DESKTOP],
  ] as const) {
    it(`renders on a ${device} (${viewport.width} px wide): each recipient's downloads and every action at hand`, async () => {
      const m = await addManaged();
      await recordDownload(env.db, { transferId: m.transferId, linkId: m.links[0]!.id, fileIdx: 1, status: 200, bytesSent: 5000, range: null, client: '192.0.2.7', userAgent: 'Firefox', counted: true, method: 'GET' });
      await recordDownload(env.db, { transferId: m.transferId, linkId: m.links[1]!.id, fileIdx: null, status: 200, bytesSent: 9000, range: null, client: '192.0.2.9', userAgent: 'Barracuda', counted: false, scanner: true, method: 'GET' });
      const { page, problems, status, close } = await open(`/m/${m.manageToken}`, { viewport, isMobile: device === 'phone', hasTouch: device === 'phone' });
      expect(status).toBe(200);
      await screenshot(page, `manage-${device}`);
      await expect(page.title()).resolves.toBe('Manage your transfer · Ferry');
      await expect(page.getByRole('heading', { level: 3 }).allTextContents()).resolves.toEqual(m.links.map((l) => l.recipient));
      const bob = page.locator('li.file').nth(0);
      await expect(bob.innerText()).resolves.toMatch(/Quarterly report Q3 2025 \(final\)\.pdf: Downloaded completely on .*(CES?T|GMT\+[12])/);
      const carol = page.locator('li.file').nth(1);
      await expect(carol.innerText()).resolves.toContain('site-photos.zip: Not downloaded yet (1 fetch by a mail scanner)');
      for (const l of m.links) {
        for (const name of [`Send again (${l.recipient})`, `Revoke link (${l.recipient})`]) {
          const button = page.getByRole('button', { name, exact: true });
          await expect(button.isVisible()).resolves.toBe(true);
          const box = (await button.boundingBox())!;
          expect(box.height, name).toBeGreaterThanOrEqual(44);
          expect(box.x + box.width).toBeLessThanOrEqual(viewport.width);
        }
      }
      await expect(page.getByRole('spinbutton', { name: 'Days after sending' }).inputValue()).resolves.toBe('7');
      await expect(page.getByRole('checkbox', { name: 'Yes, withdraw all links' }).isChecked()).resolves.toBe(false);
      await expectNoOverflow(page, viewport.width);
      await close();
      expect(problems).toEqual([]);
    });
  }

  it('works with the keyboard alone: revoking one recipient shuts that link (410) and leaves the other working', async () => {
    const m = await addManaged();
    const [bob, carol] = m.links;
    const { page, problems, close } = await open(`/m/${m.manageToken}`);
    const order = await tabOrder(page);
    expect(order.map((o) => o.name)).toEqual([
      `Send again (${bob!.recipient})`,
      `Revoke link (${bob!.recipient})`,
      `Send again (${carol!.recipient})`,
      `Revoke link (${carol!.recipient})`,
      'Days after sending',
      'Change',
      'Yes, withdraw all links',
      'Withdraw all',
      'English',
      'Deutsch',
      'Français',
      'Español',
    ]);
    for (const o of order) expect(o.outline, o.name).toBe('solid 3px');

    await page.reload();
    await tabTo(page, `Revoke link (${bob!.recipient})`);
    await Promise.all([page.waitForURL(/done=link-revoked/), page.keyboard.press('Enter')]);
    await expect(page.getByRole('status').textContent()).resolves.toBe(`The link of ${bob!.recipient} was revoked.`);
    await expect(page.locator('li.file').nth(0).innerText()).resolves.toMatch(/Link revoked on /);
    await screenshot(page, 'manage-desktop-revoked-one');
    expect((await listAudit(env.db, { transferId: m.transferId, action: 'link_revoked' }))[0]?.actor).toBe(`sender:${SENDER}`);

    // What each recipient now gets from their own link, in the same browser.
    const gone = await page.goto(`${base}/t/${bob!.token}`);
    expect(gone?.status()).toBe(410);
    await expect(page.locator('h1').textContent()).resolves.toBe('These files are no longer available');
    const works = await page.goto(`${base}/t/${carol!.token}`);
    expect(works?.status()).toBe(200);
    await expect(page.locator('h1').textContent()).resolves.toBe(`Files from ${SENDER}`);
    await close();
    expect(problems.filter((p) => !(p.kind === 'console' && p.text.startsWith('error: Failed to load resource: the server responded with a status of 410')))).toEqual([]);
  });

  it('moves the expiry, sends a copy again and withdraws everything, all from the keyboard', async () => {
    const m = await addManaged();
    const { page, problems, close } = await open(`/m/${m.manageToken}`, { viewport: PHONE, isMobile: true, hasTouch: true });
    const created = (await getTransfer(env.db, m.transferId))!.createdAt;

    await tabTo(page, 'Days after sending');
    await page.keyboard.press('Control+A');
    await page.keyboard.type('14');
    await Promise.all([page.waitForURL(/done=expiry/), page.keyboard.press('Enter')]);
    await expect(page.getByRole('status').textContent()).resolves.toMatch(/^The files are now available until /);
    expect((await getTransfer(env.db, m.transferId))!.expiresAt).toBe(created + 14 * DAY_MS);

    // Out of range: the browser's own check stops the form (the server would refuse it too).
    await tabTo(page, 'Days after sending');
    await page.keyboard.press('Control+A');
    await page.keyboard.type('45');
    await page.keyboard.press('Enter');
    await expect(page.evaluate(() => document.activeElement.validity.rangeOverflow)).resolves.toBe(true);
    expect((await getTransfer(env.db, m.transferId))!.expiresAt).toBe(created + 14 * DAY_MS);

    await page.reload();
    await tabTo(page, `Send again (${m.links[1]!.recipient})`);
    await Promise.all([page.waitForURL(/done=resent/), page.keyboard.press('Enter')]);
    await expect(page.getByRole('status').textContent()).resolves.toBe(`The message to ${m.links[1]!.recipient} is on its way again.`);
    expect((await listQueue(env.db)).entries.filter((e) => e.recipients[0]?.address === m.links[1]!.recipient)).toHaveLength(1);

    // Withdraw all: the box must be ticked first (Space), then the button.
    await tabTo(page, 'Withdraw all');
    await page.keyboard.press('Enter');
    expect((await getTransfer(env.db, m.transferId))!.state).toBe('live');
    await tabTo(page, 'Yes, withdraw all links');
    await page.keyboard.press('Space');
    await page.keyboard.press('Tab');
    await Promise.all([page.waitForURL(/done=revoked/), page.keyboard.press('Enter')]);
    await screenshot(page, 'manage-phone-withdrawn');
    await expect(page.getByRole('status').textContent()).resolves.toBe('All links were withdrawn.');
    expect((await getTransfer(env.db, m.transferId))!.state).toBe('revoked');
    await expect(page.locator('main form').count()).resolves.toBe(0);
    await expectNoOverflow(page, PHONE.width);
    await close();
    expect(problems).toEqual([]);
  });

  const LANGS = [
    ['en', 'Manage your transfer', 'Revoke link', 'en-GB'],
    ['de', 'Ihre Sendung verwalten', 'Link sperren', 'de-DE'],
    ['fr', 'Gérer votre envoi', 'Révoquer le lien', 'fr-FR'],
    ['es', 'Gestionar su envío', 'Revocar enlace', 'es-ES'],
  ] as const;
  for (const [lang, title, revoke, locale] of LANGS) {
    it(`speaks ${lang} (from the browser's language), and keeps it across an action`, async () => {
      const m = await addManaged();
      const { page, problems, close } = await open(`/m/${m.manageToken}`, { locale });
      await expect(page.locator('html').getAttribute('lang')).resolves.toBe(lang);
      await expect(page.locator('h1').textContent()).resolves.toBe(title);
      if (lang === 'de') await screenshot(page, 'manage-desktop-de');
      await Promise.all([page.waitForURL(/done=link-revoked/), page.getByRole('button', { name: `${revoke} (${m.links[0]!.recipient})` }).click()]);
      expect(page.url()).toContain(`lang=${lang}`);
      await expect(page.locator('h1').textContent()).resolves.toBe(title);
      await expect(page.getByRole('status').textContent()).resolves.toContain(m.links[0]!.recipient);
      await close();
      expect(problems).toEqual([]);
    });
  }

  for (const [size, viewport, scheme] of [
    ['phone', PHONE, 'light'],
    ['desktop', DESKTOP, 'dark'],
  ] as const) {
    it(`has no serious or critical axe-core finding on a ${size} in ${scheme} mode, with a status line shown`, async () => {
      const m = await addManaged();
      await recordDownload(env.db, { transferId: m.transferId, linkId: m.links[0]!.id, fileIdx: 2, status: 206, bytesSent: 10, range: 'bytes=0-9', client: '192.0.2.7', userAgent: 'Firefox', counted: false, method: 'GET' });
      // axe runs its own script in the page: this context bypasses the CSP (the other tests check it).
      const { page, close } = await open(`/m/${m.manageToken}?lang=en&error=too-soon`, { viewport, colorScheme: scheme, bypassCSP: true, isMobile: size === 'phone' });
      await page.evaluate(AXE_SOURCE);
      const violations = (await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] })).violations)) as { id: string; impact: string | null; help: string; nodes: { target: unknown[] }[] }[];
      const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.map((n) => JSON.stringify(n.target)).join(', ')}`);
      expect(serious).toEqual([]);
      await expect(page.getByRole('alert').textContent()).resolves.toBe('This message was sent again a few minutes ago. Please wait before sending it once more.');
      await close();
    });
  }

  it('labels everything for assistive technology', async () => {
    const m = await addManaged();
    const { page, problems, close } = await open(`/m/${m.manageToken}`);
    const report = await page.evaluate(() => ({
      h1: document.querySelectorAll('h1').length,
      unnamed: [...document.querySelectorAll('a, button')].filter((el: any) => !(el.getAttribute('aria-label') ?? el.textContent ?? '').trim()).map((el: any) => el.outerHTML.slice(0, 80)),
      unlabelledInputs: [...document.querySelectorAll('input:not([type=hidden])')].filter((el: any) => !el.labels?.length).length,
      exposedSvg: [...document.querySelectorAll('svg:not([aria-hidden="true"])')].length,
      landmarks: ['header', 'main', 'footer', 'nav'].filter((t) => !document.querySelector(t)),
    }));
    expect(report).toEqual({ h1: 1, unnamed: [], unlabelledInputs: 0, exposedSvg: 0, landmarks: [] });
    await expect(page.getByRole('heading', { level: 2 }).allTextContents()).resolves.toEqual(['Recipients and downloads', 'Availability', 'Withdraw everything']);
    await close();
    expect(problems).toEqual([]);
  });
});
