#!/usr/bin/env node
// `npm start`'s prestart: compile only when a source changed since the last build. `npm ci`
// already built dist/ (the "prepare" script), and a full `tsc` takes 20-60 s, which is what
// made every start slow; this check takes a few milliseconds.
//
// Stale means: a source file (the folders tsconfig.build.json includes) has no compiled file,
// or a source, a tsconfig file or package-lock.json is newer than the oldest compiled file of
// today's sources. tsc rewrites every output on each build, so that oldest output marks when the
// last build ran. Outputs of sources that no longer exist (a file moved or removed) stay in
// dist/ and are ignored: counting them would make every start build. A `git pull` or checkout
// gives the files it changes a fresh mtime, so it is seen too.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const dist = path.join(root, 'dist');

function walk(dir, visit) {
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, visit);
    else if (e.isFile()) visit(p);
  }
}

function stale() {
  if (!fs.existsSync(dist)) return 'dist/ is missing';
  const build = JSON.parse(fs.readFileSync(path.join(root, 'tsconfig.build.json'), 'utf8'));
  const inputs = ['tsconfig.json', 'tsconfig.build.json', 'package-lock.json'].map((f) => path.join(root, f));
  const sources = [];
  for (const dir of build.include ?? []) walk(path.join(root, dir), (p) => p.endsWith('.ts') && !p.endsWith('.d.ts') && !p.endsWith('.test.ts') && sources.push(p));
  let oldestOut = Infinity;
  for (const src of sources) {
    const out = path.join(dist, path.relative(root, src)).replace(/\.ts$/, '.js');
    let m;
    try {
      m = fs.statSync(out).mtimeMs;
    } catch {
      return `${path.relative(root, out)} is missing`;
    }
    oldestOut = Math.min(oldestOut, m);
  }
  inputs.push(...sources);
  for (const p of inputs) {
    let m;
    try {
      m = fs.statSync(p).mtimeMs;
    } catch {
      continue;
    }
    if (m > oldestOut) return `${path.relative(root, p)} changed since the last build`;
  }
  return undefined;
}

const why = stale();
if (why) {
  console.error(`ferry: building (${why})...`);
  const r = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
