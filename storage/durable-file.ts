import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';

/**
 * Writes `file` so that it either appears whole and synced or not at all: the bytes go to a
 * temporary name beside it, are fsynced, renamed into place, and the directory entry is synced.
 * `write` fills the stream and resolves when it has finished. On failure nothing is left.
 */
export async function writeDurably(file: string, write: (out: fs.WriteStream) => Promise<void>, tmpSuffix = '.tmp', mode = 0o666): Promise<void> {
  const tmp = `${file}${tmpSuffix}-${randomBytes(6).toString('hex')}`;
  // `mode` (less the umask) from the moment the file exists: a chmod afterwards would leave a window.
  const out = fs.createWriteStream(tmp, { flags: 'wx', mode, highWaterMark: 256 * 1024 });
  try {
    await write(out);
    const fh = await fsp.open(tmp, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, file);
    await syncDir(path.dirname(file));
  } catch (err) {
    out.destroy();
    await fsp.rm(tmp, { force: true });
    throw err;
  }
}

async function syncDir(dir: string): Promise<void> {
  // A rename is durable only once the directory entry is synced; not every platform allows it.
  try {
    const fh = await fsp.open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    /* best effort */
  }
}
