import { fileScans, type Db, type FileScan, type StoredFile } from '../storage/index.js';
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

/**
 * Throws BlockedError when the file must not be served. The flag comes with the file's row
 * (getFile, listFiles), read in the same query that found the file: no second look-up per download.
 */
export function assertServable(file: Pick<StoredFile, 'blocked' | 'blockedReason'>, sender?: string): void {
  if (file.blocked) throw new BlockedError(file.blockedReason, sender);
}

/** The files of a transfer that may be served (for the zip): blocked ones are left out. */
export function servableFiles(files: StoredFile[]): StoredFile[] {
  return files.filter((f) => !f.blocked);
}

/** Every file's scan record, for the landing page. */
export function scansOf(db: Db, transferId: string): Promise<Map<number, FileScan>> {
  return fileScans(db, transferId);
}
