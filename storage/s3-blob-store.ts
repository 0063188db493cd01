import http from 'node:http';
import https from 'node:https';
import { PassThrough, pipeline, Readable, Transform, type TransformCallback } from 'node:stream';
import { createRequire } from 'node:module';
import type * as ClientS3 from '@aws-sdk/client-s3';
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import type * as LibStorage from '@aws-sdk/lib-storage';
import type * as Presigner from '@aws-sdk/s3-request-presigner';
import type * as HttpHandler from '@smithy/node-http-handler';
import { assertValidKey, BlobNotFoundError, BlobStoreUnavailableError, type BlobStore, type ByteRange, type PresignOptions } from './blob-store.js';
import { BUCKET_RE } from '../config/s3-url.js';
import { abortReason, Semaphore } from './semaphore.js';

export { parseS3Url, S3UrlError, type S3Location } from '../config/s3-url.js';

// Blobs in an S3-compatible bucket (AWS S3, Ceph RGW, MinIO, Garage, R2...). The traps this
// file works around are in shared/notes/techniques.md §3 and s3-servers.md: lib-storage's
// abort() neither cancels requests in flight nor wakes uploaders stuck on a stalled body, the
// single-part path cannot be aborted at all, a GetObject body that is never read or destroyed
// holds its socket for ever, and the SDK's default checksums break most non-AWS servers.

// The AWS SDK costs about 27 MiB of RSS once loaded, and a Ferry on the filesystem store never
// needs it: it is loaded when the first S3BlobStore is made, not when storage/ is imported.
// require() rather than import(): the constructor is synchronous (openBlobStore is), and these
// packages are CommonJS in Node either way (no "exports" map; ESM imports load the same files).
const requireSdk = createRequire(import.meta.url);
let sdkModules: { s3: typeof ClientS3; storage: typeof LibStorage; presigner: typeof Presigner; http: typeof HttpHandler } | undefined;
function sdk() {
  return (sdkModules ??= {
    s3: requireSdk('@aws-sdk/client-s3') as typeof ClientS3,
    storage: requireSdk('@aws-sdk/lib-storage') as typeof LibStorage,
    presigner: requireSdk('@aws-sdk/s3-request-presigner') as typeof Presigner,
    http: requireSdk('@smithy/node-http-handler') as typeof HttpHandler,
  });
}

const MiB = 1024 * 1024;
const MAX_PARTS = 10_000;
const MIN_PART_SIZE = 5 * MiB;

/**
 * Uploads in flight across the whole process. Each holds about (queueSize + 1) x partSize bytes
 * of parts (up to about three times that in RSS until the garbage collector frees the copies
 * lib-storage drops), so this is what bounds the gateway's memory however many messages arrive
 * at once. Shared by every S3BlobStore unless one is given its own; resized from
 * storage.s3.maxConcurrentUploads (cli/storage-options.ts).
 */
export const s3UploadSlots = new Semaphore(8);

