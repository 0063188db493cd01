import { fileScans, isBlocked, type Db, type FileScan, type StoredFile } from '../storage/index.js';
import { WebError } from './errors.js';

// The one check every route that sends a file's bytes makes first (file, zip, and any other way
// to a blob): a file held in quarantine, blocked after a rescan, or deleted by an admin is never
// served, whatever URL names it. Its row stays, so the landing page can say why.

/** A blocked file was asked for. 403 with a page that says why (web/pages/blocked.ts). */
export class BlockedError extends WebError {
  readonly statusCode = 403;
  readonly code = 'FERRY_ERR_BLOCKED' as const;
  constructor(
    readonly reason: 'quarantine' | 'rescan' | 'deleted' | null,
    readonly sender?: string,
  ) {
    super('file blocked');
    this.name = 'BlockedError';
  }
}

/** Throws BlockedError when the file must not be served. */
export async function assertServable(db: Db, file: Pick<StoredFile, 'transferId' | 'idx'>, sender?: string): Promise<void> {
  const b = await isBlocked(db, file.transferId, file.idx);
  if (b.blocked) throw new BlockedError(b.reason, sender);
}

/** The files of a transfer that may be served (for the zip): blocked ones are left out. */
export async function servableFiles(db: Db, transferId: string, files: StoredFile[]): Promise<StoredFile[]> {
  const scans = await fileScans(db, transferId);
  return files.filter((f) => !scans.get(f.idx)?.blocked);
}

/** Every file's scan record, for the landing page. */
export function scansOf(db: Db, transferId: string): Promise<Map<number, FileScan>> {
  return fileScans(db, transferId);
}
