import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { withPrefix } from './prefixed-stream.js';

// Local working copies of one SMTP transaction: the raw copy (kept only until the first
// attachment is offloaded), the pass-1 output and the final message. They are small once
// attachments are out, and are removed when the transaction ends, whatever its outcome.
//
// A copy is held in memory while it stays within smtp.memorySpoolLimit and all copies of the
// process together within smtp.memorySpoolBudget; past either it spills to a file in the spool
// folder and goes on there. Small mail then never touches the disk before its 250: three files
// and a mkdir per message were a third of the CPU time of a small message (docs/performance.md).
// Durability is not this module's job: a message that is queued is stored in the blob store
// (fsynced) before its 250, from whichever copy it is in (gateway/transaction.ts).

/** Bytes all in-memory copies of this process may hold together. */
export class MemoryBudget {
  used = 0;
  /** Most bytes held at once (tests, tuning). */
  peak = 0;
  constructor(public size: number) {}

  take(n: number): boolean {
    if (this.used + n > this.size) return false;
    this.used += n;
    if (this.used > this.peak) this.peak = this.used;
    return true;
  }

  give(n: number): void {
    this.used = Math.max(0, this.used - n);
  }
}

/** The process's budget (one per process: every transaction shares it). */
export const memoryBudget = new MemoryBudget(64 * 1024 * 1024);

/** How many working copies ended in memory and how many on disk (tests, metrics). */
export const spoolCounts = { memory: 0, disk: 0 };

export interface SpoolOptions {
  /** Largest copy kept in memory; 0 puts every copy on disk. */
  memoryLimit: number;
  /** Sets the process's budget (smtp.memorySpoolBudget). */
  memoryBudget?: number;
}

// NB the folder is made once per process, not per message; if it disappears meanwhile (an
// admin cleaning up), the next spill makes it again.
const madeDirs = new Map<string, Promise<void>>();

function ensureDir(dir: string, again = false): Promise<void> {
  let p = again ? undefined : madeDirs.get(dir);
  if (!p) {
    // Whole messages pass through here: the directory is Ferry's user's only, so every file in
    // it (whatever mode its writer gave it) is out of reach of other accounts on the host.
    p = fsp.mkdir(dir, { recursive: true, mode: 0o700 }).then(() => undefined);
    p.catch(() => madeDirs.delete(dir));
    madeDirs.set(dir, p);
  }
  return p;
}

export class Spool {
  private entries = new Map<string, SpoolFile>();
  constructor(
    private readonly dir: string,
    private readonly id: string,
    private readonly opts: SpoolOptions = { memoryLimit: 0 },
  ) {}

  static async open(dir: string, id: string, opts: SpoolOptions = { memoryLimit: 0 }): Promise<Spool> {
    if (opts.memoryBudget !== undefined) memoryBudget.size = opts.memoryBudget;
    return new Spool(dir, id, opts);
  }

  /** A new working copy named `name` (in memory while it fits); ends when its writer ends. */
  writer(name: string): SpoolFile {
    const f = new SpoolFile(this.path(name), this.dir, this.opts.memoryLimit);
    this.entries.set(name, f);
    return f;
  }

  /** Where the copy `name` is (or would be) on disk. */
  path(name: string): string {
    return path.join(this.dir, `${this.id}.${name}`);
  }

  get(name: string): SpoolFile {
    const f = this.entries.get(name);
    if (!f) throw new Error(`no spool copy "${name}"`);
    return f;
  }

  async remove(name: string): Promise<void> {
    const f = this.entries.get(name);
    this.entries.delete(name);
    await f?.discard();
  }

  async removeAll(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(all.map((f) => f.discard()));
  }
}

/**
 * One working copy: written once as a stream, then read (opened) any number of times. In memory
 * up to `memoryLimit` bytes and while the process budget allows, on disk past that.
 */
export class SpoolFile extends Writable {
  /** Bytes written. */
  size = 0;
  private chunks: Buffer[] = [];
  private held = 0;
  private out: fs.WriteStream | undefined;
  private spilling: Promise<void> | undefined;
  private onDisk = false;

  constructor(
    private readonly file: string,
    private readonly dir: string,
    private readonly memoryLimit: number,
  ) {
    // NB not destroyed when finished (the default): destroying frees the bytes it holds, and
    // they are read after the writer has finished.
    super({ highWaterMark: 64 * 1024, autoDestroy: false });
  }

