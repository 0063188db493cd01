import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { appendAudit } from '../storage/audit.js';
import type { BlobStore } from '../storage/blob-store.js';
import { deleteBlobsUnder, deleteRecipientCopies, discardTransfer, sweepIncompleteUploads } from '../storage/cleanup.js';
import type { Db } from '../storage/database.js';
import { deleteTransferRecords, listFiles } from '../storage/records.js';

// The retention sweeper: one pass of upkeep, run by the worker role on a schedule and by
// `ferry purge`. Steps:
//   1. files: transfers past their expiry (live), revoked, or deleted whose blobs still exist
//      -> blobs deleted, purged_at set, live ones marked expired;
//   2. records: transfers whose blobs went more than keepRecords ago -> records removed;
//   3. abandoned: transfers left pending for over an hour (a crash mid-message) -> removed
//      with their blobs (storage/cleanup.ts);
//   4. incomplete multipart uploads older than an hour -> aborted (S3).
// Transfers on legal hold are skipped by every step.
//
// Several workers may sweep at once. Each row is claimed with one conditional UPDATE (a lease
// in sweep_claim/sweep_claimed_at); only the worker whose UPDATE changed the row works on it, so
// no blob is deleted twice and no step fails because another worker got there first. A worker
// that dies mid-step leaves a claim that expires after `leaseMs`, and the row is taken again.
// The same claim guards against a hold racing the sweep: placing a hold fails while a claim is
// live (see storage/admin-actions.ts), and a claim is never taken on a held row.

export interface SweepOptions {
  now?: number;
  /** How long records of a purged transfer are kept (retention.keepRecords). */
  keepRecordsMs: number;
  /** Pending transfers older than this are abandoned (default 1 hour). */
  stalePendingMs?: number;
  /** Count what would be done; change nothing. */
  dryRun?: boolean;
  /** Name of this worker in claims and the audit log. */
  workerId?: string;
  /** A claim older than this is taken over (default 10 minutes). */
  leaseMs?: number;
  batchSize?: number;
  onProgress?: (p: SweepProgress) => void;
}

export type SweepPhase = 'files' | 'records' | 'abandoned' | 'uploads';

export interface SweepProgress {
  phase: SweepPhase;
  done: number;
  /** Candidates counted at the start of the phase (others may take some of them). */
  total: number;
}

export interface SweepSummary {
  dryRun: boolean;
  /** Transfers whose files were deleted because they expired. */
  expired: number;
  /** Transfers whose files were deleted because they had been revoked or deleted. */
  revokedOrDeleted: number;
  blobsDeleted: number;
  bytesFreed: number;
  /** Transfers whose records were removed after keepRecords. */
  recordsRemoved: number;
  /** Pending transfers left by an interrupted message, removed. */
  abandoned: number;
  /** Incomplete multipart uploads aborted (null: the store has none, or dry run). */
  uploadsAborted: number | null;
  /** Transfers past their expiry kept because of a legal hold. */
  heldSkipped: number;
  /** Rows another worker was already working on. */
  claimedElsewhere: number;
  errors: { transferId?: string; step: SweepPhase; message: string }[];
}

const HOUR = 3_600_000;

