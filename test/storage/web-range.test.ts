import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addFile, createTransfer, fileUrl, hashToken, markLive, newBlobKey, newId, newQueueId, newToken, openStorage, S3BlobStore, type Storage } from '../../storage/index.js';
import { buildWebApp } from '../../web/app.js';
import { tempDir } from '../helpers/ferry.js';
import { sha256 } from '../helpers/mail.js';
import { createBucket, createDatabase, dropBucket, dropDatabase, PG_MISSING, pgUrl, S3_MISSING, s3Env, s3Url, warnSkip } from './backends.js';

// Range requests through the real web service give the same status, headers and bytes on every
// storage pair: the embedded defaults (filesystem + SQLite) and the scale-out pair (S3 on Ceph
// RGW + PostgreSQL). Each pair serves the same file; the answers are compared with each other
// and with the bytes themselves.

const env = s3Env();
const pg = pgUrl();
if (!env) warnSkip('web range matrix on S3 + PostgreSQL', S3_MISSING);
else if (!pg) warnSkip('web range matrix on S3 + PostgreSQL', PG_MISSING);

const SIZE = 6 * 1024 * 1024 + 777;
const content = crypto.randomBytes(SIZE);

interface Pair {
  name: string;
  setup(): Promise<{ blobs: string; database: string; s3?: Record<string, unknown> }>;
  teardown(): Promise<void>;
}

const dir = tempDir('ferry-range-');
const pairs: Pair[] = [
  {
    name: 'file + sqlite',
    async setup() {
      return { blobs: `file:${path.join(dir, 'blobs')}`, database: `sqlite:${path.join(dir, 'ferry.db')}` };
    },
    async teardown() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  },
];
if (env && pg) {
  let bucket = '';
  let db = '';
  pairs.push({
    name: 's3 + postgres',
    async setup() {
      bucket = await createBucket(env, 'ferry-range');
      db = await createDatabase(pg);
      return { blobs: s3Url(env, bucket), database: db, s3: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey } };
    },
    async teardown() {
      if (bucket) await dropBucket(env, bucket);
      if (db) await dropDatabase(pg, db);
    },
  });
}

interface Answer {
  status: number;
  contentRange: string | null;
  contentLength: string | null;
  etag: string | null;
  sha: string;
  length: number;
}

const cases: [string, Record<string, string>, { status: number; slice?: [number, number] }][] = [
  ['whole file', {}, { status: 200, slice: [0, SIZE] }],
  ['first bytes', { range: 'bytes=0-99' }, { status: 206, slice: [0, 100] }],
  ['middle', { range: 'bytes=3000000-3999999' }, { status: 206, slice: [3_000_000, 4_000_000] }],
  ['suffix', { range: 'bytes=-500' }, { status: 206, slice: [SIZE - 500, SIZE] }],
  ['open-ended', { range: `bytes=${SIZE - 1000}-` }, { status: 206, slice: [SIZE - 1000, SIZE] }],
  ['end past the end (clamped)', { range: `bytes=${SIZE - 10}-${SIZE + 5000}` }, { status: 206, slice: [SIZE - 10, SIZE] }],
  ['start past the end', { range: `bytes=${SIZE + 5}-` }, { status: 416 }],
  ['several ranges (served whole)', { range: 'bytes=0-9,100-199' }, { status: 200, slice: [0, SIZE] }],
];

const answers = new Map<string, Map<string, Answer>>();

