import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Browser, BrowserContextOptions, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { displayName, savedName } from '../../storage/index.js';
import { brandColors } from '../../web/brand.js';
import { humanTime, isoTime } from '../../web/format.js';
import { buildWebApp } from '../../web/app.js';
import { addTransfer, downloads, makeEnv, sha256, waitFor, type Env, type Fixture } from '../web/helpers.js';
import { bufferReader, checkLocal, listZip } from '../web/zip-reader.js';
import { chromiumMissing, DESKTOP_UA, launchChromium, screenshot, watchedContext, type Problem } from './chromium.js';

// What a recipient sees and does, in real Chromium: the landing page on a phone and a desktop,
// a click that saves the exact bytes, "Download all" that gives a zip of the same files, the
// pages for expired and revoked links, keyboard use, contrast, languages, and not one console
// error or CSP violation on the way. One browser for the whole file; one context per scenario.

// Browser globals used inside page.evaluate(), declared for this module only (see chromium.ts).
declare const document: any, location: any, navigator: any, getComputedStyle: any;

const missing = chromiumMissing();
if (missing) console.warn(`SKIPPED browser tests: ${missing}`);

const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };

let env: Env;
let app: FastifyInstance;
let base: string;
let browser: Browser;
let fx: Fixture;
let single: Fixture;
let hostile: Fixture;
let expired: Fixture;
let revoked: Fixture;
const EXPIRED_AT = Date.UTC(2026, 0, 15, 9, 30);
const HOSTILE_NAMES = [
  '<script>alert(1)</script>.html',
  'say "hi" & \'bye\'.txt',
  '../../etc/passwd',
  'invoice\u202Efdp.exe',
  'Projektbericht '.repeat(20) + 'final.pdf',
];

