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
  for (const f of ['tsconfig.json', 'tsconfig.build.json', 'scripts/build.mjs']) {
    const p = path.join(ROOT, f);
    if (fs.existsSync(p)) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

export function buildIsStale(): boolean {
  if (!fs.existsSync(STAMP)) return true;
  // scripts/build.mjs writes dist/ afresh, so the CLI entry's mtime is the build's time.
  return newestSourceMtime() > fs.statSync(STAMP).mtimeMs;
}

/**
 * Builds (scripts/build.mjs, the bundle `npm start` runs) when dist/ is missing or older than the
 * sources, after a type check: figures measured on code that does not compile are not worth
 * reporting, and the bundler itself does not check types.
 */
export async function ensureBuilt(log: (msg: string) => void = () => undefined): Promise<void> {
  if (!buildIsStale()) return;
  log('dist/ is missing or older than the sources: type-checking, then building (scripts/build.mjs)');
  const run = (args: string[], what: string) =>
    new Promise<void>((resolve, reject) => {
      execFile(process.execPath, args, { cwd: ROOT, timeout: 180_000, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`build failed (${what}):\n${stdout}${stderr}`.trim()));
        else resolve();
      });
    });
  await run([path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json', '--noEmit'], 'tsc -p tsconfig.build.json --noEmit');
  await run([path.join(ROOT, 'scripts', 'build.mjs')], 'scripts/build.mjs');
  if (!fs.existsSync(STAMP)) throw new Error(`build finished but ${path.relative(ROOT, STAMP)} is missing`);
}
