#!/usr/bin/env node
// Prunes bench/results: keeps, per scenario, the latest timestamped run and every run that
// docs/performance.md cites (by file name), plus the *-latest.* copies and latest.md that each
// run rewrites. Everything else goes. `npm run bench:prune` (add --dry-run to only list).
//
// A run is `<scenario>-<UTC time>.json` with its `.svg` beside it; the time is written as
// 2026-11-26T13-13-11Z, so names sort in time order within a scenario.
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const dir = path.join(root, 'bench', 'results');
const dryRun = process.argv.includes('--dry-run');
const RUN = /^(.+)-(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z)\.(json|svg)$/;

const cited = new Set();
for (const doc of ['docs/performance.md', 'README.md']) {
  let text = '';
  try {
    text = fs.readFileSync(path.join(root, doc), 'utf8');
  } catch {
    continue;
  }
  // A cited run keeps both its files (the JSON holds the figures, the SVG draws them).
  for (const m of text.matchAll(/([\w.-]+-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z)\.(?:json|svg)/g)) cited.add(m[1]);
}

const latest = new Map();
const files = fs.readdirSync(dir);
for (const f of files) {
  const m = RUN.exec(f);
  if (!m) continue;
  const [, scenario, at] = m;
  if (!latest.has(scenario) || latest.get(scenario) < at) latest.set(scenario, at);
}

let removed = 0;
for (const f of files.sort()) {
  const m = RUN.exec(f);
  if (!m) continue; // *-latest.*, latest.md and anything else not a dated run
  const [, scenario, at] = m;
  const run = `${scenario}-${at}`;
  if (latest.get(scenario) === at || cited.has(run)) continue;
  removed++;
  console.log(`${dryRun ? 'would remove' : 'removed'} bench/results/${f}`);
  if (!dryRun) fs.rmSync(path.join(dir, f));
}
console.log(`${removed} file(s) ${dryRun ? 'to remove' : 'removed'}; kept the latest run of ${latest.size} scenario(s) and ${cited.size} cited run(s)`);