export interface S3BlobStoreOptions {
  bucket: string;
  /** Key prefix inside the bucket (e.g. "ferry/"), so one bucket can serve several things. */
  prefix?: string;
  /** An S3-compatible server, e.g. http://127.0.0.1:7480. Omit for AWS S3. */
  endpoint?: string;
  /** Default: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1 (what most S3-compatible servers expect). */
  region?: string;
  /** Path-style URLs (http://host/bucket/key). Default: true when `endpoint` is set, false for AWS. */
  forcePathStyle?: boolean;
  /** Static credentials; without them the AWS credential chain is used (AWS_ACCESS_KEY_ID, profiles, instance roles). */
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  /** Largest object Ferry will write (the SMTP hard limit): the part size grows so that 10,000 parts hold it. */
  maxObjectSize?: number;
  /**
   * Default 5 MiB (the S3 minimum), or more when maxObjectSize needs it. Memory per upload, as
   * measured on Node 20: about 2-3 x (queueSize + 1) x partSize, because lib-storage concatenates
   * each part and the copies it drops are freed only at the next garbage collection.
   */
  partSize?: number;
  /** Parts uploaded at once per object. Default 2. */
  queueSize?: number;
  /** Default: the process-wide s3UploadSlots. */
  uploadSlots?: Semaphore;
  /** Default 5 s. */
  connectionTimeoutMs?: number;
  /** Per request, until the response headers. Default 30 s. */
  requestTimeoutMs?: number;
  /**
   * A download waits at most this long for S3's answer (all attempts together) before the
   * recipient gets a 503: the SDK would otherwise retry a hung server for maxAttempts x
   * requestTimeout. Default 10 s.
   */
  openTimeoutMs?: number;
  /**
   * The SDK's flexible checksums. WHEN_REQUIRED (default) works everywhere; WHEN_SUPPORTED sends
   * stream bodies aws-chunked with a CRC32 trailer, which only AWS itself (and few others) accept.
   */
  checksums?: 'WHEN_REQUIRED' | 'WHEN_SUPPORTED';
  /** Attempts per request (the SDK's retries). Default 3. */
  maxAttempts?: number;
  /** A download whose S3 body sends nothing for this long, while Ferry is ready for more, is broken off. Default 30 s. */
  readIdleTimeoutMs?: number;
  /** How long check() may take before it calls the store unavailable. Default 3 s. */
  checkTimeoutMs?: number;
  /** A successful check() is trusted for this long (it runs on every MAIL FROM). Default 2 s. */
  checkCacheMs?: number;
  /** Sockets per agent. Default 50. */
  maxSockets?: number;
  /** Own keep-alive agent for the endpoint's protocol (tests watch its sockets). */
  agent?: http.Agent;
  /** The endpoint recipients' browsers reach, for presigned URLs, when it differs from `endpoint`. */
  publicEndpoint?: string;
  /** ListObjectsV2 page size. Default 1000. */
  listPageSize?: number;
}

export interface IncompleteUpload {
  key: string;
  uploadId: string;
  initiated: Date;
}

/** Part size so that `maxObjectSize` fits in 10,000 parts, rounded up to whole MiB. */
export function partSizeFor(maxObjectSize: number | undefined, requested = MIN_PART_SIZE): number {
  const needed = maxObjectSize ? Math.ceil(maxObjectSize / MAX_PARTS / MiB) * MiB : 0;
  return Math.max(MIN_PART_SIZE, requested, needed);
}

interface Watched {
  inflight: Set<Promise<unknown>>;
  uploadIds: Set<string>;
}

export class S3BlobStore implements BlobStore {
  readonly kind = 's3';
  readonly bucket: string;
  readonly prefix: string;
  readonly endpoint: string | undefined;
  readonly client: S3Client;
  readonly partSize: number;
  readonly queueSize: number;
  private readonly presignClient: S3Client;
  private readonly uploadSlots: Semaphore;
  private readonly readIdleTimeoutMs: number;
  private readonly openTimeoutMs: number;
  private readonly checkTimeoutMs: number;
  private readonly checkCacheMs: number;
  private readonly listPageSize: number;
  private checkedUntil = 0;
  // Requests per object key while a put() runs: lets a failed put wait until nothing more can
  // land before it deletes, and learn the multipart upload id lib-storage does not expose.
  private readonly watched = new Map<string, Watched>();

  constructor(opts: S3BlobStoreOptions) {
    if (!BUCKET_RE.test(opts.bucket)) throw new Error(`invalid bucket name ${JSON.stringify(opts.bucket)}`);
    this.bucket = opts.bucket;
    this.prefix = opts.prefix ?? '';
    this.endpoint = opts.endpoint;
    this.partSize = partSizeFor(opts.maxObjectSize, opts.partSize);
    this.queueSize = opts.queueSize ?? 2;
    this.uploadSlots = opts.uploadSlots ?? s3UploadSlots;
    this.readIdleTimeoutMs = opts.readIdleTimeoutMs ?? 30_000;
    this.openTimeoutMs = opts.openTimeoutMs ?? 10_000;
    this.checkTimeoutMs = opts.checkTimeoutMs ?? 3_000;
    this.checkCacheMs = opts.checkCacheMs ?? 2_000;
    this.listPageSize = opts.listPageSize ?? 1000;
    const { S3Client } = sdk().s3;
    this.client = new S3Client(this.clientConfig(opts, opts.endpoint));
    this.client.middlewareStack.add(
      (next) => async (args) => {
        const key = (args.input as { Key?: unknown }).Key;
        const w = typeof key === 'string' ? this.watched.get(key) : undefined;
        if (!w) return next(args);
        const p = next(args);
        w.inflight.add(p);
        try {
          const out = await p;
          const id = (out.output as { UploadId?: unknown }).UploadId;
          if (typeof id === 'string') w.uploadIds.add(id);
          return out;
        } finally {
          w.inflight.delete(p);
        }
      },
      { step: 'initialize', name: 'ferryWatchUploads' },
    );
    // URLs for browsers must carry the public host: an internal endpoint would leak into them.
    this.presignClient = opts.publicEndpoint && opts.publicEndpoint !== opts.endpoint ? new S3Client(this.clientConfig(opts, opts.publicEndpoint)) : this.client;
  }

