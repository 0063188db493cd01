import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GarbageWatch, startBufferCollector } from '../../cli/buffer-collector.js';

// cli/buffer-collector.ts: buffers that stayed in use long enough to be promoted (socket chunks
// waiting for a disk write) and were then dropped are freed within memory.bufferGarbage of the
// last collection, instead of piling up until V8's own threshold (64 MB past its last
// mark-compact). The flow runs in a fresh process each time, so that V8's collections are the
// flow's alone, once with the collector and once without: the difference is what it does.

const MiB = 1024 * 1024;

/**
 * 96 MiB pass through a fresh process as 64 KiB buffers, each alive for about three scavenges
 * (2 MiB in use at any time) while the process allocates as a relaying worker does. Returns the
 * most buffer memory seen after any scavenge (bytes past the start) and the forced collections.
 */
function flow(limit: number): { peak: number; forced: number } {
  const script = `
    import { startBufferCollector } from ${JSON.stringify(path.resolve('cli/buffer-collector.ts'))};
    import { PerformanceObserver, constants } from 'node:perf_hooks';
    const tick = () => new Promise((r) => setImmediate(r));
    // Garbage that dies at once (each object replaces the last): nothing of it is promoted.
    const churn = async () => { for (let i = 0; i < 50000; i++) globalThis.sink = { i }; await tick(); };
    for (let k = 0; k < 4; k++) await churn();
    const start = process.memoryUsage().arrayBuffers;
    const collector = startBufferCollector({ limit: ${limit} });
    let peak = 0;
    new PerformanceObserver((l) => {
      if (l.getEntries().some((e) => e.detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR)) peak = Math.max(peak, process.memoryUsage().arrayBuffers - start);
    }).observe({ entryTypes: ['gc'] });
    const window = [];
    for (let i = 0; i < 1536; i++) {
      window.push(Buffer.alloc(64 * 1024, i));
      if (window.length > 32) window.shift();
      if (i % 8 === 7) await churn();
    }
    window.length = 0;
    for (let k = 0; k < 6; k++) await churn();
    console.log(JSON.stringify({ peak, forced: collector?.forced ?? 0 }));
  `;
  // A small fixed young generation: scavenges at a steady pace, so a buffer in the window lives through several.
  const flags = ['--max-semi-space-size=1', '--min-semi-space-size=1'];
  const out = execFileSync(process.execPath, [...flags, '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!) as { peak: number; forced: number };
}

describe('buffer collector (memory.bufferGarbage)', () => {
  it('keeps dropped buffers that had been promoted to about the limit; V8 alone lets them pile up', () => {
    const without = flow(0);
    const withCollector = flow(8 * MiB);
    // V8 waits for 64 MB past its last mark-compact: 64 MiB pile up first (66-68 MB measured).
    expect(without.forced).toBe(0);
    expect(without.peak).toBeGreaterThan(56 * MiB);
    // With the collector, a forced collection each time 8 MiB more are left after a scavenge
    // (27-29 MB measured: the backing stores are freed by V8's sweeper a little after each).
    expect(withCollector.forced).toBeGreaterThanOrEqual(2);
    expect(withCollector.peak).toBeLessThan(40 * MiB);
  }, 60_000);

  it('0 leaves collection to V8', () => {
    expect(startBufferCollector({ limit: 0 })).toBeUndefined();
  });
});

describe('when to collect (GarbageWatch)', () => {
  it('collects once the buffers after a scavenge are the limit past the last mark-compact', () => {
    const w = new GarbageWatch(10 * MiB, 10, 5 * MiB);
    expect(w.scavenged(14 * MiB, 0)).toBe(false);
    expect(w.scavenged(15 * MiB, 0)).toBe(true);
  });

  it('measures from the lowest point since: buffers freed by scavenges lower the mark', () => {
    const w = new GarbageWatch(10 * MiB, 10, 20 * MiB);
    expect(w.scavenged(4 * MiB, 0)).toBe(false);
    expect(w.scavenged(14 * MiB, 0)).toBe(true);
  });

  it("starts again from what a mark-compact (V8's own) left", () => {
    const w = new GarbageWatch(10 * MiB, 10, 0);
    w.compacted(30 * MiB);
    expect(w.scavenged(35 * MiB, 0)).toBe(false);
    expect(w.scavenged(40 * MiB, 0)).toBe(true);
  });

  it('after a forced collection of d ms, none for spacing x d ms: at most a share of the time goes to them', () => {
    const w = new GarbageWatch(10 * MiB, 10, 0);
    expect(w.scavenged(10 * MiB, 1000)).toBe(true);
    w.collected(2 * MiB, 1000, 20);
    // 20 ms at t=1000: the next no sooner than 1000 + 20 x 11.
    expect(w.scavenged(50 * MiB, 1100)).toBe(false);
    expect(w.scavenged(50 * MiB, 1219)).toBe(false);
    expect(w.scavenged(50 * MiB, 1220)).toBe(true);
  });
});
