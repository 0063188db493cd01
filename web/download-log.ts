import { Transform, type TransformCallback } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { recordDownload, type Db, type StoredFile } from '../storage/index.js';

/** Counts the bytes handed to the response, for the download log. */
export class ByteCounter extends Transform {
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

/**
 * Writes one download record when the response is over, whether it finished or the client went
 * away. Only a complete 200 counts as a download; ranges, conditionals and aborts are logged
 * with counted = false.
 */
export function logDownloadOnClose(request: FastifyRequest, reply: FastifyReply, db: Db, file: StoredFile, counter: ByteCounter): void {
  const res = reply.raw;
  // Read now: once the client has gone the socket no longer knows its peer.
  const client = request.ip ?? null;
  const range = request.headers.range;
  const userAgent = request.headers['user-agent'] ?? null;
  res.once('close', () => {
    const status = res.statusCode;
    // Bytes still queued in the response or socket never left this process.
    const bytesSent = Math.max(0, counter.bytes - res.writableLength);
    // Not res.writableFinished: a client that has every byte may hang up before the stream's
    // 'end' reaches res.end(), and that download is complete all the same.
    const counted = status === 200 && bytesSent === file.size && res.writableLength === 0;
    recordDownload(db, {
      transferId: file.transferId,
      fileIdx: file.idx,
      status,
      bytesSent,
      range: range ? range.slice(0, 200) : null,
      client,
      userAgent,
      counted,
    }).catch((err: unknown) => request.log.warn({ err }, 'could not record a download'));
  });
}
