import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { whyStale } from '../../scripts/build-stale.mjs';
import { tempDir } from '../helpers/ferry.js';

// Issue 16.1: every CLI command answers within a second, and `npm start` builds only when a
// source changed. Timed on the compiled CLI (bin/ferry.js -> dist/, as `npx ferry` runs it).
// The product target is 1 s; the bound here is that second on top of what a bare `node -e 0`
// costs on this machine at this moment, so a loaded CI machine does not fail it for Node's own
// start-up. The figures are printed (and recorded in docs/performance.md).

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'ferry.js');
// Timing a stale build would time old code.
const stale = whyStale(ROOT);
const built = !stale;
if (stale) console.log(`skipped: ${stale} (run \`npm run build\`); the start-up times are measured on the compiled CLI`);

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** The fastest of `runs` runs, in ms (the others measure the machine's other work). */
function bestOf(runs: number, args: string[], opts: { cwd: string; env?: Record<string, string> }): { ms: number; status: number | null; stdout: string; stderr: string } {
  let best = { ms: Infinity, status: null as number | null, stdout: '', stderr: '' };
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, args, { cwd: opts.cwd, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...opts.env }, encoding: 'utf8' });
    const ms = performance.now() - t0;
    if (ms < best.ms) best = { ms, status: r.status, stdout: r.stdout, stderr: r.stderr };
  }
  return best;
}

describe.skipIf(!built)('CLI start-up time (compiled)', () => {
  const cwd = tempDir('ferry-startup-');
  dirs.push(cwd);
  const node = bestOf(3, ['-e', '0'], { cwd });

  it('`ferry --help` answers within 1 s (beyond Node.js itself)', () => {
    const r = bestOf(3, [BIN, '--help'], { cwd });
    console.log(`ferry --help: ${Math.round(r.ms)} ms (node -e 0: ${Math.round(node.ms)} ms)`);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Usage: ferry <command>/);
    expect(r.ms - node.ms).toBeLessThan(1000);
  });

  it('`ferry check-config` answers within 1 s (beyond Node.js itself)', () => {
    const r = bestOf(3, [BIN, 'check-config'], { cwd, env: { FERRY_DATA_DIR: path.join(cwd, 'data') } });
    console.log(`ferry check-config: ${Math.round(r.ms)} ms (node -e 0: ${Math.round(node.ms)} ms)`);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/is valid/);
    expect(r.ms - node.ms).toBeLessThan(1000);
  });
});

describe('npm start builds only when a source changed (scripts/build-if-stale.mjs)', () => {
  // A project of its own: one source file, the two scripts, and this checkout's esbuild.
  function project(): string {
    const dir = tempDir('ferry-prestart-');
    dirs.push(dir);
    fs.mkdirSync(path.join(dir, 'scripts'));
    fs.mkdirSync(path.join(dir, 'cli'));
    for (const f of ['build-if-stale.mjs', 'build-stale.mjs', 'build.mjs']) fs.copyFileSync(path.join(ROOT, 'scripts', f), path.join(dir, 'scripts', f));
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', outDir: 'dist', rootDir: '.', types: [] } }));
    fs.writeFileSync(path.join(dir, 'tsconfig.build.json'), JSON.stringify({ extends: './tsconfig.json', include: ['cli'] }));
    fs.writeFileSync(path.join(dir, 'package-lock.json'), '{}');
    fs.writeFileSync(path.join(dir, 'cli', 'main.ts'), 'export const version: number = 1;\n');
    return dir;
  }
  const run = (dir: string) => spawnSync(process.execPath, [path.join(dir, 'scripts', 'build-if-stale.mjs')], { cwd: dir, encoding: 'utf8' });
  const setMtime = (file: string, msAgo: number) => fs.utimesSync(file, new Date(Date.now() - msAgo), new Date(Date.now() - msAgo));

  it('builds when dist/ is missing or a source is newer, and does nothing when dist/ is current', () => {
    const dir = project();
    const first = run(dir);
    expect(first.status, first.stderr).toBe(0);
    expect(first.stderr).toContain('building (dist/ is missing)');
    const out = path.join(dir, 'dist', 'cli', 'main.js');
    expect(fs.readFileSync(out, 'utf8')).toContain('version = 1');

    // Sources older than the build: nothing to do, nothing printed, dist/ untouched.
    for (const f of ['tsconfig.json', 'tsconfig.build.json', 'package-lock.json', 'cli/main.ts']) setMtime(path.join(dir, f), 60_000);
    const builtAt = fs.statSync(out).mtimeMs;
    const again = run(dir);
    expect([again.status, again.stderr]).toEqual([0, '']);
    expect(fs.statSync(out).mtimeMs).toBe(builtAt);

    // A changed source (as an edit or a `git pull` leaves it): built again.
    fs.writeFileSync(path.join(dir, 'cli', 'main.ts'), 'export const version: number = 2;\n');
    const changed = run(dir);
    expect(changed.status, changed.stderr).toBe(0);
    expect(changed.stderr).toContain('building (cli/main.ts changed since the last build)');
    expect(fs.readFileSync(out, 'utf8')).toContain('version = 2');
  }, 120_000);

  it('package.json: `npm start` runs this check, not the full build; `npm ci` still builds (prepare)', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.scripts.prestart).toBe('node scripts/build-if-stale.mjs');
    expect(pkg.scripts.prepare).toBe('npm run build');
  });
});
