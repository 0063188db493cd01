import type { Readable } from 'node:stream';

/** A byte range, both ends inclusive, already checked against the blob's size. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Where attachment bytes live. Keys are made by Ferry (see newBlobKey), never from user input.
 * Drivers: filesystem (fs-blob-store.ts) and S3-compatible object storage (s3-blob-store.ts).
 */
export interface BlobStore {
  /** Short name for logs: "file", "s3". */
  readonly kind: string;
  /**
   * Streams `body` into the blob `key`. Resolves once the bytes are durable (synced).
   * On any failure, or if `signal` aborts, nothing is left under `key` and the promise rejects.
   */
  put(key: string, body: Readable, opts?: PutOptions): Promise<void>;
  /** A stream of the blob's bytes, or of `range`. Rejects with BlobNotFoundError if absent. */
  openRead(key: string, opts?: { range?: ByteRange; signal?: AbortSignal }): Promise<Readable>;
  /** Removes the blob; succeeds when it does not exist. */
  delete(key: string): Promise<void>;
  /** True if the blob exists. */
  exists(key: string): Promise<boolean>;
  /** Every key in the store (for the sweeper and tests). */
  list(prefix?: string): AsyncIterable<string>;
  /** Throws BlobStoreUnavailableError when the store cannot take writes now. */
  check(): Promise<void>;
  close(): Promise<void>;
  /**
   * Optional (S3 has it, the filesystem does not): a short-lived URL from which a browser
   * downloads the blob directly, for `web.downloads: redirect`. Minted per request, only after
   * the caller has checked the token, expiry and limits: until it expires the URL bypasses all of
   * them. The store answers Range on it itself.
   */
  presignGet?(key: string, opts?: PresignOptions): Promise<string>;
  /**
   * Optional (S3 has it): removes uploads that were begun more than `olderThanMs` ago and never
   * finished (S3 multipart uploads left by a crashed process or a server that died mid-upload;
   * they hold storage but no listable object). Returns how many were removed. Uploads still
   * running in this process are never touched; for other processes `olderThanMs` must exceed the
   * longest upload (the worker uses the same age as for stale pending transfers). Throws
   * BlobStoreUnavailableError when the store cannot list them. Called by the worker's sweep
   * (storage/cleanup.ts sweepIncompleteUploads) and by the retention sweeper.
   */
  abortIncompleteUploads?(olderThanMs: number, now?: number): Promise<number>;
}

export interface PutOptions {
  contentType?: string;
  signal?: AbortSignal;
  /**
   * Called, chunk by chunk in order, once the store has written a chunk of `body` and holds no
   * reference to it any more, so that the caller may fill its buffer again (the gateway's decoder
   * does, gateway/decode-buffers.ts). A store that cannot tell (S3: the SDK keeps the bytes of a
   * part until it is sent) never calls it, and the caller then never reuses a buffer.
   */
  written?: (chunk: Buffer) => void;
}

export interface PresignOptions {
  /** Seconds the URL stays valid. Default 300; SigV4 allows at most 7 days. */
  expiresIn?: number;
  /** Content-Disposition the store sends with the bytes (the same RFC 6266 value proxy mode sends). */
  contentDisposition?: string;
  /** Content-Type the store sends with the bytes. */
  contentType?: string;
}

export class BlobNotFoundError extends Error {
  readonly code = 'FERRY_ERR_BLOB_NOT_FOUND';
  constructor(key: string) {
    super(`blob ${key} does not exist`);
    this.name = 'BlobNotFoundError';
  }
}

export class BlobStoreUnavailableError extends Error {
  readonly code = 'FERRY_ERR_BLOB_STORE_UNAVAILABLE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BlobStoreUnavailableError';
  }
}

const KEY_RE = /^[a-z0-9][a-z0-9_-]*(\/[a-z0-9][a-z0-9_.-]*)*$/;

/** Keys are Ferry-made; this guard keeps a bug from ever turning one into a path outside the store. */
export function assertValidKey(key: string): void {
  if (!KEY_RE.test(key) || key.includes('..') || key.length > 200) throw new Error(`invalid blob key: ${JSON.stringify(key)}`);
}
