import { sql } from 'kysely';
import { appendAudit } from './audit.js';
import type { Db } from './database.js';
import { isPostgres } from './postgres.js';

// Download limits that hold when many requests arrive at once (issue 15 items 3 and 4).
//
// A file with a limit of N has N slots. A downloads row with slot = 1 holds one. A request that
// will send file bytes takes a slot before its first byte, in one atomic write (reserveDownload):
// the row is inserted only if fewer than N rows of that file (or zips of its transfer) hold one.
// When the response ends, finishDownloads() either keeps the slot for good (the download counted)
// or gives it back. So at most N downloads that can complete ever start, across every process and
// node sharing the database.
//
// What counts: one client address having been sent the file's size in bytes. A whole-file
// response that completes does it alone; otherwise the bytes of that client's uncounted GETs of
// the file since its last counted download add up (a download in two ranges counts once, and so
// does a broken download plus its resumed remainder).
//
// Per-recipient links (storage/recipient-links.ts): the limit applies per link, so each recipient
// has the full allowance. Slots are counted among the requests of the same link only; a request
// without a link (none is known) counts against the whole transfer, as before links existed.
//
// A process that dies mid-download leaves its reservation in place (slot = 1, counted = 0): the
// download may well have completed, and the database cannot tell, so it stays used. Completed
// downloads are therefore never lost to a crash; a download cut off by one costs the recipient a slot.

/** What is known about a request before its first byte. */
export interface DownloadStart {
  transferId: string;
  /** The link the request came through (request.ferryLink); its slots are the ones counted. */
  linkId?: string | null;
  /** null for the zip of all files: it takes a slot of every file. */
  fileIdx: number | null;
  /** The status the response is planned with. */
  status: number;
  range: string | null;
  client: string | null;
  userAgent: string | null;
  scanner: boolean;
  method: string;
}

/**
 * Takes a slot for a request that will send bytes, or returns undefined when the file (for a zip:
 * any file of the transfer) has `limit` slots held already. The returned row id is what
 * finishDownloads() settles. One statement on SQLite (a write statement holds the database's
 * write lock from its start, so the count and the insert cannot interleave with another writer,
 * in this process or another); on PostgreSQL the transfer's row is locked first, because under
 * READ COMMITTED two INSERT ... SELECT statements would both see the old count.
 */
export async function reserveDownload(db: Db, d: DownloadStart, limit: number): Promise<number | undefined> {
  const insert = async (q: Db): Promise<number | undefined> => {
    const t = d.transferId;
    const link = d.linkId ?? null;
    const sameLink = link === null ? sql`` : sql` AND h.link_id = ${link}`;
    const full =
      d.fileIdx === null
        ? sql`NOT EXISTS (SELECT 1 FROM files f WHERE f.transfer_id = ${t} AND (SELECT count(*) FROM downloads h WHERE h.transfer_id = ${t}${sameLink} AND h.slot = 1 AND (h.file_idx = f.idx OR h.file_idx IS NULL)) >= ${limit})`
        : sql`(SELECT count(*) FROM downloads h WHERE h.transfer_id = ${t}${sameLink} AND h.slot = 1 AND (h.file_idx = ${d.fileIdx} OR h.file_idx IS NULL)) < ${limit}`;
    // NB: the casts give PostgreSQL the column types of parameters in a SELECT list (it would
    // take them as text and refuse text for bigint columns); SQLite accepts them as they are.
    const r = await sql<{ id: number | string }>`INSERT INTO downloads (transfer_id, link_id, file_idx, at, status, bytes_sent, range, client, user_agent, counted, scanner, method, slot)
      SELECT CAST(${t} AS text), CAST(${link} AS text), CAST(${d.fileIdx} AS integer), CAST(${Date.now()} AS bigint), CAST(${d.status} AS integer), CAST(0 AS bigint), CAST(${d.range} AS text),
        CAST(${d.client} AS text), CAST(${d.userAgent ? d.userAgent.slice(0, 500) : null} AS text), 0, CAST(${d.scanner ? 1 : 0} AS integer), CAST(${d.method} AS text), 1
      WHERE ${full}
      RETURNING id`.execute(q);
    const id = r.rows[0]?.id;
    return id === undefined ? undefined : Number(id);
  };
  if (!isPostgres(db)) return insert(db);
  return db.transaction().execute(async (trx) => {
    await sql`SELECT id FROM transfers WHERE id = ${d.transferId} FOR NO KEY UPDATE`.execute(trx);
    return insert(trx as unknown as Db);
  });
}

