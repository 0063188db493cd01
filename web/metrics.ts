import { Counter, register } from 'prom-client';

// The download service's Prometheus metrics, on prom-client's default registry (see
// gateway/metrics.ts for why they are defined once per process at module load).

function once<T>(name: string, make: () => T): T {
  return (register.getSingleMetric(name) as T | undefined) ?? make();
}

/** Why a file or zip response did not count as a download. */
export type NotCountedReason = 'scanner' | 'prefetch' | 'head' | 'partial' | 'incomplete' | 'error';
export const NOT_COUNTED_REASONS: readonly NotCountedReason[] = ['scanner', 'prefetch', 'head', 'partial', 'incomplete', 'error'];

export const downloadsCounted = once(
  'ferry_downloads_counted_total',
  () => new Counter({ name: 'ferry_downloads_counted_total', help: 'Complete downloads of a whole file or zip by a person (these count against web.maxDownloads)' }),
);
export const downloadsNotCounted = once(
  'ferry_downloads_not_counted_total',
  () =>
    new Counter({
      name: 'ferry_downloads_not_counted_total',
      help: 'File and zip responses that did not count as a download, by reason (scanner, prefetch, head, partial range, incomplete, error status)',
      labelNames: ['reason'] as const,
    }),
);
export const bytesServed = once('ferry_bytes_served_total', () => new Counter({ name: 'ferry_bytes_served_total', help: 'File and zip bytes handed to clients' }));

for (const reason of NOT_COUNTED_REASONS) downloadsNotCounted.inc({ reason }, 0);

/** Counts one finished file or zip response (called where the download log record is written). */
export function countDownload(d: { counted: boolean; scanner: boolean; prefetch: boolean; method: string; status: number; countable: boolean; complete: boolean; bytesSent: number }): void {
  bytesServed.inc(d.bytesSent);
  if (d.counted) return downloadsCounted.inc();
  const reason: NotCountedReason = d.scanner
    ? 'scanner'
    : d.prefetch
      ? 'prefetch'
      : d.method === 'HEAD'
        ? 'head'
        : d.status >= 400
          ? 'error'
          : !d.complete
            ? 'incomplete'
            : 'partial';
  downloadsNotCounted.inc({ reason });
}
