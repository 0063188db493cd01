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
  for (const t of stale) {
    // A message whose database went away mid-DATA can have uploaded a blob without writing its
    // file record: every blob under the transfer's key prefix (newBlobKey: t/ID/...) goes too.
    const orphans: string[] = [];
    for await (const key of blobs.list(`t/${t.id}/`)) orphans.push(key);
    for (const key of orphans) await blobs.delete(key);
    await discardTransfer(db, blobs, t.id);
  }
  return stale.length;
}

/**
 * Aborts uploads the blob store began more than `maxAgeMs` ago and never finished (S3 multipart
 * uploads left by a crash or by a server that died mid-upload). Stores without such a thing
 * (the filesystem) have nothing to do: 0.
 */
export async function sweepIncompleteUploads(blobs: BlobStore, maxAgeMs: number, now = Date.now()): Promise<number> {
  return blobs.abortIncompleteUploads ? blobs.abortIncompleteUploads(maxAgeMs, now) : 0;
}
