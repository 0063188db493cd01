import contentDisposition from 'content-disposition';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlobStoreUnavailableError, displayName, fileUrl, hashToken, newToken, storedName, type Db } from '../../storage/index.js';
import { buildWebApp } from '../../web/app.js';
import { PAGE_CSP } from '../../web/plugins/security-headers.js';
import { addTransfer, downloads, makeEnv, pathOf, PUBLIC_URL, SpyBlobStore, waitFor, type Env, type Fixture } from './helpers.js';

const FILE_CSP = "sandbox; default-src 'none'; frame-ancestors 'none'";

function expectSecurityHeaders(headers: Record<string, unknown>, kind: 'page' | 'file' | 'asset') {
  expect(headers['referrer-policy']).toBe('no-referrer');
  expect(headers['x-content-type-options']).toBe('nosniff');
  expect(headers['x-frame-options']).toBe('DENY');
  expect(headers['cross-origin-resource-policy']).toBe('same-origin');
  expect(headers['x-robots-tag']).toBe('noindex, nofollow');
  expect(headers['content-security-policy']).toBe(kind === 'file' ? FILE_CSP : PAGE_CSP);
  expect(headers['content-security-policy']).toContain(kind === 'file' ? 'sandbox' : "frame-ancestors 'none'");
  if (kind !== 'asset') expect(headers['cache-control']).toBe('private, no-store');
  // Plain HTTP without a trusted proxy saying otherwise: no HSTS (it would be ignored anyway).
  expect(headers['strict-transport-security']).toBeUndefined();
}

let env: Env;
let spy: SpyBlobStore;
let app: FastifyInstance;

beforeAll(async () => {
  env = await makeEnv();
  spy = new SpyBlobStore(env.blobs);
  app = await buildWebApp({ publicUrl: PUBLIC_URL, db: env.db, blobs: spy });
});

afterAll(async () => {
  await app.close();
  await env.close();
});

describe('site pages', () => {
  it('GET / says what the service is and lists nothing', async () => {
    const live = await addTransfer(env, { files: [{ name: 'listed-nowhere.bin', data: Buffer.from('x') }] });
    const res = await app.inject('/');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.body).toContain('Ferry file service');
    expect(res.body).not.toContain('listed-nowhere');
    expect(res.body).not.toContain(live.token);
    expectSecurityHeaders(res.headers, 'page');
  });

  it('GET /healthz answers ok', async () => {
    const res = await app.inject('/healthz');
    expect(res.statusCode).toBe(200);
    expect(res.body).toMatch(/^ok\n?$/);
  });

  it('serves the stylesheet the pages link to, with no external resources', async () => {
    const page = await app.inject('/');
    const href = /<link rel="stylesheet" href="([^"]+)">/.exec(page.body)?.[1];
    expect(href).toMatch(/^\/assets\/ferry\.css\?v=[\w-]{10}$/);
    const css = await app.inject(href!);
    expect(css.statusCode).toBe(200);
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
    expect(css.body).toContain('body');
    expect(css.body).not.toMatch(/url\(|@import|https?:/);
    expectSecurityHeaders(css.headers, 'asset');
    // The page loads nothing from elsewhere, has no inline style, and its only script is the
    // same-origin file (no inline script: the CSP would block it).
    expect(page.body).not.toMatch(/https?:\/\/|style=/i);
    const scripts = [...page.body.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts).toHaveLength(1);
    expect(scripts[0]![1]).toMatch(/^ src="\/assets\/ferry\.js\?v=[\w-]{10}" defer$/);
    expect(scripts[0]![2]).toBe('');
    const js = await app.inject(/src="([^"]+)"/.exec(scripts[0]![1]!)![1]!);
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expectSecurityHeaders(js.headers, 'asset');
  });

  it('puts the stylesheet under the public URL path when there is one', async () => {
    const prefixed = await buildWebApp({ publicUrl: 'https://example.test/ferry/', db: env.db, blobs: spy });
    const res = await prefixed.inject('/');
    expect(res.body).toMatch(/<link rel="stylesheet" href="\/ferry\/assets\/ferry\.css\?v=[\w-]+">/);
    expect(res.body).toMatch(/<script src="\/ferry\/assets\/ferry\.js\?v=[\w-]+" defer>/);
    await prefixed.close();
  });
});

