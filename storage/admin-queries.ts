import { sql } from 'kysely';
import type { Db } from './database.js';
import { getTransfer, listFiles, toTransfer, type StoredFile, type Transfer } from './records.js';
import type { TransferState } from './schema.js';

// Read-only queries for the admin API, UI and CLI: search, detail with download log, stats.
// Written with Kysely so the same SQL runs on SQLite and PostgreSQL (text search with
// lower(...) LIKE, since PostgreSQL's LIKE is case-sensitive and SQLite's is not).

/** What an admin sees: the stored state, except that a live transfer past its expiry shows as expired. */
export type ShownState = TransferState;

export function shownState(t: Pick<Transfer, 'state' | 'expiresAt'>, now = Date.now()): ShownState {
  return t.state === 'live' && t.expiresAt <= now ? 'expired' : t.state;
}

export interface TransferSearch {
  sender?: string;
  recipient?: string;
  fileName?: string;
  /** created_at >= from */
  from?: number;
  /** created_at < to */
  to?: number;
  state?: TransferState | 'held';
  limit?: number;
  /** From a previous page's nextCursor. */
  cursor?: string;
}

export interface TransferPage {
  items: Transfer[];
  nextCursor: string | null;
}

/** "%part%" for a case-insensitive LIKE, with LIKE's own wildcards escaped. */
export function likePattern(s: string): string {
  return `%${s.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

export function encodeCursor(createdAt: number, id: string): string {
  return Buffer.from(`${createdAt}:${id}`).toString('base64url');
}

export function decodeCursor(cursor: string): { createdAt: number; id: string } | undefined {
  const m = /^(\d+):([A-Za-z0-9_-]{1,64})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  return m ? { createdAt: Number(m[1]), id: m[2]! } : undefined;
}

export class BadCursorError extends Error {
  readonly code = 'FERRY_ERR_BAD_CURSOR';
  constructor() {
    super('cursor is not one this server gave out; start again without it');
    this.name = 'BadCursorError';
  }
}

/** Newest first, keyset-paginated (stable while new transfers arrive). */
export async function searchTransfers(db: Db, q: TransferSearch, now = Date.now()): Promise<TransferPage> {
  const limit = Math.min(Math.max(q.limit ?? 50, 1), 200);
  let query = db.selectFrom('transfers').selectAll();
  if (q.sender) query = query.where(sql<boolean>`lower(sender) like ${likePattern(q.sender)} escape '\\'`);
  if (q.recipient) query = query.where(sql<boolean>`lower(recipients) like ${likePattern(q.recipient)} escape '\\'`);
  if (q.fileName) {
    const p = likePattern(q.fileName);
    query = query.where((eb) =>
      eb.exists(
        eb
          .selectFrom('files')
          .select('files.idx')
          .whereRef('files.transfer_id', '=', 'transfers.id')
          .where(sql<boolean>`lower(files.name) like ${p} escape '\\'`),
      ),
    );
  }
  if (q.from !== undefined) query = query.where('created_at', '>=', q.from);
  if (q.to !== undefined) query = query.where('created_at', '<', q.to);
  switch (q.state) {
    case undefined:
      break;
    case 'held':
      query = query.where('held', '=', 1);
      break;
    case 'live':
      query = query.where('state', '=', 'live').where('expires_at', '>', now);
      break;
    case 'expired':
      query = query.where((eb) => eb.or([eb('state', '=', 'expired'), eb.and([eb('state', '=', 'live'), eb('expires_at', '<=', now)])]));
      break;
    default:
      query = query.where('state', '=', q.state);
  }
  if (q.cursor) {
    const c = decodeCursor(q.cursor);
    if (!c) throw new BadCursorError();
    query = query.where((eb) => eb.or([eb('created_at', '<', c.createdAt), eb.and([eb('created_at', '=', c.createdAt), eb('id', '<', c.id)])]));
  }
  const rows = await query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit + 1).execute();
  const page = rows.slice(0, limit);
  const items: Transfer[] = page.map(toTransfer);
  const last = page[page.length - 1];
  return { items, nextCursor: rows.length > limit && last ? encodeCursor(Number(last.created_at), last.id) : null };
}

export interface DownloadLogEntry {
  at: number;
  fileIdx: number | null;
  status: number;
  bytesSent: number;
  range: string | null;
  client: string | null;
  userAgent: string | null;
  counted: boolean;
  scanner: boolean;
  method: string | null;
  /** The link the request came through; null for downloads logged before links existed. */
  linkId: string | null;
  /** Whose link it was: the envelope address, or null for the shared link. */
  recipient: string | null;
}

export interface TransferDetail {
  transfer: Transfer;
  files: StoredFile[];
  downloads: DownloadLogEntry[];
  countedDownloads: number;
}

/** The transfer, its files and its newest `downloadLimit` download log entries. */
export async function transferDetail(db: Db, id: string, downloadLimit = 200): Promise<TransferDetail | undefined> {
  const transfer = await getTransfer(db, id);
  if (!transfer) return undefined;
  const files = await listFiles(db, id);
  const rows = await db
    .selectFrom('downloads')
    .leftJoin('links', 'links.id', 'downloads.link_id')
    .selectAll('downloads')
    .select('links.recipient')
    .where('downloads.transfer_id', '=', id)
    .orderBy('downloads.at', 'desc')
    .orderBy('downloads.id', 'desc')
    .limit(downloadLimit)
    .execute();
  const counted = await db
    .selectFrom('downloads')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('transfer_id', '=', id)
    .where('counted', '=', 1)
    .executeTakeFirstOrThrow();
  return {
    transfer,
    files,
    downloads: rows.map((r) => ({
      at: Number(r.at),
      fileIdx: r.file_idx === null ? null : Number(r.file_idx),
      status: Number(r.status),
      bytesSent: Number(r.bytes_sent),
      range: r.range,
      client: r.client,
      userAgent: r.user_agent,
      counted: Number(r.counted) === 1,
      scanner: Number(r.scanner) === 1,
      method: r.method,
      linkId: r.link_id,
      // The shared link's recipient is ''; rows without a link came through it too (migration 0080).
      recipient: r.recipient ? r.recipient : null,
    })),
    countedDownloads: Number(counted.n),
  };
}

export interface DayValue {
  /** YYYY-MM-DD (UTC). */
  day: string;
  value: number;
}

export interface AdminStats {
  /** Live transfers not past their expiry. */
  liveTransfers: number;
  heldTransfers: number;
  /** Bytes of every transfer whose files are still stored. */
  storedBytes: number;
  storedFiles: number;
  /** Oldest day first, every day of the window present (0 when nothing happened). */
  downloadsPerDay: DayValue[];
  transfersPerDay: DayValue[];
  bytesOffloadedPerDay: DayValue[];
}

function dayKey(dayNumber: number): string {
  return new Date(dayNumber * 86_400_000).toISOString().slice(0, 10);
}

function fillDays(rows: { d: unknown; v: unknown }[], firstDay: number, days: number): DayValue[] {
  const byDay = new Map(rows.map((r) => [Number(r.d), Number(r.v ?? 0)]));
  const out: DayValue[] = [];
  for (let d = firstDay; d < firstDay + days; d++) out.push({ day: dayKey(d), value: byDay.get(d) ?? 0 });
  return out;
}

export async function adminStats(db: Db, opts: { days?: number; now?: number } = {}): Promise<AdminStats> {
  const now = opts.now ?? Date.now();
  const days = Math.min(Math.max(opts.days ?? 30, 1), 366);
  const today = Math.floor(now / 86_400_000);
  const firstDay = today - days + 1;
  const since = firstDay * 86_400_000;
  const live = await db
    .selectFrom('transfers')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('state', '=', 'live')
    .where('expires_at', '>', now)
    .executeTakeFirstOrThrow();
  const held = await db.selectFrom('transfers').select((eb) => eb.fn.countAll<number>().as('n')).where('held', '=', 1).executeTakeFirstOrThrow();
  const stored = await db
    .selectFrom('transfers')
    .select((eb) => [eb.fn.sum<number>('total_bytes').as('bytes'), eb.fn.sum<number>('file_count').as('files')])
    .where('purged_at', 'is', null)
    .executeTakeFirstOrThrow();
  // Integer division on both databases: the columns are integers (bigint).
  const dayOf = (col: string) => sql<number>`${sql.ref(col)} / 86400000`;
  const downloads = await db
    .selectFrom('downloads')
    .select((eb) => [dayOf('at').as('d'), eb.fn.countAll<number>().as('v')])
    .where('counted', '=', 1)
    .where('at', '>=', since)
    .groupBy(dayOf('at'))
    .execute();
  const transfers = await db
    .selectFrom('transfers')
    .select((eb) => [dayOf('created_at').as('d'), eb.fn.countAll<number>().as('v'), eb.fn.sum<number>('total_bytes').as('b')])
    .where('state', '!=', 'pending')
    .where('created_at', '>=', since)
    .groupBy(dayOf('created_at'))
    .execute();
  return {
    liveTransfers: Number(live.n),
    heldTransfers: Number(held.n),
    storedBytes: Number(stored.bytes ?? 0),
    storedFiles: Number(stored.files ?? 0),
    downloadsPerDay: fillDays(downloads, firstDay, days),
    transfersPerDay: fillDays(transfers, firstDay, days),
    bytesOffloadedPerDay: fillDays(
      transfers.map((r) => ({ d: r.d, v: r.b })),
      firstDay,
      days,
    ),
  };
}

/** A transfer as the admin API and `ferry transfers --json` show it: one shape for both. */
export function transferJson(t: Transfer, now = Date.now()) {
  return {
    id: t.id,
    state: shownState(t, now),
    storedState: t.state,
    sender: t.sender,
    recipients: t.recipients,
    subject: t.subject,
    messageId: t.messageId,
    queueId: t.queueId,
    createdAt: new Date(t.createdAt).toISOString(),
    expiresAt: new Date(t.expiresAt).toISOString(),
    retentionRule: t.retentionRule,
    maxDownloads: t.maxDownloads,
    fileCount: t.fileCount,
    totalBytes: t.totalBytes,
    held: t.held,
    heldAt: t.heldAt === null ? null : new Date(t.heldAt).toISOString(),
    heldBy: t.heldBy,
    holdReason: t.holdReason,
    filesDeletedAt: t.purgedAt === null ? null : new Date(t.purgedAt).toISOString(),
  };
}
