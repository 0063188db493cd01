import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWebApp } from '../../web/app.js';
import { classifyRequest, isScannerAgent } from '../../web/scanners.js';
import { addTransfer, downloads, httpRequest, makeEnv, PUBLIC_URL, sha256, waitFor, type Env, type Fixture } from './helpers.js';

// What counts as a download (docs/downloads.md): a client having been sent the whole file,
// whoever it says it is. Mail scanners and prefetchers that only check (HEAD) or preview (a short
// range) are served and logged and use nothing up. Real sockets, so "counted" means every byte
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
  it('HEAD is free; a full GET counts whoever asks: scanner agents, prefetch and no User-Agent are marked, not exempt', async () => {
    const data = randomBytes(50_000);
    const fx = await addTransfer(env, { files: [{ name: 'a.bin', data }] });
    const url = `${base}/t/${fx.token}/1/a.bin`;
    // Issue 15 item 4: three full GETs with a "Teams" User-Agent were three free copies.
    const requests: { method?: string; headers: Record<string, string>; scanner: number; counted: number }[] = [
      { method: 'HEAD', headers: { 'user-agent': BROWSER }, scanner: 0, counted: 0 },
      { method: 'HEAD', headers: { 'user-agent': SCANNERS[0]! }, scanner: 1, counted: 0 },
      { headers: { 'user-agent': BROWSER, 'sec-purpose': 'prefetch' }, scanner: 1, counted: 1 },
      ...SCANNERS.map((ua) => ({ headers: { 'user-agent': ua }, scanner: 1, counted: 1 })),
      { headers: { 'user-agent': 'Mozilla/5.0 Teams/1.7' }, scanner: 1, counted: 1 },
      { headers: {}, scanner: 1, counted: 1 },
      { headers: { 'user-agent': BROWSER }, scanner: 0, counted: 1 },
    ];
    for (const r of requests) {
      const res = await httpRequest(url, { method: r.method, headers: r.headers });
      expect(res.status).toBe(200);
      // Scanners get the real file: a scanner that sees a different answer might flag the mail.
      if (!r.method) expect(sha256(res.body)).toBe(fx.files[0]!.sha256);
    }
    const rows = await rowsOf(fx, requests.length);
    expect(rows.map((row) => row.counted)).toEqual(requests.map((r) => r.counted));
    expect(rows.map((row) => row.scanner)).toEqual(requests.map((r) => r.scanner));
    expect(rows[0]).toMatchObject({ method: 'HEAD', bytes_sent: 0 });
    expect(rows.at(-1)).toMatchObject({ counted: 1, scanner: 0, status: 200, bytes_sent: 50_000, method: 'GET', user_agent: BROWSER, client: '127.0.0.1' });
  });

  it('a short range is a preview and does not count; ranges of one client that add up to the file count once', async () => {
    const data = randomBytes(50_000);
    const fx = await addTransfer(env, { files: [{ name: 'r.bin', data }] });
    const url = `${base}/t/${fx.token}/1/r.bin`;
    const get = (range: string, ua = SCANNERS[0]!) => httpRequest(url, { headers: { 'user-agent': ua, range } });
    // A link checker sniffing the first bytes, twice.
    expect((await get('bytes=0-1023')).status).toBe(206);
    expect((await get('bytes=0-1023')).status).toBe(206);
    await rowsOf(fx, 2);
    // Then the file in two halves (issue 15 item 4: two Ranges were a free copy).
    const a = await get('bytes=0-24999', BROWSER);
    expect((await rowsOf(fx, 3)).at(-1)!.counted).toBe(0);
    const b = await get('bytes=25000-', BROWSER);
    expect(sha256(Buffer.concat([a.body, b.body]))).toBe(fx.files[0]!.sha256);
    const rows = await rowsOf(fx, 4);
    // 1024 + 1024 + 25,000 + 25,000 >= 50,000: the fourth request completes the file for this client.
    expect(rows.map((r) => [r.status, r.bytes_sent, r.counted])).toEqual([
      [206, 1024, 0],
      [206, 1024, 0],
      [206, 25_000, 0],
      [206, 25_000, 1],
    ]);
    // After a counted download the sum starts again.
    expect((await get('bytes=0-1023')).status).toBe(206);
    expect((await rowsOf(fx, 5)).at(-1)!.counted).toBe(0);
  });

  it('a broken download and its resumed remainder give the identical file and count once', async () => {
    // Big enough that the socket buffers on loopback cannot take it all before the client hangs up.
    const data = randomBytes(24 * 1024 * 1024);
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
    await rowsOf(fx, 1);
    // The server may have handed more to the socket than this client read before hanging up;
    // what it recorded is what left the process, so the resume must start where the client stopped.
    const rest = await httpRequest(url, { headers: { 'user-agent': BROWSER, range: `bytes=${first.length}-`, 'if-range': `"${fx.files[0]!.sha256}"` } });
    expect(rest.status).toBe(206);
    expect(sha256(Buffer.concat([first, rest.body]))).toBe(fx.files[0]!.sha256);
    const rows = await rowsOf(fx, 2);
    expect(rows.map((r) => [r.status, r.counted])).toEqual([
      [200, 0],
      [206, 1],
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

  it('is never used up by HEAD, page views or short previews; full GETs use it up per file, scanners included', async () => {
    const big = randomBytes(100_000);
    const fx = await addTransfer(env, {
      sender: 'alice@example.org',
      files: [
        { name: 'one.bin', data: big },
        { name: 'two.txt', contentType: 'text/plain', data: Buffer.from('second file') },
      ],
    });
    const page = `${limited.base}/t/${fx.token}`;
    const one = `${page}/1/one.bin`;
    // NB a preview holds a download slot from its start until its record is finished, and the
    // download log writes records in batches (web/download-log.ts): the test goes on once they
    // are written, or the next request could meet a slot a finished preview still holds.
    const previewsFinished = (n: number) =>
      waitFor(async () => (await downloads(env.db, fx.transferId)).filter((r) => r.method === 'GET' && Number(r.slot) === 0).length === n || undefined, `${n} finished preview records`);
    // A busy morning for the mail scanners: checks and previews only.
    for (let i = 0; i < 5; i++) {
      for (const ua of SCANNERS) expect((await httpRequest(one, { method: 'HEAD', headers: { 'user-agent': ua } })).status).toBe(200);
      expect((await httpRequest(one, { headers: { 'user-agent': SCANNERS[i]!, range: 'bytes=0-1023' } })).status).toBe(206);
      await previewsFinished(i + 1);
      expect((await httpRequest(one, { method: 'HEAD', headers: { 'user-agent': BROWSER } })).status).toBe(200);
      expect((await httpRequest(page, { headers: { 'user-agent': BROWSER } })).status).toBe(200);
    }
    await previewsFinished(5);
    let view = await httpRequest(page, { headers: { 'user-agent': BROWSER } });
    expect(view.body.toString()).toContain('2 of 2 downloads left');

    // A scanner that fetches the whole file has a copy: that is a download.
    expect(sha256((await httpRequest(one, { headers: { 'user-agent': SCANNERS[0]! } })).body)).toBe(fx.files[0]!.sha256);
    // And so is the recipient's.
    expect(sha256((await httpRequest(one, { headers: { 'user-agent': BROWSER } })).body)).toBe(fx.files[0]!.sha256);
    await waitFor(async () => (await downloads(env.db, fx.transferId)).filter((r) => r.counted).length === 2 || undefined, 'two counted downloads');
    const gone = await httpRequest(one, { headers: { 'user-agent': BROWSER } });
    expect(gone.status).toBe(410);
    expect(gone.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(gone.headers['content-disposition']).toBeUndefined();
    const goneBody = gone.body.toString();
    expect(goneBody).toContain('<h1>Download limit reached</h1>');
    expect(goneBody).toContain('(2 times each)');
    expect(goneBody).toContain('<a href="mailto:alice@example.org">alice@example.org</a>');
    // Scanners, previews and HEAD are refused too once the limit is reached.
    expect((await httpRequest(one, { method: 'HEAD', headers: { 'user-agent': BROWSER } })).status).toBe(410);
    expect((await httpRequest(one, { headers: { 'user-agent': SCANNERS[0]!, range: 'bytes=0-9' } })).status).toBe(410);

    // File 2 is still there; the page says which file is used up and offers no zip.
    view = await httpRequest(page, { headers: { 'user-agent': BROWSER } });
    expect(view.status).toBe(200);
    const html = view.body.toString();
    expect(html).toContain('<span class="used">Download limit reached</span>');
    expect(html).not.toContain(`href="/t/${fx.token}/1/one.bin"`);
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
    expect((await httpRequest(zip, { method: 'HEAD', headers: { 'user-agent': BROWSER } })).status).toBe(200);
    expect((await httpRequest(zip, { headers: { 'user-agent': BROWSER } })).status).toBe(200);
    expect((await httpRequest(`${limited.base}/t/${fx.token}/1/a.txt`, { headers: { 'user-agent': BROWSER } })).status).toBe(200);
    await waitFor(async () => (await downloads(env.db, fx.transferId)).length === 3 || undefined, 'three records');
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
