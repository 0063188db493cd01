import fsp from 'node:fs/promises';
import path from 'node:path';
import type { BlobStore } from './blob-store.js';
import type { Db } from './database.js';
import { FsBlobStore } from './fs-blob-store.js';
import { copyBlobKeys } from './recipient-links.js';
import { deleteTransferRecords, listFiles } from './records.js';

/** Deletes a transfer's blobs, then its records. Safe to call twice. */
export async function discardTransfer(db: Db, blobs: BlobStore, transferId: string): Promise<void> {
  for (const f of await listFiles(db, transferId)) await blobs.delete(f.blobKey);
  await deleteRecipientCopies(db, blobs, transferId);
  await removeEmptyTransferDir(blobs, transferId);
  await deleteTransferRecords(db, transferId);
}

/**
 * Deletes the copies of the message kept per recipient for "send again" (links.copy_blob_key):
 * they hold the files' links, and go when the files go. Returns how many.
 */
export async function deleteRecipientCopies(db: Db, blobs: BlobStore, transferId: string): Promise<number> {
  const keys = await copyBlobKeys(db, transferId);
  for (const key of keys) await blobs.delete(key);
  return keys.length;
}

/**
 * The filesystem store keeps a transfer's files in blobs/t/ID/; deleting the files leaves the
 * folder, one per transfer for ever. rmdir (not rm -r) removes it only when it is empty, so a
 * file being written into it right now is never lost. S3 has no folders: nothing to do.
 */
export async function removeEmptyTransferDir(blobs: BlobStore, transferId: string): Promise<void> {
  if (!(blobs instanceof FsBlobStore) || !/^[A-Za-z0-9_-]+$/.test(transferId)) return;
  await fsp.rmdir(path.join(blobs.root, 't', transferId)).catch(() => undefined);
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
  await removeEmptyTransferDir(blobs, transferId);
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
