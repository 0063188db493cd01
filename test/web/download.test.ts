import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWebApp } from '../../web/app.js';
import { addTransfer, downloads, httpRequest, makeEnv, PUBLIC_URL, sha256, SpyBlobStore, waitFor, type Env, type Fixture } from './helpers.js';

// Real sockets: byte-exact bodies, Range over the wire, resume after a cut, and a client that
// goes away mid-download.

let env: Env;
let spy: SpyBlobStore;
let app: FastifyInstance;
let base: string;
let fx: Fixture;
let data: Buffer;
let url: string;

const SIZE = 100_000;
const BIG = 32 * 1024 * 1024;

beforeAll(async () => {
  env = await makeEnv();
  spy = new SpyBlobStore(env.blobs);
  app = await buildWebApp({ publicUrl: PUBLIC_URL, db: env.db, blobs: spy });
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  data = randomBytes(SIZE);
  fx = await addTransfer(env, {
    files: [
      { name: 'data.bin', data },
      { name: 'empty.txt', contentType: 'text/plain', data: Buffer.alloc(0) },
      { name: 'big.bin', data: randomBytes(BIG) },
    ],
  });
  url = `${base}/t/${fx.token}/1/data.bin`;
});

afterAll(async () => {
  await app.close();
  await env.close();
});

/** Records are written when the response closes, a moment after the client has its bytes. */
async function recordOf(userAgent: string) {
  return waitFor(async () => (await downloads(env.db, fx.transferId)).find((r) => r.user_agent === userAgent), `the record of ${userAgent}`);
}

