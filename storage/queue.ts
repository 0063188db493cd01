import { sql } from 'kysely';
import type { BlobStore } from './blob-store.js';
import { BadCursorError, decodeCursor, encodeCursor, likePattern } from './admin-queries.js';
import type { Db } from './database.js';
import { isPostgres } from './postgres.js';
import type { QueueEntriesTable } from './schema.js';
import { retireUndeliveredEntry } from './undelivered.js';

// The delivery queue's records: messages the next hop has not taken yet. The message bytes are
// a blob (queueBlobKey); the row holds the envelope, each recipient's state and the schedule.
// Plain functions over a Kysely handle, so the gateway (delivery), the worker (retries), the
// CLI and the admin API all use the same ones. Several workers may share one database: an entry
// is claimed with a lease (lease_owner, lease_until) in one atomic UPDATE, with
// FOR UPDATE SKIP LOCKED on PostgreSQL, so no two workers ever deliver it at the same time.

export type RecipientState = 'pending' | 'delivered' | 'failed';

export interface QueueRecipient {
  address: string;
  /** RFC 3461 NOTIFY values as the client gave them (NEVER, SUCCESS, FAILURE, DELAY). */
  notify?: string[];
  /** RFC 3461 ORCPT, decoded: "rfc822;bob@example.net". */
  orcpt?: string;
  state: RecipientState;
  /** The last reply for this recipient (code and text), for DSNs and the admin. */
  code?: number;
  response?: string;
}

export type QueueKind = 'message' | 'dsn';

export interface QueueEntry {
  id: string;
  kind: QueueKind;
  transferId: string | null;
  sender: string;
  recipients: QueueRecipient[];
  dsnRet: 'FULL' | 'HDRS' | null;
  dsnEnvid: string | null;
  blobKey: string;
  size: number;
  createdAt: number;
  nextAttemptAt: number;
  attempts: number;
  lastError: string | null;
  leaseOwner: string | null;
  leaseUntil: number;
  warned: boolean;
  cancel: 'bounce' | null;
}

export interface NewQueueEntry {
  id: string;
  kind: QueueKind;
  transferId: string | null;
  sender: string;
  recipients: QueueRecipient[];
  dsnRet?: 'FULL' | 'HDRS' | null;
  dsnEnvid?: string | null;
  blobKey: string;
  size: number;
  createdAt: number;
  nextAttemptAt: number;
  attempts?: number;
  lastError?: string | null;
}

/** Where a queued message's bytes live in the blob store. */
export function queueBlobKey(id: string): string {
  return `queue/${id.toLowerCase()}.eml`;
}

function toEntry(r: QueueEntriesTable): QueueEntry {
  return {
    id: r.id,
    kind: r.kind as QueueKind,
    transferId: r.transfer_id,
    sender: r.sender,
    recipients: JSON.parse(r.recipients) as QueueRecipient[],
    dsnRet: (r.dsn_ret as 'FULL' | 'HDRS' | null) ?? null,
    dsnEnvid: r.dsn_envid,
    blobKey: r.blob_key,
    size: Number(r.size),
    createdAt: Number(r.created_at),
    nextAttemptAt: Number(r.next_attempt_at),
    attempts: Number(r.attempts),
    lastError: r.last_error,
    leaseOwner: r.lease_owner,
    leaseUntil: Number(r.lease_until),
    warned: Number(r.warned) === 1,
    cancel: (r.cancel as 'bounce' | null) ?? null,
  };
}

/** Records a queued message. The blob must already be durable. */
export async function enqueue(db: Db, e: NewQueueEntry): Promise<void> {
  await db
    .insertInto('queue_entries')
    .values({
      id: e.id,
      kind: e.kind,
      transfer_id: e.transferId,
      sender: e.sender,
      recipients: JSON.stringify(e.recipients),
      dsn_ret: e.dsnRet ?? null,
      dsn_envid: e.dsnEnvid ?? null,
      blob_key: e.blobKey,
      size: e.size,
      created_at: e.createdAt,
      next_attempt_at: e.nextAttemptAt,
      attempts: e.attempts ?? 0,
      last_error: e.lastError ?? null,
      lease_owner: null,
      lease_until: 0,
      warned: 0,
      cancel: null,
    })
    .execute();
}

/**
 * Claims up to `limit` entries that are due and not leased by a live worker, for `leaseMs`.
 * One statement: on SQLite it runs under the database's write lock; on PostgreSQL the inner
 * SELECT skips rows another worker is claiming (SKIP LOCKED), and the outer WHERE re-checks the
 * lease on the row as updated, so a row is never handed to two workers.
 */
