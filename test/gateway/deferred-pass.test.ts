import { PassThrough, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { DeferredPass, type StartedPass } from '../../gateway/deferred-pass.js';
import { inChunks } from '../helpers/chunks.js';

// gateway/deferred-pass.ts: pass 1 starts only once a message has reached the threshold, then
// gets every byte in order; a message that ends below it never starts the pass.

/** A pass that collects what it is given; `slow` makes it take one chunk per 5 ms. */
function collectingPass(slow = false): { start: () => StartedPass; received: () => Buffer; starts: () => number } {
  const got: Buffer[] = [];
  let starts = 0;
  return {
    start: () => {
      starts++;
      const input = new PassThrough({ highWaterMark: 16 });
      const sink = new Writable({
        highWaterMark: 16,
        write(chunk: Buffer, _e, cb) {
          got.push(chunk);
          if (slow) setTimeout(cb, 5);
          else cb();
        },
      });
      return { input, done: pipeline(input, sink) };
    },
    received: () => Buffer.concat(got),
    starts: () => starts,
  };
}

async function feed(pass: DeferredPass, chunks: Buffer[]): Promise<void> {
  for (const c of chunks) if (!pass.write(c)) await new Promise((r) => pass.once('drain', r));
  pass.end();
}

const bytes = (n: number, seed = 1) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));

describe('DeferredPass', () => {
  it('a message that ends below the threshold never starts the pass, and done resolves', async () => {
    const p = collectingPass();
    const pass = new DeferredPass(1000, p.start);
    await feed(pass, [bytes(400), bytes(599, 2)]);
    await pass.done;
    expect(pass.started).toBe(false);
    expect(p.starts()).toBe(0);
  });

  it('at the threshold the pass starts and gets every byte, the held ones first, in order', async () => {
    for (const cut of [1, 7, 999, 1000, 4096]) {
      const all = bytes(20_000, cut);
      const p = collectingPass();
      const pass = new DeferredPass(1000, p.start);
      await feed(pass, inChunks(all, cut));
      await pass.done;
      expect(pass.started, `chunks of ${cut}`).toBe(true);
      expect(p.starts()).toBe(1);
      expect(p.received().equals(all), `chunks of ${cut}`).toBe(true);
    }
  });

  it('a message of exactly the threshold starts the pass (the offloader may take a part of exactly the minimum)', async () => {
    const p = collectingPass();
    const pass = new DeferredPass(1000, p.start);
    await feed(pass, [bytes(1000)]);
    await pass.done;
    expect(pass.started).toBe(true);
    expect(p.received().length).toBe(1000);
  });

  it('passes the pass backpressure on to its writer, and loses nothing to a slow pass', async () => {
    const p = collectingPass(true);
    const pass = new DeferredPass(100, p.start);
    const all = bytes(512 * 1024);
    let refused = 0;
    for (let i = 0; i < all.length; i += 16 * 1024) {
      if (!pass.write(all.subarray(i, i + 16 * 1024))) {
        refused++;
        await new Promise((r) => pass.once('drain', r));
      }
    }
    pass.end();
    await pass.done;
    expect(refused).toBeGreaterThan(0);
    expect(p.received().equals(all)).toBe(true);
  });

  it('destroyed before the pass starts (over size, client gone): done rejects with the reason', async () => {
    const pass = new DeferredPass(1000, collectingPass().start);
    pass.write(bytes(10));
    pass.destroy(new Error('over size limit'));
    await expect(pass.done).rejects.toThrow('over size limit');
  });

  it('destroyed after it started: the pass is stopped and done rejects', async () => {
    const p = collectingPass(true);
    const pass = new DeferredPass(10, p.start);
    pass.write(bytes(100));
    await new Promise((r) => setTimeout(r, 10));
    pass.destroy(new Error('transaction failed'));
    await expect(pass.done).rejects.toThrow('transaction failed');
  });

  it('a pass that fails on its own: done rejects, and the rest of the data is still taken to the end', async () => {
    const pass = new DeferredPass(10, () => {
      const input = new PassThrough();
      const sink = new Writable({ write: (_c, _e, cb) => cb(new Error('MIME structure over the limit')) });
      return { input, done: pipeline(input, sink) };
    });
    const rejected = expect(pass.done).rejects.toThrow('over the limit');
    await feed(pass, Array.from({ length: 50 }, () => bytes(4096)));
    await new Promise<void>((resolve) => (pass.writableFinished ? resolve() : pass.once('finish', () => resolve())));
    await rejected;
  });
});
