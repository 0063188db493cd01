import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileBlobStream, FsBlobStore, type ByteRange } from '../../storage/index.js';
import { ByteCounter } from '../../web/download-log.js';
import { fileBody } from '../../web/file-body.js';
import { tempDir } from '../helpers/ferry.js';
import { sha256 } from '../helpers/mail.js';
import { httpRequest, waitFor } from './helpers.js';

// The body of a file response through Fastify and a real socket (web/file-body.ts): a blob of
// the file store writes itself into the response from reused buffers, any other blob goes
// through the byte counter. Both must deliver the exact bytes, count what they handed to the
// response, and stop reading when the client goes away.

const MiB = 1024 * 1024;
const SIZE = 24 * MiB + 777;

let dir: string;
let store: FsBlobStore;
let data: Buffer;
let app: FastifyInstance;
let base: string;
/** The last request's blob, counter and how its body ended. */
let last: { blob: Readable; counter: ByteCounter; ended: Promise<Error | null | undefined> };

beforeAll(async () => {
  dir = tempDir('ferry-file-body-');
  store = new FsBlobStore(dir);
  data = crypto.randomBytes(SIZE);
  await store.put('t/file', Readable.from([data]));
  app = Fastify();
  app.get<{ Querystring: { start?: string; end?: string; plain?: string } }>('/file', async (request, reply) => {
    const q = request.query;
    const range: ByteRange | undefined = q.start !== undefined ? { start: Number(q.start), end: Number(q.end) } : undefined;
    const opened = await store.openRead('t/file', range ? { range } : {});
    // ?plain: the same bytes as a stream of another kind (as from S3).
    const blob = q.plain !== undefined ? Readable.from(opened) : opened;
    const counter = new ByteCounter();
    let done!: (err?: Error | null) => void;
    last = { blob: opened, counter, ended: new Promise((resolve) => (done = resolve)) };
    const length = range ? range.end - range.start + 1 : SIZE;
    return reply.header('content-length', String(length)).send(fileBody(blob, reply.raw, counter, done));
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await app?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('file response body', () => {
  it.each([
    ['a file store blob, whole', '', 0, SIZE - 1],
    ['a file store blob, a range', '?start=5&end=20971525', 5, 20_971_525],
    ['another kind of stream, whole', '?plain', 0, SIZE - 1],
  ])('%s: the exact bytes, all of them counted', async (_what, query, start, end) => {
    const res = await httpRequest(`${base}/file${query}`);
    expect(res.status).toBe(200);
    expect(res.body.length).toBe(end - start + 1);
    expect(sha256(res.body)).toBe(sha256(data.subarray(start, end + 1)));
    // The direct copy has ended before the client can hang up; through the counter the client's
    // hang-up may come first (then the route sees a premature close after the last byte).
    if (!query.includes('plain')) expect(await last.ended).toBeFalsy();
    expect(last.counter.bytes).toBe(end - start + 1);
    await waitFor(() => last.blob.destroyed, 'the blob to be closed');
  });

  it('the file store blob is sent directly, not through the counter', async () => {
    await httpRequest(`${base}/file?start=0&end=9`);
    expect(last.blob).toBeInstanceOf(FileBlobStream);
    // Nothing passed through the Transform: its buffers never held a byte.
    expect(last.counter.writableLength + last.counter.readableLength).toBe(0);
    expect(last.counter.bytes).toBe(10);
  });

  it.each([['a file store blob', ''], ['another kind of stream', '?plain']])('%s: stops reading when the client goes away', async (_what, query) => {
    await new Promise<void>((resolve, reject) => {
      const req = http.get(`${base}/file${query}`, { agent: false }, (res) => {
        let n = 0;
        res.on('data', (c: Buffer) => {
          n += c.length;
          if (n >= 2 * MiB) {
            req.destroy();
            resolve();
          }
        });
      });
      req.on('error', () => undefined);
      setTimeout(() => reject(new Error('no 2 MiB within 10 s')), 10_000);
    });
    await waitFor(() => last.blob.destroyed, 'the blob to be destroyed');
    // How the body ended: cut short (a premature close), which the file route does not log as a storage failure.
    expect(await last.ended).toBeInstanceOf(Error);
    expect(last.counter.bytes).toBeLessThan(SIZE);
  });
});
