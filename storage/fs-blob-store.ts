import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { writeDurably } from './durable-file.js';
import { assertValidKey, BlobNotFoundError, BlobStoreUnavailableError, type BlobStore, type ByteRange } from './blob-store.js';

const PARTIAL_SUFFIX = '.partial';
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
      highWaterMark: 256 * 1024,
      autoClose: true,
    });
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
