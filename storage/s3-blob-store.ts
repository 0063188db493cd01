import http from 'node:http';
import https from 'node:https';
import { pipeline, Readable, Transform, type TransformCallback } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { assertValidKey, BlobNotFoundError, BlobStoreUnavailableError, type BlobStore, type ByteRange } from './blob-store.js';
import { abortReason, Semaphore } from './semaphore.js';

// Blobs in an S3-compatible bucket (AWS S3, Ceph RGW, MinIO, Garage, R2...). The traps this
// file works around are in shared/notes/techniques.md §3 and s3-servers.md: lib-storage's
// abort() neither cancels requests in flight nor wakes uploaders stuck on a stalled body, the
// single-part path cannot be aborted at all, a GetObject body that is never read or destroyed
// holds its socket for ever, and the SDK's default checksums break most non-AWS servers.

const MiB = 1024 * 1024;
const MAX_PARTS = 10_000;
const MIN_PART_SIZE = 5 * MiB;

/**
 * Uploads in flight across the whole process. Each holds up to (queueSize + 1) x partSize bytes,
 * so this is what bounds the gateway's memory however many messages arrive at once. Shared by
 * every S3BlobStore unless one is given its own; resize() it from the configuration.
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
  /** Default 8 MiB, or more when maxObjectSize needs it. */
  partSize?: number;
  /** Parts uploaded at once per object. Default 2. */
  queueSize?: number;
  /** Default: the process-wide s3UploadSlots. */
  uploadSlots?: Semaphore;
  /** Default 5 s. */
  connectionTimeoutMs?: number;
  /** Per request, until the response headers. Default 30 s. */
  requestTimeoutMs?: number;
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

const URL_PARAMS = new Set(['endpoint', 'region', 'forcePathStyle', 'publicEndpoint']);
const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/**
 * Reads `s3://BUCKET[/PREFIX/]?endpoint=URL&region=R&forcePathStyle=true|false&publicEndpoint=URL`.
 * Credentials never go in the URL (it is logged): they come from the options or the AWS chain.
 */
