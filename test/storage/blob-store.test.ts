import crypto from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import { PassThrough, Readable } from 'node:stream';
import { CreateMultipartUploadCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BlobNotFoundError,
  BlobStoreUnavailableError,
  FsBlobStore,
  S3BlobStore,
  Semaphore,
  sweepIncompleteUploads,
  type BlobStore,
} from '../../storage/index.js';
import { freePort, tempDir } from '../helpers/ferry.js';
import { sha256 } from '../helpers/mail.js';
import { bucketContents, createBucket, dropBucket, S3_MISSING, s3Env, warnSkip, type S3Env } from './backends.js';
import { TcpProxy } from './tcp-proxy.js';

// One conformance suite for every blob store driver: what the gateway and the web service rely
// on must hold the same on the filesystem and on a real S3 server (Ceph RGW). S3-only behaviour
// (upload cap, multipart sweeping, presigned URLs, watchdogs) follows in its own block.

const MiB = 1024 * 1024;
const env = s3Env();
if (!env) warnSkip('blob store conformance on S3', S3_MISSING);

interface Driver {
  name: string;
  open(): Promise<BlobStore>;
  /** Object keys and incomplete uploads the backend holds (beyond what list() admits to). */
  leftovers(store: BlobStore): Promise<{ keys: string[]; uploads: string[] }>;
  cleanup(): Promise<void>;
  /**
   * Why this backend cannot take part in the checks of incomplete multipart uploads (s3rver has
   * no ListMultipartUploads and no AbortMultipartUpload); those checks are skipped, not faked.
   */
  noMultipartListing?: string;
}

function fsDriver(): Driver {
  const dir = tempDir('ferry-blobs-');
  return {
    name: 'file',
    async open() {
      return new FsBlobStore(dir);
    },
    async leftovers() {
      const walk = (d: string): string[] =>
        fs.existsSync(d) ? fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(`${d}/${e.name}`) : [`${d}/${e.name}`.slice(dir.length + 1)])) : [];
      const all = walk(dir);
      return { keys: all.filter((k) => !k.includes('.partial')), uploads: all.filter((k) => k.includes('.partial')) };
    },
    async cleanup() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function s3Driver(e: S3Env): Driver {
  let bucket = '';
  return {
    name: 's3 (Ceph RGW)',
    async open() {
      bucket ||= await createBucket(e, 'ferry-conf');
      return new S3BlobStore({
        bucket,
        prefix: 'pre/',
        endpoint: e.endpoint,
        accessKeyId: e.accessKeyId,
        secretAccessKey: e.secretAccessKey,
        partSize: 5 * MiB,
        listPageSize: 2,
        uploadSlots: new Semaphore(4),
      });
    },
    async leftovers() {
      const c = await bucketContents(e, bucket);
      return { keys: c.keys, uploads: c.uploads.map((u) => u.key) };
    },
    async cleanup() {
      if (bucket) await dropBucket(e, bucket);
    },
  };
}

// Random bytes from the kernel: fast, and as good as any content for byte-for-byte comparisons.
const bytes = (n: number) => crypto.randomBytes(n);

/**
 * Without a real S3 server: s3rver (a devDependency), a local mock, as a fallback. It checks no
 * signatures and has no multipart listing or abort, so those checks skip on it (with the reason
 * printed); everything else must hold on it too.
 */
