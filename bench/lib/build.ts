import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { whyStale } from '../../scripts/build-stale.mjs';

// The bench and the memory test run Ferry as `node bin/ferry.js start`, which loads dist/. A
// stale dist/ would measure yesterday's code while the report says today's, so it is rebuilt
// whenever any source it is built from is newer than the last build.

export const ROOT = path.resolve(import.meta.dirname, '..', '..');

const STAMP = path.join(ROOT, 'dist', 'cli', 'main.js');

/** dist/ is missing or older than its sources (the rule of scripts/build-stale.mjs, as `npm start` applies it). */
export function buildIsStale(): boolean {
  return whyStale(ROOT) !== undefined;
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
