import crypto from 'node:crypto';
import fs from 'node:fs';
import { Readable, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileBlobStream, FsBlobStore, readBuffers } from '../../storage/index.js';
import { tempDir } from '../helpers/ferry.js';
import { sha256 } from '../helpers/mail.js';

// The file store's read stream (storage/fs-blob-store.ts): read as any Readable, every chunk is
// a buffer of its own; sent into a destination that is done with a chunk when its write calls
// back (a socket, an HTTP response), it refills two buffers in turn. What a download relies on:
// the exact bytes whatever the timing of the destination, and no reading once it has gone.

const MiB = 1024 * 1024;
const SIZE = 5 * MiB + 12_345;

let dir: string;
let store: FsBlobStore;
let data: Buffer;

beforeAll(async () => {
  dir = tempDir('ferry-fs-blobs-');
  store = new FsBlobStore(dir);
  data = crypto.randomBytes(SIZE);
  await store.put('t/file', Readable.from([data]));
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/**
 * A destination that takes its time: it copies each chunk only when it calls back, a few ms
 * later, as the kernel takes bytes from a slow socket. A buffer refilled before its write called
 * back would arrive changed. `leaveAfter` makes it go away (close) after that many chunks.
 */
function slowSink(leaveAfter = Infinity) {
  const got: Buffer[] = [];
  const arrays = new Set<ArrayBufferLike>();
  let writes = 0;
  const sink = new Writable({
    highWaterMark: 16 * 1024,
    write(chunk: Buffer, _enc, cb) {
      arrays.add(chunk.buffer);
      if (++writes > leaveAfter) {
        cb();
        sink.destroy();
        return;
      }
      setTimeout(() => {
        got.push(Buffer.from(chunk));
        cb();
      }, 2 + (writes % 3) * 3);
    },
  });
  return { sink, got, arrays, writes: () => writes };
}

async function openFile(range?: { start: number; end: number }): Promise<FileBlobStream> {
  const s = await store.openRead('t/file', range ? { range } : {});
  expect(s).toBeInstanceOf(FileBlobStream);
  return s as FileBlobStream;
}

const closed = (s: Readable) => new Promise<void>((resolve) => (s.closed ? resolve() : s.once('close', () => resolve())));

describe('file blob stream sent into a destination', () => {
  it.each([
    ['the whole file', undefined, 0, SIZE - 1],
    ['a range across several reads', { start: 1000, end: 3 * MiB + 5 }, 1000, 3 * MiB + 5],
    ['one byte', { start: SIZE - 1, end: SIZE - 1 }, SIZE - 1, SIZE - 1],
  ])('%s: the exact bytes, from at most two buffers, each refilled only after its write called back', async (_what, range, start, end) => {
    const s = await openFile(range);
    const { sink, got, arrays } = slowSink();
    let counted = 0;
    s.sendTo(sink, (n) => (counted += n));
    const finished = new Promise<void>((resolve, reject) => sink.once('finish', resolve).once('error', reject));
    s.pipe(sink);
    await finished;
    await closed(s);
    const body = Buffer.concat(got);
    expect(body.length).toBe(end - start + 1);
    expect(sha256(body)).toBe(sha256(data.subarray(start, end + 1)));
    expect(counted).toBe(end - start + 1);
    expect(arrays.size).toBeLessThanOrEqual(2);
    expect(s.readableEnded).toBe(true);
  });

  it('stops reading and closes the file when the destination goes away', async () => {
    const s = await openFile();
    const { sink, writes } = slowSink(2);
    let counted = 0;
    s.sendTo(sink, (n) => (counted += n));
    s.pipe(sink);
    await closed(s);
    expect(s.destroyed).toBe(true);
    expect(s.readableEnded).toBe(false);
    // Two written, a third handed over as the sink left, at most one more read under way then.
    expect(writes()).toBeLessThanOrEqual(3);
    expect(counted).toBeLessThan(SIZE);
  });

  it('piped into any other destination, it is an ordinary stream', async () => {
    const s = await openFile();
    const { sink, got } = slowSink();
    s.sendTo(new Writable(), () => undefined);
    await new Promise<void>((resolve, reject) => s.pipe(sink).once('finish', resolve).once('error', reject));
    expect(sha256(Buffer.concat(got))).toBe(sha256(data));
  });
});

describe('file blob stream read as a Readable', () => {
  it('gives every chunk a buffer of its own, so a consumer may keep them all', async () => {
    const chunks: Buffer[] = [];
    for await (const c of await openFile()) chunks.push(c as Buffer);
    expect(chunks.length).toBeGreaterThan(2);
    expect(new Set(chunks.map((c) => c.buffer)).size).toBe(chunks.length);
    expect(sha256(Buffer.concat(chunks))).toBe(sha256(data));
  });

  it('reads 1 MiB at a time while few reads are open', async () => {
    const s = await openFile();
    expect(s.readableHighWaterMark).toBe(MiB);
    const first = await new Promise<Buffer>((resolve) => s.once('data', resolve));
    expect(first.length).toBe(MiB);
    s.destroy();
    await closed(s);
  });
});

describe('many downloads at once', () => {
  it('hold their buffers within the process read budget, each gets its exact bytes, and the next ones reuse the buffers', async () => {
    const n = 40;
    const wave = async () => {
      const streams = await Promise.all(Array.from({ length: n }, (_, i) => openFile(i % 2 ? { start: i * 1000, end: SIZE - 1 } : undefined)));
      // What the open reads hold: two buffers each, within the budget except for the floor of
      // 64 KiB that every read gets however many are open.
      const held = streams.reduce((sum, s) => sum + 2 * s.readSize, 0);
      expect(readBuffers.inUse).toBe(held);
      expect(held).toBeLessThanOrEqual(readBuffers.budget + n * 2 * readBuffers.min);
      expect(Math.max(...streams.map((s) => s.readSize))).toBe(readBuffers.max);
      const sinks = streams.map((s, i) => {
        const sink = slowSink();
        s.sendTo(sink.sink, () => undefined);
        const finished = new Promise<void>((resolve, reject) => sink.sink.once('finish', resolve).once('error', reject));
        s.pipe(sink.sink);
        return { ...sink, finished, start: i % 2 ? i * 1000 : 0, stream: s };
      });
      await Promise.all(sinks.map((k) => k.finished));
      await Promise.all(streams.map(closed));
      for (const k of sinks) expect(sha256(Buffer.concat(k.got))).toBe(sha256(data.subarray(k.start)));
      return new Set(sinks.flatMap((k) => [...k.arrays]));
    };
    const first = await wave();
    expect(readBuffers.inUse).toBe(0);
    const second = await wave();
    expect([...second].filter((a) => first.has(a)).length).toBeGreaterThan(0);
    expect(readBuffers.inUse).toBe(0);
  });
});

describe('put with written chunks reported', () => {
  it('reports each chunk once its write is done, so a writer refilling two buffers in turn stores the exact bytes', async () => {
    const src = crypto.randomBytes(3 * MiB + 777);
    const bufs = [Buffer.allocUnsafeSlow(64 * 1024), Buffer.allocUnsafeSlow(64 * 1024)];
    const free = [...bufs];
    let wake: (() => void) | undefined;
    const reported: Buffer[] = [];
    let off = 0;
    const body = new Readable({
      read() {
        const fill = () => {
          if (off >= src.length) return this.push(null);
          const buf = free.pop();
          if (!buf) {
            wake = fill;
            return;
          }
          // Overwritten now: a store still holding this buffer would write these bytes instead.
          const n = src.copy(buf, 0, off, off + 40_000 + (off % 9_000));
          off += n;
          this.push(buf.subarray(0, n));
        };
        fill();
      },
    });
    await store.put('t/reported', body, {
      written: (chunk) => {
        reported.push(chunk);
        free.push(bufs.find((b) => b.buffer === chunk.buffer)!);
        const w = wake;
        wake = undefined;
        w?.();
      },
    });
    const back = fs.readFileSync(`${dir}/t/reported`);
    expect(sha256(back)).toBe(sha256(src));
    expect(reported.reduce((n, c) => n + c.length, 0)).toBe(src.length);
  });
});

describe('put of a blob larger than a flush', () => {
  it('stores the exact bytes while the file is flushed to the disk along the way', async () => {
    // Past 8 MiB the store flushes while the rest arrives; the end waits for that flush.
    const src = crypto.randomBytes(21 * MiB + 5);
    const chunks = Array.from({ length: Math.ceil(src.length / (256 * 1024)) }, (_, i) => src.subarray(i * 256 * 1024, (i + 1) * 256 * 1024));
    await store.put('t/large', Readable.from(chunks));
    expect(sha256(fs.readFileSync(`${dir}/t/large`))).toBe(sha256(src));
    expect(fs.readdirSync(`${dir}/t`).filter((n) => n.includes('.partial'))).toEqual([]);
  });
});