export function parseS3Url(url: string): Pick<S3BlobStoreOptions, 'bucket' | 'prefix' | 'endpoint' | 'region' | 'forcePathStyle' | 'publicEndpoint'> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`invalid blob store URL ${url} (expected s3://BUCKET?endpoint=...)`);
  }
  if (u.protocol !== 's3:') throw new Error(`not an s3:// URL: ${url}`);
  if (u.username || u.password) throw new Error('credentials do not belong in the s3:// URL (it is logged): use the AWS environment variables or the storage credentials settings');
  const bucket = u.hostname;
  if (!BUCKET_RE.test(bucket)) throw new Error(`invalid bucket name ${JSON.stringify(bucket)} in ${url}`);
  const path = decodeURIComponent(u.pathname).replace(/^\/+/, '');
  const prefix = path ? (path.endsWith('/') ? path : `${path}/`) : '';
  if (prefix && !/^[a-z0-9][a-z0-9_.-]*\/([a-z0-9][a-z0-9_.-]*\/)*$/.test(prefix)) throw new Error(`invalid key prefix ${JSON.stringify(prefix)} in ${url}`);
  for (const k of u.searchParams.keys()) if (!URL_PARAMS.has(k)) throw new Error(`unknown parameter ${k} in ${url} (known: ${[...URL_PARAMS].join(', ')})`);
  const q = (k: string) => u.searchParams.get(k) ?? undefined;
  const endpoint = q('endpoint');
  const publicEndpoint = q('publicEndpoint');
  for (const [k, v] of [['endpoint', endpoint], ['publicEndpoint', publicEndpoint]] as const) {
    if (v !== undefined && !/^https?:\/\/[^/?#]+\/?$/.test(v)) throw new Error(`${k} in ${url} must be http(s)://host[:port]`);
  }
  const fps = q('forcePathStyle');
  if (fps !== undefined && fps !== 'true' && fps !== 'false') throw new Error(`forcePathStyle in ${url} must be true or false`);
  return {
    bucket,
    ...(prefix && { prefix }),
    ...(endpoint && { endpoint }),
    ...(q('region') && { region: q('region') }),
    ...(fps !== undefined && { forcePathStyle: fps === 'true' }),
    ...(publicEndpoint && { publicEndpoint }),
  };
}

/** Part size so that `maxObjectSize` fits in 10,000 parts, rounded up to whole MiB. */
export function partSizeFor(maxObjectSize: number | undefined, requested = 8 * MiB): number {
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
    this.checkTimeoutMs = opts.checkTimeoutMs ?? 3_000;
    this.checkCacheMs = opts.checkCacheMs ?? 2_000;
    this.listPageSize = opts.listPageSize ?? 1000;
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
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: opts.maxAttempts ?? 3,
      requestHandler: new NodeHttpHandler({
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
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key, Body: body, ...(opts.contentType && { ContentType: opts.contentType }) },
      partSize: this.partSize,
      queueSize: this.queueSize,
    });
    // abort() alone leaves uploaders waiting on a stalled body for ever, and then lib-storage
    // never sends AbortMultipartUpload: destroying the body wakes them.
    const onAbort = () => {
      void upload.abort();
      body.destroy(abortReason(signal!));
    };
    try {
      if (signal?.aborted) throw abortReason(signal);
      signal?.addEventListener('abort', onAbort, { once: true });
      await upload.done();
    } catch (err) {
      const bodyFailed = body.errored && !signal?.aborted;
      void upload.abort();
      body.destroy();
      await this.discardFailedPut(Key, watched);
      if (signal?.aborted) throw abortReason(signal);
      if (bodyFailed) throw err;
      throw unavailable(`upload of ${key} to ${this.where}`, err);
    } finally {
      signal?.removeEventListener('abort', onAbort);
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
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId }), quick()).catch(() => undefined);
    }
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key }), quick()).catch(() => undefined);
  }

  async openRead(key: string, opts: { range?: ByteRange; signal?: AbortSignal } = {}): Promise<Readable> {
    const Key = this.objectKey(key);
    const { range, signal } = opts;
    if (range && !(Number.isSafeInteger(range.start) && Number.isSafeInteger(range.end) && range.start >= 0 && range.end >= range.start)) {
      throw new RangeError(`invalid byte range ${range.start}-${range.end}`);
    }
    let res;
    try {
      // Always an absolute range: suffix ranges (bytes=-N) are wrong on some servers (s3rver).
      res = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key, ...(range && { Range: `bytes=${range.start}-${range.end}` }) }),
        signal ? { abortSignal: signal } : {},
      );
    } catch (err) {
      if (signal?.aborted) throw abortReason(signal);
      if (isNotFound(err)) throw new BlobNotFoundError(key);
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
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key }));
    } catch (err) {
      if (isNotFound(err)) return;
      throw unavailable(`delete of ${key} from ${this.where}`, err);
    }
  }

  async exists(key: string): Promise<boolean> {
    const Key = this.objectKey(key);
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }));
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
        .send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix + prefix, MaxKeys: this.listPageSize, ...(ContinuationToken && { ContinuationToken }) }))
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
        .send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: this.prefix, ...(KeyMarker && { KeyMarker }), ...(UploadIdMarker && { UploadIdMarker }) }))
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

  /** Aborts incomplete multipart uploads begun more than `olderThanMs` ago; returns how many. */
  async abortIncompleteUploads(olderThanMs: number, now = Date.now()): Promise<number> {
    const stale: IncompleteUpload[] = [];
    for await (const u of this.listIncompleteUploads()) if (u.initiated.getTime() <= now - olderThanMs) stale.push(u);
    let n = 0;
    for (const u of stale) {
      try {
        await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.prefix + u.key, UploadId: u.uploadId }));
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
  async presignGet(key: string, opts: { expiresIn?: number; contentDisposition?: string; contentType?: string } = {}): Promise<string> {
    const Key = this.objectKey(key);
    const cmd = new GetObjectCommand({
      Bucket: this.bucket,
      Key,
      ...(opts.contentDisposition && { ResponseContentDisposition: opts.contentDisposition }),
      ...(opts.contentType && { ResponseContentType: opts.contentType }),
    });
    return getSignedUrl(this.presignClient, cmd, { expiresIn: opts.expiresIn ?? 300 });
  }

  async check(): Promise<void> {
    if (Date.now() < this.checkedUntil) return;
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }), { abortSignal: AbortSignal.timeout(this.checkTimeoutMs) });
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
