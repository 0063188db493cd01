import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWebApp } from '../../web/app.js';
import { classifyRequest, isScannerAgent } from '../../web/scanners.js';
import { addTransfer, downloads, httpRequest, makeEnv, PUBLIC_URL, sha256, waitFor, type Env, type Fixture } from './helpers.js';

// Mail scanners and prefetchers fetch links nobody clicked. They are served and logged, never
// counted, and can never use up a download limit. Real sockets, so "counted" means every byte
// really left.

const BROWSER = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const SCANNERS = [
  'Mozilla/5.0 (compatible; Barracuda Sentinel (EE))',
  'Mimecast URL Protect',
  'Proofpoint URL Defense',
  'python-requests/2.31.0',
  'Go-http-client/1.1',
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36',
  'Microsoft Office Existence Discovery',
  'Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)',
  'facebookexternalhit/1.1',
];

describe('classifyRequest', () => {
  it('knows scanners, preview bots and automated clients, and leaves browsers, curl and wget alone', () => {
    for (const ua of SCANNERS) expect(isScannerAgent(ua), ua).toBe(true);
    expect(isScannerAgent(undefined)).toBe(true);
    expect(isScannerAgent('  ')).toBe(true);
    for (const ua of [BROWSER, 'curl/8.5.0', 'Wget/1.21.4', 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1']) {
      expect(isScannerAgent(ua), ua).toBe(false);
    }
  });

  it('recognises speculative fetches by their headers', () => {
    expect(classifyRequest({ 'user-agent': BROWSER, 'sec-purpose': 'prefetch' }).prefetch).toBe(true);
    expect(classifyRequest({ 'user-agent': BROWSER, 'sec-purpose': 'prefetch;prerender' }).prefetch).toBe(true);
    expect(classifyRequest({ 'user-agent': BROWSER, purpose: 'prefetch' }).prefetch).toBe(true);
    expect(classifyRequest({ 'user-agent': BROWSER, 'x-moz': 'prefetch' }).prefetch).toBe(true);
    expect(classifyRequest({ 'user-agent': BROWSER, 'x-purpose': 'preview' }).prefetch).toBe(true);
    expect(classifyRequest({ 'user-agent': BROWSER })).toEqual({ scanner: false, prefetch: false });
  });
});

let env: Env;
let app: FastifyInstance;
let base: string;

async function start(opts: { maxDownloads?: number } = {}) {
  const a = await buildWebApp({ publicUrl: PUBLIC_URL, db: env.db, blobs: env.blobs, rateLimit: false, ...opts });
  await a.listen({ port: 0, host: '127.0.0.1' });
  return { app: a, base: `http://127.0.0.1:${(a.server.address() as AddressInfo).port}` };
}

beforeAll(async () => {
  env = await makeEnv();
  ({ app, base } = await start());
});

afterAll(async () => {
  await app.close();
  await env.close();
});

async function rowsOf(fx: Fixture, n: number) {
  return waitFor(async () => {
    const r = await downloads(env.db, fx.transferId);
    return r.length >= n ? r : undefined;
  }, `${n} download records`);
}

describe('what counts as a download', () => {
  it('HEAD, prefetch, scanner user agents and partial ranges are logged but not counted; a browser GET is', async () => {
    const data = randomBytes(50_000);
    const fx = await addTransfer(env, { files: [{ name: 'a.bin', data }] });
    const url = `${base}/t/${fx.token}/1/a.bin`;
    const requests: { method?: string; headers: Record<string, string>; scanner: number }[] = [
      { method: 'HEAD', headers: { 'user-agent': BROWSER }, scanner: 0 },
      { headers: { 'user-agent': BROWSER, 'sec-purpose': 'prefetch' }, scanner: 1 },
      { headers: { 'user-agent': BROWSER, purpose: 'prefetch' }, scanner: 1 },
      ...SCANNERS.map((ua) => ({ headers: { 'user-agent': ua }, scanner: 1 })),
      { headers: {}, scanner: 1 },
      { headers: { 'user-agent': BROWSER, range: 'bytes=0-999' }, scanner: 0 },
      { headers: { 'user-agent': BROWSER, range: 'bytes=1000-' }, scanner: 0 },
    ];
    for (const r of requests) {
      const res = await httpRequest(url, { method: r.method, headers: r.headers });
      expect(res.status).toBe(r.headers.range ? 206 : 200);
      // Scanners get the real file: a scanner that sees a different answer might flag the mail.
      if (!r.method && !r.headers.range) expect(sha256(res.body)).toBe(fx.files[0]!.sha256);
    }
    const rows = await rowsOf(fx, requests.length);
    expect(rows.map((row) => row.counted)).toEqual(requests.map(() => 0));
    expect(rows.map((row) => row.scanner)).toEqual(requests.map((r) => r.scanner));
    expect(rows[0]).toMatchObject({ method: 'HEAD', bytes_sent: 0 });
    expect(rows[1]).toMatchObject({ method: 'GET', bytes_sent: 50_000, status: 200 });

    // Now a person clicks.
    const res = await httpRequest(url, { headers: { 'user-agent': BROWSER } });
    expect(sha256(res.body)).toBe(fx.files[0]!.sha256);
    const all = await rowsOf(fx, requests.length + 1);
    expect(all.at(-1)).toMatchObject({ counted: 1, scanner: 0, status: 200, bytes_sent: 50_000, method: 'GET', user_agent: BROWSER, client: '127.0.0.1' });
  });

  it('a resumed download gives the identical file; the partial pieces are not counted', async () => {
    const data = randomBytes(2 * 1024 * 1024);
    const fx = await addTransfer(env, { files: [{ name: 'resume.bin', data }] });
    const url = `${base}/t/${fx.token}/1/resume.bin`;
    const first = await new Promise<Buffer>((resolve) => {
      const req = http.get(url, { agent: false, headers: { 'user-agent': BROWSER } }, (res) => {
        const chunks: Buffer[] = [];
        let n = 0;
        res.on('data', (c: Buffer) => {
          chunks.push(c);
          n += c.length;
          if (n >= 300_000) {
            req.destroy();
            resolve(Buffer.concat(chunks));
          }
        });
        res.on('error', () => undefined);
      });
      req.on('error', () => undefined);
    });
    expect(first.length).toBeLessThan(data.length);
    const rest = await httpRequest(url, { headers: { 'user-agent': BROWSER, range: `bytes=${first.length}-`, 'if-range': `"${fx.files[0]!.sha256}"` } });
    expect(rest.status).toBe(206);
    expect(sha256(Buffer.concat([first, rest.body]))).toBe(fx.files[0]!.sha256);
    const rows = await rowsOf(fx, 2);
    expect(rows.map((r) => [r.status, r.counted])).toEqual([
      [200, 0],
      [206, 0],
    ]);
  });

  it('viewing the landing page never counts and never opens a file', async () => {
    const fx = await addTransfer(env, { files: [{ name: 'a.bin', data: Buffer.from('abc') }] });
    for (const ua of [BROWSER, ...SCANNERS]) {
      const res = await httpRequest(`${base}/t/${fx.token}`, { headers: { 'user-agent': ua } });
      expect(res.status).toBe(200);
    }
    await new Promise((r) => setTimeout(r, 100));
    expect(await downloads(env.db, fx.transferId)).toEqual([]);
  });
});

describe('web.maxDownloads', () => {
  let limited: { app: FastifyInstance; base: string };
  beforeAll(async () => {
    limited = await start({ maxDownloads: 2 });
  });
  afterAll(async () => {
    await limited.app.close();
  });

  it('is never used up by scanners, prefetch, HEAD or page views; real downloads use it up per file', async () => {
    const fx = await addTransfer(env, {
      sender: 'alice@example.org',
      files: [
        { name: 'one.txt', contentType: 'text/plain', data: Buffer.from('first file') },
        { name: 'two.txt', contentType: 'text/plain', data: Buffer.from('second file') },
      ],
    });
    const page = `${limited.base}/t/${fx.token}`;
    const one = `${page}/1/one.txt`;
    // A busy morning for the mail scanners.
    for (let i = 0; i < 5; i++) {
      for (const ua of SCANNERS) expect((await httpRequest(one, { headers: { 'user-agent': ua } })).status).toBe(200);
      expect((await httpRequest(one, { headers: { 'user-agent': BROWSER, 'sec-purpose': 'prefetch' } })).status).toBe(200);
      expect((await httpRequest(one, { method: 'HEAD', headers: { 'user-agent': BROWSER } })).status).toBe(200);
      expect((await httpRequest(page, { headers: { 'user-agent': BROWSER } })).status).toBe(200);
    }
    let view = await httpRequest(page, { headers: { 'user-agent': BROWSER } });
    expect(view.body.toString()).toContain('2 of 2 downloads left');

    // The recipient downloads file 1 twice.
    for (let i = 0; i < 2; i++) expect((await httpRequest(one, { headers: { 'user-agent': BROWSER } })).body.toString()).toBe('first file');
    await waitFor(async () => (await downloads(env.db, fx.transferId)).filter((r) => r.counted).length === 2 || undefined, 'two counted downloads');
    const gone = await httpRequest(one, { headers: { 'user-agent': BROWSER } });
    expect(gone.status).toBe(410);
    expect(gone.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(gone.headers['content-disposition']).toBeUndefined();
    const goneBody = gone.body.toString();
    expect(goneBody).toContain('<h1>Download limit reached</h1>');
    expect(goneBody).toContain('(2 times each)');
    expect(goneBody).toContain('<a href="mailto:alice@example.org">alice@example.org</a>');
    // Scanners and HEAD are refused too once the limit is reached.
    expect((await httpRequest(one, { method: 'HEAD', headers: { 'user-agent': BROWSER } })).status).toBe(410);
    expect((await httpRequest(one, { headers: { 'user-agent': SCANNERS[0]! } })).status).toBe(410);

    // File 2 is still there; the page says which file is used up and offers no zip.
    view = await httpRequest(page, { headers: { 'user-agent': BROWSER } });
    expect(view.status).toBe(200);
    const html = view.body.toString();
    expect(html).toContain('<span class="used">Download limit reached</span>');
    expect(html).not.toContain(`href="/t/${fx.token}/1/one.txt"`);
    expect(html).toContain(`href="/t/${fx.token}/2/two.txt"`);
    expect(html).not.toContain('/zip"');
    expect(html).toContain('a file has reached its download limit');
    expect((await httpRequest(`${page}/zip`, { headers: { 'user-agent': BROWSER } })).status).toBe(410);

    // Once every file is used up, the landing page itself says so.
    for (let i = 0; i < 2; i++) await httpRequest(`${page}/2/two.txt`, { headers: { 'user-agent': BROWSER } });
    await waitFor(async () => (await downloads(env.db, fx.transferId)).filter((r) => r.counted).length === 4 || undefined, 'four counted downloads');
    view = await httpRequest(page, { headers: { 'user-agent': BROWSER } });
    expect(view.status).toBe(410);
    expect(view.body.toString()).toContain('Download limit reached');
  });

  it('counts a zip as one download of every file in it, and only when it was sent completely', async () => {
    const fx = await addTransfer(env, {
      files: [
        { name: 'a.txt', data: Buffer.from('a') },
        { name: 'b.txt', data: Buffer.from('b') },
      ],
    });
    const zip = `${limited.base}/t/${fx.token}/zip`;
    expect((await httpRequest(zip, { headers: { 'user-agent': SCANNERS[0]! } })).status).toBe(200);
    expect((await httpRequest(zip, { method: 'HEAD', headers: { 'user-agent': BROWSER } })).status).toBe(200);
    expect((await httpRequest(zip, { headers: { 'user-agent': BROWSER } })).status).toBe(200);
    expect((await httpRequest(`${limited.base}/t/${fx.token}/1/a.txt`, { headers: { 'user-agent': BROWSER } })).status).toBe(200);
    await waitFor(async () => (await downloads(env.db, fx.transferId)).length === 4 || undefined, 'four records');
    // a.txt: zip + its own download = 2 (used up); b.txt: the zip = 1.
    expect((await httpRequest(`${limited.base}/t/${fx.token}/1/a.txt`, { headers: { 'user-agent': BROWSER } })).status).toBe(410);
    expect((await httpRequest(`${limited.base}/t/${fx.token}/2/b.txt`, { headers: { 'user-agent': BROWSER } })).status).toBe(200);
    expect((await httpRequest(zip, { headers: { 'user-agent': BROWSER } })).status).toBe(410);
  });

  it("a retention rule's download limit on the transfer wins over the site's", async () => {
    // The site allows 2 (this app); the rule that stored this transfer allows 1.
    const strict = await addTransfer(env, { maxDownloads: 1, files: [{ name: 'a.txt', data: Buffer.from('a') }] });
    const url = `${limited.base}/t/${strict.token}/1/a.txt`;
    expect((await httpRequest(url, { headers: { 'user-agent': BROWSER } })).status).toBe(200);
    await waitFor(async () => (await downloads(env.db, strict.transferId)).length === 1 || undefined, 'one record');
    const gone = await httpRequest(url, { headers: { 'user-agent': BROWSER } });
    expect(gone.status).toBe(410);
    expect(gone.body.toString()).toContain('(once each)');
    // And the site without a limit (the default app) still applies the rule's.
    expect((await httpRequest(`${base}/t/${strict.token}/1/a.txt`, { headers: { 'user-agent': BROWSER } })).status).toBe(410);
    // A transfer without a rule limit keeps the site's: unlimited on the default app.
    const free = await addTransfer(env, { files: [{ name: 'b.txt', data: Buffer.from('b') }] });
    for (let i = 0; i < 3; i++) expect((await httpRequest(`${base}/t/${free.token}/1/b.txt`, { headers: { 'user-agent': BROWSER } })).status).toBe(200);
  });
});
