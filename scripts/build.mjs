#!/usr/bin/env node
// `npm run build` (and `npm ci`'s prepare): bundles the CLI into dist/cli/ with esbuild, one file
// per entry (main.js, and node-worker.js for the cluster's workers) plus shared chunks, all in
// one folder (cli/cluster.ts finds node-worker.js beside the chunk that runs it).
//
// Why a bundle and not tsc's one file per module: a process that loads hundreds of module files
// spends most of its start in the module loaders (resolving, opening, stat-ing, compiling each
// file; docs/performance.md, "Start-up"). The bundle halves the time to "Ferry is running" and
// what each process holds at rest. What is loaded only when configured stays lazy: each dynamic
// import() is a chunk of its own. Types are checked by `npm run typecheck` (`npm test`), not here.
//
// Left outside the bundle, loaded from node_modules at run time:
//   better-sqlite3  a native addon (its .node file is found relative to its own package)
//   pino, pino-pretty, thread-stream  pino starts transports in worker threads by module name
//   @aws-sdk/*, @smithy/*, pg  loaded through createRequire only when S3 or PostgreSQL is
//                   configured (storage/s3-blob-store.ts, storage/postgres.ts)
import fs from 'node:fs';
import path from 'node:path';
import * as esbuild from 'esbuild';

const root = path.resolve(import.meta.dirname, '..');
const out = path.join(root, 'dist');
const entries = ['cli/main.ts', 'cli/node-worker.ts'].map((f) => path.join(root, f)).filter((f) => fs.existsSync(f));

fs.rmSync(out, { recursive: true, force: true });
await esbuild.build({
  absWorkingDir: root,
  entryPoints: entries,
  outdir: path.join(out, 'cli'),
  entryNames: '[name]',
  chunkNames: '[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  // NB no minifying: stack traces in logs stay readable. No keepNames: it wraps every function
  // made at run time (each closure of smtp-server, nodemailer and ours, per command and per
  // message) in a defineProperty call, 4 % of a worker's CPU on small mail (docs/performance.md,
  // "Function names"). Without it esbuild renames a top-level name that clashes with another
  // module's (Foo -> Foo2); the check below refuses that for our own classes.
  keepNames: false,
  // Maps for the bench's profiles (bench/lib/profile.ts maps each frame back to its source file).
  sourcemap: 'linked',
  sourcesContent: false,
  external: ['better-sqlite3', 'pino', 'pino-pretty', 'thread-stream', '@aws-sdk/*', '@smithy/*', 'pg', 'pg-native'],
  // NB CommonJS packages inside an ES module bundle call require() for Node's built-ins, which
  // an ES module does not have: give each output file one of its own.
  banner: { js: "import { createRequire as __ferryCreateRequire } from 'node:module'; const require = __ferryCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});

// Ferry's own classes keep their names in the bundle: pino logs an error's constructor name as
// its `type`, and admins search the logs for it. esbuild resolves a clash by appending a digit.
const classes = new Set();
for (const dir of ['admin', 'cli', 'config', 'gateway', 'storage', 'web', 'worker']) {
  if (!fs.existsSync(path.join(root, dir))) continue;
  for (const f of fs.readdirSync(path.join(root, dir), { recursive: true, encoding: 'utf8' })) {
    if (!f.endsWith('.ts')) continue;
    for (const m of fs.readFileSync(path.join(root, dir, f), 'utf8').matchAll(/^(?:export )?(?:abstract )?class (\w+)/gm)) classes.add(m[1]);
  }
}
const bundled = fs.readdirSync(path.join(out, 'cli')).filter((f) => f.endsWith('.js')).map((f) => fs.readFileSync(path.join(out, 'cli', f), 'utf8')).join('\n');
const renamed = [...classes].filter((c) => new RegExp(`\\bclass ${c}\\d+\\b`).test(bundled));
if (renamed.length) {
  console.error(`build: esbuild renamed these classes of ours because another module has the same top-level name: ${renamed.join(', ')}. Rename one of the two (their names show in logs).`);
  process.exit(1);
}
