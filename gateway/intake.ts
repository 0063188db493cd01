import { Writable } from 'node:stream';
import { drainOrClose } from './backpressure.js';
import { CrlfNormalizer } from './line-ends.js';

// The first stage of every message: counts the DATA bytes and enforces the size policy, and
// feeds up to two sinks: the MIME pipeline and, while it may still be needed, a raw copy.
//
// Size policy (RFC 1870, DESIGN.md): past `maxSize` the bytes are discarded, never stored, but
// still read so the client gets a 552 after its final dot and the session stays usable; past
// `hardLimit` the caller drops the connection.

export interface IntakeOptions {
  maxSize: number;
  hardLimit: number;
  onOversize: (bytes: number) => void;
  onHardLimit: (bytes: number) => void;
}

export class Intake extends Writable {
  bytes = 0;
  oversize = false;
  hardLimited = false;
  private sinks = new Map<string, Writable>();
  private opts: IntakeOptions;

  constructor(opts: IntakeOptions) {
    super({ highWaterMark: 64 * 1024 });
    this.opts = opts;
  }

  /**
   * Adds a sink; bytes written from now on go to it, with backpressure. `canonicalLineEnds`:
   * the sink gets them with bare CR and LF made CRLF (the raw copy, which may be relayed as it
   * is; line-ends.ts says why).
   */
  attach(name: string, sink: Writable, opts: { canonicalLineEnds?: boolean } = {}): void {
    if (!opts.canonicalLineEnds) {
      this.sinks.set(name, sink);
      return;
    }
    const normalizer = new CrlfNormalizer();
    normalizer.pipe(sink);
    // A sink destroyed by its owner (oversize) must not leave the normalizer waiting on it.
    sink.once('close', () => normalizer.destroy());
    this.sinks.set(name, normalizer);
  }

  /** Stops feeding a sink and ends it (or not, when it is being thrown away). */
  detach(name: string, end = true): void {
    const sink = this.sinks.get(name);
    if (!sink) return;
    this.sinks.delete(name);
    if (end && !sink.writableEnded && !sink.destroyed) sink.end();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.bytes += chunk.length;
    if (this.bytes > this.opts.hardLimit) {
      if (!this.hardLimited) {
        this.hardLimited = true;
        this.dropSinks();
        this.opts.onHardLimit(this.bytes);
      }
      return cb();
    }
    if (this.oversize) return cb();
    if (this.bytes > this.opts.maxSize) {
      this.oversize = true;
      this.dropSinks();
      this.opts.onOversize(this.bytes);
      return cb();
    }
    let waiting = 0;
    let done = false;
    const release = () => {
      if (--waiting === 0 && !done) {
        done = true;
        cb();
      }
    };
    waiting++;
    for (const sink of this.sinks.values()) {
      if (sink.destroyed || sink.writableEnded) continue;
      if (!sink.write(chunk)) {
        waiting++;
        void drainOrClose(sink).then(release);
      }
    }
    release();
  }

  override _final(cb: (err?: Error | null) => void): void {
    for (const name of [...this.sinks.keys()]) this.detach(name, true);
    cb();
  }

  private dropSinks() {
    for (const name of [...this.sinks.keys()]) this.detach(name, false);
  }
}
