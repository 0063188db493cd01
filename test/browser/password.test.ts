import fs from 'node:fs';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Browser, BrowserContextOptions, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashTransferPassword, newTransferPassword } from '../../storage/index.js';
import { buildWebApp } from '../../web/app.js';
import { addTransfer, makeEnv, sha256, type Env, type Fixture } from '../web/helpers.js';
import { chromiumMissing, DESKTOP_UA, launchChromium, screenshot, watchedContext, type Problem } from './chromium.js';

// The password prompt of a protected transfer in real Chromium (docs/passwords.md): on a phone
// and a desktop, with the keyboard only, in the four languages, through the lock after too many
// wrong guesses; not one console error or CSP violation on the way (the form's POST and its
// redirect included), and no serious axe-core finding. One browser for the file; one context
// (one cookie jar) per scenario.

// Browser globals used inside page.evaluate(), declared for this module only (see chromium.ts).
declare const document: any, window: any, getComputedStyle: any;

const missing = chromiumMissing();
if (missing) console.warn(`SKIPPED password browser tests: ${missing}`);

const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };
const MAX_FAILURES = 3;
const AXE_SOURCE = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const password = newTransferPassword();
let env: Env;
let app: FastifyInstance;
let base: string;
let browser: Browser;
let hash: string;

