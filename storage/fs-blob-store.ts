import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { writeDurably } from './durable-file.js';
import { assertValidKey, BlobNotFoundError, BlobStoreUnavailableError, type BlobStore, type ByteRange } from './blob-store.js';

const PARTIAL_SUFFIX = '.partial';

// Read sizes. Large reads cost fewer trips through the JavaScript stream machinery per byte (a
// 1 GiB download in 1 MiB reads is a thousand of them instead of 4,000 at 256 KiB), but each
// open read holds up to one read of buffer, and a hundred downloads at once at 1 MiB each would
// be 100 MiB of buffers alone. So the reads of this process share a budget: up to 32 at 1 MiB,
// then halving down to 64 KiB (docs/performance.md, "Download path"). Only a buffer size: no
// limit or count anyone else relies on lives here.
const READ_BUDGET = 32 * 1024 * 1024;
const MAX_READ = 1024 * 1024;
const MIN_READ = 64 * 1024;
let openReads = 0;

/** The read size for a stream opened while `n` reads (itself included) are open. */
export function blobReadSize(n: number): number {
  let size = MAX_READ;
  while (size > MIN_READ && size * n > READ_BUDGET) size /= 2;
  return size;
}
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

  async put(key: string, body: Readable, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const final = this.pathOf(key);
    // Attachments and queued messages are other people's mail: readable by Ferry's user only,
    // whatever the umask (other accounts on the host must not browse them).
    await fsp.mkdir(path.dirname(final), { recursive: true, mode: PRIVATE_DIR });
    try {
      await writeDurably(final, (out) => pipeline(body, out, opts.signal ? { signal: opts.signal } : {}), PARTIAL_SUFFIX, PRIVATE_FILE);
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
    const stream = fh.createReadStream({
      start: opts.range?.start,
      end: opts.range?.end,
      highWaterMark: blobReadSize(openReads + 1),
      autoClose: true,
    });
    openReads++;
    stream.once('close', () => openReads--);
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
