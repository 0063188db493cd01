import { Transform, type TransformCallback } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { recordDownload, type Db } from '../storage/index.js';
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

export interface DownloadLogEntry {
  transferId: string;
  /** null for the zip of all files. */
  fileIdx: number | null;
  /** The status the response was planned with; a late error changes it and the download does not count. */
  status: number;
  /** Bytes the planned body has (the Content-Length); 0 for HEAD and bodiless statuses. */
  bodyLength: number;
  /**
   * This response, if it is delivered completely, is a real download: a GET whose body is the
   * whole file (200, or a 206 that happens to cover every byte) or the whole zip, not from a
   * scanner and not a prefetch.
   */
  countable: boolean;
  kind: RequestKind;
}

/**
 * Writes one download record when the response is over, whether it finished or the client went
 * away: time, file, bytes sent, range, status, client, user agent, method, scanner, counted.
 * `counted` is true only for a countable response whose every byte was handed to the client.
 */
export function logDownloadOnClose(request: FastifyRequest, reply: FastifyReply, db: Db, entry: DownloadLogEntry, counter?: ByteCounter): void {
  const res = reply.raw;
  // Read now: once the client has gone the socket no longer knows its peer.
  const client = request.ip ?? null;
  const range = request.headers.range;
  const userAgent = request.headers['user-agent'] ?? null;
  const method = request.method;
  res.once('close', () => {
    const status = res.statusCode;
    // Bytes still queued in the response or socket never left this process.
    const bytesSent = counter ? Math.max(0, counter.bytes - res.writableLength) : 0;
    // Not res.writableFinished: a client that has every byte may hang up before the stream's
    // 'end' reaches res.end(), and that download is complete all the same.
    const complete = status === entry.status && bytesSent === entry.bodyLength && res.writableLength === 0;
    countDownload({ counted: entry.countable && complete, scanner: entry.kind.scanner, prefetch: entry.kind.prefetch, method, status, countable: entry.countable, complete, bytesSent });
    recordDownload(db, {
      transferId: entry.transferId,
      fileIdx: entry.fileIdx,
      status,
      bytesSent,
      range: range ? range.slice(0, 200) : null,
      client,
      userAgent,
      counted: entry.countable && complete,
      scanner: entry.kind.scanner || entry.kind.prefetch,
      method,
    }).catch((err: unknown) => request.log.warn({ err }, 'could not record a download'));
  });
}
