import type { Db } from '../storage/index.js';

// web.maxDownloads: how many times each file of a transfer may be downloaded. A zip of all
// files counts as one download of every file in it. Only counted downloads (complete bodies,
// not scanners, not prefetch, not HEAD or partial ranges) use the allowance, so a mail
// scanner can never use it up.
//
// The counting is per file rather than per transfer on purpose: with a per-transfer total, a
// limit of 1 on a three-file message would let the recipient download one file and lose the
// other two, the "links expire too soon" complaint users of other products have.
//
// (This query belongs in storage/records.ts next to countCountedDownloads(); it lives here until
// that file takes it, see the report of issue #4.)

/**
 * The download limit that applies to a transfer: the one its retention rule set when it was
 * stored, else the site's web.maxDownloads. 0 = unlimited.
 */
export function downloadLimit(transfer: { maxDownloads: number | null }, siteMax: number): number {
  return transfer.maxDownloads ?? siteMax;
}

export interface DownloadUse {
  /** Counted downloads per file index, zips included. */
  used(idx: number): number;
}

export async function downloadUse(db: Db, transferId: string): Promise<DownloadUse> {
  const rows = await db
    .selectFrom('downloads')
    .select(['file_idx', (eb) => eb.fn.countAll<number>().as('n')])
    .where('transfer_id', '=', transferId)
    .where('counted', '=', 1)
    .groupBy('file_idx')
    .execute();
  let zips = 0;
  const byFile = new Map<number, number>();
  for (const r of rows) {
    if (r.file_idx === null) zips += Number(r.n);
    else byFile.set(Number(r.file_idx), Number(r.n));
  }
  return { used: (idx) => (byFile.get(idx) ?? 0) + zips };
}
