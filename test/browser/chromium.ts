import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core';

// Real Chromium for the browser tests: Debian's `chromium` package (see DEBIAN_PACKAGES here,
// installed by .ci/run), driven by playwright-core, so no browser is downloaded. Elsewhere set
// FERRY_CHROMIUM to another Chromium binary; without one the tests skip and say why.

export const CHROMIUM = process.env.FERRY_CHROMIUM ?? '/usr/bin/chromium';

/** Why the browser tests cannot run here, or undefined when they can. */
export function chromiumMissing(): string | undefined {
  try {
    fs.accessSync(CHROMIUM, fs.constants.X_OK);
    return undefined;
  } catch {
    return `${CHROMIUM} not found: install Debian's chromium package (test/browser/DEBIAN_PACKAGES) or set FERRY_CHROMIUM`;
  }
}

// Headless, no sandbox (tests may run as root in a container), nothing that reaches out to
// Google's servers: the only network a test browser sees is the Ferry server on loopback.
// Playwright gives each launch a fresh temporary profile (--user-data-dir) and removes it on close.
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS, timeout: 30_000 });
}

/** A desktop Chrome on Linux as recipients have it; headless Chromium's own agent says "HeadlessChrome", which Ferry treats as a scanner. */
export const DESKTOP_UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

export interface Problem {
  kind: 'console' | 'pageerror' | 'csp' | 'dialog' | 'requestfailed';
  text: string;
  url?: string;
}

// The functions handed to addInitScript() and page.evaluate() run in the browser. The project
// compiles without the DOM library (it would change Node's stream types everywhere), so the few
// browser globals they use are declared here, for this module only.
declare const document: any, window: any;

/**
 * A browser context that records everything a recipient should never get: console errors and
 * warnings, uncaught exceptions, Content-Security-Policy violations (the DOM event, which also
 * fires for inline script and style that never ran), dialogs (an injected alert()) and failed
 * requests other than downloads.
 */
export async function watchedContext(browser: Browser, opts: BrowserContextOptions): Promise<{ context: BrowserContext; problems: Problem[] }> {
  const context = await browser.newContext({ acceptDownloads: true, userAgent: DESKTOP_UA, ...opts });
  const problems: Problem[] = [];
  context.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push({ kind: 'console', text: `${m.type()}: ${m.text()}`, url: m.location().url });
  });
  context.on('weberror', (e) => problems.push({ kind: 'pageerror', text: String(e.error()) }));
  context.on('dialog', (d) => {
    problems.push({ kind: 'dialog', text: `${d.type()}: ${d.message()}` });
    void d.dismiss();
  });
  context.on('requestfailed', (r) => {
    // A download hands its body to the download manager, which Playwright reports as an aborted request.
    if (r.failure()?.errorText === 'net::ERR_ABORTED' && r.isNavigationRequest()) return;
    problems.push({ kind: 'requestfailed', text: `${r.failure()?.errorText} ${r.url()}`, url: r.url() });
  });
  await context.exposeBinding('__ferryReport', (_source, p: { text: string; url: string }) => problems.push({ kind: 'csp', ...p }));
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e: any) => {
      window.__ferryReport?.({ text: `${e.effectiveDirective} blocked ${e.blockedURI || '(inline)'}`, url: e.documentURI });
    });
  });
  return { context, problems };
}

export const ARTIFACTS = path.resolve(import.meta.dirname, '..', 'artifacts', 'browser');

export async function screenshot(page: Page, name: string): Promise<string> {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