function s3rverDriver(): Driver {
  const dir = tempDir('ferry-s3rver-');
  let child: ChildProcess | undefined;
  let endpoint = '';
  const bucket = 'ferry-conf';
  return {
    name: 's3 (s3rver fallback)',
    noMultipartListing: 's3rver 3.7 has no ListMultipartUploads or AbortMultipartUpload (405/501)',
    async open() {
      const port = await freePort();
      endpoint = `http://127.0.0.1:${port}`;
      const bin = path.resolve(import.meta.dirname, '../../node_modules/s3rver/bin/s3rver.js');
      // The legacy provider: s3rver's ListObjectsV2 continuation tokens use DES (500 without it on Node >= 17).
      child = spawn(process.execPath, [bin, '-d', dir, '-a', '127.0.0.1', '-p', String(port), '-s', '--configure-bucket', bucket], {
        env: { ...process.env, NODE_OPTIONS: '--openssl-legacy-provider' },
        stdio: 'ignore',
      });
      for (let i = 0; i < 100; i++) {
        if (await fetch(endpoint).then(() => true, () => false)) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      return new S3BlobStore({ bucket, prefix: 'pre/', endpoint, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', partSize: 5 * MiB, listPageSize: 2, uploadSlots: new Semaphore(4) });
    },
    async leftovers(store) {
      const keys: string[] = [];
      for await (const k of store.list()) keys.push(k);
      return { keys, uploads: [] };
    },
    async cleanup() {
      child?.kill();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

const drivers: Driver[] = [fsDriver(), env ? s3Driver(env) : s3rverDriver()];

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A body that sends `bytes` and then fails, as an SMTP client that vanishes mid-attachment. */
function failingBody(n: number): Readable {
  const data = bytes(n);
  let sent = false;
  return new Readable({
    read() {
      if (!sent) {
        sent = true;
        this.push(data);
        setTimeout(() => this.destroy(new Error('client went away')), 20);
      }
    },
  });
}

describe.each(drivers)('blob store conformance: $name', (driver) => {
  let store: BlobStore;
  const big = bytes(12 * MiB + 12_345);
  beforeAll(async () => {
    store = await driver.open();
  });
  afterAll(async () => {
    await store?.close();
    await driver.cleanup();
  });

  it('stores a multi-part-sized body and reads back the same bytes; exists() and check() agree', async () => {
    await store.check();
    await store.put('t1/big', Readable.from([big.subarray(0, 3 * MiB), big.subarray(3 * MiB)]), { contentType: 'application/pdf' });
    expect(await store.exists('t1/big')).toBe(true);
    expect(sha256(await readAll(await store.openRead('t1/big')))).toBe(sha256(big));
  });

  it('stores an empty body and a small one', async () => {
    await store.put('t1/empty', Readable.from([]));
    expect((await readAll(await store.openRead('t1/empty'))).length).toBe(0);
    await store.put('t1/small', Readable.from([Buffer.from('hello')]));
    expect((await readAll(await store.openRead('t1/small'))).toString()).toBe('hello');
  });

  it.each([
    ['first bytes', 0, 99],
    ['one byte', 5, 5],
    ['middle, across a part boundary', 5 * MiB - 1000, 5 * MiB + 1000],
    ['the last bytes', 12 * MiB + 12_345 - 500, 12 * MiB + 12_345 - 1],
  ])('reads the range %s exactly', async (_what, start, end) => {
    const got = await readAll(await store.openRead('t1/big', { range: { start, end } }));
    expect(got.length).toBe(end - start + 1);
    expect(got.equals(big.subarray(start, end + 1))).toBe(true);
  });

  it('a missing blob: openRead rejects with BlobNotFoundError, exists() is false, delete() succeeds', async () => {
    await expect(store.openRead('t1/none')).rejects.toBeInstanceOf(BlobNotFoundError);
    await expect(store.openRead('t1/none', { range: { start: 0, end: 9 } })).rejects.toBeInstanceOf(BlobNotFoundError);
    expect(await store.exists('t1/none')).toBe(false);
    await store.delete('t1/none');
  });

  it('lists keys by prefix, across pages, and delete() removes a blob for good', async () => {
    for (const k of ['l/a1', 'l/a2', 'l/a3', 'l/b/1', 'm/x']) await store.put(k, Readable.from([Buffer.from(k)]));
    const listed = async (p?: string) => {
      const out: string[] = [];
      for await (const k of store.list(p)) out.push(k);
      return out.sort();
    };
    expect(await listed('l/')).toEqual(['l/a1', 'l/a2', 'l/a3', 'l/b/1']);
    expect(await listed()).toEqual(expect.arrayContaining(['l/a1', 'm/x', 't1/big']));
    await store.delete('l/a2');
    expect(await store.exists('l/a2')).toBe(false);
    await expect(store.openRead('l/a2')).rejects.toBeInstanceOf(BlobNotFoundError);
    expect(await listed('l/')).toEqual(['l/a1', 'l/a3', 'l/b/1']);
  });

  it('a body that fails after several parts rejects put() and leaves no object and no partial upload', async () => {
    const err = await store.put('t2/failed', failingBody(11 * MiB)).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/client went away/);
    expect(await store.exists('t2/failed')).toBe(false);
    const left = await driver.leftovers(store);
    expect(left.keys.filter((k) => k.includes('t2/'))).toEqual([]);
    if (!driver.noMultipartListing) expect(left.uploads.filter((k) => k.includes('t2/'))).toEqual([]);
  });

  it('aborting a put whose body has stalled rejects at once and leaves nothing behind', async () => {
    const body = new PassThrough();
    body.write(bytes(6 * MiB));
    const ac = new AbortController();
    const p = store.put('t3/stalled', body, { signal: ac.signal });
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    ac.abort(new Error('transaction cancelled'));
    const err = await p.catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).name).toBe('AbortError');
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(await store.exists('t3/stalled')).toBe(false);
    const left = await driver.leftovers(store);
    expect(left.keys.filter((k) => k.includes('t3/'))).toEqual([]);
    if (!driver.noMultipartListing) expect(left.uploads.filter((k) => k.includes('t3/'))).toEqual([]);
  });

  it('a reader that stops early releases the blob (the stream closes, nothing keeps reading)', async () => {
    const s = await store.openRead('t1/big');
    const first = await new Promise<Buffer>((resolve) => s.once('data', resolve));
    expect(first.length).toBeGreaterThan(0);
    s.destroy();
    await new Promise((r) => s.once('close', r));
    // The store still serves afterwards (no leaked handle or socket blocks the next read).
    expect((await readAll(await store.openRead('t1/big', { range: { start: 0, end: 9 } }))).equals(big.subarray(0, 10))).toBe(true);
  });

  if (driver.noMultipartListing) warnSkip(`incomplete-upload checks on ${driver.name}`, driver.noMultipartListing);
  it.skipIf(!!driver.noMultipartListing)('the worker sweep of incomplete uploads is safe on this store', async () => {
    expect(await sweepIncompleteUploads(store, 0)).toBeGreaterThanOrEqual(0);
    expect((await driver.leftovers(store)).uploads).toEqual([]);
  });
});

describe.skipIf(!env)('S3 driver on a real server (Ceph RGW)', () => {
  const e = env!;
  let bucket: string;
  let store: S3BlobStore;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const blob = bytes(3 * MiB);

  beforeAll(async () => {
    bucket = await createBucket(e, 'ferry-s3');
    store = new S3BlobStore({ bucket, endpoint: e.endpoint, accessKeyId: e.accessKeyId, secretAccessKey: e.secretAccessKey, partSize: 5 * MiB, agent });
    await store.put('p/blob', Readable.from([blob]), { contentType: 'application/octet-stream' });
  });
  afterAll(async () => {
    await store?.close();
    if (bucket) await dropBucket(e, bucket);
  });

  it('caps concurrent uploads per process: a second upload does not read its body until a slot is free', async () => {
    const slots = new Semaphore(1);
    const capped = new S3BlobStore({ bucket, endpoint: e.endpoint, accessKeyId: e.accessKeyId, secretAccessKey: e.secretAccessKey, uploadSlots: slots });
    try {
      const first = new PassThrough();
      const p1 = capped.put('cap/1', first);
      let secondRead = false;
      const second = new Readable({
        read() {
          secondRead = true;
          this.push(Buffer.from('second'));
          this.push(null);
        },
      });
      const p2 = capped.put('cap/2', second);
      first.write(bytes(1 * MiB));
      await new Promise((r) => setTimeout(r, 400));
      expect(slots.inUse).toBe(1);
      expect(slots.waiting).toBe(1);
      expect(secondRead).toBe(false);
      first.end();
      await Promise.all([p1, p2]);
      expect(secondRead).toBe(true);
      expect(await capped.exists('cap/2')).toBe(true);
    } finally {
      await capped.close();
    }
  });

  it('a reader that leaves mid-object gives the socket back (no S3 connection stays checked out)', async () => {
    const big = bytes(12 * MiB);
    await store.put('p/leave', Readable.from([big]));
    const s = await store.openRead('p/leave');
    await new Promise((resolve) => s.once('data', resolve));
    const busy = () => Object.values(agent.sockets).reduce((n, list) => n + (list?.length ?? 0), 0);
    expect(busy()).toBeGreaterThan(0);
    s.destroy();
    for (let i = 0; i < 50 && busy() > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(busy()).toBe(0);
  });

  it('an abort signal before the answer cancels the GetObject', async () => {
    const ac = new AbortController();
    ac.abort(new Error('client gone'));
    await expect(store.openRead('p/blob', { signal: ac.signal })).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('sweeps incomplete multipart uploads older than the given age, and only those', async () => {
    const Key = 'p/crashed';
    const { UploadId } = await store.client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key }));
    await store.client.send(new UploadPartCommand({ Bucket: bucket, Key, UploadId, PartNumber: 1, Body: bytes(5 * MiB) }));
    expect((await bucketContents(e, bucket)).uploads).toEqual([{ key: Key, uploadId: UploadId }]);
    expect(await sweepIncompleteUploads(store, 60 * 60 * 1000)).toBe(0);
    expect((await bucketContents(e, bucket)).uploads).toHaveLength(1);
    expect(await sweepIncompleteUploads(store, 0, Date.now() + 1000)).toBe(1);
    expect((await bucketContents(e, bucket)).uploads).toEqual([]);
  });

  it('presigned URLs download the bytes with the given headers, serve Range, and are refused when tampered with or expired', async () => {
    const disposition = "attachment; filename=\"resume.bin\"; filename*=UTF-8''r%C3%A9sum%C3%A9.bin";
    const url = await store.presignGet('p/blob', { expiresIn: 2, contentDisposition: disposition, contentType: 'application/pdf' });
    const r = await fetch(url);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/pdf');
    expect(r.headers.get('content-disposition')).toBe(disposition);
    expect(sha256(Buffer.from(await r.arrayBuffer()))).toBe(sha256(blob));
    const ranged = await fetch(url, { headers: { range: 'bytes=100-199' } });
    expect(ranged.status).toBe(206);
    expect(Buffer.from(await ranged.arrayBuffer()).equals(blob.subarray(100, 200))).toBe(true);
    const tampered = url.replace(/X-Amz-Signature=([0-9a-f])/, (_m, c: string) => `X-Amz-Signature=${c === '0' ? '1' : '0'}`);
    expect((await fetch(tampered)).status).toBe(403);
    await new Promise((res) => setTimeout(res, 3200));
    expect((await fetch(url)).status).toBe(403);
  });

  it('wrong credentials: check() and put() fail as "store unavailable", not as a crash', async () => {
    const bad = new S3BlobStore({ bucket, endpoint: e.endpoint, accessKeyId: e.accessKeyId, secretAccessKey: 'wrong-secret-wrong-secret-wrong-secret-00', maxAttempts: 1 });
    try {
      await expect(bad.check()).rejects.toBeInstanceOf(BlobStoreUnavailableError);
      await expect(bad.put('p/denied', Readable.from([Buffer.from('x')]))).rejects.toBeInstanceOf(BlobStoreUnavailableError);
      expect(await store.exists('p/denied')).toBe(false);
    } finally {
      await bad.close();
    }
  });

  it('a download whose S3 connection hangs mid-body is broken off by the idle watchdog', async () => {
    const big = bytes(32 * MiB);
    await store.put('p/hang', Readable.from([big]));
    const proxy = await TcpProxy.forUrl(e.endpoint).start();
    const viaProxy = new S3BlobStore({ bucket, endpoint: proxy.rewrite(e.endpoint), accessKeyId: e.accessKeyId, secretAccessKey: e.secretAccessKey, readIdleTimeoutMs: 1000 });
    try {
      const s = await viaProxy.openRead('p/hang');
      await new Promise((resolve) => s.once('data', resolve));
      s.pause();
      proxy.stall();
      const t0 = Date.now();
      let received = 0;
      const err = await new Promise<Error | undefined>((resolve) => {
        s.on('data', (c: Buffer) => (received += c.length));
        s.once('error', resolve);
        s.once('end', () => resolve(undefined));
        s.resume();
      });
      expect(err).toBeInstanceOf(BlobStoreUnavailableError);
      expect(received).toBeLessThan(big.length);
      expect(Date.now() - t0).toBeLessThan(8000);
    } finally {
      await viaProxy.close();
      await proxy.stop();
    }
  });

  it('a store that does not answer makes openRead fail within its open timeout (the web then answers 503)', async () => {
    const proxy = await TcpProxy.forUrl(e.endpoint).start();
    proxy.stall();
    const hung = new S3BlobStore({ bucket, endpoint: proxy.rewrite(e.endpoint), accessKeyId: e.accessKeyId, secretAccessKey: e.secretAccessKey, openTimeoutMs: 1500, checkTimeoutMs: 1000 });
    try {
      const t0 = Date.now();
      await expect(hung.openRead('p/blob')).rejects.toBeInstanceOf(BlobStoreUnavailableError);
      await expect(hung.check()).rejects.toBeInstanceOf(BlobStoreUnavailableError);
      expect(Date.now() - t0).toBeLessThan(5000);
    } finally {
      await hung.close();
      await proxy.stop();
    }
  });

  it('keys are the ones Ferry makes: a key outside the rules is refused before any request', async () => {
    await expect(store.openRead('../etc/passwd')).rejects.toThrow(/invalid blob key/);
  });
});
