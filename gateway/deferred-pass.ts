import { Writable } from 'node:stream';
import { drainOrClose } from './backpressure.js';

// Pass 1 (MIME splitting, offloading, joining) starts only once a message could hold a part to
// offload. A part's decoded size is never larger than its encoded size (base64,
// quoted-printable and uuencode only shrink; 7bit, 8bit and binary stay the same), so a message
// that ends below offload.minAttachmentSize has nothing to offload whatever its structure.
// Such a message is relayed from the raw copy as it came, which is what pass 1 would have ended
// in too. Until then the DATA chunks are held here, at most `threshold` bytes: the smaller of
// offload.minAttachmentSize and smtp.memorySpoolLimit, so that no message holds more here than
// the admin lets one message's copy hold in memory. Pass 1 starts when the bytes reach it, and
// gets the held chunks first.
//
// For a 10 KiB message this saves six streams, mailsplit's header parse of every part and the
// pass-1 working copy: about a fifth of the CPU of a small message (docs/performance.md).
// The MIME structure limits (gateway/mime-limits.ts) bound pass 1's own cost; a message that
// never starts it costs nothing there, and one past a limit was relayed unchanged anyway.

export interface StartedPass {
  /** Where the message's bytes go once the pass runs. */
  input: Writable;
  /** Settles when the pass has finished, or fails. */
  done: Promise<void>;
}

export class DeferredPass extends Writable {
  /** Settles when pass 1 has finished, or at the end of the data when it never started. */
  readonly done: Promise<void>;
  private held: Buffer[] = [];
  private heldBytes = 0;
  private input: Writable | undefined;
  private settle!: { resolve: () => void; reject: (err: unknown) => void };

  /** Whether pass 1 ran (false: the message ended below the threshold and skipped it). */
  get started(): boolean {
    return this.input !== undefined;
  }

  constructor(
    private readonly threshold: number,
    private readonly start: () => StartedPass,
  ) {
    super({ highWaterMark: 64 * 1024 });
    this.done = new Promise<void>((resolve, reject) => (this.settle = { resolve, reject }));
    // Its owner learns of a failure from `done`; the intake that feeds it stops listening once it
    // drops its sinks (oversize), and an 'error' with no listener would take the process down.
    this.on('error', () => undefined);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (!this.input) {
      this.held.push(chunk);
      this.heldBytes += chunk.length;
      if (this.heldBytes < this.threshold) return cb();
      this.begin();
      return this.forward(this.held.splice(0), cb);
    }
    this.forward([chunk], cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.input) this.input.end();
    else {
      this.held = [];
      this.settle.resolve();
    }
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.held = [];
    // NB autoDestroy calls this with no error after 'finish': then the pass goes on to its end.
    const reason = err ?? (this.writableFinished ? null : new Error('pass 1 stopped before the end of the data'));
    if (reason) {
      if (this.input) this.input.destroy(reason);
      else this.settle.reject(reason);
    }
    cb(err);
  }

  private begin(): void {
    const pass = this.start();
    this.input = pass.input;
    pass.done.then(this.settle.resolve, this.settle.reject);
  }

  private forward(chunks: Buffer[], cb: (err?: Error | null) => void): void {
    const input = this.input!;
    // A pass that failed (a MIME limit, a storage fault) has said so through `done`; the rest of
    // the data is still read to the end (the client gets its reply after the dot), not fed to it.
    // NB a destroyed stream never drains, and its 'close' may be past: waiting would hang.
    if (input.destroyed) return cb();
    let full = false;
    for (const c of chunks) if (!input.write(c)) full = true;
    if (!full) return cb();
    void drainOrClose(input).then(() => cb());
  }
}