describe('landing page', () => {
  let fx: Fixture;
  const created = Date.UTC(2025, 10, 20, 9, 5);
  const expires = Date.UTC(2099, 0, 2, 17, 45);

  beforeAll(async () => {
    fx = await addTransfer(env, {
      sender: 'alice@example.org',
      subject: 'Quarterly figures',
      createdAt: created,
      expiresAt: expires,
      files: [
        { name: 'report.pdf', contentType: 'application/pdf', data: Buffer.alloc(1_234_567, 1) },
        { name: 'notes.txt', contentType: 'text/plain', data: Buffer.from('hello') },
      ],
    });
  });

  it('shows sender, date, subject, expiry and every file with size, type, hash and link', async () => {
    const res = await app.inject(`/t/${fx.token}`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    const body = res.body;
    expect(body).toContain('alice@example.org');
    expect(body).toContain('Quarterly figures');
    expect(body).toContain('20 Nov 2025, 09:05 UTC');
    expect(body).toContain('<time datetime="2099-01-02T17:45:00.000Z" data-local>2 Jan 2099, 17:45 UTC</time>');
    expect(body).toContain('1.2 MB');
    expect(body).toContain('(1,234,567 bytes)');
    // Below 1 kB the human form already is exact.
    expect(body).toContain('<span class="nw">5 bytes</span><span class="sep"');
    // The type: an icon with the extension, a word, and the recorded type in the tooltip.
    expect(body).toMatch(/<svg class="ficon k-pdf"[^]*?>PDF<\/text><\/svg>/);
    expect(body).toContain('title="application/pdf"><span class="vh">Type: </span>PDF document</span>');
    expect(body).toContain('title="text/plain"><span class="vh">Type: </span>Text</span>');
    // Links are paths built by the same function as the links in the mail.
    for (const f of fx.files) {
      expect(body).toContain(`<code class="hash" id="sha-${f.idx}">${f.sha256}</code>`);
      expect(body).toContain(`<button type="button" class="copy" data-copy="sha-${f.idx}"`);
      expect(body).toContain(`href="${pathOf(fileUrl(PUBLIC_URL, fx.token, f.idx, f.name))}" download>`);
    }
    expect(body).toContain(`href="/t/${fx.token}/zip" download>`);
    expect(body).toContain('Download all (.zip)');
    expectSecurityHeaders(res.headers, 'page');
  });

  it('has one path: a trailing slash is not the link (issue 15, item 6)', async () => {
    expect((await app.inject(`/t/${fx.token}`)).statusCode).toBe(200);
    expect((await app.inject(`/t/${fx.token}/`)).statusCode).toBe(404);
  });

  it('is not a download: viewing it records nothing and opens no blob', async () => {
    const before = spy.reads.length;
    await app.inject(`/t/${fx.token}`);
    await app.inject({ method: 'HEAD', url: `/t/${fx.token}` });
    expect(spy.reads.length).toBe(before);
    expect(await downloads(env.db, fx.transferId)).toEqual([]);
  });

  it('omits the subject line when there is none', async () => {
    const nosub = await addTransfer(env, { subject: null, files: [{ name: 'a.bin', data: Buffer.from('a') }] });
    const res = await app.inject(`/t/${nosub.token}`);
    expect(res.statusCode).toBe(200);
    expect(res.body).not.toContain('<dt>Subject</dt>');
  });

  it('names no sender for a bounce (null sender), rather than an empty or placeholder one', async () => {
    const bounce = await addTransfer(env, { sender: '', files: [{ name: 'returned.eml', data: Buffer.from('a') }] });
    const res = await app.inject(`/t/${bounce.token}`);
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('<title>Files sent to you · Ferry</title>');
    expect(res.body).toContain('<h1>Files sent to you</h1>');
    expect(res.body).not.toContain('<dt>From</dt>');
    expect(res.body).not.toMatch(/Files from\b/);
    const de = await app.inject({ url: `/t/${bounce.token}`, headers: { 'accept-language': 'de-AT,de;q=0.9,en;q=0.5' } });
    expect(de.body).toContain('<h1>Dateien für Sie</h1>');
  });
});

describe('hostile names', () => {
  const names = [
    '<script>alert(1)</script>.html',
    'say "hi" & \'bye\'.txt',
    '../../etc/passwd',
    'invoice\u202Efdp.exe',
    '\u6570\u636e'.repeat(150) + '.xlsx',
  ];
  let fx: Fixture;

  beforeAll(async () => {
    fx = await addTransfer(env, {
      sender: '"Mallory <script>" <m@example.org>',
      subject: 'urgent \u202Etxt.exe <img src=x onerror=alert(1)>',
      files: names.map((name, i) => ({ name, contentType: i === 0 ? 'text/html' : 'application/octet-stream', data: Buffer.from(`file ${i}`) })),
    });
  });

  it('are escaped on the landing page', async () => {
    const res = await app.inject(`/t/${fx.token}`);
    expect(res.statusCode).toBe(200);
    const body = res.body;
    expect(body).not.toMatch(/<script>|<img|onerror=alert\(1\)>/);
    expect(body).not.toContain('\u202E');
    expect(body).toContain('&lt;script&gt;alert(1)&lt;/script&gt;.html');
    expect(body).toContain('say &quot;hi&quot; &amp; &#39;bye&#39;.txt');
    expect(body).toContain('&quot;Mallory &lt;script&gt;&quot; &lt;m@example.org&gt;');
    expect(body).toContain('invoicefdp.exe');
    // The 300-character (900-byte) name was stored capped at 255 bytes of UTF-8, with its
    // extension, and is shown as stored.
    const long = storedName(names[4]);
    expect(Buffer.byteLength(long)).toBeLessThanOrEqual(255);
    expect(long.endsWith('\u2026.xlsx')).toBe(true);
    expect(displayName(long)).toBe(long);
    expect(body).toContain(long);
    // Every href on the page stays on this site: assets, this transfer's files, language links.
    for (const [, href] of body.matchAll(/href="([^"]*)"/g)) {
      if (/^\/assets\/(ferry\.css|icon\.svg)\?v=/.test(href!) || /^\?lang=[a-z]{2}$/.test(href!)) continue;
      expect(href!.startsWith(`/t/${fx.token}/`), href).toBe(true);
      expect(href).not.toMatch(/\.\.\/|[<>"'\s]/);
    }
  });

  it('download through the links on the page with a safe Content-Disposition', async () => {
    const page = (await app.inject(`/t/${fx.token}`)).body;
    const hrefs = [...page.matchAll(/<a class="btn (?:primary|secondary)" href="([^"]*\/\d+\/[^"]*)" download>/g)].map((m) => m[1]!.replace(/&amp;/g, '&'));
    expect(hrefs).toHaveLength(names.length);
    for (const [i, href] of hrefs.entries()) {
      const res = await app.inject(href);
      expect(res.statusCode, names[i]).toBe(200);
      expect(res.body).toBe(`file ${i}`);
      const cd = res.headers['content-disposition'] as string;
      expect(cd).not.toMatch(/[\r\n\u202e]/);
      const fallback = /; filename="([^"]*)"/.exec(cd)![1]!;
      expect(fallback).toMatch(/^[\x20-\x7e]+$/);
      expect(fallback).not.toMatch(/\.\.|\/|\\/);
      const saved = contentDisposition.parse(cd).parameters.filename!;
      expect(saved).not.toMatch(/\.\.|\/|\\|\u202e/);
      expectSecurityHeaders(res.headers, 'file');
    }
    // An HTML attachment is never served as HTML.
    const html = await app.inject(hrefs[0]!);
    expect(html.headers['content-type']).toBe('application/octet-stream');
    // The "/" in "</script>" is a path separator: only the last component is the saved name.
    expect(contentDisposition.parse(html.headers['content-disposition'] as string).parameters.filename).toBe('script>.html');
  });
});

