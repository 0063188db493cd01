/**
 * Buffers the base64 decoder of an offloaded part fills (gateway/decode-base64.ts) and gets back
 * once the blob store has written them (BlobStore.put's `written`, which the file store calls).
 *
 * A new buffer per decoded piece was most of what ten large attachments arriving at once left
 * for the garbage collector besides the socket's own chunks: the pieces live until the file write
 * has taken them, long enough to be promoted, and V8 collects promoted buffers only after 64 MB
 * more of them (docs/performance.md, "Why ten messages at once take 240 MB"). With the file
 * store and scanning off, the same few buffers go round instead. With S3, or a scanner reading
 * beside the store, nothing comes back and each piece is a new buffer, as before.
 *
 * One per process. Only buffers made here are taken back (a WeakSet of them, so one the store
 * never returns is simply collected): a chunk of another origin, such as a socket's, is ignored.
 */
export class DecodeBuffers {
  private readonly free: Buffer[] = [];
  private readonly mine = new WeakSet<ArrayBufferLike>();

  /**
   * @param size bytes per buffer: room for what the decoder decodes at once (64 KiB of text)
   * @param keep buffers kept for reuse at most
   */
  constructor(
    readonly size = 64 * 1024,
    readonly keep = 64,
  ) {}

  /** A buffer to decode into: a returned one if there is one. */
  take(): Buffer {
    const buf = this.free.pop();
    if (buf) return buf;
    const made = Buffer.allocUnsafeSlow(this.size);
    this.mine.add(made.buffer);
    return made;
  }

  /** Nothing refers to `chunk` (a view into a buffer from take()) any more: its buffer may be filled again. */
  release(chunk: Buffer): void {
    if (!this.mine.has(chunk.buffer) || this.free.length >= this.keep) return;
    this.free.push(Buffer.from(chunk.buffer, 0, this.size));
  }

  /** Buffers waiting to be taken (tests). */
  get kept(): number {
    return this.free.length;
  }
}

export const decodeBuffers = new DecodeBuffers();
