import { sql } from 'kysely';
import type { Db } from './database.js';
import { displayName } from './filenames.js';

// Per recipient and per file: whether and when the file was downloaded completely, and what else
// happened to the link. One view for the sender's management page, the admin API and UI, and
// `ferry transfers show`, so they never disagree about what "downloaded" means.
//
// "Complete" is what the download limit counts (downloads.counted = 1, storage/download-slots.ts)
// minus scanners and link prefetchers, which a sender must not mistake for the recipient. A zip
// of the whole transfer delivers every file, so its rows count for each file.

export interface FileStatus {
  idx: number;
  /** As the landing page shows it (displayName): safe to show, never the raw stored name. */
  name: string;
  /** The first complete download through this link; null = never. */
  completeAt: number | null;
  completeCount: number;
  /** Requests by mail security scanners and link prefetchers (never counted as downloads). */
  scannerFetches: number;
  /** GETs that sent bytes but did not (yet) make a complete download: broken or single ranges. */
  partialFetches: number;
}

export interface RecipientStatus {
  linkId: string;
  /** The envelope address the link was made for; '' for the transfer's shared link. */
  recipient: string;
  revokedAt: number | null;
  files: FileStatus[];
}

interface Counts {
  completeAt: number | null;
  completeCount: number;
  scannerFetches: number;
  partialFetches: number;
}

const none = (): Counts => ({ completeAt: null, completeCount: 0, scannerFetches: 0, partialFetches: 0 });

function add(a: Counts, b: Counts): Counts {
  return {
    completeAt: a.completeAt === null ? b.completeAt : b.completeAt === null ? a.completeAt : Math.min(a.completeAt, b.completeAt),
    completeCount: a.completeCount + b.completeCount,
    scannerFetches: a.scannerFetches + b.scannerFetches,
    partialFetches: a.partialFetches + b.partialFetches,
  };
}

/**
 * Every link of the transfer (revoked ones included) with each file's status. Two queries
 * whatever the number of links, files and downloads: the links with the files, and the download
 * log summed per link and file in the database.
 */
export async function recipientStatus(db: Db, transferId: string): Promise<RecipientStatus[]> {
  const grid = await db
    .selectFrom('links')
    .leftJoin('files', 'files.transfer_id', 'links.transfer_id')
    .select(['links.id as link_id', 'links.recipient', 'links.revoked_at', 'links.created_at', 'files.idx', 'files.name'])
    .where('links.transfer_id', '=', transferId)
    .orderBy('links.created_at')
    .orderBy('links.recipient')
    .orderBy('links.id')
    .orderBy('files.idx')
    .execute();
  if (grid.length === 0) return [];

  const complete = sql`downloads.counted = 1 AND downloads.scanner = 0`;
  // HEAD sends no body; rows from before the method column (null) were GETs.
  const partial = sql`downloads.counted = 0 AND downloads.scanner = 0 AND downloads.bytes_sent > 0 AND COALESCE(downloads.method, 'GET') <> 'HEAD'`;
  const sums = await db
    .selectFrom('downloads')
    .select([
      'downloads.link_id',
      'downloads.file_idx',
      sql<number | null>`MIN(CASE WHEN ${complete} THEN downloads.at END)`.as('complete_at'),
      sql<number | string>`SUM(CASE WHEN ${complete} THEN 1 ELSE 0 END)`.as('complete_count'),
      sql<number | string>`SUM(CASE WHEN downloads.scanner = 1 THEN 1 ELSE 0 END)`.as('scanner_fetches'),
      sql<number | string>`SUM(CASE WHEN ${partial} THEN 1 ELSE 0 END)`.as('partial_fetches'),
    ])
    .where('downloads.transfer_id', '=', transferId)
    .groupBy(['downloads.link_id', 'downloads.file_idx'])
    .execute();

  // Downloads logged before links existed carry no link: they came through the one shared link
  // every older transfer was given (migration 0080 made it, recipient '').
  const shared = grid.find((r) => r.recipient === '')?.link_id ?? null;
  const byKey = new Map<string, Counts>();
  for (const s of sums) {
    const linkId = s.link_id ?? shared;
    if (linkId === null) continue;
    const key = `${linkId}\u0000${s.file_idx === null ? 'zip' : Number(s.file_idx)}`;
    const counts: Counts = {
      completeAt: s.complete_at === null ? null : Number(s.complete_at),
      completeCount: Number(s.complete_count),
      scannerFetches: Number(s.scanner_fetches),
      partialFetches: Number(s.partial_fetches),
    };
    byKey.set(key, add(byKey.get(key) ?? none(), counts));
  }

  const out: RecipientStatus[] = [];
  const byLink = new Map<string, RecipientStatus>();
  for (const r of grid) {
    let status = byLink.get(r.link_id);
    if (!status) {
      status = { linkId: r.link_id, recipient: r.recipient, revokedAt: r.revoked_at === null ? null : Number(r.revoked_at), files: [] };
      byLink.set(r.link_id, status);
      out.push(status);
    }
    if (r.idx === null || r.name === null) continue;
    const idx = Number(r.idx);
    const zip = byKey.get(`${r.link_id}\u0000zip`) ?? none();
    const own = byKey.get(`${r.link_id}\u0000${idx}`) ?? none();
    status.files.push({ idx, name: displayName(r.name), ...add(own, zip) });
  }
  return out;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** A recipient's status as the admin API and `ferry transfers show --json` give it: one shape for both. */
export function recipientStatusJson(s: RecipientStatus) {
  return {
    linkId: s.linkId,
    recipient: s.recipient,
    revokedAt: iso(s.revokedAt),
    files: s.files.map((f) => ({ idx: f.idx, name: f.name, completeAt: iso(f.completeAt), completeCount: f.completeCount, scannerFetches: f.scannerFetches, partialFetches: f.partialFetches })),
  };
}
