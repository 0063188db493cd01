import cluster from 'node:cluster';
import v8 from 'node:v8';
import type { Config } from '../config/schema.js';

// A worker process runs with the configuration the primary has read and checked, instead of
// reading the file and the environment again:
// - every process of a node has the same settings, also when the file is edited while the node
//   runs (a replaced worker does not pick up half a change; `ferry` must be restarted for it);
// - the configuration's parser (zod, yaml: about 10 MB of each process's idle memory) is never
//   loaded in a worker, and its warnings are logged once, by the primary.
// NB through the environment and not an IPC message: it is there before the worker's first line
// runs, with no round trip. It holds the secrets of the configuration (the relay's password, ...):
// a process's environment is readable only by its own user and root, who can read the
// configuration file anyway, and the worker removes it from process.env at once, so no program
// it starts inherits it. v8.serialize, not JSON: it keeps every value as it is (undefined,
// Infinity, dates), so the worker's copy is the primary's exactly.

/** The environment variable that carries it (config/load.ts does not read it as a setting). */
export const WORKER_CONFIG_ENV = 'FERRY_WORKER_CONFIG';

/** The environment to fork a worker with. */
export function workerConfigEnv(config: Config): Record<string, string> {
  return { [WORKER_CONFIG_ENV]: v8.serialize(config).toString('base64') };
}

/** In a worker forked with workerConfigEnv(): the primary's configuration; elsewhere undefined. */
export function configFromPrimary(): Config | undefined {
  if (!cluster.isWorker) return undefined;
  const carried = process.env[WORKER_CONFIG_ENV];
  if (carried === undefined) return undefined;
  delete process.env[WORKER_CONFIG_ENV];
  return v8.deserialize(Buffer.from(carried, 'base64')) as Config;
}
