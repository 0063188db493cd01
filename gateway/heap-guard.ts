import v8 from 'node:v8';

// The process-wide guard behind smtp.heapLimit. Ferry's per-message memory is bounded (streams,
// mime.maxDepth, mime.maxParts), but many bounded messages at once, or a bug, can still bring
// the V8 heap to its limit, and then the process dies with every role in it (gateway, web,
// worker) and every transaction in flight. Refusing new transactions with a temporary error
// while the heap is high lets those in flight finish; the senders' servers retry later.

/**
 * `limit` as configured: a share of V8's heap limit when at most 1 ("80%" is 0.8), else bytes.
 * Returns the bytes in use and the threshold when the heap is above it, undefined otherwise.
 */
export function heapOverLimit(limit: number): { used: number; threshold: number } | undefined {
  const stats = v8.getHeapStatistics();
  const threshold = limit <= 1 ? stats.heap_size_limit * limit : limit;
  return stats.used_heap_size > threshold ? { used: stats.used_heap_size, threshold } : undefined;
}