describe.skipIf(Boolean(missing))('password prompt in Chromium', () => {
  beforeAll(async () => {
    env = await makeEnv();
    hash = await hashTransferPassword(password);
    app = await buildWebApp({ publicUrl: 'http://ferry.invalid', db: env.db, blobs: env.blobs, passwords: { maxFailures: MAX_FAILURES } });
    await app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await env?.close();
  });

  /** A fresh protected transfer: each scenario has its own count of wrong guesses. */
  const protectedTransfer = (sender = 'alice.martin@example.org') =>
    addTransfer(env, {
      sender,
      subject: 'Merger terms (confidential)',
      passwordHash: hash,
      files: [
        { name: 'terms-draft.pdf', contentType: 'application/pdf', data: Buffer.from('%PDF-1.7 draft terms') },
        { name: 'valuation.xlsx', data: Buffer.from('spreadsheet') },
      ],
    });

  async function open(url: string, opts: BrowserContextOptions = {}): Promise<{ page: Page; problems: Problem[]; status: number; close(): Promise<void> }> {
    const { context, problems } = await watchedContext(browser, { viewport: DESKTOP, locale: 'en-GB', timezoneId: 'Europe/Berlin', ...opts });
    const page = await context.newPage();
    const res = await page.goto(`${base}${url}`, { waitUntil: 'load' });
    return { page, problems, status: res?.status() ?? 0, close: () => context.close() };
  }

  /** Chromium reports a document that arrives with a 4xx status as a failed resource load; on a refusal page that one line is expected. */
  function withoutStatusLines(problems: Problem[], ...statuses: number[]): Problem[] {
    return problems.filter((p) => !(p.kind === 'console' && statuses.some((s) => p.text.startsWith(`error: Failed to load resource: the server responded with a status of ${s}`))));
  }

  /** Sends the form and waits for the page it answers with (the URL alone does not change from one wrong try to the next). */
  async function submit(page: Page, pw: string, how: 'click' | 'tap' = 'click'): Promise<void> {
    await page.locator('#pw').fill(pw);
    const navigated = page.waitForEvent('framenavigated', (f) => f === page.mainFrame());
    const button = page.locator('form.unlock button[type=submit]');
    await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST' && /\/unlock(\?|$)/.test(r.url())), how === 'tap' ? button.tap() : button.click()]);
    await navigated;
    await page.waitForLoadState('load');
  }

  async function focused(page: Page) {
    return page.evaluate(() => {
      const a = document.activeElement;
      if (!a || a === document.body) return undefined;
      const s = getComputedStyle(a);
      return { tag: a.tagName.toLowerCase(), id: a.id, text: (a.getAttribute('aria-label') ?? a.textContent ?? '').trim(), outline: `${s.outlineStyle} ${s.outlineWidth}` };
    });
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
      return { scrollWidth: document.documentElement.scrollWidth, wide };
    });
    expect(out.scrollWidth, 'horizontal scrolling').toBeLessThanOrEqual(width);
    expect(out.wide, 'elements outside the viewport').toEqual([]);
  }

  /** axe-core's serious and critical findings, run in a context of its own that lets its script in. */
  async function axeFindings(url: string, viewport: { width: number; height: number }, prepare?: (page: Page) => Promise<void>): Promise<string[]> {
    const context = await browser.newContext({ viewport, bypassCSP: true, userAgent: DESKTOP_UA, locale: 'en-GB' });
    try {
      const page = await context.newPage();
      await page.goto(`${base}${url}`);
      if (prepare) await prepare(page);
      await page.evaluate(AXE_SOURCE);
      const violations = (await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] })).violations)) as {
        id: string;
        impact: string | null;
        nodes: { target: unknown[] }[];
      }[];
      return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.impact} ${v.id} at ${v.nodes.map((n) => JSON.stringify(n.target)).join(', ')}`);
    } finally {
      await context.close();
    }
  }

  for (const [device, viewport] of [
    ['phone', PHONE],
    ['desktop', DESKTOP],
  ] as const) {
    it(`asks for the password on a ${device} and then shows and serves the files`, async () => {
      const fx = await protectedTransfer();
      const { page, problems, status, close } = await open(`/t/${fx.token}`, { viewport, isMobile: device === 'phone', hasTouch: device === 'phone' });
      expect(status).toBe(200);
      await screenshot(page, `password-prompt-${device}`);
      await expect(page.title()).resolves.toBe('Password required · Ferry');
      await expect(page.locator('h1').textContent()).resolves.toBe('Password required');
      const main = await page.locator('main').innerText();
      expect(main).toContain('alice.martin@example.org');
      // What the password protects is not on the page.
      expect(main).not.toMatch(/terms-draft|valuation|Merger/);
      const input = page.getByLabel('Password', { exact: true });
      await expect(input.getAttribute('type')).resolves.toBe('password');
      for (const control of [input, page.getByRole('button', { name: 'Open' })]) {
        const box = (await control.boundingBox())!;
        expect(box.height).toBeGreaterThanOrEqual(44);
        expect(box.x + box.width).toBeLessThanOrEqual(viewport.width);
      }
      await expectNoOverflow(page, viewport.width);

      await input.fill(password);
      // NB the prompt is served at the link's own URL, so waiting for that URL alone would return
      // before the form is even sent: wait for the unlocked page's heading instead.
      await (device === 'phone' ? page.getByRole('button', { name: 'Open' }).tap() : page.getByRole('button', { name: 'Open' }).click());
      await page.getByRole('heading', { level: 1, name: 'Files from alice.martin@example.org' }).waitFor({ timeout: 30_000 });
      expect(page.url()).toBe(`${base}/t/${fx.token}`);
      await screenshot(page, `password-unlocked-${device}`);
      // The unlock cookie is HttpOnly: the page's script cannot read it.
      await expect(page.evaluate(() => document.cookie)).resolves.toBe('');
      const f = fx.files[0]!;
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: `Download ${f.name}`, exact: true }).click()]);
      expect(sha256(fs.readFileSync(await download.path()))).toBe(f.sha256);
      await close();
      expect(problems).toEqual([]);
    });
  }

  it('works with the keyboard alone: Tab to the field, a wrong password, the error, the right one, a download', async () => {
    const fx = await protectedTransfer();
    const { page, problems, close } = await open(`/t/${fx.token}`);
    // Reading order: the sender's address (a mailto: link) in the sentence above the form, then the field, then the button.
    await page.keyboard.press('Tab');
    expect(await focused(page)).toMatchObject({ tag: 'a', text: 'alice.martin@example.org', outline: 'solid 3px' });
    await page.keyboard.press('Tab');
    expect(await focused(page)).toMatchObject({ tag: 'input', id: 'pw', outline: 'solid 3px' });
    await page.keyboard.press('Tab');
    expect(await focused(page)).toMatchObject({ tag: 'button', text: 'Open', outline: 'solid 3px' });
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.type('WRONG-WRONG-WRONG-WRONG');
    await Promise.all([page.waitForLoadState('load'), page.waitForURL(`${base}/t/${fx.token}/unlock`), page.keyboard.press('Enter')]);
    // The error is announced, and the focus is back in the field, ready for the next try.
    await expect(page.getByRole('alert').textContent()).resolves.toContain('That password is not right. After 2 more wrong attempts');
    expect(await focused(page)).toMatchObject({ tag: 'input', id: 'pw' });
    await expect(page.locator('#pw').getAttribute('aria-invalid')).resolves.toBe('true');
    await screenshot(page, 'password-wrong-desktop');
    // Typed as people type it: lower case, spaces for dashes.
    await page.keyboard.type(password.toLowerCase().replace(/-/g, ' '));
    await Promise.all([page.waitForURL(`${base}/t/${fx.token}`), page.keyboard.press('Enter')]);
    await expect(page.locator('h1').textContent()).resolves.toBe('Files from alice.martin@example.org');
    // On the landing page, Tab reaches "Download all" first; Enter downloads it.
    await page.keyboard.press('Tab');
    expect(await focused(page)).toMatchObject({ tag: 'a', text: 'Download all (.zip)' });
    const [download] = await Promise.all([page.waitForEvent('download'), page.keyboard.press('Enter')]);
    expect(download.suggestedFilename()).toBe('Merger terms (confidential).zip');
    expect(await download.failure()).toBeNull();
    await close();
    expect(withoutStatusLines(problems, 403)).toEqual([]);
  });

  for (const [locale, lang, title, label, button, wrong] of [
    ['en-GB', 'en', 'Password required', 'Password', 'Open', 'That password is not right.'],
    ['de-DE', 'de', 'Passwort erforderlich', 'Passwort', 'Öffnen', 'Dieses Passwort ist nicht richtig.'],
    ['fr-FR', 'fr', 'Mot de passe requis', 'Mot de passe', 'Ouvrir', 'Ce mot de passe n’est pas le bon.'],
    ['es-ES', 'es', 'Se necesita una contraseña', 'Contraseña', 'Abrir', 'Esa contraseña no es correcta.'],
  ] as const) {
    it(`speaks ${lang}: prompt, error and unlock in the browser's language`, async () => {
      const fx = await protectedTransfer();
      const { page, problems, close } = await open(`/t/${fx.token}`, { locale, viewport: PHONE, isMobile: true, hasTouch: true });
      await expect(page.locator('html').getAttribute('lang')).resolves.toBe(lang);
      await expect(page.locator('h1').textContent()).resolves.toBe(title);
      await page.getByLabel(label, { exact: true }).fill('nope');
      await Promise.all([page.waitForURL(/\/unlock$/), page.getByRole('button', { name: button }).tap()]);
      await expect(page.getByRole('alert').textContent()).resolves.toContain(wrong);
      await screenshot(page, `password-wrong-phone-${lang}`);
      await page.getByLabel(label, { exact: true }).fill(password);
      await Promise.all([page.waitForURL(`${base}/t/${fx.token}`), page.getByRole('button', { name: button }).tap()]);
      await expect(page.locator('a[download]').count()).resolves.toBe(3);
      await close();
      expect(withoutStatusLines(problems, 403)).toEqual([]);
    });
  }

  it('keeps a language picked with the links through the form and the redirect', async () => {
    const fx = await protectedTransfer();
    const { page, problems, close } = await open(`/t/${fx.token}`);
    await Promise.all([page.waitForURL(/\?lang=fr$/), page.getByRole('link', { name: 'Français' }).click()]);
    await expect(page.locator('h1').textContent()).resolves.toBe('Mot de passe requis');
    await page.getByLabel('Mot de passe', { exact: true }).fill(password);
    await Promise.all([page.waitForURL(`${base}/t/${fx.token}?lang=fr`), page.getByRole('button', { name: 'Ouvrir' }).click()]);
    await expect(page.locator('h1').textContent()).resolves.toBe('Fichiers de alice.martin@example.org');
    await close();
    expect(problems).toEqual([]);
  });

  it('a download link opened on its own leads to the prompt, not to the file', async () => {
    const fx = await protectedTransfer();
    const f = fx.files[0]!;
    const { page, problems, status, close } = await open(`/t/${fx.token}/${f.idx}/${encodeURIComponent(f.name)}`);
    expect(status).toBe(403);
    await expect(page.locator('h1').textContent()).resolves.toBe('Password required');
    await page.getByLabel('Password', { exact: true }).fill(password);
    await Promise.all([page.waitForURL(`${base}/t/${fx.token}`), page.getByRole('button', { name: 'Open' }).click()]);
    await expect(page.locator('h1').textContent()).resolves.toBe('Files from alice.martin@example.org');
    await close();
    expect(withoutStatusLines(problems, 403)).toEqual([]);
  });

  it(`locks after ${MAX_FAILURES} wrong passwords with a page that says so in words, and the link then shows the lock, not a form`, async () => {
    const fx = await protectedTransfer('carol@example.org');
    const { page, problems, close } = await open(`/t/${fx.token}`, { viewport: PHONE, isMobile: true, hasTouch: true });
    for (let i = 0; i < MAX_FAILURES; i++) await submit(page, `WRONG-${i}`, 'tap');
    await expect(page.locator('h1').textContent()).resolves.toBe('Too many wrong passwords');
    const text = await page.locator('main').innerText();
    expect(text).toContain('Until then even the right password is not accepted. The sender has been told.');
    await expect(page.getByRole('link', { name: 'carol@example.org' }).getAttribute('href')).resolves.toBe('mailto:carol@example.org');
    // The end of the lock in the recipient's own time zone, UTC in the tooltip.
    await expect(page.locator('main time').getAttribute('title')).resolves.toMatch(/ UTC$/);
    await screenshot(page, 'password-locked-phone');
    await expectNoOverflow(page, PHONE.width);
    // Reloading the link shows the lock, not a form.
    const res = await page.goto(`${base}/t/${fx.token}`);
    expect(res?.status()).toBe(429);
    await expect(page.locator('form').count()).resolves.toBe(0);
    await close();
    expect(withoutStatusLines(problems, 403, 429)).toEqual([]);
  });

  it('has no serious accessibility finding: prompt, prompt with an error, lock page; phone and desktop', async () => {
    const fx = await protectedTransfer();
    const locked = await protectedTransfer();
    for (const viewport of [PHONE, DESKTOP]) {
      expect(await axeFindings(`/t/${fx.token}`, viewport)).toEqual([]);
      expect(
        await axeFindings(`/t/${fx.token}`, viewport, async (page) => {
          await page.locator('#pw').fill('nope');
          await Promise.all([page.waitForURL(/\/unlock$/), page.getByRole('button', { name: 'Open' }).click()]);
        }),
      ).toEqual([]);
    }
    const lockIt = async (page: Page) => {
      for (let i = 0; i < MAX_FAILURES; i++) await submit(page, `x${i}`);
    };
    expect(await axeFindings(`/t/${locked.token}`, PHONE, lockIt)).toEqual([]);
  }, 240_000);
});