  private clientConfig(opts: S3BlobStoreOptions, endpoint: string | undefined): S3ClientConfig {
    const agentOpts = { keepAlive: true, maxSockets: opts.maxSockets ?? 50 };
    const isHttps = !endpoint || endpoint.startsWith('https:');
    return {
      ...(endpoint && { endpoint }),
      region: opts.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
      forcePathStyle: opts.forcePathStyle ?? !!endpoint,
      ...(opts.accessKeyId && opts.secretAccessKey && {
        credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey, ...(opts.sessionToken && { sessionToken: opts.sessionToken }) },
      }),
      // SDK >= 3.729 would send stream bodies aws-chunked with a CRC32 trailer: Ceph RGW answers
      // 411, Swift 501, R2 501, and s3rver silently stores the chunk framing in the object.
      requestChecksumCalculation: opts.checksums ?? 'WHEN_REQUIRED',
      responseChecksumValidation: opts.checksums ?? 'WHEN_REQUIRED',
      maxAttempts: opts.maxAttempts ?? 3,
      requestHandler: new (sdk().http.NodeHttpHandler)({
        connectionTimeout: opts.connectionTimeoutMs ?? 5_000,
        requestTimeout: opts.requestTimeoutMs ?? 30_000,
        // Without it a request timeout only logs a warning, and a hung server hangs the upload for ever.
        throwOnRequestTimeout: true,
        httpAgent: !isHttps && opts.agent ? opts.agent : new http.Agent(agentOpts),
        httpsAgent: isHttps && opts.agent instanceof https.Agent ? opts.agent : new https.Agent(agentOpts),
      }),
    };
  }

  private objectKey(key: string): string {
    assertValidKey(key);
    return this.prefix + key;
  }

  private get where(): string {
    return `bucket ${this.bucket}${this.endpoint ? ` at ${this.endpoint}` : ''}`;
  }

  async put(key: string, body: Readable, opts: { contentType?: string; signal?: AbortSignal } = {}): Promise<void> {
    const Key = this.objectKey(key);
    const { signal } = opts;
    let release: () => void;
    try {
      // Waiting here without reading `body` is the backpressure: its producer stops too.
      release = await this.uploadSlots.acquire(signal);
    } catch (err) {
      body.destroy();
      throw err;
    }
    const watched: Watched = { inflight: new Set(), uploadIds: new Set() };
    this.watched.set(Key, watched);
    // lib-storage reads its Body through an async iterator, and when an uploader fails, that
    // iterator's return() destroys the stream. Had it read the caller's body, the caller (the
    // gateway) would see its stream break before put() rejects and report a broken stream
    // instead of this storage failure. So lib-storage reads a proxy fed by pipe() (which keeps
    // backpressure), and the caller's body is destroyed only once the cleanup below is done.
    const feed = new PassThrough({ highWaterMark: 64 * 1024 });
    const onBodyError = (err: Error) => feed.destroy(err);
    body.once('error', onBodyError);
    body.pipe(feed);
    const upload = new (sdk().storage.Upload)({
      client: this.client,
      params: { Bucket: this.bucket, Key, Body: feed, ...(opts.contentType && { ContentType: opts.contentType }) },
      partSize: this.partSize,
      queueSize: this.queueSize,
    });
    // abort() alone leaves uploaders waiting on a stalled body for ever, and then lib-storage
    // never sends AbortMultipartUpload: destroying the body wakes them.
    const onAbort = () => {
      void upload.abort();
      feed.destroy(abortReason(signal!));
      body.destroy(abortReason(signal!));
    };
    try {
      if (signal?.aborted) throw abortReason(signal);
      signal?.addEventListener('abort', onAbort, { once: true });
      await upload.done();
    } catch (err) {
      // The body's own error when it failed: lib-storage may report its AbortMultipartUpload's
      // failure instead (a server without that call answers 405), which would hide the cause.
      const bodyError = signal?.aborted ? null : body.errored;
      void upload.abort();
      feed.destroy();
      await this.discardFailedPut(Key, watched);
      // Only now, right before this promise rejects (see `feed` above).
      body.unpipe(feed);
      body.destroy();
      if (signal?.aborted) throw abortReason(signal);
      if (bodyError) throw bodyError;
      throw unavailable(`upload of ${key} to ${this.where}`, err);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      body.off('error', onBodyError);
      this.watched.delete(Key);
      release();
    }
  }

  /**
   * After a failed or aborted put: waits until no request for the key is in flight (a PutObject
   * or CompleteMultipartUpload already sent still lands, and must land before the delete), then
   * aborts the multipart upload and deletes the key. Best effort: what a dead server keeps is
   * left to abortIncompleteUploads() and the bucket's lifecycle rule.
   */
  private async discardFailedPut(Key: string, w: Watched): Promise<void> {
    for (;;) {
      if (w.inflight.size) await Promise.allSettled([...w.inflight]);
      // lib-storage sends its own AbortMultipartUpload a tick after its uploaders stop.
      await new Promise((r) => setImmediate(r));
      if (!w.inflight.size) break;
    }
    const quick = () => ({ abortSignal: AbortSignal.timeout(this.checkTimeoutMs * 2) });
    for (const UploadId of w.uploadIds) {
      await this.client.send(new (sdk().s3.AbortMultipartUploadCommand)({ Bucket: this.bucket, Key, UploadId }), quick()).catch(() => undefined);
    }
    await this.client.send(new (sdk().s3.DeleteObjectCommand)({ Bucket: this.bucket, Key }), quick()).catch(() => undefined);
  }

  async openRead(key: string, opts: { range?: ByteRange; signal?: AbortSignal } = {}): Promise<Readable> {
    const Key = this.objectKey(key);
    const { range, signal } = opts;
    if (range && !(Number.isSafeInteger(range.start) && Number.isSafeInteger(range.end) && range.start >= 0 && range.end >= range.start)) {
      throw new RangeError(`invalid byte range ${range.start}-${range.end}`);
    }
    let res;
    const deadline = AbortSignal.timeout(this.openTimeoutMs);
    try {
      // Always an absolute range: suffix ranges (bytes=-N) are wrong on some servers (s3rver).
      res = await this.client.send(
        new (sdk().s3.GetObjectCommand)({ Bucket: this.bucket, Key, ...(range && { Range: `bytes=${range.start}-${range.end}` }) }),
        { abortSignal: signal ? AbortSignal.any([signal, deadline]) : deadline },
      );
    } catch (err) {
      if (signal?.aborted) throw abortReason(signal);
      if (isNotFound(err)) throw new BlobNotFoundError(key);
      if (deadline.aborted) throw new BlobStoreUnavailableError(`S3 read of ${key} from ${this.where} got no answer within ${this.openTimeoutMs} ms`, { cause: err });
      throw unavailable(`read of ${key} from ${this.where}`, err);
    }
    const body = res.Body;
    if (!(body instanceof Readable)) throw new BlobStoreUnavailableError(`S3 GetObject for ${key} returned no stream body`);
    try {
      if (signal?.aborted) throw abortReason(signal);
      const length = res.ContentLength;
      if (range) {
        // A server that ignored the range would send the whole object: catch it before a byte
        // reaches the recipient under 206 headers.
        const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.ContentRange ?? '');
        if (!m || Number(m[1]) !== range.start || Number(m[2]) !== range.end || length !== range.end - range.start + 1) {
          throw new BlobStoreUnavailableError(
            `S3 answered range ${range.start}-${range.end} of ${key} with Content-Range ${res.ContentRange ?? '(none)'} and Content-Length ${length ?? '(none)'}`,
          );
        }
      }
      if (length === undefined) throw new BlobStoreUnavailableError(`S3 GetObject for ${key} has no Content-Length`);
      return this.guardBody(key, body, length, signal);
    } catch (err) {
      // An unread GetObject body keeps its socket out of the pool for good (aws-sdk-js-v3 #6691).
      body.destroy();
      throw err;
    }
  }

  /**
   * The stream handed to the caller: counts bytes against Content-Length (a cut connection must
   * not look like a short file), breaks off when S3 stalls while the reader is waiting (the SDK's
   * requestTimeout ends at the headers), and destroys the S3 body whenever it ends early.
   */
  private guardBody(key: string, body: Readable, length: number, signal?: AbortSignal): Readable {
    let received = 0;
    let lastProgress = Date.now();
    const out = new Transform({
      // The S3 body arrives in socket-sized chunks whatever this says; it is only how much is read
      // ahead per download, i.e. memory (docs/performance.md, "Download path").
      highWaterMark: 256 * 1024,
      transform(chunk: Buffer, _enc, cb: TransformCallback) {
        received += chunk.length;
        lastProgress = Date.now();
        cb(null, chunk);
      },
      flush(cb: TransformCallback) {
        cb(received === length ? null : new BlobStoreUnavailableError(`S3 sent ${received} of ${length} bytes of ${key}`));
      },
    });
    const idle = this.readIdleTimeoutMs;
    const timer = setInterval(
      () => {
        // A full buffer means the reader is slow, not S3: that is not a stall.
        if (out.writableNeedDrain) lastProgress = Date.now();
        else if (Date.now() - lastProgress > idle) body.destroy(new BlobStoreUnavailableError(`S3 sent nothing for ${Math.round(idle / 1000)} s while reading ${key}`));
      },
      Math.max(50, Math.min(1000, idle / 4)),
    );
    timer.unref();
    const onAbort = () => out.destroy(abortReason(signal!));
    signal?.addEventListener('abort', onAbort, { once: true });
    pipeline(body, out, () => {
      clearInterval(timer);
      signal?.removeEventListener('abort', onAbort);
    });
    return out;
  }

  async delete(key: string): Promise<void> {
    const Key = this.objectKey(key);
    try {
      await this.client.send(new (sdk().s3.DeleteObjectCommand)({ Bucket: this.bucket, Key }));
    } catch (err) {
      if (isNotFound(err)) return;
      throw unavailable(`delete of ${key} from ${this.where}`, err);
    }
  }

  async exists(key: string): Promise<boolean> {
    const Key = this.objectKey(key);
    try {
      await this.client.send(new (sdk().s3.HeadObjectCommand)({ Bucket: this.bucket, Key }));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw unavailable(`HEAD of ${key} in ${this.where}`, err);
    }
  }

  async *list(prefix = ''): AsyncIterable<string> {
    let ContinuationToken: string | undefined;
    do {
      const res = await this.client
        .send(new (sdk().s3.ListObjectsV2Command)({ Bucket: this.bucket, Prefix: this.prefix + prefix, MaxKeys: this.listPageSize, ...(ContinuationToken && { ContinuationToken }) }))
        .catch((err: unknown) => {
          throw unavailable(`listing of ${this.where}`, err);
        });
      for (const o of res.Contents ?? []) if (o.Key) yield o.Key.slice(this.prefix.length);
      ContinuationToken = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  /** Multipart uploads begun under this store's prefix and never completed or aborted (a crash, a dead server). */
  async *listIncompleteUploads(): AsyncIterable<IncompleteUpload> {
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    for (;;) {
      const res = await this.client
        .send(new (sdk().s3.ListMultipartUploadsCommand)({ Bucket: this.bucket, Prefix: this.prefix, ...(KeyMarker && { KeyMarker }), ...(UploadIdMarker && { UploadIdMarker }) }))
        .catch((err: unknown) => {
          throw unavailable(`listing of incomplete uploads in ${this.where} (a server without ListMultipartUploads needs a lifecycle rule instead)`, err);
        });
      for (const u of res.Uploads ?? []) {
        if (u.Key && u.UploadId) yield { key: u.Key.slice(this.prefix.length), uploadId: u.UploadId, initiated: u.Initiated ?? new Date(0) };
      }
      if (!res.IsTruncated) return;
      KeyMarker = res.NextKeyMarker;
      UploadIdMarker = res.NextUploadIdMarker;
      if (!KeyMarker && !UploadIdMarker) return;
    }
  }

  /**
   * Aborts incomplete multipart uploads begun more than `olderThanMs` ago; returns how many (see
   * BlobStore.abortIncompleteUploads). Uploads of this process that are still running are never
   * touched, whatever their age. A server without ListMultipartUploads (s3rver) makes it throw:
   * such a bucket needs a lifecycle rule (AbortIncompleteMultipartUpload) instead.
   */
  async abortIncompleteUploads(olderThanMs: number, now = Date.now()): Promise<number> {
    const stale: IncompleteUpload[] = [];
    const running = new Set([...this.watched.values()].flatMap((w) => [...w.uploadIds]));
    for await (const u of this.listIncompleteUploads()) if (u.initiated.getTime() <= now - olderThanMs && !running.has(u.uploadId)) stale.push(u);
    let n = 0;
    for (const u of stale) {
      try {
        await this.client.send(new (sdk().s3.AbortMultipartUploadCommand)({ Bucket: this.bucket, Key: this.prefix + u.key, UploadId: u.uploadId }));
        n++;
      } catch (err) {
        if ((err as { name?: string }).name !== 'NoSuchUpload') throw unavailable(`abort of upload ${u.uploadId} in ${this.where}`, err);
      }
    }
    return n;
  }

  /**
   * A time-limited URL a browser can GET the blob from directly (redirect mode). It bypasses
   * Ferry's revocation, logging and limits until it expires: keep `expiresIn` short (seconds).
   */
  async presignGet(key: string, opts: PresignOptions = {}): Promise<string> {
    const Key = this.objectKey(key);
    const cmd = new (sdk().s3.GetObjectCommand)({
      Bucket: this.bucket,
      Key,
      ...(opts.contentDisposition && { ResponseContentDisposition: opts.contentDisposition }),
      ...(opts.contentType && { ResponseContentType: opts.contentType }),
    });
    return sdk().presigner.getSignedUrl(this.presignClient, cmd, { expiresIn: opts.expiresIn ?? 300 });
  }

  async check(): Promise<void> {
    if (Date.now() < this.checkedUntil) return;
    try {
      await this.client.send(new (sdk().s3.HeadBucketCommand)({ Bucket: this.bucket }), { abortSignal: AbortSignal.timeout(this.checkTimeoutMs) });
    } catch (err) {
      this.checkedUntil = 0;
      const what = isNotFound(err) ? 'does not exist' : `is not reachable (${describe(err)})`;
      throw new BlobStoreUnavailableError(`S3 ${this.where} ${what}`, { cause: err });
    }
    this.checkedUntil = Date.now() + this.checkCacheMs;
  }

  async close(): Promise<void> {
    this.client.destroy();
    if (this.presignClient !== this.client) this.presignClient.destroy();
  }
}

function status(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

function isNotFound(err: unknown): boolean {
  const name = (err as { name?: string })?.name;
  return name === 'NoSuchKey' || name === 'NotFound' || name === 'NoSuchBucket' || status(err) === 404;
}

/** Ceph answers errors without a <Message>, so the SDK's message is "UnknownError": name, code and status say more. */
function describe(err: unknown): string {
  const e = err as { name?: string; message?: string; code?: string };
  const parts = [e?.name ?? 'Error'];
  const st = status(err);
  if (st) parts.push(`HTTP ${st}`);
  if (e?.code && e.code !== e.name) parts.push(e.code);
  if (e?.message && e.message !== 'UnknownError' && e.message !== e.name) parts.push(e.message);
  return parts.join(', ');
}

function unavailable(what: string, err: unknown): BlobStoreUnavailableError {
  return new BlobStoreUnavailableError(`S3 ${what} failed: ${describe(err)}`, { cause: err });
}
