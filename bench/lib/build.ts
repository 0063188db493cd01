import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

// The bench and the memory test run Ferry as `node bin/ferry.js start`, which loads dist/. A
// stale dist/ would measure yesterday's code while the report says today's, so it is rebuilt
// whenever any source it is compiled from is newer than the last build.

export const ROOT = path.resolve(import.meta.dirname, '..', '..');

/** The folders tsconfig.build.json compiles (its "include"). */
const SOURCE_DIRS = ['config', 'storage', 'gateway', 'web', 'admin', 'worker', 'cli', 'types'];
const STAMP = path.join(ROOT, 'dist', 'cli', 'main.js');
const MAX_FILES = 20_000;

function newestSourceMtime(): number {
  let newest = 0;
  let seen = 0;
  const walk = (dir: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (++seen > MAX_FILES) return; // a runaway tree (a symlink loop) must not hang the bench
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'node_modules') walk(p);
      } else if (/\.(ts|mts|cts|json)$/.test(e.name) && !/\.test\.ts$/.test(e.name)) {
        newest = Math.max(newest, fs.statSync(p).mtimeMs);
      }
    }
  };
  for (const d of SOURCE_DIRS) walk(path.join(ROOT, d));
  for (const f of ['tsconfig.json', 'tsconfig.build.json']) {
    const p = path.join(ROOT, f);
    if (fs.existsSync(p)) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

export function buildIsStale(): boolean {
  if (!fs.existsSync(STAMP)) return true;
  // tsc rewrites every output on each build, so the CLI entry's mtime is the build's time.
  return newestSourceMtime() > fs.statSync(STAMP).mtimeMs;
}

/** Runs `tsc -p tsconfig.build.json` when dist/ is missing or older than the sources. */
export async function ensureBuilt(log: (msg: string) => void = () => undefined): Promise<void> {
  if (!buildIsStale()) return;
  log('dist/ is missing or older than the sources: building (tsc -p tsconfig.build.json)');
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  await new Promise<void>((resolve, reject) => {
    execFile(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: ROOT, timeout: 180_000, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      // tsc emits even with type errors; a build that did not pass is still refused, because
      // figures measured on code that does not compile are not worth reporting.
      if (err) reject(new Error(`build failed (tsc -p tsconfig.build.json):\n${stdout}${stderr}`.trim()));
      else resolve();
    });
  });
  if (!fs.existsSync(STAMP)) throw new Error(`build finished but ${path.relative(ROOT, STAMP)} is missing`);
}
