import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { writeDurably } from './durable-file.js';
import { ReadBuffers } from './read-buffers.js';
import { assertValidKey, BlobNotFoundError, BlobStoreUnavailableError, type BlobStore, type ByteRange, type PutOptions } from './blob-store.js';

const PARTIAL_SUFFIX = '.partial';

// The read buffers of this process's blob reads: 1 MiB reads while few run, less when many do,
// within one budget (storage/read-buffers.ts). Only a buffer size: no limit or count anyone else
// relies on lives here.
const READ_BUDGET = 8 * 1024 * 1024;
export const readBuffers = new ReadBuffers(READ_BUDGET, 1024 * 1024, 64 * 1024);

/** Modes of what the store creates (the umask can only take more away). */
const PRIVATE_DIR = 0o700;
const PRIVATE_FILE = 0o600;

/**
 * Blobs as files under one directory. A blob is written to `<key>.partial-<random>`, fsynced and
 * renamed into place, so a reader never sees a half-written file and a crash leaves only
 * `.partial` files, which list() skips and the sweeper removes.
 */
export class FsBlobStore implements BlobStore {
  readonly kind = 'file';
  constructor(readonly root: string) {}

  private pathOf(key: string): string {
    assertValidKey(key);
    return path.join(this.root, ...key.split('/'));
  }

  async put(key: string, body: Readable, opts: PutOptions = {}): Promise<void> {
    const final = this.pathOf(key);
    // Attachments and queued messages are other people's mail: readable by Ferry's user only,
    // whatever the umask (other accounts on the host must not browse them).
    await fsp.mkdir(path.dirname(final), { recursive: true, mode: PRIVATE_DIR });
    const { written, signal } = opts;
    try {
      await writeDurably(final, (out) => pipeline(body, blobWriter(out, written), signal ? { signal } : {}), PARTIAL_SUFFIX, PRIVATE_FILE);
    } catch (err) {
      body.destroy();
      throw err;
    }
  }

  async openRead(key: string, opts: { range?: ByteRange; signal?: AbortSignal } = {}): Promise<Readable> {
    const file = this.pathOf(key);
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new BlobNotFoundError(key);
      throw new BlobStoreUnavailableError(`cannot open blob ${key}: ${(err as Error).message}`, { cause: err });
    }
    const stream = new FileBlobStream(fh, opts.range, readBuffers);
    if (opts.signal) {
      const onAbort = () => stream.destroy(new Error('aborted'));
      if (opts.signal.aborted) onAbort();
      else opts.signal.addEventListener('abort', onAbort, { once: true });
      stream.once('close', () => opts.signal?.removeEventListener('abort', onAbort));
    }
    return stream;
  }

  async delete(key: string): Promise<void> {
    await fsp.rm(this.pathOf(key), { force: true });
  }

  async exists(key: string): Promise<boolean> {
    try {
      return (await fsp.stat(this.pathOf(key))).isFile();
    } catch {
      return false;
    }
  }

  async *list(prefix = ''): AsyncIterable<string> {
    const walk = async function* (dir: string, rel: string): AsyncIterable<string> {
      let entries: fs.Dirent[];
      try {
        entries = await fsp.readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      for (const e of entries) {
        const key = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) yield* walk(path.join(dir, e.name), key);
        else if (e.isFile() && !e.name.includes(PARTIAL_SUFFIX)) yield key;
      }
    };
    for await (const key of walk(this.root, '')) if (key.startsWith(prefix)) yield key;
  }

  /** Keys of half-written files left by a crash or an abort in flight (for the sweeper). */
  async *listPartial(): AsyncIterable<{ file: string; mtimeMs: number }> {
    const walk = async function* (dir: string): AsyncIterable<{ file: string; mtimeMs: number }> {
      let entries: fs.Dirent[];
      try {
        entries = await fsp.readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) yield* walk(p);
        else if (e.name.includes(PARTIAL_SUFFIX)) {
          const st = await fsp.stat(p).catch(() => undefined);
          if (st) yield { file: p, mtimeMs: st.mtimeMs };
        }
      }
    };
    yield* walk(this.root);
  }

  async check(): Promise<void> {
    try {
      await fsp.mkdir(this.root, { recursive: true, mode: PRIVATE_DIR });
      await fsp.access(this.root, fs.constants.W_OK);
      const st = await fsp.statfs(this.root);
      // Refuse new mail before the disk is full rather than failing halfway through an upload.
      if (st.bavail * st.bsize < 64 * 1024 * 1024) throw new Error('less than 64 MiB free');
    } catch (err) {
      throw new BlobStoreUnavailableError(`blob directory ${this.root} is not usable: ${(err as Error).message}`, { cause: err });
    }
  }

  async close(): Promise<void> {}
}

