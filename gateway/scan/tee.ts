import { Transform, type TransformCallback } from 'node:stream';
import type { ScanSession } from './types.js';

/**
 * Passes the decoded bytes of one file on to the blob store unchanged and gives each chunk to a
 * scanner at the same time: one read of the file feeds both. A chunk goes on only when the scanner
 * has room for it too (backpressure from both sides); a scanner that fails stops taking part and
 * the bytes flow on (the verdict says "error", the gate decides).
 */
export class ScanTee extends Transform {
  constructor(private readonly session: ScanSession) {
    super({ highWaterMark: 256 * 1024 });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.push(chunk);
    if (this.session.write(chunk)) return cb();
    this.session.drained().then(() => cb(), cb);
  }

  override _flush(cb: TransformCallback): void {
    this.session.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    if (err) this.session.abort();
    cb(err);
  }
}