describe.skipIf(Boolean(missing))('landing page in Chromium', () => {
  beforeAll(async () => {
    env = await makeEnv();
    fx = await addTransfer(env, {
      sender: 'alice.martin@example.org',
      subject: 'Q3 figures and the site photos',
      createdAt: Date.now() - 5 * 3_600_000,
      expiresAt: Date.now() + 6 * 86_400_000 + 3_600_000,
      files: [
        { name: 'Quarterly report Q3 2025 (final).pdf', contentType: 'application/pdf', data: randomBytes(1_234_567) },
        { name: 'site-photos.zip', contentType: 'application/zip', data: randomBytes(2_345_678) },
        { name: 'budget.xlsx', contentType: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', data: randomBytes(45_678) },
        { name: 'notes.txt', contentType: 'text/plain; charset=utf-8', data: Buffer.from('Meeting at 10:00.\n') },
      ],
    });
    single = await addTransfer(env, { files: [{ name: 'contract.pdf', contentType: 'application/pdf', data: randomBytes(80_000) }] });
    hostile = await addTransfer(env, {
      sender: '"Mallory <script>" <m@example.org>',
      subject: 'urgent \u202Etxt.exe <img src=x onerror=alert(1)>',
      files: HOSTILE_NAMES.map((name, i) => ({ name, contentType: i === 0 ? 'text/html' : 'application/octet-stream', data: randomBytes(1000 + i) })),
    });
    expired = await addTransfer(env, { sender: 'carol@example.org', createdAt: EXPIRED_AT - 7 * 86_400_000, expiresAt: EXPIRED_AT, files: [{ name: 'old.pdf', data: Buffer.from('old') }] });
    revoked = await addTransfer(env, { sender: 'dave@example.org', state: 'revoked', files: [{ name: 'withdrawn.pdf', data: Buffer.from('no') }] });
    app = await buildWebApp({ publicUrl: 'http://ferry.invalid', db: env.db, blobs: env.blobs });
    await app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await env?.close();
  });

  /** Opens a page in a fresh watched context; the caller checks `problems` at the end. */
  async function open(url: string, opts: BrowserContextOptions = {}): Promise<{ page: Page; problems: Problem[]; status: number; close(): Promise<void> }> {
    const { context, problems } = await watchedContext(browser, { viewport: DESKTOP, locale: 'en-GB', timezoneId: 'Europe/Berlin', ...opts });
    const page = await context.newPage();
    const res = await page.goto(`${base}${url}`, { waitUntil: 'load' });
    return { page, problems, status: res?.status() ?? 0, close: () => context.close() };
  }

  /** Chromium reports any document that arrives with a 4xx status as a failed resource load; that one line is expected on a status page. */
  function withoutStatusLine(problems: Problem[], status: number): Problem[] {
    return problems.filter((p) => !(p.kind === 'console' && p.text.startsWith(`error: Failed to load resource: the server responded with a status of ${status}`)));
  }

  /** Nothing sticks out sideways: no horizontal scrolling, every visible element inside the viewport. */
  async function expectNoOverflow(page: Page, width: number) {
    const out = await page.evaluate(() => {
      const vw = document.documentElement.clientWidth;
      const wide = [...document.querySelectorAll('body *')]
        .filter((el) => {
          const r = el.getBoundingClientRect();
          return r.width > 0 && !el.closest('.vh') && (r.right > vw + 0.5 || r.left < -0.5);
        })
        .map((el) => `${el.tagName.toLowerCase()}.${el.className}`);
      return { scrollWidth: document.documentElement.scrollWidth, vw, wide };
    });
    expect(out.vw).toBe(width);
    expect(out.scrollWidth, 'horizontal scrolling').toBeLessThanOrEqual(width);
    expect(out.wide, 'elements outside the viewport').toEqual([]);
  }

  async function expectCountedDownload(transferId: string, fileIdx: number | null, bytes: number) {
    const rec = await waitFor(async () => (await downloads(env.db, transferId)).find((r) => r.file_idx === fileIdx && r.counted === 1), `a counted download of ${fileIdx ?? 'the zip'}`);
    expect(rec).toMatchObject({ status: 200, bytes_sent: bytes, method: 'GET', scanner: 0, user_agent: DESKTOP_UA, client: '127.0.0.1' });
  }

  for (const [device, viewport] of [
    ['phone', PHONE],
    ['desktop', DESKTOP],
  ] as const) {
    it(`renders on a ${device} (${viewport.width} px wide) with everything a recipient needs`, async () => {
      const { page, problems, status, close } = await open(`/t/${fx.token}`, { viewport, isMobile: device === 'phone', hasTouch: device === 'phone' });
      expect(status).toBe(200);
      await screenshot(page, `landing-${device}`);
      await expect(page.title()).resolves.toBe('Files from alice.martin@example.org · Ferry');
      await expect(page.locator('h1').textContent()).resolves.toBe('Files from alice.martin@example.org');
      const meta = await page.locator('dl.meta').innerText();
      expect(meta).toContain('Q3 figures and the site photos');
      expect(meta).toMatch(/6 days left/);
      // The page script shows times in the recipient's zone and keeps UTC in the tooltip.
      const expiry = page.locator('dl.meta time').last();
      await expect(expiry.getAttribute('title')).resolves.toMatch(/ UTC$/);
      await expect(expiry.textContent()).resolves.toMatch(/\bCES?T\b|GMT\+[12]/);
      for (const f of fx.files) {
        const link = page.getByRole('link', { name: `Download ${f.name}`, exact: true });
        await expect(link.isVisible()).resolves.toBe(true);
        const box = (await link.boundingBox())!;
        // Touch targets of at least 44 px, and the button is inside the screen.
        expect(box.height).toBeGreaterThanOrEqual(44);
        expect(box.x + box.width).toBeLessThanOrEqual(viewport.width);
        await expect(page.locator('code.hash', { hasText: f.sha256 }).isVisible()).resolves.toBe(true);
      }
      await expect(page.getByRole('link', { name: 'Download all (.zip)' }).isVisible()).resolves.toBe(true);
      await expect(page.getByRole('button', { name: /^Copy the SHA-256 of / }).count()).resolves.toBe(fx.files.length);
      await expectNoOverflow(page, viewport.width);
      // Everything the page loaded came from Ferry itself.
      const foreign = await page.evaluate(() => performance.getEntriesByType('resource').map((e) => e.name).filter((u) => new URL(u).origin !== location.origin));
      expect(foreign).toEqual([]);
      await close();
      expect(problems).toEqual([]);
    });
  }

  it('saves the exact bytes when a file button is clicked, and counts that one download', async () => {
    const { page, problems, close } = await open(`/t/${fx.token}`);
    for (const f of [fx.files[0]!, fx.files[3]!]) {
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: `Download ${f.name}`, exact: true }).click()]);
      expect(download.suggestedFilename()).toBe(f.name);
      const saved = await download.path();
      expect(await download.failure()).toBeNull();
      expect(sha256(fs.readFileSync(saved))).toBe(f.sha256);
      await expectCountedDownload(fx.transferId, f.idx, f.data.length);
    }
    // The page itself is still there: a download does not navigate away.
    await expect(page.locator('h1').textContent()).resolves.toBe('Files from alice.martin@example.org');
    await close();
    expect(problems).toEqual([]);
  });

  it('serves a headless Chrome that clicks (as link scanners built on it do), marks it as a scanner and counts it: a whole copy left', async () => {
    // No userAgent override: Chromium's own, which says HeadlessChrome.
    const { page, problems, close } = await open(`/t/${fx.token}`, { userAgent: undefined });
    const f = fx.files[1]!;
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: `Download ${f.name}`, exact: true }).click()]);
    expect(sha256(fs.readFileSync(await download.path()))).toBe(f.sha256);
    const rec = await waitFor(async () => (await downloads(env.db, fx.transferId)).find((r) => r.file_idx === f.idx && /HeadlessChrome/.test(r.user_agent ?? '')), 'the headless download record');
    // A full GET is a copy of the file whoever asks (docs/downloads.md, "What counts"): a scanner
    // User-Agent no longer dodges the download limit.
    expect(rec).toMatchObject({ status: 200, bytes_sent: f.data.length, scanner: 1, counted: 1 });
    await close();
    expect(problems).toEqual([]);
  });

  it('"Download all" saves a zip whose entries are the original files', async () => {
    const { page, problems, close } = await open(`/t/${fx.token}`, { viewport: PHONE, isMobile: true, hasTouch: true });
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download all (.zip)' }).tap()]);
    expect(download.suggestedFilename()).toBe('Q3 figures and the site photos.zip');
    expect(await download.failure()).toBeNull();
    const zip = fs.readFileSync(await download.path());
    const listing = listZip(bufferReader(zip));
    expect(listing.entries.map((e) => e.name)).toEqual(fx.files.map((f) => f.name));
    for (const [i, e] of listing.entries.entries()) {
      expect(e.method, 'stored, not compressed').toBe(0);
      const { dataOffset } = checkLocal(bufferReader(zip), e);
      expect(sha256(zip.subarray(dataOffset, dataOffset + e.size)), e.name).toBe(fx.files[i]!.sha256);
    }
    // The hint beside the button announced the archive's exact size.
    const hint = await page.locator('.zip .hint').textContent();
    expect(hint).toContain(`${(zip.length / 1e6).toFixed(1)} MB`);
    await expectCountedDownload(fx.transferId, null, zip.length);
    await close();
    expect(problems).toEqual([]);
  });

  it('works with the keyboard: every control is reached in order, shows its focus, and Enter downloads', async () => {
    const { page, problems, close } = await open(`/t/${single.token}`);
    const order: { text: string; outline: string }[] = [];
    for (let i = 0; i < 12; i++) {
      await page.keyboard.press('Tab');
      const el = await page.evaluate(() => {
        const a = document.activeElement;
        if (!a || a === document.body) return undefined;
        const s = getComputedStyle(a);
        return { text: (a.getAttribute('aria-label') ?? a.textContent ?? '').trim().replace(/\s+/g, ' '), outline: `${s.outlineStyle} ${s.outlineWidth}` };
      });
      if (!el) break;
      order.push(el);
    }
    // Reading order: the file's facts and its hash (with Copy), then its button, then the footer.
    expect(order.map((o) => o.text)).toEqual(['Copy the SHA-256 of contract.pdf', 'Download contract.pdf', 'English', 'Deutsch', 'Français', 'Español']);
    // A visible focus ring (3 px) on each.
    for (const o of order) expect(o.outline, o.text).toBe('solid 3px');
    await page.reload();
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    const [download] = await Promise.all([page.waitForEvent('download'), page.keyboard.press('Enter')]);
    expect(sha256(fs.readFileSync(await download.path()))).toBe(single.files[0]!.sha256);
    await close();
    expect(problems).toEqual([]);
  });

  it('copies a SHA-256 with its button and announces it', async () => {
    const { page, problems, close } = await open(`/t/${single.token}`, { permissions: ['clipboard-read', 'clipboard-write'] });
    const button = page.getByRole('button', { name: 'Copy the SHA-256 of contract.pdf' });
    await button.click();
    await expect(page.evaluate(() => navigator.clipboard.readText())).resolves.toBe(single.files[0]!.sha256);
    await expect(button.textContent()).resolves.toBe('Copied');
    await expect(page.locator('#copy-status').textContent()).resolves.toBe('Copied');
    await close();
    expect(problems).toEqual([]);
  });

  for (const scheme of ['light', 'dark'] as const) {
    it(`keeps text and buttons at WCAG AA contrast in ${scheme} mode`, async () => {
      const { page, problems, close } = await open(`/t/${fx.token}`, { colorScheme: scheme });
      if (scheme === 'dark') await screenshot(page, 'landing-desktop-dark');
      const low = await page.evaluate(() => {
        const rgb = (c: string) => (c.match(/[\d.]+/g) ?? []).map(Number);
        const lum = ([r, g, b]: number[]) => {
          const f = (v: number) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
          return 0.2126 * f(r!) + 0.7152 * f(g!) + 0.0722 * f(b!);
        };
        const background = (el: any): string => {
          for (; el; el = el.parentElement) {
            const c = getComputedStyle(el).backgroundColor;
            const v = rgb(c);
            if (v.length === 3 || (v.length === 4 && v[3]! > 0)) return c;
          }
          return 'rgb(255, 255, 255)';
        };
        const out: string[] = [];
        const selectors = ['h1', 'dl.meta dt', 'dl.meta dd', '.left', 'h2', '.fname', '.facts', '.hashrow .label', 'code.hash', '.btn.primary', '.btn.secondary', 'button.copy', '.zip .hint', '.note', 'footer.site p', 'footer.site a'];
        for (const sel of selectors) {
          const els = [...document.querySelectorAll(sel)];
          if (els.length === 0) out.push(`${sel}: missing`);
          for (const el of els) {
            const fg = getComputedStyle(el).color;
            const bg = background(el);
            const [hi, lo] = [lum(rgb(fg)), lum(rgb(bg))].sort((a, b) => b - a) as [number, number];
            const ratio = (hi + 0.05) / (lo + 0.05);
            if (ratio < 4.5) out.push(`${sel}: ${fg} on ${bg} = ${ratio.toFixed(2)}`);
          }
        }
        return out;
      });
      expect(low).toEqual([]);
      await close();
      expect(problems).toEqual([]);
    });
  }

  it('labels everything for assistive technology', async () => {
    const { page, problems, close } = await open(`/t/${fx.token}`);
    const report = await page.evaluate(() => ({
      lang: document.documentElement.lang,
      h1: document.querySelectorAll('h1').length,
      unnamed: [...document.querySelectorAll('a, button')]
        .filter((el) => !(el.getAttribute('aria-label') ?? el.textContent ?? '').trim())
        .map((el) => el.outerHTML.slice(0, 80)),
      imagesWithoutAlt: [...document.querySelectorAll('img:not([alt])')].length,
      // Decorative SVG icons are hidden from screen readers.
      exposedSvg: [...document.querySelectorAll('svg:not([aria-hidden="true"])')].length,
      landmarks: ['header', 'main', 'footer', 'nav'].filter((t) => !document.querySelector(t)),
    }));
    expect(report).toEqual({ lang: 'en', h1: 1, unnamed: [], imagesWithoutAlt: 0, exposedSvg: 0, landmarks: [] });
    await expect(page.getByRole('heading', { level: 3 }).allTextContents()).resolves.toEqual(fx.files.map((f) => f.name));
    await expect(page.getByRole('navigation', { name: 'Language' }).isVisible()).resolves.toBe(true);
    await close();
    expect(problems).toEqual([]);
  });

  it('speaks the browser language, and the language links switch it', async () => {
    const { page, problems, close } = await open(`/t/${fx.token}`, { locale: 'de-DE' });
    await expect(page.locator('html').getAttribute('lang')).resolves.toBe('de');
    await expect(page.locator('h1').textContent()).resolves.toBe('Dateien von alice.martin@example.org');
    await expect(page.getByRole('link', { name: 'Alle herunterladen (.zip)' }).isVisible()).resolves.toBe(true);
    await expect(page.getByRole('link', { name: `Herunterladen ${fx.files[0]!.name}`, exact: true }).isVisible()).resolves.toBe(true);
    await screenshot(page, 'landing-desktop-de');
    await Promise.all([page.waitForURL(/\?lang=fr$/), page.getByRole('link', { name: 'Français' }).click()]);
    await expect(page.locator('h1').textContent()).resolves.toBe('Fichiers de alice.martin@example.org');
    await expect(page.getByRole('link', { name: 'Tout télécharger (.zip)' }).isVisible()).resolves.toBe(true);
    await close();
    expect(problems).toEqual([]);
  });

  it('is complete without JavaScript: facts in UTC, working links, no dead Copy buttons', async () => {
    const { page, problems, close } = await open(`/t/${fx.token}`, { javaScriptEnabled: false, viewport: PHONE, isMobile: true });
    await screenshot(page, 'landing-phone-nojs');
    await expect(page.locator('dl.meta time').last().textContent()).resolves.toMatch(/ UTC$/);
    await expect(page.locator('button.copy').first().isVisible()).resolves.toBe(false);
    await expect(page.locator('code.hash').first().isVisible()).resolves.toBe(true);
    const f = fx.files[2]!;
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: `Download ${f.name}`, exact: true }).click()]);
    expect(sha256(fs.readFileSync(await download.path()))).toBe(f.sha256);
    await close();
    expect(problems).toEqual([]);
  });

  it('shows hostile file names as text, fitted to a phone, and saves them under safe names', async () => {
    const { page, problems, close } = await open(`/t/${hostile.token}`, { viewport: PHONE, isMobile: true, hasTouch: true });
    await screenshot(page, 'landing-phone-hostile-names');
    const shown = await page.getByRole('heading', { level: 3 }).allTextContents();
    expect(shown).toEqual(HOSTILE_NAMES.map((n) => displayName(n)));
    expect(shown.join('')).not.toContain('\u202E');
    await expect(page.locator('h1').textContent()).resolves.toBe('Files from "Mallory <script>" <m@example.org>');
    // Nothing from the message became markup.
    await expect(page.locator('main script, main img').count()).resolves.toBe(0);
    await expectNoOverflow(page, PHONE.width);
    for (const [i, f] of hostile.files.entries()) {
      const link = page.locator('a.btn[download]').nth(i + 1);
      const [download] = await Promise.all([page.waitForEvent('download'), link.tap()]);
      // Ferry's saved name; Chromium then swaps what Windows forbids (<>:"|?*) for "_" on every platform.
      expect(download.suggestedFilename()).toBe(savedName(f.name).replace(/[<>:"|?*]/g, '_'));
      expect(download.suggestedFilename()).not.toMatch(/\.\.|[/\\\u202e]/);
      expect(sha256(fs.readFileSync(await download.path()))).toBe(f.sha256);
    }
    await close();
    expect(problems).toEqual([]);
  });

  it('shows the expired page with the expiry date and whom to ask', async () => {
    const { page, problems, status, close } = await open(`/t/${expired.token}`, { viewport: PHONE, isMobile: true });
    expect(status).toBe(410);
    await screenshot(page, 'expired-phone');
    await expect(page.locator('h1').textContent()).resolves.toBe('These files are no longer available');
    const when = page.locator('main time');
    await expect(when.getAttribute('datetime')).resolves.toBe(isoTime(EXPIRED_AT));
    await expect(when.getAttribute('title')).resolves.toBe(humanTime(EXPIRED_AT));
    await expect(page.locator('main').innerText()).resolves.toMatch(/That time has passed/);
    await expect(page.getByRole('link', { name: 'carol@example.org' }).getAttribute('href')).resolves.toBe('mailto:carol@example.org');
    await expect(page.locator('a[download]').count()).resolves.toBe(0);
    await expectNoOverflow(page, PHONE.width);
    await close();
    expect(withoutStatusLine(problems, 410)).toEqual([]);
  });

  it('shows the revoked page, and the unknown-link page, in the same look', async () => {
    const { page, problems, status, close } = await open(`/t/${revoked.token}`);
    expect(status).toBe(410);
    await screenshot(page, 'revoked-desktop');
    await expect(page.locator('main').innerText()).resolves.toMatch(/withdrawn before their expiry date/);
    await expect(page.getByRole('link', { name: 'dave@example.org' }).isVisible()).resolves.toBe(true);
    const styled = await page.evaluate(() => getComputedStyle(document.querySelector('header.site')!).borderTopWidth);
    expect(styled).toBe('4px');
    const res = await page.goto(`${base}/t/${'A'.repeat(27)}`);
    expect(res?.status()).toBe(404);
    await expect(page.locator('h1').textContent()).resolves.toBe('Link not found');
    await close();
    expect(withoutStatusLine(withoutStatusLine(problems, 410), 404)).toEqual([]);
  });

  it('carries the configured brand: name, accent colour and a logo served by Ferry', async () => {
    const logoFile = path.join(env.dir, 'logo.svg');
    // Inline <style> in the SVG: it must still apply when the logo is drawn as an image.
    fs.writeFileSync(logoFile, '<svg xmlns="http://www.w3.org/2000/svg" width="96" height="32" viewBox="0 0 96 32"><style>.b{fill:#7a1f5c}</style><rect class="b" width="96" height="32" rx="6"/><circle cx="16" cy="16" r="8" fill="#fff"/></svg>');
    const branded = await buildWebApp({ publicUrl: 'http://ferry.invalid', db: env.db, blobs: env.blobs, brand: { name: 'Example Corp', color: '#7a1f5c', logoFile } });
    await branded.listen({ port: 0, host: '127.0.0.1' });
    const { context, problems } = await watchedContext(browser, { viewport: DESKTOP, locale: 'en-GB' });
    try {
      const page = await context.newPage();
      await page.goto(`http://127.0.0.1:${(branded.server.address() as AddressInfo).port}/t/${single.token}`);
      await screenshot(page, 'landing-desktop-brand');
      await expect(page.title()).resolves.toBe('Files from alice@example.org · Example Corp');
      await expect(page.locator('header .brand').textContent()).resolves.toBe('Example Corp');
      const look = await page.evaluate(() => {
        const img = document.querySelector('header img.logo');
        const canvas = document.createElement('canvas');
        canvas.width = img.naturalWidth;
        canvas.height = img.naturalHeight;
        const g = canvas.getContext('2d');
        g.drawImage(img, 0, 0);
        return {
          logo: [img.naturalWidth, img.naturalHeight],
          // A pixel of the logo's background, drawn with the SVG's own inline style.
          pixel: [...g.getImageData(2, 16, 1, 1).data],
          button: getComputedStyle(document.querySelector('.btn.primary')).backgroundColor,
          bar: getComputedStyle(document.querySelector('header.site')).borderTopColor,
        };
      });
      expect(look.logo).toEqual([96, 32]);
      expect(look.pixel).toEqual([0x7a, 0x1f, 0x5c, 255]);
      const accent = brandColors('#7a1f5c').accent;
      const rgb = `rgb(${[1, 3, 5].map((i) => parseInt(accent.slice(i, i + 2), 16)).join(', ')})`;
      expect(look.button).toBe(rgb);
      expect(look.bar).toBe(rgb);
    } finally {
      await context.close();
      await branded.close();
    }
    expect(problems).toEqual([]);
  });

  it('would notice a CSP violation or console error (the watchers work)', async () => {
    const { page, problems, close } = await open('/');
    // Script injected through the DevTools protocol is not bound by the page's CSP; what it
    // tries to load is.
    await page.evaluate(() => {
      const img = document.createElement('img');
      img.src = 'https://cdn.example.com/tracker.png';
      document.body.append(img);
      const s = document.createElement('style');
      s.textContent = 'body { color: red }';
      document.head.append(s);
    });
    await waitFor(() => (problems.filter((p) => p.kind === 'csp').length >= 2 ? true : undefined), 'two CSP reports');
    await close();
    expect(problems.filter((p) => p.kind === 'csp').map((p) => p.text).sort()).toEqual(['img-src blocked https://cdn.example.com/tracker.png', 'style-src-elem blocked inline']);
    expect(problems.some((p) => p.kind === 'console' && /Content Security Policy/.test(p.text))).toBe(true);
  });
});
