import { randomBytes } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import { formatDuration } from '../config/units.js';
import {
  appendAudit,
  auditLinkIssued,
  backoff,
  claimDue,
  finishEntry,
  retireUndeliveredEntry,
  saveAttempt,
  saveRecipients,
  type BlobStore,
  type Db,
  type QueueEntry,
  type QueueRecipient,
} from '../storage/index.js';
import { deliver, queueNotice, type DsnContext } from '../gateway/queue-delivery.js';
import type { Relay } from '../gateway/relay.js';

// The queue runner (worker role): takes due entries from the database, tries the next hop, and
// reschedules with backoff, warns the sender once after queue.delayWarning, and gives up after
// queue.maxAge with a failure DSN. Several runners on one database never deliver the same entry
// at once: each claims entries with a lease (storage/queue.ts claimDue). A runner that dies
// mid-delivery leaves its lease to run out; then another takes the entry over.

export interface QueueSettings {
  retrySchedule: number[];
  maxAge: number;
  delayWarning: number;
  leaseTimeout: number;
  pollInterval: number;
  concurrency: number;
}

export interface QueueRunnerOptions {
  db: Db;
  blobs: BlobStore;
  relay: Relay;
  logger: Logger;
  queue: QueueSettings;
  /** Ferry's host name (DSN Reporting-MTA). */
  hostname: string;
  /** The clock; tests pass a fake one. */
  now?: () => number;
  /** Identifies this runner in lease_owner. */
  owner?: string;
}

export class QueueRunner {
  readonly owner: string;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;
  private again = false;
  private readonly dsnCtx: DsnContext;

  constructor(private readonly opts: QueueRunnerOptions) {
    this.owner = opts.owner ?? `${process.pid}-${randomBytes(4).toString('hex')}`;
    this.now = opts.now ?? Date.now;
    this.dsnCtx = {
      db: opts.db,
      blobs: opts.blobs,
      logger: opts.logger,
      hostname: opts.hostname,
      remoteMta: (opts.relay as { remoteHost?: string }).remoteHost,
    };
  }

  /** Polls every queue.pollInterval until stop(). */
  start(): void {
    const tick = () => {
      if (this.stopped) return;
      this.kick();
      this.timer = setTimeout(tick, this.opts.queue.pollInterval);
      this.timer.unref();
    };
    tick();
  }

