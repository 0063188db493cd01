import { PerformanceObserver, constants, type PerformanceEntry } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';

// Buffers a process no longer uses are freed only when V8 collects the objects that own them.
// Most die young and go at the next scavenge, but a buffer still in the pipeline at two
// scavenges (a socket's 64 KiB read waiting for a disk write, under load) is promoted, and
// promoted buffers go only at a mark-compact. V8 starts one for external memory only once it
// has grown 64 MB past the last (kExternalAllocationSoftLimit, a constant, no flag): with ten
// 100 MiB messages at once a worker held 40-95 MB of such garbage at its peak
// (docs/performance.md, "Buffers that wait for the collector").
//
// This watcher runs a full collection itself once the buffers have grown `limit` bytes past
// the last mark-compact, measured right after a scavenge: the young garbage is gone then, so
// the growth is what only a mark-compact can free (or what is really in use; the mark
// resets after each collection, so live growth costs one collection per `limit`, not a storm).
// Forcing it on every growth, scavenged or not, cost 30-60 % of the throughput (the wire rate
// itself counted). This is cheaper but not free: under ten large messages at once a worker spent
// about 18 % more CPU, mostly in the mark-compacts V8 itself runs more often after forced ones.
// Fewer buffers alive means fewer forced ones: since each pipeline stage queues 4 chunks, not 16
// (gateway/stage-queues.ts), a worker in the offload mix runs 10-18 full collections, not 30-37.

/** A full collection, from V8's gc extension. */
type Collect = () => void;

export interface BufferCollectorOptions {
  /** Bytes of buffers past the last mark-compact that start a collection (memory.bufferGarbage). */
  limit: number;
  /**
   * A forced collection may take at most 1/(1 + spacing) of the time: after one that took d
   * ms, the next waits spacing x d ms at least (default 10: a tenth). Guards against a workload
   * that promotes faster than any sensible number of collections can keep up with.
   */
  spacing?: number;
  /** The collection to run (tests); default V8's, exposed without --expose-gc on the command line. */
  collect?: Collect;
  /** Buffer bytes now (tests); default process.memoryUsage().arrayBuffers. */
  buffers?: () => number;
  /** Told after each forced collection (metrics). */
  onCollect?: () => void;
}

export interface BufferCollector {
  /** Collections it forced so far. */
  readonly forced: number;
  stop(): void;
}

/**
 * Starts watching this process's buffers (see above). Returns undefined when `limit` is 0 (left
 * to V8) or V8's gc extension cannot be had.
 */
export function startBufferCollector(opts: BufferCollectorOptions): BufferCollector | undefined {
  if (!(opts.limit > 0)) return undefined;
  const collect = opts.collect ?? exposedGc();
  if (!collect) return undefined;
  const buffers = opts.buffers ?? (() => process.memoryUsage().arrayBuffers);
  const watch = new GarbageWatch(opts.limit, opts.spacing ?? 10, buffers());
  let forced = 0;

  const observer = new PerformanceObserver((list) => {
    let scavenged = false;
    for (const e of list.getEntries()) {
      const kind = (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
      // NB entries arrive in batches after the collections: a mark-compact in the batch is the
      // newest word on what is left, whatever scavenges came with it.
      if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) return watch.compacted(buffers());
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR) scavenged = true;
    }
    if (!scavenged || !watch.scavenged(buffers(), performance.now())) return;
    const t = performance.now();
    collect();
    forced++;
    opts.onCollect?.();
    watch.collected(buffers(), t, performance.now() - t);
  });
  observer.observe({ entryTypes: ['gc'] });
  return {
    get forced() {
      return forced;
    },
    stop: () => observer.disconnect(),
  };
}

/** When to collect: the buffer bytes seen after each collection, and the spacing of forced ones. */
export class GarbageWatch {
  /** Buffer bytes after the last mark-compact, or less if fewer were seen since. */
  private mark: number;
  private notBefore = 0;

  constructor(
    private readonly limit: number,
    private readonly spacing: number,
    now: number,
  ) {
    this.mark = now;
  }

  /** A mark-compact (V8's or forced) left `now` bytes of buffers. */
  compacted(now: number): void {
    this.mark = now;
  }

  /** After a scavenge, with `now` bytes of buffers at time `t` (ms): whether to collect. */
  scavenged(now: number, t: number): boolean {
    if (now < this.mark) this.mark = now;
    return now - this.mark >= this.limit && t >= this.notBefore;
  }

  /** A forced collection began at `t` and took `took` ms, leaving `now` bytes. */
  collected(now: number, t: number, took: number): void {
    this.mark = now;
    this.notBefore = t + took * (1 + this.spacing);
  }
}

/**
 * V8's full collection without `--expose-gc` on node's command line, so that it works in a
 * single process started as `node bin/ferry.js` as well as in the workers. The flag is read
 * when a context is created, so a new context after setting it has `gc` (jest's leak detector
 * does the same). Undefined if this runtime refuses.
 */
function exposedGc(): Collect | undefined {
  const global = (globalThis as { gc?: Collect }).gc;
  if (typeof global === 'function') return global;
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as unknown;
    // Contexts made later (vm, by any library) get no `gc` of their own.
    v8.setFlagsFromString('--no-expose-gc');
    return typeof gc === 'function' ? (gc as Collect) : undefined;
  } catch {
    return undefined;
  }
}