describe('tokens and states', () => {
  it('answers 404 for an unknown token', async () => {
    const res = await app.inject(`/t/${newToken()}`);
    expect(res.statusCode).toBe(404);
    expect(res.body).toContain('Link not found');
    expectSecurityHeaders(res.headers, 'page');
  });

  it('answers 404 for malformed tokens, on the landing and file routes', async () => {
    const fx = await addTransfer(env, { files: [{ name: 'a.bin', data: Buffer.from('a') }] });
    for (const bad of [fx.token.slice(1), fx.token + 'A', fx.token.slice(2) + '..', "%3Cscript%3E'"]) {
      for (const url of [`/t/${bad}`, `/t/${bad}/1/a.bin`]) {
        const res = await app.inject(url);
        expect(res.statusCode, url).toBe(404);
        expect(res.body).toContain('Link not found');
      }
    }
  });

  it('does the same database work for malformed, unknown, pending and deleted tokens', async () => {
    // A 404 for a malformed token must not come back faster than one for a well-formed unknown
    // token: both are hashed and looked up, so timing says nothing about which guesses were
    // well-formed. Counted here as accesses to the database handle.
    let touched = 0;
    const watched = new Proxy(env.db, {
      get(target, prop) {
        touched++;
        const v = Reflect.get(target, prop, target) as unknown;
        // Kysely uses private fields, so its methods must run on the real object.
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }) as Db;
    const probe = await buildWebApp({ publicUrl: PUBLIC_URL, db: watched, blobs: spy, rateLimit: false });
    const work = async (url: string) => {
      touched = 0;
      const res = await probe.inject(url);
      expect(res.statusCode, url).toBe(404);
      return touched;
    };
    const unknown = await work(`/t/${newToken()}`);
    expect(unknown).toBeGreaterThan(0);
    expect(await work('/t/short')).toBe(unknown);
    expect(await work(`/t/${newToken()}x`)).toBe(unknown);
    expect(await work('/t/short/1/x')).toBe(unknown);
    expect(await work(`/t/${newToken()}/1/x`)).toBe(unknown);
    // A real token whose transfer is not (or no longer) served: the same work again.
    for (const state of ['pending', 'deleted'] as const) {
      const hidden = await addTransfer(env, { state, files: [{ name: 'a.bin', data: Buffer.from('a') }] });
      expect(await work(`/t/${hidden.token}`), state).toBe(unknown);
    }
    await probe.close();
  });

  it('answers 404 for pending and deleted transfers', async () => {
    for (const state of ['pending', 'deleted'] as const) {
      const fx = await addTransfer(env, { state, files: [{ name: 'a.bin', data: Buffer.from('a') }] });
      for (const url of [`/t/${fx.token}`, `/t/${fx.token}/1/a.bin`]) {
        const res = await app.inject(url);
        expect(res.statusCode, `${state} ${url}`).toBe(404);
        expect(res.headers['content-disposition']).toBeUndefined();
      }
    }
  });

  it('answers 410 with the expiry date for a transfer past its expiry time', async () => {
    const expiresAt = Date.UTC(2024, 2, 3, 4, 5);
    const fx = await addTransfer(env, { createdAt: expiresAt - 86_400_000, expiresAt, files: [{ name: 'a.bin', data: Buffer.from('a') }] });
    for (const url of [`/t/${fx.token}`, `/t/${fx.token}/1/a.bin`]) {
      const res = await app.inject(url);
      expect(res.statusCode, url).toBe(410);
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(res.body).toContain('no longer available');
      expect(res.body).toContain('3 Mar 2024, 04:05 UTC');
      // Who to ask: the sender, as a mail link.
      expect(res.body).toContain('ask the sender, <a href="mailto:alice@example.org">alice@example.org</a>, to send them again');
      expect(res.headers['content-disposition']).toBeUndefined();
      expectSecurityHeaders(res.headers, 'page');
    }
  });

  it('uses the injected clock: expiresAt <= now is expired', async () => {
    const expiresAt = Date.now() + 3_600_000;
    const fx = await addTransfer(env, { expiresAt, files: [{ name: 'a.bin', data: Buffer.from('a') }] });
    const before = await buildWebApp({ publicUrl: PUBLIC_URL, db: env.db, blobs: spy, now: () => expiresAt - 1 });
    const at = await buildWebApp({ publicUrl: PUBLIC_URL, db: env.db, blobs: spy, now: () => expiresAt });
    expect((await before.inject(`/t/${fx.token}`)).statusCode).toBe(200);
    expect((await at.inject(`/t/${fx.token}`)).statusCode).toBe(410);
    await before.close();
    await at.close();
  });

  it('answers 410 for expired and revoked states, even before the expiry time', async () => {
    for (const state of ['expired', 'revoked'] as const) {
      const fx = await addTransfer(env, { state, files: [{ name: 'a.bin', data: Buffer.from('a') }] });
      const res = await app.inject(`/t/${fx.token}/1/a.bin`);
      expect(res.statusCode, state).toBe(410);
      expect(res.body).toContain('to send them again');
      if (state === 'revoked') expect(res.body).toContain('withdrawn');
    }
  });

  it('answers 404 for a file index that does not exist or is not a number', async () => {
    const fx = await addTransfer(env, { files: [{ name: 'a.bin', data: Buffer.from('a') }] });
    for (const idx of ['0', '2', '01', '-1', 'abc', '1e0']) {
      const res = await app.inject(`/t/${fx.token}/${idx}/a.bin`);
      expect(res.statusCode, idx).toBe(404);
    }
    expect((await app.inject(`/t/${fx.token}/1/a.bin/extra`)).statusCode).toBe(404);
  });

  it('chooses the file by index and ignores the name segment', async () => {
    const fx = await addTransfer(env, {
      files: [
        { name: 'one.txt', contentType: 'text/plain', data: Buffer.from('first') },
        { name: 'two.txt', contentType: 'text/plain', data: Buffer.from('second') },
      ],
    });
    const res = await app.inject(`/t/${fx.token}/2/one.txt`);
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('second');
    expect(res.headers['content-disposition']).toBe('attachment; filename="two.txt"');
  });
});

describe('file responses (inject)', () => {
  let fx: Fixture;
  let url: string;
  beforeAll(async () => {
    fx = await addTransfer(env, { files: [{ name: 'page.svg', contentType: 'image/svg+xml', data: Buffer.from('<svg onload="alert(1)"/>') }] });
    url = `/t/${fx.token}/1/page.svg`;
  });

  it('carries every download header', async () => {
    const res = await app.inject(url);
    const f = fx.files[0]!;
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/octet-stream');
    expect(res.headers['content-length']).toBe(String(f.data.length));
    expect(res.headers.etag).toBe(`"${f.sha256}"`);
    expect(res.headers['repr-digest']).toBe(`sha-256=:${Buffer.from(f.sha256, 'hex').toString('base64')}:`);
    expect(res.headers['accept-ranges']).toBe('bytes');
    expect(Date.parse(res.headers['last-modified'] as string)).toBeGreaterThan(0);
    expect(res.headers['content-disposition']).toBe('attachment; filename="page.svg"');
    expectSecurityHeaders(res.headers, 'file');
  });

  it('answers HEAD from the records: same headers as GET, no blob opened, logged but not counted', async () => {
    const get = await app.inject({ url, headers: { 'user-agent': 'get-probe' } });
    // Records are written in batches after the response: wait for this GET's own.
    await waitFor(async () => (await downloads(env.db, fx.transferId)).find((r) => r.user_agent === 'get-probe'), 'the GET download record');
    const reads = spy.reads.length;
    const head = await app.inject({ method: 'HEAD', url, headers: { 'user-agent': 'head-probe' } });
    expect(head.statusCode).toBe(200);
    expect(head.body).toBe('');
    const strip = (h: Record<string, unknown>) => {
      const { date: _d, connection: _c, ...rest } = h;
      return rest;
    };
    expect(strip(head.headers)).toEqual(strip(get.headers));
    expect(spy.reads.length).toBe(reads);
    // Still answered when the bytes are gone: HEAD never needed them.
    await env.blobs.delete(fx.files[0]!.blobKey);
    const again = await app.inject({ method: 'HEAD', url, headers: { 'user-agent': 'head-probe' } });
    expect(again.statusCode).toBe(200);
    expect(again.headers['content-length']).toBe(String(fx.files[0]!.data.length));
    const heads = await waitFor(async () => {
      const r = (await downloads(env.db, fx.transferId)).filter((row) => row.method === 'HEAD');
      return r.length >= 2 ? r : undefined;
    }, 'the HEAD records');
    expect(heads).toHaveLength(2);
    for (const r of heads) expect(r).toMatchObject({ status: 200, bytes_sent: 0, counted: 0, user_agent: 'head-probe', file_idx: 1 });
  });

  it('answers conditional requests with 304', async () => {
    const etag = `"${fx.files[0]!.sha256}"`;
    const inm = await app.inject({ url, headers: { 'if-none-match': etag } });
    expect(inm.statusCode).toBe(304);
    expect(inm.body).toBe('');
    expect(inm.headers.etag).toBe(etag);
    expect(inm.headers['content-disposition']).toBeUndefined();
    const ims = await app.inject({ url, headers: { 'if-modified-since': new Date(Date.now() + 60_000).toUTCString() } });
    expect(ims.statusCode).toBe(304);
  });
});

describe('logs', () => {
  it('never contain a token, only the first digits of its hash', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    const failing = new SpyBlobStore(env.blobs);
    failing.failWith = new Error('boom');
    const logged = await buildWebApp({ publicUrl: PUBLIC_URL, db: env.db, blobs: failing, logger });
    const fx = await addTransfer(env, { files: [{ name: 'a.bin', data: Buffer.from('a') }] });
    expect((await logged.inject(`/t/${fx.token}`)).statusCode).toBe(200);
    expect((await logged.inject(`/t/${fx.token}/1/a.bin`)).statusCode).toBe(500);
    expect((await logged.inject({ method: 'HEAD', url: `/t/${fx.token}/1/a.bin` })).statusCode).toBe(200);
    await logged.close();
    const all = lines.join('');
    expect(lines.length).toBeGreaterThanOrEqual(4);
    expect(all).toContain(`/t/h:${hashToken(fx.token).slice(0, 12)}`);
    expect(all).toContain('boom');
    expect(all).not.toContain(fx.token);
    expect(all).not.toContain(fx.token.slice(0, 8));
  });
});

