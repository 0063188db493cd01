import path from 'node:path';
import type { BlobStore } from './blob-store.js';
import { openDatabase, type Db } from './database.js';
import { FsBlobStore } from './fs-blob-store.js';
import type { PostgresOptions } from './postgres.js';
import { parseS3Url, S3BlobStore, type S3BlobStoreOptions } from './s3-blob-store.js';

/** Settings that do not belong in a (logged) URL: credentials, limits, timeouts. */
export type S3Settings = Omit<S3BlobStoreOptions, 'bucket' | 'prefix'>;

/**
 * Opens the blob store named by a `file:DIR` or `s3://BUCKET[/PREFIX/]?endpoint=...` URL.
 * For s3, `s3` adds what the URL does not carry; the URL's own parameters win.
 */
export function openBlobStore(url: string, opts: { s3?: S3Settings } = {}): BlobStore {
  const m = /^file:(.+)$/.exec(url);
  if (m) return new FsBlobStore(path.resolve(m[1]!));
  if (url.startsWith('s3://')) return new S3BlobStore({ ...opts.s3, ...parseS3Url(url) });
  throw new Error(`unsupported blob store URL ${url} (expected file:DIRECTORY or s3://BUCKET?endpoint=URL)`);
}

export interface Storage {
  db: Db;
  blobs: BlobStore;
  close(): Promise<void>;
}

export async function openStorage(opts: { blobs: string; database: string; s3?: S3Settings; postgres?: PostgresOptions }): Promise<Storage> {
  const db = await openDatabase(opts.database, { postgres: opts.postgres });
  const blobs = openBlobStore(opts.blobs, { s3: opts.s3 });
  return {
    db,
    blobs,
    async close() {
      await blobs.close();
      await db.destroy();
    },
  };
}
