import path from 'node:path';
import type { BlobStore } from './blob-store.js';
import { openDatabase, type Db } from './database.js';
import { FsBlobStore } from './fs-blob-store.js';

/** Opens the blob store named by a `file:DIR` URL. */
export function openBlobStore(url: string): BlobStore {
  const m = /^file:(.+)$/.exec(url);
  if (m) return new FsBlobStore(path.resolve(m[1]!));
  throw new Error(`unsupported blob store URL ${url} (expected file:DIRECTORY)`);
}

export interface Storage {
  db: Db;
  blobs: BlobStore;
  close(): Promise<void>;
}

export async function openStorage(opts: { blobs: string; database: string }): Promise<Storage> {
  const db = await openDatabase(opts.database);
  const blobs = openBlobStore(opts.blobs);
  return {
    db,
    blobs,
    async close() {
      await blobs.close();
      await db.destroy();
    },
  };
}
