import { describe, expect, it } from 'vitest';
import { ReadBuffers } from '../../storage/read-buffers.js';

// The read buffers of a process's blob reads (storage/read-buffers.ts): what the downloads of a
// busy web worker hold stays within one budget whatever order they open and close in, and the
// buffers of finished downloads serve the next ones instead of new allocations.

const KiB = 1024;
const MiB = 1024 * KiB;

describe('read buffers', () => {
  it('gives the first reads the largest size and halves for later ones, the sum within the budget', () => {
    const b = new ReadBuffers(8 * MiB, MiB, 64 * KiB);
    const sizes = Array.from({ length: 10 }, () => b.reserve().size);
    expect(sizes.slice(0, 4)).toEqual([MiB, MiB, MiB, MiB]);
    // Nothing left: the floor, which every read gets beyond the budget.
    expect(sizes.slice(4)).toEqual(Array(6).fill(64 * KiB));
    expect(b.inUse).toBe(8 * MiB + 6 * 128 * KiB);
    for (const s of sizes) b.release(s);
    expect(b.inUse).toBe(0);
    expect(b.reserve().size).toBe(MiB);
  });

  it('fits a read into what is left: a smaller size, not the floor, when half of one is free', () => {
    const b = new ReadBuffers(3 * MiB, MiB, 64 * KiB);
    expect(b.reserve().size).toBe(MiB);
    expect(b.reserve().size).toBe(512 * KiB);
    expect(b.reserve().size).toBe(64 * KiB);
    expect(b.inUse).toBe(2 * MiB + MiB + 128 * KiB);
  });

  it('stays within the budget whatever order reads open and close in', () => {
    const budget = 4 * MiB;
    const b = new ReadBuffers(budget, MiB, 64 * KiB);
    const open: number[] = [];
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let step = 0; step < 2000; step++) {
      if (open.length && rnd() < 0.45) b.release(open.splice(Math.floor(rnd() * open.length), 1)[0]!);
      else open.push(b.reserve().size);
      const aboveFloor = open.reduce((sum, s) => sum + 2 * (s - 64 * KiB), 0);
      expect(aboveFloor).toBeLessThanOrEqual(budget);
      expect(b.inUse).toBe(open.reduce((sum, s) => sum + 2 * s, 0));
    }
  });

  it('hands given-back buffers to the next read of that size instead of allocating new ones', () => {
    const b = new ReadBuffers(4 * MiB, MiB, 64 * KiB);
    const first = b.reserve();
    expect(first.kept).toEqual([]);
    const bufs = [Buffer.allocUnsafeSlow(first.size), Buffer.allocUnsafeSlow(first.size)];
    b.release(first.size);
    for (const buf of bufs) b.give(buf);
    const next = b.reserve();
    expect(new Set(next.kept.map((k) => k.buffer))).toEqual(new Set(bufs.map((k) => k.buffer)));
    // Taken over, so never handed out twice.
    expect(b.reserve().kept).toEqual([]);
  });

  it('keeps no buffer beyond the budget, counting what the open reads reserve', () => {
    const b = new ReadBuffers(4 * MiB, MiB, 64 * KiB);
    const open = [b.reserve(), b.reserve()];
    // Full: a buffer given back now is dropped.
    b.give(Buffer.allocUnsafeSlow(MiB));
    b.release(open[0]!.size);
    expect(b.reserve().kept).toEqual([]);
    // One read closes and gives back its two buffers: kept, and taken over by the next read.
    b.release(open[1]!.size);
    for (let i = 0; i < 2; i++) b.give(Buffer.allocUnsafeSlow(MiB));
    expect(b.reserve().kept.length).toBe(2);
  });

  it('drops kept buffers when new reads need the room', () => {
    const b = new ReadBuffers(2 * MiB, MiB, 64 * KiB);
    for (let i = 0; i < 2; i++) b.give(Buffer.allocUnsafeSlow(512 * KiB));
    const r = b.reserve();
    expect(r.size).toBe(MiB);
    // Its 2 MiB fill the budget: the two kept buffers of 512 KiB are gone.
    b.release(r.size);
    b.reserve();
    expect(b.reserve().kept).toEqual([]);
  });

  it('never keeps a view into a larger buffer (someone else may hold the rest of it)', () => {
    const b = new ReadBuffers(4 * MiB, MiB, 64 * KiB);
    const big = Buffer.allocUnsafeSlow(2 * MiB);
    b.give(big.subarray(0, MiB));
    expect(b.reserve().kept).toEqual([]);
  });
});
