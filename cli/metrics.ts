import { collectDefaultMetrics, Counter, Gauge, register } from 'prom-client';
import { sql } from 'kysely';
import { queueOldestAgeMs, queueSize, type Db } from '../storage/index.js';

// Metrics about what is stored and queued, shared by every role: read from the database when Prometheus
// scrapes (collect), so several processes on one database all report the same truth and nothing
// has to be kept in step. Plus the worker's sweeper counters. gateway/metrics.ts and
// web/metrics.ts hold the per-role counters; all live on prom-client's default registry.

function once<T>(name: string, make: () => T): T {
  return (register.getSingleMetric(name) as T | undefined) ?? make();
}

// prom-client's process metrics (process_resident_memory_bytes, nodejs_eventloop_lag_seconds,
// ...): memory and event-loop lag are what show a gateway in trouble first.
if (!register.getSingleMetric('process_cpu_user_seconds_total')) collectDefaultMetrics();

// The databases of the storages open in this process, most recent last. One in production; tests
// and embedders may start several (they usually share one database file).
const sources: Db[] = [];

/** Reads one figure; a missing table (a migration not run yet) or a database error gives nothing. */
async function read(fn: (db: Db) => Promise<number | undefined>): Promise<number | undefined> {
  const source = sources.at(-1);
  if (!source) return undefined;
  try {
    return await fn(source);
  } catch {
    return undefined;
  }
}

function dbGauge(name: string, help: string, fn: (db: Db) => Promise<number | undefined>): Gauge {
  return once(
    name,
    () =>
      new Gauge({
        name,
        help,
        // Every process of a node reads the same database: summing them (cli/cluster.ts) would
        // count each transfer once per process.
        aggregator: 'max',
        async collect() {
          const v = await read(fn);
          if (v === undefined) this.reset();
          else this.set(v);
        },
      }),
  );
}

dbGauge('ferry_transfers_live', 'Transfers whose links work now', async (db) => {
  const r = await db.selectFrom('transfers').select((eb) => eb.fn.countAll<number>().as('n')).where('state', '=', 'live').executeTakeFirstOrThrow();
  return Number(r.n);
});
dbGauge('ferry_stored_bytes', 'Attachment bytes in the blob store (transfers whose files the sweeper has not purged)', async (db) => {
  const r = await db
    .selectFrom('transfers')
    .select(sql<number>`coalesce(sum(total_bytes), 0)`.as('n'))
    .where('purged_at', 'is', null)
    .executeTakeFirstOrThrow();
  return Number(r.n);
});
dbGauge('ferry_queue_messages', 'Messages (and DSNs) waiting in the delivery queue for the next hop', (db) => queueSize(db));
dbGauge('ferry_queue_oldest_age_seconds', 'Age of the oldest entry in the delivery queue (0 when empty)', async (db) => (await queueOldestAgeMs(db)) / 1000);

export const sweeperRuns = once(
  'ferry_sweeper_runs_total',
  () => new Counter({ name: 'ferry_sweeper_runs_total', help: 'Sweeper runs by result (ok, failed)', labelNames: ['result'] as const }),
);
export const sweeperDeletions = once(
  'ferry_sweeper_deleted_total',
  () =>
    new Counter({
      name: 'ferry_sweeper_deleted_total',
      help: 'What the sweeper deleted, by why: files of expired, revoked_or_deleted transfers; stale_pending transfers left by an interrupted message; records_removed after retention.keepRecords',
      labelNames: ['why'] as const,
    }),
);
const SWEEP_REASONS = ['expired', 'revoked_or_deleted', 'stale_pending', 'records_removed'] as const;
export type SweepReason = (typeof SWEEP_REASONS)[number];
for (const result of ['ok', 'failed'] as const) sweeperRuns.inc({ result }, 0);
for (const why of SWEEP_REASONS) sweeperDeletions.inc({ why }, 0);

/** Full collections forced by cli/buffer-collector.ts (their time is in nodejs_gc_duration_seconds{kind="major"} too). */
export const bufferCollections = once(
  'ferry_buffer_collections_total',
  () => new Counter({ name: 'ferry_buffer_collections_total', help: 'Full collections Ferry ran because buffers no longer in use had piled up past memory.bufferGarbage' }),
);

/** Points the database gauges at `db` until the returned function is called (before it closes). */
export function useDatabaseForMetrics(db: Db): () => void {
  sources.push(db);
  return () => {
    const i = sources.lastIndexOf(db);
    if (i >= 0) sources.splice(i, 1);
  };
}

/** Counts one sweeper run and what it deleted, by reason. */
export function countSweep(result: 'ok' | 'failed', deleted: Partial<Record<SweepReason, number>> = {}): void {
  sweeperRuns.inc({ result });
  for (const [why, n] of Object.entries(deleted)) if (n) sweeperDeletions.inc({ why }, n);
}