/** How a request ended. */
export interface DownloadEnd extends DownloadStart {
  /** The row reserveDownload() returned; absent when no slot was taken (no limit, HEAD, no body). */
  reservation?: number;
  /** The status actually sent. */
  status: number;
  /** Body bytes handed to the client. */
  bytesSent: number;
  /** This response alone delivered the whole file (or zip), every byte. */
  whole: boolean;
  /** The file's size, for adding up ranges; absent for zips. */
  fileSize?: number;
}

/**
 * Writes the final record of each ended request, in one transaction for the whole batch, and
 * says which of them counted. Order within a batch is kept, so a client's ranges add up the same
 * however they were batched.
 */
export async function finishDownloads(db: Db, ends: readonly DownloadEnd[]): Promise<boolean[]> {
  if (ends.length === 0) return [];
  return db.transaction().execute(async (trx) => {
    const q = trx as unknown as Db;
    const counted: boolean[] = [];
    for (const e of ends) {
      const now = Date.now();
      // The write comes first in the transaction: on SQLite a transaction that reads first and
      // then writes can be refused (SQLITE_BUSY_SNAPSHOT) when another process wrote in between.
      let id: number;
      if (e.reservation !== undefined) {
        id = e.reservation;
        await q
          .updateTable('downloads')
          .set({ at: now, status: e.status, bytes_sent: e.bytesSent, counted: e.whole ? 1 : 0, slot: e.whole ? 1 : 0 })
          .where('id', '=', id)
          .execute();
      } else {
        const r = await q
          .insertInto('downloads')
          .values({
            transfer_id: e.transferId,
            link_id: e.linkId ?? null,
            file_idx: e.fileIdx,
            at: now,
            status: e.status,
            bytes_sent: e.bytesSent,
            range: e.range,
            client: e.client,
            user_agent: e.userAgent ? e.userAgent.slice(0, 500) : null,
            counted: e.whole ? 1 : 0,
            scanner: e.scanner ? 1 : 0,
            method: e.method,
            slot: e.whole ? 1 : 0,
          })
          .returning('id')
          .executeTakeFirstOrThrow();
        id = Number(r.id);
      }
      let isCounted = e.whole;
      if (!isCounted && (await rangesAddUp(q, e, id))) {
        // Within this transaction the slot this row held is still ours (nobody else saw it
        // released), so keeping it is safe. A row that held none (no limit) just counts.
        await q.updateTable('downloads').set({ counted: 1, slot: 1 }).where('id', '=', id).execute();
        isCounted = true;
      }
      if (isCounted) {
        // The download log keeps every request; the audit log only the downloads that counted.
        await appendAudit(q, {
          actor: e.client ? `web:${e.client}` : 'web',
          action: 'downloaded',
          transferId: e.transferId,
          detail: { file: e.fileIdx, bytes: e.bytesSent },
        });
      }
      counted.push(isCounted);
    }
    return counted;
  });
}

/**
 * Whether this client's uncounted GET bytes of the file, since its last counted download, reach
 * the file's size. Through the same link only: the counted download takes that link's slot.
 */
async function rangesAddUp(q: Db, e: DownloadEnd, id: number): Promise<boolean> {
  if (e.fileIdx === null || e.fileSize === undefined || e.fileSize <= 0 || !e.client || e.method !== 'GET' || e.bytesSent <= 0) return false;
  if (e.bytesSent >= e.fileSize) return true;
  const link = e.linkId ?? null;
  const last = await q
    .selectFrom('downloads')
    .select((eb) => eb.fn.max('id').as('id'))
    .where('transfer_id', '=', e.transferId)
    .$if(link !== null, (b) => b.where('link_id', '=', link))
    .where('file_idx', '=', e.fileIdx)
    .where('client', '=', e.client)
    .where('counted', '=', 1)
    .executeTakeFirst();
  const r = await q
    .selectFrom('downloads')
    .select((eb) => eb.fn.coalesce(eb.fn.sum<number | string>('bytes_sent'), eb.lit(0)).as('n'))
    .where('transfer_id', '=', e.transferId)
    .$if(link !== null, (b) => b.where('link_id', '=', link))
    .where('file_idx', '=', e.fileIdx)
    .where('client', '=', e.client)
    .where('counted', '=', 0)
    .where('method', '=', 'GET')
    .where('id', '>', Number(last?.id ?? 0))
    .where('id', '<>', id)
    .executeTakeFirstOrThrow();
  return Number(r.n) + e.bytesSent >= e.fileSize;
}
