import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';

// Local working files of one SMTP transaction: the raw copy (kept only until the first
// attachment is offloaded), the pass-1 output and the final message. They are small once
// attachments are out, and are removed when the transaction ends, whatever its outcome.

export class Spool {
  private files = new Set<string>();
  private writers = new Set<fs.WriteStream>();
  constructor(
    private readonly dir: string,
    private readonly id: string,
  ) {}

  static async open(dir: string, id: string): Promise<Spool> {
    // Whole messages pass through here: the directory is Ferry's user's only, so every file in
    // it (whatever mode its writer gave it) is out of reach of other accounts on the host.
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    return new Spool(dir, id);
  }

  path(name: string): string {
    const p = path.join(this.dir, `${this.id}.${name}`);
    this.files.add(p);
    return p;
  }

  writer(name: string): fs.WriteStream {
    const w = fs.createWriteStream(this.path(name), { mode: 0o600, highWaterMark: 64 * 1024 });
    this.writers.add(w);
    w.once('close', () => this.writers.delete(w));
    return w;
  }

  async remove(name: string): Promise<void> {
    const p = path.join(this.dir, `${this.id}.${name}`);
    this.files.delete(p);
    await fsp.rm(p, { force: true });
  }

  async removeAll(): Promise<void> {
    // A writer still open (destroyed mid-open, or flushing) would re-create its file after the rm.
    await Promise.all(
      [...this.writers].map((w) => {
        if (!w.closed) w.destroy();
        // Not events.once: it rejects on the 'error' a destroyed pipeline emits just before 'close'.
        return w.closed ? undefined : new Promise<void>((resolve) => w.once('close', () => resolve()));
      }),
    );
    await Promise.all([...this.files].map((p) => fsp.rm(p, { force: true })));
    this.files.clear();
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