  /** True while the copy is in memory (no file exists for it). */
  get inMemory(): boolean {
    return !this.onDisk;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.size += chunk.length;
    if (!this.onDisk) {
      if (this.size <= this.memoryLimit && memoryBudget.take(chunk.length)) {
        // A copy: the chunk may be a view into a larger buffer (a 256 KiB input chunk of the
        // MIME pass) that would otherwise stay alive, uncounted, as long as this copy.
        this.chunks.push(Buffer.from(chunk));
        this.held += chunk.length;
        return cb();
      }
      this.spill().then(() => this.writeOut(chunk, cb), cb);
      return;
    }
    this.writeOut(chunk, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.onDisk) {
      spoolCounts.memory++;
      return cb();
    }
    spoolCounts.disk++;
    const out = this.out!;
    out.end();
    finished(out).then(() => cb(), cb);
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.release();
    if (this.out && !this.out.closed) this.out.destroy();
    cb(err);
  }

  /** The file this copy is in, written out first if it is in memory (for readers that need a path). */
  async toFile(): Promise<string> {
    if (!this.writableFinished) await finished(this);
    if (this.onDisk) return this.file;
    await this.spill();
    const out = this.out!;
    out.end();
    await finished(out);
    return this.file;
  }

  /**
   * A stream of the whole copy, after `prefix` when given; call after the writer has finished.
   * In memory, one Buffer: the relay client writes each chunk it is given to the socket (and
   * nodemailer then ends the data with a write of its own), so the DATA chunks the copy was made
   * of, often a few KiB each, would each be a system call on the way out.
   */
  open(prefix?: Buffer): Readable {
    if (this.onDisk) {
      const file = () => fs.createReadStream(this.file, { highWaterMark: 256 * 1024 });
      return prefix ? withPrefix(prefix, file) : file();
    }
    const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.held);
    // Joined once; the budget already counts these bytes.
    this.chunks = [body];
    return Readable.from([prefix?.length ? Buffer.concat([prefix, body]) : body], { objectMode: false });
  }

  /** Frees the memory and removes the file (waits for a writer still open, which would re-create it). */
  async discard(): Promise<void> {
    this.release();
    const out = this.out;
    if (out && !out.closed) {
      out.destroy();
      // Not events.once: it rejects on the 'error' a destroyed pipeline emits just before 'close'.
      await new Promise<void>((resolve) => out.once('close', () => resolve()));
    }
    if (this.onDisk || this.spilling) {
      await this.spilling?.catch(() => undefined);
      const late = this.out as fs.WriteStream | undefined;
      if (late && !late.closed) {
        late.destroy();
        await new Promise<void>((resolve) => late.once('close', () => resolve()));
      }
      await fsp.rm(this.file, { force: true });
    }
  }

  private release(): void {
    memoryBudget.give(this.held);
    this.held = 0;
    this.chunks = [];
  }

  /** Moves what is held in memory to the file; from then on everything goes there. */
  private spill(): Promise<void> {
    this.spilling ??= (async () => {
      this.onDisk = true;
      let fh: fsp.FileHandle;
      try {
        await ensureDir(this.dir);
        fh = await fsp.open(this.file, 'w', 0o600);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        await ensureDir(this.dir, true);
        fh = await fsp.open(this.file, 'w', 0o600);
      }
      const out = fh.createWriteStream({ highWaterMark: 256 * 1024 });
      out.on('error', (err) => this.destroy(err));
      this.out = out;
      const held = this.chunks;
      this.release();
      for (const c of held) out.write(c);
    })();
    return this.spilling;
  }

  private writeOut(chunk: Buffer, cb: (err?: Error | null) => void): void {
    const out = this.out!;
    if (out.write(chunk)) return cb();
    const done = () => {
      out.off('drain', done);
      out.off('close', done);
      cb();
    };
    out.on('drain', done);
    out.on('close', done);
  }
}

/**
 * Removes working files a killed process left in the spool folder: those not written for
 * `olderThanMs` (a transaction in progress keeps writing its files, and none lasts that long
 * idle). Returns how many were removed.
 */
export async function sweepSpool(dir: string, olderThanMs: number, now = Date.now()): Promise<number> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const p = path.join(dir, name);
    try {
      const st = await fsp.stat(p);
      if (st.isFile() && now - st.mtimeMs > olderThanMs) {
        await fsp.rm(p, { force: true });
        removed++;
      }
    } catch {
      /* gone meanwhile */
    }
  }
  return removed;
}
