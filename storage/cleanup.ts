import type { BlobStore } from './blob-store.js';
import type { Db } from './database.js';
import { deleteTransferRecords, listFiles } from './records.js';

/** Deletes a transfer's blobs, then its records. Safe to call twice. */
export async function discardTransfer(db: Db, blobs: BlobStore, transferId: string): Promise<void> {
  for (const f of await listFiles(db, transferId)) await blobs.delete(f.blobKey);
  await deleteTransferRecords(db, transferId);
}

/**
 * Deletes every blob under a transfer's key prefix (newBlobKey: t/ID/...), including blobs a
 * message uploaded before its database went away and so never got a file record. Returns how
 * many were deleted.
 */
export async function deleteBlobsUnder(blobs: BlobStore, transferId: string): Promise<number> {
  const keys: string[] = [];
  for await (const key of blobs.list(`t/${transferId}/`)) keys.push(key);
  for (const key of keys) await blobs.delete(key);
  return keys.length;
}

/**
 * Aborts uploads the blob store began more than `maxAgeMs` ago and never finished (S3 multipart
 * uploads left by a crash or by a server that died mid-upload). Stores without such a thing
 * (the filesystem) have nothing to do: 0.
 */
export async function sweepIncompleteUploads(blobs: BlobStore, maxAgeMs: number, now = Date.now()): Promise<number> {
  return blobs.abortIncompleteUploads ? blobs.abortIncompleteUploads(maxAgeMs, now) : 0;
}