/** Bytes written between two early flushes of a blob file to the disk (blobWriter). */
const FLUSH_EVERY = 8 * 1024 * 1024;

/**
 * What the Writable in front of the file's write stream queues itself: one 64 KiB chunk. The
 * write stream already queues 256 KiB (storage/durable-file.ts); the same again in front of it
 * only held every blob's bytes twice as long (docs/performance.md, "Bytes in flight per message").
 */
const FRONT_QUEUE_BYTES = 64 * 1024;

/**
 * `out` with a Writable in front that does two things a write stream does not:
 *
 * - calls `written(chunk)`, if given, once the file's write of each chunk has called back: the
 *   bytes are in the kernel then and the write stream holds the chunk no more (fs.WriteStream has
 *   no event per chunk, and pipeline() writes without a callback);
 * - asks the kernel to flush the file (fdatasync) every FLUSH_EVERY bytes while the rest still
 *   arrives, one flush at a time. The fsync that makes the blob durable (writeDurably) then finds
 *   only the last few MiB to write: left to the end, 112 MB took it 75-87 ms on the bench's
 *   disk, time the sender waited for its 250 (docs/performance.md, "Byte path"). Durability does
 *   not depend on these: the final fsync is unchanged.
 */
function blobWriter(out: fs.WriteStream, written?: (chunk: Buffer) => void): Writable {
  const fd = () => (out as unknown as { fd: number | null }).fd;
  let unflushed = 0;
  let flushing: Promise<void> | undefined;
  /** Set once the last write is handed over: no flush starts after it (the descriptor closes). */
  let ending = false;
  const flush = () => {
    unflushed = 0;
    flushing = new Promise<void>((resolve, reject) => fs.fdatasync(fd()!, (err) => (err ? reject(err) : resolve()))).finally(() => (flushing = undefined));
    // A disk that fails a flush fails the blob (the final fsync would); once ending, the final
    // fsync in writeDurably is the one that tells.
    flushing.catch((err: Error) => {
      if (!ending && !front.destroyed) front.destroy(err);
    });
  };
  const front = new Writable({
    highWaterMark: FRONT_QUEUE_BYTES,
    write(chunk: Buffer, _enc, cb) {
      const more = out.write(chunk, (err) => {
        if (err) return;
        written?.(chunk);
        unflushed += chunk.length;
        if (unflushed >= FLUSH_EVERY && !flushing && !ending && typeof fd() === 'number') flush();
      });
      if (more) return cb();
      const go = () => {
        out.off('drain', go);
        out.off('close', go);
        cb(out.errored ?? undefined);
      };
      out.on('drain', go);
      out.on('close', go);
    },
    final(cb) {
      // NB the flush first: ending the stream closes the descriptor it runs on. Writes whose
      // callbacks are still to come start no new one.
      ending = true;
      Promise.resolve(flushing?.catch(() => undefined))
        .then(() => {
          out.end();
          return finished(out);
        })
        .then(() => cb(), cb);
    },
    destroy(err, cb) {
      if (!out.destroyed) out.destroy(err ?? undefined);
      cb(err);
    },
  });
  out.on('error', (err) => front.destroy(err));
  return front;
}

/**
 * A blob file (or a range of it) as a stream, from openRead(). Read as any Readable, each read
 * fills a new buffer that the consumer may keep. A download has a cheaper way: sendTo() names a
 * destination that is done with a chunk once that write's callback has run (a socket or an HTTP
 * response: the bytes are in the kernel by then), and when the stream is piped into it, it fills
 * two buffers in turn, refilling each only after its write has completed, and hands them on to
 * the next download when it closes (storage/read-buffers.ts). A download then allocates at most
 * two buffers instead of one per read: a new 1 MiB buffer per read made the garbage collector the
 * largest single cost of serving a file (docs/performance.md, "Where the time goes in a
 * download").
 */
export class FileBlobStream extends Readable {
  private pos: number;
  /** Exclusive; without a range the file is read until a read returns nothing. */
  private readonly end: number;
  private direct: { sink: Writable; onBytes: (n: number) => void } | undefined;
  private copying = false;
  /** The direct copy's buffers that no write holds now. */
  private spare: Buffer[] = [];
  /** Set once the reservation is released: buffers coming back then go straight to `buffers`. */
  private released = false;
  /** Bytes per read, reserved (two buffers' worth) from `buffers` for the life of the stream. */
  readonly readSize: number;

