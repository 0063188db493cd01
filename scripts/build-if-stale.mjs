#!/usr/bin/env node
// `npm start`'s prestart: build only when a source changed since the last build. `npm ci`
// already built dist/ (the "prepare" script); this check takes a few milliseconds.
//
// Stale means: dist/cli/main.js is missing, or a source (the folders tsconfig.build.json
// includes), a tsconfig file, package-lock.json or the build script is newer than it. The build
// (scripts/build.mjs) writes dist/ afresh, so main.js's time is the time of the last build. A
// `git pull` or checkout gives the files it changes a fresh mtime, so it is seen too.
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
  const stamp = path.join(dist, 'cli', 'main.js');
  let builtAt;
  try {
    builtAt = fs.statSync(stamp).mtimeMs;
  } catch {
    return 'dist/ is missing';
  }
  const build = JSON.parse(fs.readFileSync(path.join(root, 'tsconfig.build.json'), 'utf8'));
  const inputs = ['tsconfig.json', 'tsconfig.build.json', 'package-lock.json', 'scripts/build.mjs'].map((f) => path.join(root, f));
  for (const dir of build.include ?? []) walk(path.join(root, dir), (p) => p.endsWith('.ts') && !p.endsWith('.test.ts') && inputs.push(p));
  for (const p of inputs) {
    let m;
    try {
      m = fs.statSync(p).mtimeMs;
    } catch {
      continue;
    }
    if (m > builtAt) return `${path.relative(root, p)} changed since the last build`;
  }
  return undefined;
}

const why = stale();
if (why) {
  console.error(`ferry: building (${why})...`);
  const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
