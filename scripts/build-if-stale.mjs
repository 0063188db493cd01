#!/usr/bin/env node
// `npm start`'s prestart: build only when a source changed since the last build. `npm ci`
// already built dist/ (the "prepare" script); this check takes a few milliseconds.
//
// What counts as stale: scripts/build-stale.mjs.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { whyStale } from './build-stale.mjs';

const root = path.resolve(import.meta.dirname, '..');

const why = whyStale(root);
if (why) {
  console.error(`ferry: building (${why})...`);
  const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