describe.each(pairs)('range matrix through the web service: $name', (pair) => {
  let storage: Storage;
  let web: FastifyInstance;
  let url = '';

  beforeAll(async () => {
    const s = await pair.setup();
    storage = await openStorage({ blobs: s.blobs, database: s.database, s3: s.s3 });
    const token = newToken();
    const transferId = newId();
    const blobKey = newBlobKey(transferId, 1);
    await storage.blobs.put(blobKey, Readable.from([content]));
    await createTransfer(storage.db, {
      id: transferId,
      tokenHash: hashToken(token),
      queueId: newQueueId(),
      sender: 'alice@example.com',
      recipients: ['bob@example.net'],
      subject: 'range',
      messageId: null,
      createdAt: 1_700_000_000_000,
      expiresAt: Date.now() + 3_600_000,
    });
    await addFile(storage.db, { transferId, idx: 1, name: 'data.bin', contentType: 'application/octet-stream', size: SIZE, sha256: sha256(content), blobKey });
    await markLive(storage.db, transferId);
    web = await buildWebApp({ publicUrl: 'http://127.0.0.1', db: storage.db, blobs: storage.blobs, rateLimit: false });
    await web.listen({ port: 0, host: '127.0.0.1' });
    const port = (web.server.address() as { port: number }).port;
    url = fileUrl(`http://127.0.0.1:${port}`, token, 1, 'data.bin');
    answers.set(pair.name, new Map());
  });
  afterAll(async () => {
    await web?.close();
    await storage?.close();
    await pair.teardown();
  });

  it.each(cases)('%s', async (what, headers, want) => {
    const r = await fetch(url, { headers });
    const body = Buffer.from(await r.arrayBuffer());
    const a: Answer = {
      status: r.status,
      contentRange: r.headers.get('content-range'),
      contentLength: r.headers.get('content-length'),
      etag: r.headers.get('etag'),
      sha: sha256(body),
      length: body.length,
    };
    answers.get(pair.name)!.set(what, a);
    expect(a.status).toBe(want.status);
    if (want.slice) {
      const expected = content.subarray(...want.slice);
      expect(a.length).toBe(expected.length);
      expect(a.sha).toBe(sha256(expected));
      if (want.status === 206) expect(a.contentRange).toBe(`bytes ${want.slice[0]}-${want.slice[1] - 1}/${SIZE}`);
    } else {
      expect(a.contentRange).toBe(`bytes */${SIZE}`);
    }
    // Every pair answered before this one must have answered exactly the same.
    for (const [other, m] of answers) if (other !== pair.name && m.has(what)) expect(a, `${pair.name} vs ${other}`).toEqual(m.get(what));
  });

  it('HEAD answers from the records with the same headers as GET, without reading the blob', async () => {
    const r = await fetch(url, { method: 'HEAD' });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-length')).toBe(String(SIZE));
    expect(r.headers.get('etag')).toBe(`"${sha256(content)}"`);
  });
});

describe.skipIf(!env)('a recipient who leaves mid-download (S3, through the web service)', () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  let bucket = '';
  let storage: Storage;
  let blobs: S3BlobStore;
  let web: FastifyInstance;
  let url = '';
  const big = crypto.randomBytes(16 * 1024 * 1024);
  const leaveDir = tempDir('ferry-leave-');

  beforeAll(async () => {
    bucket = await createBucket(env!, 'ferry-leave');
    blobs = new S3BlobStore({ bucket, endpoint: env!.endpoint, accessKeyId: env!.accessKeyId, secretAccessKey: env!.secretAccessKey, agent });
    storage = await openStorage({ blobs: `file:${leaveDir}/unused`, database: `sqlite:${leaveDir}/ferry.db` });
    const token = newToken();
    const transferId = newId();
    const blobKey = newBlobKey(transferId, 1);
    await blobs.put(blobKey, Readable.from([big]));
    await createTransfer(storage.db, { id: transferId, tokenHash: hashToken(token), queueId: newQueueId(), sender: 'a@example.com', recipients: ['b@example.net'], subject: null, messageId: null, createdAt: Date.now(), expiresAt: Date.now() + 3_600_000 });
    await addFile(storage.db, { transferId, idx: 1, name: 'big.bin', contentType: 'application/octet-stream', size: big.length, sha256: sha256(big), blobKey });
    await markLive(storage.db, transferId);
    web = await buildWebApp({ publicUrl: 'http://127.0.0.1', db: storage.db, blobs, rateLimit: false });
    await web.listen({ port: 0, host: '127.0.0.1' });
    url = fileUrl(`http://127.0.0.1:${(web.server.address() as { port: number }).port}`, token, 1, 'big.bin');
  });
  afterAll(async () => {
    await web?.close();
    await blobs?.close();
    await storage?.close();
    if (bucket) await dropBucket(env!, bucket);
    fs.rmSync(leaveDir, { recursive: true, force: true });
  });

  it('the S3 request is cancelled and its connection given back, with nothing left checked out', async () => {
    const busy = () => Object.values(agent.sockets).reduce((n, list) => n + (list?.length ?? 0), 0);
    await new Promise<void>((resolve, reject) => {
      const req = http.get(url, (res) => {
        expect(res.statusCode).toBe(200);
        res.once('data', () => {
          // Ferry is now streaming from S3 to us: hang up.
          expect(busy()).toBe(1);
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => undefined);
      setTimeout(() => reject(new Error('no bytes within 10 s')), 10_000).unref();
    });
    for (let i = 0; i < 100 && busy() > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(busy()).toBe(0);
    // And the next download works (no socket or slot was leaked).
    const again = await fetch(url, { headers: { range: 'bytes=0-99' } });
    expect(Buffer.from(await again.arrayBuffer()).equals(big.subarray(0, 100))).toBe(true);
  });
});