  constructor(
    private readonly fh: fsp.FileHandle,
    range: ByteRange | undefined,
    private readonly buffers: ReadBuffers,
  ) {
    const { size, kept } = buffers.reserve();
    super({ highWaterMark: size });
    this.readSize = size;
    this.spare = kept;
    this.pos = range?.start ?? 0;
    this.end = range ? range.end + 1 : Infinity;
  }

  /**
   * When this stream is piped into `sink`, its bytes go there from two reused buffers. The caller
   * vouches that `sink` no longer needs a chunk once the callback of its write has run (true of
   * sockets and of node:http responses; not of a Transform, which passes the chunk on).
   * `onBytes` hears of every chunk as it is handed to `sink`.
   */
  sendTo(sink: Writable, onBytes: (n: number) => void): this {
    this.direct = { sink, onBytes };
    return this;
  }

  override pipe<T extends NodeJS.WritableStream>(dest: T, opts?: { end?: boolean }): T {
    if (!this.direct || (dest as unknown) !== this.direct.sink || this.copying) return super.pipe(dest, opts);
    this.copying = true;
    void this.copyInto(this.direct.sink, this.direct.onBytes, opts?.end !== false);
    return dest;
  }

  override _read(): void {
    // The direct copy owns the file position; nothing is read as a stream meanwhile.
    if (this.copying) return;
    const want = Math.min(this.readSize, this.end - this.pos);
    if (want <= 0) {
      this.push(null);
      return;
    }
    const buf = Buffer.allocUnsafeSlow(want);
    this.readInto(buf).then(
      (n) => {
        if (!this.destroyed) this.push(n === 0 ? null : n < buf.length ? buf.subarray(0, n) : buf);
      },
      (err: Error) => this.destroy(err),
    );
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.released = true;
    this.buffers.release(this.readSize);
    for (const buf of this.spare.splice(0)) this.buffers.give(buf);
    // FileHandle.close() waits for a read still in flight.
    this.fh.close().then(
      () => cb(err),
      (closeErr: Error) => cb(err ?? closeErr),
    );
  }

  /** Fills `buf` from the current position; 0 at the end of the file or range. */
  private async readInto(buf: Buffer): Promise<number> {
    const want = Math.min(buf.length, this.end - this.pos);
    if (want <= 0) return 0;
    const { bytesRead } = await this.fh.read(buf, 0, want, this.pos);
    this.pos += bytesRead;
    return bytesRead;
  }

  /** A buffer no read or write holds any more: the direct copy's again, or the process's once this stream is done. */
  private takeBack(buf: Buffer): void {
    if (this.released) this.buffers.give(buf);
    else this.spare.push(buf);
  }

  private async copyInto(sink: Writable, onBytes: (n: number) => void, end: boolean): Promise<void> {
    // Two buffers: one being read from the file while the other is being written out.
    const free = this.spare;
    while (free.length < 2) free.push(Buffer.allocUnsafeSlow(this.readSize));
    let gone = false;
    let wake: (() => void) | undefined;
    const stop = () => {
      gone = true;
      wake?.();
    };
    sink.once('close', stop);
    sink.once('error', stop);
    try {
      for (;;) {
        while (free.length === 0 && !gone) await new Promise<void>((resolve) => (wake = resolve));
        if (gone || this.destroyed) break;
        const buf = free.pop()!;
        const n = await this.readInto(buf);
        // Read and not written: nothing else holds it.
        if (gone || this.destroyed || n === 0) this.takeBack(buf);
        if (gone || this.destroyed) break;
        if (n === 0) {
          if (end) sink.end();
          // Ends the Readable side too ('end', then 'close'), which is what the caller waits for.
          this.push(null);
          this.resume();
          return;
        }
        onBytes(n);
        sink.write(n < buf.length ? buf.subarray(0, n) : buf, (err) => {
          // A buffer whose write failed may still be referenced by the dying socket: never reused.
          if (err) return stop();
          this.takeBack(buf);
          wake?.();
        });
      }
      // The destination went away (the client hung up) or the stream was destroyed: stop reading.
      this.destroy();
    } catch (err) {
      this.destroy(err as Error);
    } finally {
      sink.off('close', stop);
      sink.off('error', stop);
    }
  }
}
