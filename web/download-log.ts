import { Transform, type TransformCallback } from 'node:stream';
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import { finishDownloads, reserveDownload, type Db, type DownloadEnd, type DownloadStart } from '../storage/index.js';
import { countDownload } from './metrics.js';
import type { RequestKind } from './scanners.js';

/** Counts the bytes handed to the response, for the download log. */
export class ByteCounter extends Transform {
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

// Batching: the final record of a download is written after the response, off the request's
// path, together with whatever else ended meanwhile, in one transaction. With SQLite
// (better-sqlite3 is synchronous) that is one commit and one fsync per batch instead of one per
// request on the event loop; with PostgreSQL one round trip series per batch. A pending record
// only ever holds a slot a little longer, never frees one early, so limits stay exact.
const FLUSH_DELAY_MS = 10;
const MAX_BATCH = 256;

/**
 * The download log of one web process. Reservations are written at once (they must be in the
 * database before the first byte); final records are queued and written in batches. Holds no
 * state another process needs: the database is the one truth for limits.
 */
export class DownloadLog {
  private queue: Ended[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Db,
    private readonly log: FastifyBaseLogger,
  ) {}

  /** One of the file's (or, for a zip, every file's) allowed downloads, or undefined when they are used up. */
  reserve(start: DownloadStart, limit: number): Promise<number | undefined> {
    return reserveDownload(this.db, start, limit);
  }

  end(ended: Ended): void {
    this.queue.push(ended);
    if (this.queue.length >= MAX_BATCH) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), FLUSH_DELAY_MS);
  }

  /** Writes what is queued; resolves when it is in the database (or logged as failed). */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return this.flushing;
    this.flushing = this.flushing.then(async () => {
      let counted: (boolean | undefined)[];
      try {
        counted = await finishDownloads(
          this.db,
          batch.map((b) => b.end),
        );
      } catch (err) {
        // One bad record (say, of a transfer the sweeper removed meanwhile) must not cost the
        // others theirs: write them one by one.
        counted = [];
        for (const b of batch) {
          try {
            counted.push((await finishDownloads(this.db, [b.end]))[0]);
          } catch (oneErr) {
            // A reservation whose record failed keeps its slot (counted as used): a limit errs
            // on the side of the sender's wish, never past it.
            counted.push(undefined);
            this.log.warn({ err: oneErr, batchErr: err, transferId: b.end.transferId }, 'could not record a download');
          }
        }
      }
      batch.forEach(({ end, kind, complete, countable }, i) =>
        countDownload({
          counted: counted[i] === true,
          scanner: kind.scanner,
          prefetch: kind.prefetch,
          method: end.method,
          status: end.status,
          countable,
          complete,
          bytesSent: end.bytesSent,
        }),
      );
    });
    return this.flushing;
  }

  async close(): Promise<void> {
    await this.flush();
  }
}

/** A request that ended, as queued for the batch. */
interface Ended {
  end: DownloadEnd;
  kind: RequestKind;
  /** Every planned byte left (metrics only). */
  complete: boolean;
  /** The planned body was the whole file or zip (metrics only). */
  countable: boolean;
}

export interface DownloadLogEntry {
  transferId: string;
  /** null for the zip of all files. */
  fileIdx: number | null;
  /** The status the response was planned with; a late error changes it and the download does not count. */
  status: number;
  /** Bytes the planned body has (the Content-Length); 0 for HEAD and bodiless statuses. */
  bodyLength: number;
  /** The planned body is the whole file (or the whole zip); for a redirect, the redirect is for the whole file. */
  whole: boolean;
  /** The file's size (ranges of one client add up to it); absent for the zip. */
  fileSize?: number;
  /** The slot reserveDownload() took for this request. */
  reservation?: number;
  kind: RequestKind;
}

/**
 * What a request says about itself, read at its start (once the client has gone the socket no
 * longer knows its peer). The link it came through (set by web/plugins/transfer-context.ts) is
 * whose allowance it uses and what the download log records.
 */
export function downloadStart(request: FastifyRequest, transferId: string, fileIdx: number | null, status: number, kind: RequestKind): DownloadStart {
  const range = request.headers.range;
  return {
    transferId,
    linkId: request.ferryLink?.id ?? null,
    fileIdx,
    status,
    range: range ? range.slice(0, 200) : null,
    client: request.ip ?? null,
    userAgent: request.headers['user-agent'] ?? null,
    scanner: kind.scanner || kind.prefetch,
    method: request.method,
  };
}

/**
 * Records the download when the response is over, whether it finished or the client went away:
 * time, file, bytes sent, range, status, client, user agent, method, scanner, counted.
 */
export function logDownloadOnClose(request: FastifyRequest, reply: FastifyReply, log: DownloadLog, entry: DownloadLogEntry, counter?: ByteCounter): void {
  const res = reply.raw;
  const start = downloadStart(request, entry.transferId, entry.fileIdx, entry.status, entry.kind);
  res.once('close', () => {
    const status = res.statusCode;
    // Bytes still queued in the response or socket never left this process.
    const bytesSent = counter ? Math.max(0, counter.bytes - res.writableLength) : 0;
    // Not res.writableFinished: a client that has every byte may hang up before the stream's
    // 'end' reaches res.end(), and that download is complete all the same.
    const complete = status === entry.status && bytesSent === entry.bodyLength && res.writableLength === 0;
    const countable = entry.whole && start.method === 'GET';
    log.end({
      end: {
        ...start,
        status,
        bytesSent,
        whole: countable && complete,
        ...(entry.fileSize !== undefined && status === entry.status ? { fileSize: entry.fileSize } : {}),
        ...(entry.reservation !== undefined ? { reservation: entry.reservation } : {}),
      },
      kind: entry.kind,
      complete,
      countable,
    });
  });
}