  /** Runs a pass now (or right after the one in progress). */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.drain()
      .catch((err: Error) => this.opts.logger.warn({ err }, 'queue pass failed'))
      .finally(() => {
        this.running = undefined;
        if (this.again && !this.stopped) {
          this.again = false;
          this.kick();
        }
      });
  }

  /** Passes until nothing is due. */
  private async drain(): Promise<void> {
    while (!this.stopped && (await this.runOnce()) > 0) {
      /* more may be due */
    }
  }

  /** One pass: claims up to queue.concurrency due entries and works on them in parallel. Returns how many. */
  async runOnce(): Promise<number> {
    const entries = await claimDue(this.opts.db, {
      owner: this.owner,
      now: this.now(),
      leaseMs: this.opts.queue.leaseTimeout,
      limit: this.opts.queue.concurrency,
    });
    await Promise.all(
      entries.map((e) =>
        this.process(e).catch((err: Error) => {
          // The lease runs out and the entry is tried again; nothing is lost.
          this.opts.logger.error({ err, queueId: e.id }, 'queue entry could not be processed');
        }),
      ),
    );
    return entries.length;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private open(entry: QueueEntry): () => Readable {
    return () => {
      const out = new PassThrough({ highWaterMark: 64 * 1024 });
      this.opts.blobs.openRead(entry.blobKey).then(
        (src) => pipeline(src, out).catch((err: Error) => out.destroy(err)),
        (err: Error) => out.destroy(err),
      );
      return out;
    };
  }

  private async process(entry: QueueEntry): Promise<void> {
    const { db, blobs, queue, logger } = this.opts;
    const log = logger.child({ queueId: entry.id });
    const started = this.now();

    if (entry.cancel === 'bounce') {
      const pending = entry.recipients.filter((r) => r.state === 'pending');
      await this.notice(entry, 'failure', pending, { reason: 'it was removed from the queue by an administrator', fallbackStatus: '5.3.0' });
      for (const r of pending) r.state = 'failed';
      await this.finish(entry, entry.recipients, log, 'returned to its sender by an administrator');
      return;
    }

    if (!(await blobs.exists(entry.blobKey))) {
      // Storage lost the message (or an admin removed it by hand): nothing left to deliver.
      log.error({ blobKey: entry.blobKey }, 'the queued message is missing from the blob store; giving up on it');
      const pending = entry.recipients.filter((r) => r.state === 'pending');
      for (const r of pending) Object.assign(r, { state: 'failed', code: undefined, response: undefined });
      await this.notice(entry, 'failure', pending, { reason: 'the queued copy was lost from storage', fallbackStatus: '4.3.0' }).catch(() => undefined);
      await this.finish(entry, entry.recipients, log, 'the queued message was lost from storage');
      return;
    }

    const outcome = await deliver(this.opts.relay, {
      id: entry.id,
      sender: entry.sender,
      recipients: entry.recipients,
      dsnRet: entry.dsnRet,
      dsnEnvid: entry.dsnEnvid,
      size: entry.size,
      open: this.open(entry),
      deadline: Date.now() + queue.leaseTimeout / 2,
      // Saved after every transaction: a crash then repeats only the transaction in flight.
      // Recipients refused in this attempt are saved as still pending until their failure
      // notice is queued below, so a crash in between asks the next hop again instead of
      // losing the notice.
      onProgress: async (rs) => {
        const before = new Map(entry.recipients.map((r) => [r.address, r.state]));
        await saveRecipients(db, entry.id, this.owner, rs.map((r) => (r.state === 'failed' && before.get(r.address) !== 'failed' ? { ...r, state: 'pending' as const } : r)));
      },
    });
    const recipients = outcome.recipients;
    const attempts = entry.attempts + 1;
    const now = this.now();
    const delivered = recipients.filter((r) => r.state === 'delivered' && entry.recipients.find((o) => o.address === r.address)?.state !== 'delivered');
    if (delivered.length) {
      log.info({ to: delivered.map((r) => r.address), response: outcome.response, attempts }, `${entry.id}: delivered`);
      // The link left only now: this is when the transfer's link_issued is true.
      if (entry.transferId) {
        await auditLinkIssued(db, entry.transferId, `worker:${this.owner}`, delivered.map((r) => r.address), entry.id, now).catch((err: Error) => log.warn({ err }, 'could not write link_issued to the audit log'));
      }
    }

    if (outcome.newlyFailed.length) {
      log.info({ to: outcome.newlyFailed.map((r) => r.address), response: outcome.response }, `${entry.id}: refused permanently`);
      await this.notice(entry, 'failure', outcome.newlyFailed, { fallbackStatus: '5.0.0' });
    }

    let pending = recipients.filter((r) => r.state === 'pending');
    let why = 'done';
    if (pending.length && now - entry.createdAt >= queue.maxAge) {
      why = `given up: not delivered within queue.maxAge (${formatDuration(queue.maxAge)})`;
      log.warn({ to: pending.map((r) => r.address), lastError: outcome.lastError, attempts }, `${entry.id}: giving up after ${formatDuration(now - entry.createdAt)}`);
      await this.notice(entry, 'failure', pending, { reason: `it could not be delivered within ${formatAge(queue.maxAge)}`, fallbackStatus: '4.4.7' });
      if (entry.kind === 'message') {
        await appendAudit(db, {
          actor: `worker:${this.owner}`,
          action: 'given_up',
          transferId: entry.transferId,
          at: now,
          detail: { queueId: entry.id, recipients: pending.map((r) => r.address), after: formatDuration(now - entry.createdAt), attempts, lastError: outcome.lastError },
        }).catch((err: Error) => log.warn({ err }, 'could not write given_up to the audit log'));
      }
      for (const r of pending) r.state = 'failed';
      pending = [];
    }

    if (pending.length === 0) {
      await this.finish(entry, recipients, log, why);
      return;
    }

    let warned: boolean | undefined;
    if (!entry.warned && queue.delayWarning > 0 && now - entry.createdAt >= queue.delayWarning) {
      await this.notice(entry, 'delay', pending, { fallbackStatus: '4.4.1', willRetryUntil: entry.createdAt + queue.maxAge });
      warned = true;
    }
    // The last attempt falls at maxAge, so a message is given up on at its age limit, not after.
    const next = Math.min(now + backoff(queue.retrySchedule, attempts), entry.createdAt + queue.maxAge);
    const saved = await saveAttempt(db, entry.id, this.owner, { recipients, nextAttemptAt: next, attempts, lastError: outcome.lastError, warned });
    if (!saved) log.warn('the lease on this queue entry ran out during delivery; another worker has it now');
    log.info({ pending: pending.map((r) => r.address), lastError: outcome.lastError, attempts, nextAttemptAt: new Date(next).toISOString(), ms: this.now() - started }, `${entry.id}: deferred`);
  }

  private async notice(
    entry: QueueEntry,
    kind: 'failure' | 'delay',
    recipients: QueueRecipient[],
    extra: { reason?: string; fallbackStatus: string; willRetryUntil?: number },
  ): Promise<void> {
    if (entry.kind === 'dsn' || !entry.sender) {
      // A notice about a notice would loop; the null sender is never answered.
      if (kind === 'failure') this.opts.logger.warn({ queueId: entry.id, to: recipients.map((r) => r.address) }, `${entry.id}: notice could not be delivered; dropped (never bounced)`);
      return;
    }
    await queueNotice(this.dsnCtx, {
      kind,
      queueId: entry.id,
      sender: entry.sender,
      envid: entry.dsnEnvid,
      arrivalDate: entry.createdAt,
      recipients,
      openOriginal: () => this.opts.blobs.openRead(entry.blobKey),
      now: this.now(),
      ...extra,
    });
    // A notice queued here is due now: pick it up in the next pass.
    this.again = true;
  }

  /** Removes a finished entry: the record first (so it is never retried), then the blob. */
  private async finish(entry: QueueEntry, recipients: QueueRecipient[], log: Logger, why: string): Promise<void> {
    const { db, blobs } = this.opts;
    const removed = await finishEntry(db, entry.id, this.owner);
    if (!removed) {
      log.warn('the lease on this queue entry ran out before it was finished; leaving it to the other worker');
      return;
    }
    await blobs.delete(entry.blobKey).catch((err: Error) => log.warn({ err }, 'could not delete the queued message blob'));
    // Delivered to nobody: unless another copy of the transfer's message went out (then only
    // these recipients' links are revoked), no link was sent, so the files go too (audited,
    // with the reason), unless the transfer is on legal hold: a hold wins over every automatic removal.
    if (entry.transferId && !recipients.some((r) => r.state === 'delivered')) {
      const transferId = entry.transferId;
      await retireUndeliveredEntry(db, blobs, { id: entry.id, transferId, recipients }, `worker:${this.owner}`, `never delivered: ${why === 'done' ? 'every recipient was refused' : why}`, this.now()).catch((err: Error) =>
        log.warn({ err }, 'could not remove the undelivered transfer'),
      );
    }
    log.info({ why, delivered: recipients.filter((r) => r.state === 'delivered').length, failed: recipients.filter((r) => r.state === 'failed').length }, `${entry.id}: removed from the queue`);
  }
}

function formatAge(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000} day${ms === 86_400_000 ? '' : 's'}`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} hour${ms === 3_600_000 ? '' : 's'}`;
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000} minute${ms === 60_000 ? '' : 's'}`;
  // Under a minute or not whole minutes (short test settings): never "0 minutes".
  return formatDuration(ms, { words: true });
}