export function newWorkerId(): string {
  return `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

type Step = 'files' | 'records' | 'abandoned';

/**
 * Atomically takes `id` for this worker; false when another worker holds it, or it no longer
 * qualifies for `step` (another worker finished it between our select and this update).
 */
async function claim(db: Db, id: string, step: Step, me: string, now: number, leaseMs: number): Promise<boolean> {
  let q = db
    .updateTable('transfers')
    .set({ sweep_claim: me, sweep_claimed_at: now })
    .where('id', '=', id)
    .where('held', '=', 0)
    .where((eb) => eb.or([eb('sweep_claim', 'is', null), eb('sweep_claimed_at', '<', now - leaseMs)]));
  if (step === 'files') q = q.where('purged_at', 'is', null);
  if (step === 'records') q = q.where('purged_at', 'is not', null);
  if (step === 'abandoned') q = q.where('state', '=', 'pending');
  const r = await q.executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

export async function sweepOnce(db: Db, blobs: BlobStore, opts: SweepOptions): Promise<SweepSummary> {
  const now = opts.now ?? Date.now();
  const me = opts.workerId ?? newWorkerId();
  const actor = `sweeper:${me}`;
  const leaseMs = opts.leaseMs ?? 10 * 60_000;
  const batch = opts.batchSize ?? 100;
  const stalePendingMs = opts.stalePendingMs ?? HOUR;
  const dryRun = opts.dryRun ?? false;
  const progress = opts.onProgress ?? (() => undefined);
  const s: SweepSummary = {
    dryRun,
    expired: 0,
    revokedOrDeleted: 0,
    blobsDeleted: 0,
    bytesFreed: 0,
    recordsRemoved: 0,
    abandoned: 0,
    uploadsAborted: null,
    heldSkipped: 0,
    claimedElsewhere: 0,
    errors: [],
  };
  const claimFree = (eb: any) => eb.or([eb('sweep_claim', 'is', null), eb('sweep_claimed_at', '<', now - leaseMs)]);

  // ---- 1. files of expired, revoked and deleted transfers ----
  const filesDue = () =>
    db
      .selectFrom('transfers')
      .where('purged_at', 'is', null)
      .where('held', '=', 0)
      .where((eb) => eb.or([eb.and([eb('state', '=', 'live'), eb('expires_at', '<=', now)]), eb('state', 'in', ['revoked', 'expired', 'deleted'])]));
  const held = await db
    .selectFrom('transfers')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('purged_at', 'is', null)
    .where('held', '=', 1)
    .where((eb) => eb.or([eb.and([eb('state', '=', 'live'), eb('expires_at', '<=', now)]), eb('state', 'in', ['revoked', 'expired', 'deleted'])]))
    .executeTakeFirstOrThrow();
  s.heldSkipped = Number(held.n);

  const filesTotal = Number((await filesDue().select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
  let done = 0;
  progress({ phase: 'files', done, total: filesTotal });
  if (dryRun) {
    const r = await filesDue()
      .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.sum<number>('total_bytes').as('bytes'), eb.fn.sum<number>('file_count').as('files')])
      .where('state', '=', 'live')
      .executeTakeFirstOrThrow();
    s.expired = Number(r.n);
    const r2 = await filesDue()
      .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.sum<number>('total_bytes').as('bytes'), eb.fn.sum<number>('file_count').as('files')])
      .where('state', '!=', 'live')
      .executeTakeFirstOrThrow();
    s.revokedOrDeleted = Number(r2.n);
    s.bytesFreed = Number(r.bytes ?? 0) + Number(r2.bytes ?? 0);
    s.blobsDeleted = Number(r.files ?? 0) + Number(r2.files ?? 0);
    progress({ phase: 'files', done: filesTotal, total: filesTotal });
  } else {
    const skip = new Set<string>();
    for (;;) {
      const rows = await filesDue().select(['id', 'state', 'total_bytes', 'expires_at']).where(claimFree).orderBy('expires_at').limit(batch).execute();
      const todo = rows.filter((r) => !skip.has(r.id));
      if (todo.length === 0) break;
      for (const r of todo) {
        skip.add(r.id);
        if (!(await claim(db, r.id, 'files', me, now, leaseMs))) {
          s.claimedElsewhere++;
          continue;
        }
        try {
          const files = await listFiles(db, r.id);
          for (const f of files) {
            await blobs.delete(f.blobKey);
            s.blobsDeleted++;
          }
          await deleteRecipientCopies(db, blobs, r.id);
          await deleteBlobsUnder(blobs, r.id);
          const wasLive = r.state === 'live';
          await db.transaction().execute(async (trx) => {
            await trx
              .updateTable('transfers')
              .set({ purged_at: now, state: wasLive ? 'expired' : r.state, sweep_claim: null, sweep_claimed_at: null })
              .where('id', '=', r.id)
              .where('sweep_claim', '=', me)
              .execute();
            await appendAudit(trx as unknown as Db, {
              actor,
              action: wasLive ? 'expired' : 'purged',
              transferId: r.id,
              at: now,
              detail: { what: 'files', reason: wasLive ? 'expired' : r.state, files: files.length, bytes: Number(r.total_bytes), expiresAt: new Date(Number(r.expires_at)).toISOString() },
            });
          });
          if (wasLive) s.expired++;
          else s.revokedOrDeleted++;
          s.bytesFreed += Number(r.total_bytes);
        } catch (err) {
          // The claim stays until its lease runs out; the next sweep tries again.
          s.errors.push({ transferId: r.id, step: 'files', message: (err as Error).message });
        }
        progress({ phase: 'files', done: ++done, total: filesTotal });
      }
    }
  }

  // ---- 2. records kept for keepRecords after the files went ----
  const recordsDue = () =>
    db
      .selectFrom('transfers')
      .where('purged_at', 'is not', null)
      .where('purged_at', '<=', now - opts.keepRecordsMs)
      .where('held', '=', 0);
  const recordsTotal = Number((await recordsDue().select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
  done = 0;
  progress({ phase: 'records', done, total: recordsTotal });
  if (dryRun) {
    s.recordsRemoved = recordsTotal;
  } else {
    const skip = new Set<string>();
    for (;;) {
      const rows = await recordsDue().select(['id']).where(claimFree).orderBy('purged_at').limit(batch).execute();
      const todo = rows.filter((r) => !skip.has(r.id));
      if (todo.length === 0) break;
      for (const r of todo) {
        skip.add(r.id);
        if (!(await claim(db, r.id, 'records', me, now, leaseMs))) {
          s.claimedElsewhere++;
          continue;
        }
        try {
          await deleteTransferRecords(db, r.id);
          await appendAudit(db, { actor, action: 'purged', transferId: r.id, at: now, detail: { what: 'records', reason: 'keepRecords' } });
          s.recordsRemoved++;
        } catch (err) {
          s.errors.push({ transferId: r.id, step: 'records', message: (err as Error).message });
        }
        progress({ phase: 'records', done: ++done, total: recordsTotal });
      }
    }
  }

  // ---- 3. pending transfers left by an interrupted message ----
  const pendingDue = () => db.selectFrom('transfers').where('state', '=', 'pending').where('created_at', '<', now - stalePendingMs).where('held', '=', 0);
  const pendingTotal = Number((await pendingDue().select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
  done = 0;
  progress({ phase: 'abandoned', done, total: pendingTotal });
  if (dryRun) {
    s.abandoned = pendingTotal;
  } else {
    const skip = new Set<string>();
    for (;;) {
      const rows = await pendingDue().select(['id', 'total_bytes']).where(claimFree).orderBy('created_at').limit(batch).execute();
      const todo = rows.filter((r) => !skip.has(r.id));
      if (todo.length === 0) break;
      for (const r of todo) {
        skip.add(r.id);
        if (!(await claim(db, r.id, 'abandoned', me, now, leaseMs))) {
          s.claimedElsewhere++;
          continue;
        }
        try {
          const files = await listFiles(db, r.id);
          // Leftovers first: discardTransfer removes the records that name the transfer.
          const leftovers = await deleteBlobsUnder(blobs, r.id);
          await discardTransfer(db, blobs, r.id);
          s.blobsDeleted += Math.max(files.length, leftovers);
          s.bytesFreed += Number(r.total_bytes);
          await appendAudit(db, { actor, action: 'purged', transferId: r.id, at: now, detail: { what: 'files and records', reason: 'abandoned pending transfer' } });
          s.abandoned++;
        } catch (err) {
          s.errors.push({ transferId: r.id, step: 'abandoned', message: (err as Error).message });
        }
        progress({ phase: 'abandoned', done: ++done, total: pendingTotal });
      }
    }
  }

  // ---- 4. incomplete multipart uploads (S3) ----
  if (!dryRun && blobs.abortIncompleteUploads) {
    progress({ phase: 'uploads', done: 0, total: 1 });
    try {
      s.uploadsAborted = await sweepIncompleteUploads(blobs, stalePendingMs, now);
    } catch (err) {
      s.errors.push({ step: 'uploads', message: (err as Error).message });
    }
    progress({ phase: 'uploads', done: 1, total: 1 });
  }
  return s;
}

/** True when the sweep did anything worth a log line. */
export function sweepDidWork(s: SweepSummary): boolean {
  return s.expired + s.revokedOrDeleted + s.recordsRemoved + s.abandoned + (s.uploadsAborted ?? 0) + s.errors.length > 0;
}

export interface SweeperLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/**
 * The worker's schedule: a sweep at start, then every `intervalMs`. Returns a stop function
 * that waits for a sweep in progress to end. A sweep never overlaps the previous one.
 */
export function startSweeper(
  db: Db,
  blobs: BlobStore,
  opts: Omit<SweepOptions, 'now' | 'dryRun' | 'onProgress'> & { intervalMs: number; /** After each sweep: its summary, or null when it failed. */ onSweep?: (s: SweepSummary | null) => void },
  logger: SweeperLogger,
): () => Promise<void> {
  const workerId = opts.workerId ?? newWorkerId();
  let running: Promise<void> | null = null;
  let stopped = false;
  const tick = () => {
    if (running || stopped) return;
    running = sweepOnce(db, blobs, { ...opts, workerId })
      .then(
        (s) => {
          opts.onSweep?.(s);
          if (s.errors.length) logger.warn({ sweep: s }, 'retention sweep finished with errors; they are retried at the next sweep');
          else if (sweepDidWork(s)) logger.info({ sweep: s }, 'retention sweep');
        },
        (err: Error) => {
          opts.onSweep?.(null);
          logger.warn({ err }, 'retention sweep failed; retried at the next sweep');
        },
      )
      .finally(() => {
        running = null;
      });
  };
  tick();
  const timer = setInterval(tick, opts.intervalMs);
  timer.unref();
  return async () => {
    stopped = true;
    clearInterval(timer);
    await running;
  };
}
