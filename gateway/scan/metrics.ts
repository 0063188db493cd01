import { Counter, Gauge, Histogram, register } from 'prom-client';

// Scanning metrics on prom-client's default registry (served with the others at /metrics).

function once<T>(name: string, make: () => T): T {
  return (register.getSingleMetric(name) as T | undefined) ?? make();
}

export const scansTotal = once(
  'ferry_scans_total',
  () => new Counter({ name: 'ferry_scans_total', help: 'Files scanned for malware, by verdict (clean, infected, too_large, error) and engine (clamav, icap) and kind (intake, rescan)', labelNames: ['verdict', 'engine', 'kind'] as const }),
);
export const scanSeconds = once(
  'ferry_scan_duration_seconds',
  () =>
    new Histogram({
      name: 'ferry_scan_duration_seconds',
      help: 'Time from the first byte sent to the scanner to its verdict',
      labelNames: ['engine', 'kind'] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    }),
);
export const rescanBacklogGauge = once('ferry_rescan_backlog', () => new Gauge({ name: 'ferry_rescan_backlog', help: 'Live files still to be rescanned with the current signatures' }));