export async function claimDue(db: Db, opts: { owner: string; now: number; leaseMs: number; limit: number }): Promise<QueueEntry[]> {
  const { owner, now, leaseMs, limit } = opts;
  let due = db
    .selectFrom('queue_entries')
    .select('id')
    .where('next_attempt_at', '<=', now)
    .where('lease_until', '<', now)
    .orderBy('next_attempt_at')
    .limit(limit);
  if (isPostgres(db)) due = due.forUpdate().skipLocked();
  const rows = await db
    .updateTable('queue_entries')
    .set({ lease_owner: owner, lease_until: now + leaseMs })
    .where('id', 'in', due)
    .where('lease_until', '<', now)
    .returningAll()
    .execute();
  return rows.map(toEntry).sort((a, b) => a.nextAttemptAt - b.nextAttemptAt);
}

/**
 * Saves the outcome of an attempt and releases the lease. Only the lease holder can: returns
 * false when another worker took the entry over (the lease ran out) or it was deleted.
 */
export async function saveAttempt(
  db: Db,
  id: string,
  owner: string,
  s: { recipients: QueueRecipient[]; nextAttemptAt: number; attempts: number; lastError: string | null; warned?: boolean },
): Promise<boolean> {
  const r = await db
    .updateTable('queue_entries')
    .set({
      recipients: JSON.stringify(s.recipients),
      // An admin asked for a bounce while this attempt ran: keep it due now, as they set it.
      next_attempt_at: sql<number>`CASE WHEN cancel IS NULL THEN ${s.nextAttemptAt} ELSE next_attempt_at END`,
      attempts: s.attempts,
      last_error: s.lastError,
      lease_owner: null,
      lease_until: 0,
      ...(s.warned !== undefined ? { warned: s.warned ? 1 : 0 } : {}),
    })
    .where('id', '=', id)
    .where('lease_owner', '=', owner)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** Saves recipients' states mid-attempt (after each next-hop transaction), keeping the lease. */
export async function saveRecipients(db: Db, id: string, owner: string, recipients: QueueRecipient[]): Promise<boolean> {
  const r = await db
    .updateTable('queue_entries')
    .set({ recipients: JSON.stringify(recipients) })
    .where('id', '=', id)
    .where('lease_owner', '=', owner)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** Removes a finished entry's record (the caller then deletes its blob). Only the lease holder can. */
export async function finishEntry(db: Db, id: string, owner: string): Promise<boolean> {
  const r = await db.deleteFrom('queue_entries').where('id', '=', id).where('lease_owner', '=', owner).executeTakeFirst();
  return Number(r.numDeletedRows) === 1;
}

// ---- for the admin (CLI, API, UI) and metrics ----

export interface QueueListing {
  total: number;
  entries: QueueEntry[];
}

/** Queue entries, oldest first. */
export async function listQueue(db: Db, opts: { limit?: number; offset?: number } = {}): Promise<QueueListing> {
  const limit = Math.min(Math.max(opts.limit ?? 100, 1), 10_000);
  const rows = await db
    .selectFrom('queue_entries')
    .selectAll()
    .orderBy('created_at')
    .orderBy('id')
    .limit(limit)
    .offset(Math.max(opts.offset ?? 0, 0))
    .execute();
  const { n } = await db.selectFrom('queue_entries').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return { total: Number(n), entries: rows.map(toEntry) };
}

/** What an entry is doing now, for the admin's filters (derived from the schedule, lease and cancel mark). */
export type QueueEntryStatus = 'due' | 'deferred' | 'delivering' | 'bouncing';
export const QUEUE_ENTRY_STATUSES: readonly QueueEntryStatus[] = ['due', 'deferred', 'delivering', 'bouncing'];

export function queueEntryStatus(e: QueueEntry, now: number): QueueEntryStatus {
  if (e.leaseUntil >= now) return 'delivering';
  if (e.cancel === 'bounce') return 'bouncing';
  return e.nextAttemptAt <= now ? 'due' : 'deferred';
}

export interface QueueSearch {
  status?: QueueEntryStatus;
  kind?: QueueKind;
  /** Part of the sender address, case-insensitive. */
  sender?: string;
  /** Part of a recipient address, case-insensitive (matched against the stored recipient list). */
  recipient?: string;
  limit?: number;
  /** From a previous page's nextCursor. */
  cursor?: string;
}

export interface QueuePage {
  items: QueueEntry[];
  /** Entries matching the filters, on every page. */
  total: number;
  nextCursor: string | null;
}

/**
 * Queue entries for the admin API and UI, oldest first, keyset-paginated on (created_at, id) like
 * searchTransfers, so a page stays stable while entries are delivered and new ones arrive.
 */
export async function searchQueue(db: Db, q: QueueSearch, now = Date.now()): Promise<QueuePage> {
  const limit = Math.min(Math.max(q.limit ?? 50, 1), 200);
  let query = db.selectFrom('queue_entries');
  if (q.kind) query = query.where('kind', '=', q.kind);
  if (q.sender) query = query.where(sql<boolean>`lower(sender) like ${likePattern(q.sender)} escape '\\'`);
  if (q.recipient) query = query.where(sql<boolean>`lower(recipients) like ${likePattern(q.recipient)} escape '\\'`);
  switch (q.status) {
    case undefined:
      break;
    case 'delivering':
      query = query.where('lease_until', '>=', now);
      break;
    case 'bouncing':
      query = query.where('lease_until', '<', now).where('cancel', '=', 'bounce');
      break;
    case 'due':
      query = query.where('lease_until', '<', now).where('cancel', 'is', null).where('next_attempt_at', '<=', now);
      break;
    case 'deferred':
      query = query.where('lease_until', '<', now).where('cancel', 'is', null).where('next_attempt_at', '>', now);
      break;
  }
  const { n } = await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  let pageQuery = query;
  if (q.cursor) {
    const c = decodeCursor(q.cursor);
    if (!c) throw new BadCursorError();
    pageQuery = pageQuery.where((eb) => eb.or([eb('created_at', '>', c.createdAt), eb.and([eb('created_at', '=', c.createdAt), eb('id', '>', c.id)])]));
  }
  const rows = await pageQuery.selectAll().orderBy('created_at').orderBy('id').limit(limit + 1).execute();
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return { items: page.map(toEntry), total: Number(n), nextCursor: rows.length > limit && last ? encodeCursor(Number(last.created_at), last.id) : null };
}

export async function getQueueEntry(db: Db, id: string): Promise<QueueEntry | undefined> {
  const r = await db.selectFrom('queue_entries').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? toEntry(r) : undefined;
}

/** Makes an entry (or every entry, with id '*') due now. Returns how many were found. */
export async function retryNow(db: Db, id: string, now = Date.now()): Promise<number> {
  let q = db.updateTable('queue_entries').set({ next_attempt_at: now });
  if (id !== '*') q = q.where('id', '=', id);
  const r = await q.executeTakeFirst();
  return Number(r.numUpdatedRows);
}

export type DeleteResult = 'deleted' | 'bounce-scheduled' | 'busy' | 'not-found';

/**
 * Deletes a queue entry. Silently: the record and the message blob go now, unless a worker is
 * delivering it at this moment ('busy': try again in a minute), and so does the transfer whose
 * links the message carried when no recipient got it. With `bounce`: the entry is
 * marked and made due, and the next worker returns it to its sender with a failure DSN and
 * removes it (DSNs are written by the worker, which knows the relay).
 */
export async function deleteEntry(db: Db, blobs: BlobStore, id: string, opts: { bounce?: boolean; now?: number; actor?: string } = {}): Promise<DeleteResult> {
  const now = opts.now ?? Date.now();
  const entry = await getQueueEntry(db, id);
  if (!entry) return 'not-found';
  if (opts.bounce) {
    const r = await db.updateTable('queue_entries').set({ cancel: 'bounce', next_attempt_at: now }).where('id', '=', id).executeTakeFirst();
    return Number(r.numUpdatedRows) ? 'bounce-scheduled' : 'not-found';
  }
  const r = await db.deleteFrom('queue_entries').where('id', '=', id).where('lease_until', '<', now).executeTakeFirst();
  if (!Number(r.numDeletedRows)) return (await getQueueEntry(db, id)) ? 'busy' : 'not-found';
  await blobs.delete(entry.blobKey);
  // No recipient got the message, so no link went out: the transfer's files go now, not at the
  // end of their retention (a legal hold keeps them; storage/undelivered.ts).
  if (entry.transferId && !entry.recipients.some((x) => x.state === 'delivered')) {
    await retireUndeliveredEntry(db, blobs, { id, transferId: entry.transferId, recipients: entry.recipients }, opts.actor ?? 'admin', `never delivered: queue entry ${id} deleted without a notice to the sender`, now);
  }
  return 'deleted';
}

export interface QueueStats {
  /** Entries in the queue (messages and DSNs). */
  size: number;
  /** Age of the oldest entry in milliseconds; 0 when the queue is empty. */
  oldestAgeMs: number;
}

/** Queue size and the oldest entry's age, for metrics. */
export async function queueStats(db: Db, now = Date.now()): Promise<QueueStats> {
  const r = await db
    .selectFrom('queue_entries')
    .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.min('created_at').as('oldest')])
    .executeTakeFirstOrThrow();
  const oldest = r.oldest === null || r.oldest === undefined ? undefined : Number(r.oldest);
  return { size: Number(r.n), oldestAgeMs: oldest === undefined ? 0 : Math.max(0, now - oldest) };
}

/** Queue size alone (metrics). */
export async function queueSize(db: Db): Promise<number> {
  return (await queueStats(db)).size;
}

/** Age of the oldest queued entry in ms, 0 when empty (metrics). */
export async function queueOldestAgeMs(db: Db, now = Date.now()): Promise<number> {
  return (await queueStats(db, now)).oldestAgeMs;
}

/** Wait before the attempt after `attempts` attempts: the schedule's entry, the last one repeating. */
export function backoff(schedule: number[], attempts: number): number {
  return schedule[Math.min(Math.max(attempts - 1, 0), schedule.length - 1)]!;
}
