import type { BlobStore } from './blob-store.js';
import type { Db } from './database.js';
import { deleteTransferRecords, listFiles, listStalePending } from './records.js';

/** Deletes a transfer's blobs, then its records. Safe to call twice. */
export async function discardTransfer(db: Db, blobs: BlobStore, transferId: string): Promise<void> {
  for (const f of await listFiles(db, transferId)) await blobs.delete(f.blobKey);
  await deleteTransferRecords(db, transferId);
}

/**
 * Removes pending transfers older than `maxAgeMs` with their blobs: what a crash mid-message
 * leaves behind. The full retention sweeper (expiry, partial uploads) builds on this.
 */
export async function sweepStalePending(db: Db, blobs: BlobStore, maxAgeMs: number, now = Date.now()): Promise<number> {
  const stale = await listStalePending(db, now - maxAgeMs);
  for (const t of stale) await discardTransfer(db, blobs, t.id);
  return stale.length;
}