describe('download over HTTP', () => {
  it('sends the exact bytes and logs one counted download', async () => {
    // Without trustProxy a forwarded-for header is anybody's claim and is not believed.
    const res = await httpRequest(url, { headers: { 'user-agent': 'ferry-test/1', 'x-forwarded-for': '203.0.113.7' } });
    expect(res.status).toBe(200);
    expect(res.body.length).toBe(SIZE);
    expect(sha256(res.body)).toBe(fx.files[0]!.sha256);
    expect(res.headers['content-length']).toBe(String(SIZE));
    expect(res.headers.etag).toBe(`"${fx.files[0]!.sha256}"`);
    const before = Date.now();
    const rec = await recordOf('ferry-test/1');
    // Every field of the record: time, file, method, status, bytes sent, range, client, user agent, counted, scanner.
    expect(rec).toMatchObject({
      transfer_id: fx.transferId,
      file_idx: 1,
      method: 'GET',
      status: 200,
      bytes_sent: SIZE,
      range: null,
      client: '127.0.0.1',
      user_agent: 'ferry-test/1',
      counted: 1,
      scanner: 0,
    });
    expect(Number(rec.at)).toBeGreaterThan(before - 60_000);
    expect(Number(rec.at)).toBeLessThanOrEqual(Date.now());
  });

  it('counts a complete download even when the client hangs up the moment it has the last byte', async () => {
    // agent:false sends "Connection: close", so the client closes as soon as the body is complete,
    // often before the server has processed the end of its own stream.
    for (let i = 0; i < 60; i++) {
      const res = await httpRequest(url, { headers: { 'user-agent': `hangup-${i}` } });
      expect(res.body.length).toBe(SIZE);
    }
    for (let i = 0; i < 60; i++) {
      expect(await recordOf(`hangup-${i}`)).toMatchObject({ status: 200, bytes_sent: SIZE, counted: 1 });
    }
  });

  it('records the forwarded client address when trustProxy is on', async () => {
    const proxied = await buildWebApp({ publicUrl: PUBLIC_URL, db: env.db, blobs: spy, trustProxy: true });
    await proxied.listen({ port: 0, host: '127.0.0.1' });
    const port = (proxied.server.address() as AddressInfo).port;
    await httpRequest(`http://127.0.0.1:${port}/t/${fx.token}/2/empty.txt`, { headers: { 'user-agent': 'proxied', 'x-forwarded-for': '203.0.113.7' } });
    expect((await recordOf('proxied')).client).toBe('203.0.113.7');
    await proxied.close();
  });

  it('cuts the response short, and logs it uncounted, when the blob fails mid-stream', async () => {
    // A store whose stream breaks after 1000 bytes, as a dropped S3 connection would.
    const broken = new SpyBlobStore(env.blobs);
    broken.openRead = async () =>
      new Readable({
        read() {
          this.push(Buffer.alloc(1000, 7));
          this.destroy(new Error('storage connection reset'));
        },
      });
    const app2 = await buildWebApp({ publicUrl: PUBLIC_URL, db: env.db, blobs: broken });
    await app2.listen({ port: 0, host: '127.0.0.1' });
    const port = (app2.server.address() as AddressInfo).port;
    const outcome = await new Promise<{ status: number; received: number; complete: boolean }>((resolve) => {
      http.get(`http://127.0.0.1:${port}/t/${fx.token}/1/data.bin`, { agent: false, headers: { 'user-agent': 'broken-store' } }, (res) => {
        let received = 0;
        res.on('data', (c: Buffer) => (received += c.length));
        res.on('error', () => undefined);
        res.on('close', () => resolve({ status: res.statusCode ?? 0, received, complete: res.complete }));
      });
    });
    // Headers promised SIZE bytes; the client can tell the body is short and resume.
    expect(outcome.status).toBe(200);
    expect(outcome.complete).toBe(false);
    expect(outcome.received).toBeLessThan(SIZE);
    const rec = await recordOf('broken-store');
    expect(rec.counted).toBe(0);
    expect(rec.bytes_sent).toBeLessThanOrEqual(1000);
    await app2.close();
  });

  const matrix: { name: string; headers: Record<string, string>; status: number; body?: [number, number]; contentRange?: string }[] = [
    { name: 'bytes=0-99', headers: { range: 'bytes=0-99' }, status: 206, body: [0, 100], contentRange: `bytes 0-99/${SIZE}` },
    { name: 'suffix bytes=-100', headers: { range: 'bytes=-100' }, status: 206, body: [SIZE - 100, SIZE], contentRange: `bytes ${SIZE - 100}-${SIZE - 1}/${SIZE}` },
    { name: 'open bytes=100-', headers: { range: 'bytes=100-' }, status: 206, body: [100, SIZE], contentRange: `bytes 100-${SIZE - 1}/${SIZE}` },
    { name: 'end past EOF is clamped', headers: { range: `bytes=${SIZE - 10}-${SIZE * 5}` }, status: 206, body: [SIZE - 10, SIZE], contentRange: `bytes ${SIZE - 10}-${SIZE - 1}/${SIZE}` },
    { name: 'start past EOF is 416', headers: { range: `bytes=${SIZE}-` }, status: 416, contentRange: `bytes */${SIZE}` },
    { name: 'multi-range is a whole 200', headers: { range: 'bytes=0-9,100-109' }, status: 200, body: [0, SIZE] },
    { name: 'malformed range is a whole 200', headers: { range: 'bytes=abc' }, status: 200, body: [0, SIZE] },
    { name: 'stale If-Range is a whole 200', headers: { range: 'bytes=0-99', 'if-range': `"${'0'.repeat(64)}"` }, status: 200, body: [0, SIZE] },
  ];

  for (const c of matrix) {
    it(`Range: ${c.name}`, async () => {
      const res = await httpRequest(url, { headers: c.headers });
      expect(res.status).toBe(c.status);
      expect(res.headers['content-range']).toBe(c.contentRange);
      if (c.body) {
        const [from, to] = c.body;
        expect(res.body.equals(data.subarray(from, to))).toBe(true);
        expect(res.headers['content-length']).toBe(String(to - from));
      } else {
        expect(res.body.length).toBe(0);
        expect(res.headers['content-disposition']).toBeUndefined();
      }
      // Repr-Digest describes the whole representation and is only sent with it.
      expect(res.headers['repr-digest'] !== undefined).toBe(c.status === 200);
      expect(res.headers['accept-ranges']).toBe('bytes');
    });
  }

  it('logs ranges and errors as not counted', async () => {
    await httpRequest(url, { headers: { range: 'bytes=0-99', 'user-agent': 'ranged' } });
    await httpRequest(url, { headers: { range: `bytes=${SIZE}-`, 'user-agent': 'unsatisfiable' } });
    await httpRequest(url, { headers: { range: 'bytes=0-', 'user-agent': 'whole-range' } });
    await httpRequest(url, { headers: { 'if-none-match': `"${fx.files[0]!.sha256}"`, 'user-agent': 'not-modified' } });
    const rows = await Promise.all(['ranged', 'unsatisfiable', 'whole-range', 'not-modified'].map(recordOf));
    expect(rows.map((r) => [r.status, r.bytes_sent, r.counted, r.range, r.method])).toEqual([
      [206, 100, 0, 'bytes=0-99', 'GET'],
      [416, 0, 0, `bytes=${SIZE}-`, 'GET'],
      // A range that covers the whole file delivered every byte: that is a download (download
      // managers often start this way to learn whether they can resume).
      [206, SIZE, 1, 'bytes=0-', 'GET'],
      [304, 0, 0, null, 'GET'],
    ]);
  });

  it('serves an empty file, with or without Range', async () => {
    for (const headers of [{}, { range: 'bytes=0-' }, { range: 'bytes=-10' }] as Record<string, string>[]) {
      const res = await httpRequest(`${base}/t/${fx.token}/2/empty.txt`, { headers });
      expect(res.status).toBe(200);
      expect(res.headers['content-length']).toBe('0');
      expect(res.body.length).toBe(0);
      expect(res.headers.etag).toBe(`"${sha256(Buffer.alloc(0))}"`);
      expect(res.headers['content-type']).toBe('text/plain');
    }
  });

  it('answers HEAD with the GET headers and without opening the blob', async () => {
    const get = await httpRequest(url);
    const reads = spy.reads.length;
    const head = await httpRequest(url, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    const strip = (h: http.IncomingHttpHeaders) => {
      const { date: _d, connection: _c, 'keep-alive': _k, ...rest } = h;
      return rest;
    };
    expect(strip(head.headers)).toEqual(strip(get.headers));
    expect(head.headers['content-length']).toBe(String(SIZE));
    expect(spy.reads.length).toBe(reads);
  });

  it('resumes an interrupted download into an identical file', async () => {
    const etag = `"${fx.files[0]!.sha256}"`;
    const first = await readPartly(url, 30_000);
    expect(first.length).toBeGreaterThanOrEqual(30_000);
    expect(first.length).toBeLessThan(SIZE);
    const rest = await httpRequest(url, { headers: { range: `bytes=${first.length}-`, 'if-range': etag } });
    expect(rest.status).toBe(206);
    expect(rest.headers['content-range']).toBe(`bytes ${first.length}-${SIZE - 1}/${SIZE}`);
    const whole = Buffer.concat([first, rest.body]);
    expect(whole.length).toBe(SIZE);
    expect(sha256(whole)).toBe(fx.files[0]!.sha256);
  });

  it('stops reading the blob and logs an uncounted download when the client goes away', async () => {
    const bigUrl = `${base}/t/${fx.token}/3/big.bin`;
    const reads = spy.reads.length;
    const got = await readPartly(bigUrl, 64 * 1024, 'aborter');
    expect(got.length).toBeLessThan(BIG);
    const read = spy.reads[reads]!;
    expect(read.key).toBe(fx.files[2]!.blobKey);
    // Issue 11 item 4: large reads from the file store (1 MiB while few downloads run).
    expect(read.stream?.readableHighWaterMark).toBe(1024 * 1024);
    await waitFor(() => read.stream?.destroyed, 'the blob stream to be destroyed');
    expect(read.signal?.aborted).toBe(true);
    const rec = await recordOf('aborter');
    expect(rec.file_idx).toBe(3);
    expect(rec.status).toBe(200);
    expect(rec.counted).toBe(0);
    expect(rec.bytes_sent).toBeGreaterThan(0);
    expect(rec.bytes_sent).toBeLessThan(BIG);
  });
});

/** Reads at least `atLeast` bytes of the body, then cuts the connection, as a dropped line would. */
function readPartly(target: string, atLeast: number, userAgent = 'partial'): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = http.get(target, { agent: false, headers: { 'user-agent': userAgent } }, (res) => {
      const chunks: Buffer[] = [];
      let n = 0;
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        n += c.length;
        if (n >= atLeast) {
          res.pause();
          req.destroy();
          resolve(Buffer.concat(chunks));
        }
      });
      res.on('error', () => undefined);
      res.on('end', () => reject(new Error('the whole body arrived; the test needs a bigger file')));
    });
    req.on('error', () => undefined);
    req.on('close', () => reject(new Error('connection closed before enough bytes arrived')));
  });
}