describe('failures', () => {
  it('gives a 404 page, not a broken download, when the blob is missing', async () => {
    const fx = await addTransfer(env, { files: [{ name: 'gone.bin', data: Buffer.from('bytes') }] });
    await env.blobs.delete(fx.files[0]!.blobKey);
    const res = await app.inject(`/t/${fx.token}/1/gone.bin`);
    expect(res.statusCode).toBe(404);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers['content-disposition']).toBeUndefined();
    expect(res.headers.etag).toBeUndefined();
    expectSecurityHeaders(res.headers, 'page');
  });

  it('gives a 503 page with Retry-After when the blob store is unavailable', async () => {
    const fx = await addTransfer(env, { files: [{ name: 'a.bin', data: Buffer.from('bytes') }] });
    const failing = new SpyBlobStore(env.blobs);
    failing.failWith = new BlobStoreUnavailableError('bucket /srv/secret-bucket unreachable');
    const app2 = await buildWebApp({ publicUrl: PUBLIC_URL, db: env.db, blobs: failing });
    const res = await app2.inject(`/t/${fx.token}/1/a.bin`);
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('60');
    expect(res.body).toContain('Temporarily unavailable');
    expect(res.body).not.toContain('secret-bucket');
    expect(res.headers['content-disposition']).toBeUndefined();
    expect(res.headers['content-range']).toBeUndefined();
    expectSecurityHeaders(res.headers, 'page');
    await app2.close();
  });

  it('gives a generic 500 page without internals for an unexpected error', async () => {
    const fx = await addTransfer(env, { files: [{ name: 'a.bin', data: Buffer.from('bytes') }] });
    const failing = new SpyBlobStore(env.blobs);
    failing.failWith = new TypeError('cannot read properties of undefined at /srv/ferry/internal.js:12');
    const app2 = await buildWebApp({ publicUrl: PUBLIC_URL, db: env.db, blobs: failing });
    const res = await app2.inject(`/t/${fx.token}/1/a.bin`);
    expect(res.statusCode).toBe(500);
    expect(res.body).toContain('Something went wrong');
    expect(res.body).not.toMatch(/TypeError|internal\.js|\/srv\/|\n\s+at /);
    expectSecurityHeaders(res.headers, 'page');
    await app2.close();
  });

  it('gives a 503 page when the database cannot be read', async () => {
    const extra = await makeEnv();
    const fx = await addTransfer(extra, { files: [{ name: 'a.bin', data: Buffer.from('a') }] });
    const app2 = await buildWebApp({ publicUrl: PUBLIC_URL, db: extra.db, blobs: extra.blobs });
    await extra.db.destroy();
    const res = await app2.inject(`/t/${fx.token}`);
    expect(res.statusCode).toBe(503);
    expect(res.body).toContain('Temporarily unavailable');
    await app2.close();
    await extra.close().catch(() => undefined);
  });

  it('answers unknown paths and bad URL encodings with the 404 page and the security headers', async () => {
    for (const url of ['/nope', '/t', '/t/%E0%A4%A', '/assets/other.css']) {
      const res = await app.inject(url);
      expect(res.statusCode, url).toBe(404);
      expect(res.headers['content-type'], url).toBe('text/html; charset=utf-8');
      expect(res.body).toContain('Link not found');
      expect(res.body).not.toContain('FST_');
      expectSecurityHeaders(res.headers, 'page');
    }
  });
});
