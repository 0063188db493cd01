import cluster from 'node:cluster';
import v8 from 'node:v8';
import { givenNodeFlags } from './node-flags.js';

// A node's primary (cli/cluster.ts) loads the configuration, migrates the database and forks the
// workers; at rest it only hands over connections and runs the timers of the worker role. V8
// grows a young generation while start-up allocates and keeps it at rest: 7 MB of the primary's
// idle 80-82 MB (docs/performance.md, "The primary's idle RSS"). So the young generation is held
// at its initial size (1 MiB a semi-space) until the node is running, and may grow again after
// that, when the queue runner has work.
//
// NB V8 reads --semi-space-growth-factor each time it would grow the young generation (not once
// at start, as it does the semi-space sizes), so setting it at run time takes effect.

const DEFAULT_GROWTH_FACTOR = 2;
const ADMIN_FLAGS = ['--semi-space-growth-factor', '--min-semi-space-size', '--max-semi-space-size', '--semi-space-size'];
let held = false;

/** True when the admin sized the young generation (node's command line or NODE_OPTIONS): then it is left alone. */
export function adminSizedYoungGeneration(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): boolean {
  return givenNodeFlags(execArgv, nodeOptions).some((f) => ADMIN_FLAGS.includes(f));
}

/** In a server command's primary process, before the configuration is read. */
export function holdYoungGeneration(): void {
  if (held || !cluster.isPrimary || adminSizedYoungGeneration()) return;
  v8.setFlagsFromString('--semi-space-growth-factor=1');
  held = true;
}

/** Once the node is running (or when this one process does all the work). */
export function releaseYoungGeneration(): void {
  if (!held) return;
  v8.setFlagsFromString(`--semi-space-growth-factor=${DEFAULT_GROWTH_FACTOR}`);
  held = false;
}
