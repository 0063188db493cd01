import fs from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { unitKinds } from './key-units.js';
import { redactValue } from './redact.js';
import { configSchema, resolveConfig, type Config } from './schema.js';
import { formatDuration, isBareNumber } from './units.js';

import { ConfigError } from './config-error.js';

export { ConfigError };

export interface LoadOptions {
  /** YAML file; when absent, defaults and the environment only. */
  file?: string;
  /** Defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Extra values layered over the file and under the environment (tests use this). */
  overrides?: Record<string, unknown>;
}

const ENV_PREFIX = 'FERRY_';
// Environment names that belong to Ferry but are not settings: the configuration file, the
// CLI's server and token for --server (cli/admin-client.ts), the configuration a node's primary
// hands its workers (cli/worker-config.ts), the tests' own.
const ENV_NOT_SETTINGS = /^FERRY_(CONFIG|CLI_SERVER|CLI_TOKEN|WORKER_CONFIG|TEST_.*)$/;

/** smtp.maxMessageSize -> FERRY_SMTP_MAX_MESSAGE_SIZE */
export function envName(path: readonly string[]): string {
  return ENV_PREFIX + path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');
}

interface ZodDefLike {
  type: string;
  shape?: Record<string, { _zod: { def: ZodDefLike } }>;
  innerType?: { _zod: { def: ZodDefLike } };
}

/** Every leaf key path of the schema, e.g. ["smtp","port"]. */
export function settingPaths(): string[][] {
  const out: string[][] = [];
  const walk = (def: ZodDefLike, path: string[]) => {
    if ((def.type === 'default' || def.type === 'prefault' || def.type === 'optional') && def.innerType) return walk(def.innerType._zod.def, path);
    if (def.type === 'object' && def.shape) {
      for (const [k, v] of Object.entries(def.shape)) walk(v._zod.def, [...path, k]);
      return;
    }
    out.push(path);
  };
  walk((configSchema as unknown as { _zod: { def: ZodDefLike } })._zod.def, []);
  return out;
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown) {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

function getPath(source: unknown, path: readonly (string | number | symbol)[]): unknown {
  let node = source;
  for (const key of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string | number | symbol, unknown>)[key];
  }
  return node;
}

function deepMerge(base: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(extra)) {
    const b = out[k];
    out[k] =
      typeof v === 'object' && v !== null && !Array.isArray(v) && typeof b === 'object' && b !== null && !Array.isArray(b)
        ? deepMerge(b as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

function show(value: unknown): string {
  if (value === undefined) return '(missing)';
  const s = typeof value === 'string' ? JSON.stringify(value) : JSON.stringify(value) ?? String(value);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function readYaml(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read the configuration file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (err) {
    const first = String((err as Error).message).split('\n')[0];
    throw new ConfigError(`${file} is not valid YAML: ${first}`);
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) throw new ConfigError(`${file} must hold a mapping of settings (key: value), not a ${Array.isArray(data) ? 'list' : typeof data}`);
  return data as Record<string, unknown>;
}

/**
 * Loads the effective configuration: schema defaults, then the YAML file, then overrides, then
 * FERRY_* environment variables. Throws ConfigError with one line naming the key, the value,
 * what is allowed and where the value came from.
 */
export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const source = opts.file ?? '(defaults)';
  const fileValues: Record<string, unknown> = opts.file ? readYaml(opts.file) : {};
  let raw: Record<string, unknown> = fileValues;
  if (opts.overrides) raw = deepMerge(raw, opts.overrides);

  const fromEnv = new Map<string, string>();
  const known = new Map(settingPaths().map((p) => [envName(p), p]));
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || ENV_NOT_SETTINGS.test(name) || value === undefined) continue;
    const path = known.get(name);
    if (!path) {
      const suggestion = closestName(name, [...known.keys()]);
      throw new ConfigError(`${name} is not a Ferry setting${suggestion ? `; did you mean ${suggestion}?` : ''} (settings are FERRY_ plus the key path, e.g. FERRY_SMTP_PORT for smtp.port)`);
    }
    setPath(raw, path, value);
    fromEnv.set(path.join('.'), name);
  }
  refuseUnitlessDurations(fileValues, fromEnv, env, source);

  const result = configSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(describeIssue(result.error.issues[0]!, raw, source, fromEnv));

  const config = resolveConfig(result.data);
  if (config.smtp.hardLimit < config.smtp.maxMessageSize) {
    throw new ConfigError(
      `smtp.hardLimit = ${config.smtp.hardLimit} is below smtp.maxMessageSize = ${config.smtp.maxMessageSize}: the hard limit must be at least the message size limit (or leave it unset for max(3 x maxMessageSize, 50MB))`,
    );
  }
  if (config.web.downloads === 'redirect' && !config.storage.blobs.startsWith('s3://')) {
    throw new ConfigError(
      `web.downloads = "redirect" needs an S3 blob store, but storage.blobs = ${show(config.storage.blobs)}: the filesystem store cannot mint presigned URLs. Set storage.blobs to s3://BUCKET?endpoint=..., or web.downloads to proxy`,
    );
  }
  const relayIn = result.data.relay;
  if (relayIn.attemptTimeout !== undefined && relayIn.timeout !== undefined && relayIn.attemptTimeout !== relayIn.timeout) {
    throw new ConfigError(`relay.timeout = ${relayIn.timeout} ms and relay.attemptTimeout = ${relayIn.attemptTimeout} ms disagree: relay.timeout is the earlier name of relay.attemptTimeout; set only relay.attemptTimeout`);
  }
  // A worker must finish an attempt (and its record update) well inside its lease, or a second
  // worker could take the entry while the first is still delivering it. A worker starts no new
  // transaction after half the lease, and one transaction takes at most attemptTimeout.
  if (config.queue.leaseTimeout < 2 * config.relay.attemptTimeout + 10_000) {
    throw new ConfigError(
      `queue.leaseTimeout = ${config.queue.leaseTimeout} ms is too short for relay.attemptTimeout = ${config.relay.attemptTimeout} ms: it must be at least 2 x attemptTimeout + 10s (${2 * config.relay.attemptTimeout + 10_000} ms); raise queue.leaseTimeout or lower relay.attemptTimeout`,
    );
  }
  return config;
}

/**
 * Durations measured in hours or days, with the shortest value an admin can mean: a bare number
 * below it is refused. Elsewhere (timeouts, intervals) a bare number stays milliseconds, as a
 * 500 ms socket timeout in a test setup can be meant; their errors still say what was read.
 */
const UNITLESS_FLOOR = new Map<string, number>([
  ['retention.default', 3_600_000],
  ['retention.minimum', 3_600_000],
  ['retention.maximum', 3_600_000],
  ['retention.keepRecords', 3_600_000],
  ['retention.sweepInterval', 1000],
  ['queue.maxAge', 60_000],
  ['queue.delayWarning', 60_000],
  ['queue.retrySchedule', 1000],
]);

/**
 * A bare number for a duration is milliseconds, which an admin who writes
 * FERRY_RETENTION_DEFAULT=30 or `maxAge: 5` never means (UNITLESS_FLOOR): refused with the unit
 * that was read and the value to write, before the schema could answer with a bound the admin
 * cannot place.
 * Only the file and the environment are checked; programmatic overrides are milliseconds.
 */
function refuseUnitlessDurations(fileValues: Record<string, unknown>, fromEnv: Map<string, string>, env: NodeJS.ProcessEnv, source: string): void {
  for (const [key, floor] of UNITLESS_FLOOR) {
    const kind = unitKinds().get(key);
    const envName = fromEnv.get(key);
    const value = envName !== undefined ? env[envName] : getPath(fileValues, key.split('.'));
    const values = kind === 'durations' ? (typeof value === 'string' ? value.split(',') : Array.isArray(value) ? value : [value]) : [value];
    for (const v of values) {
      if (v === undefined || !isBareNumber(v)) continue;
      const n = Number(String(v).trim());
      if (n === 0 || n >= floor) continue;
      const fix = n < 1000 ? `write ${n}d for ${n} days (or ${n}h, ${n}m, ${n}s; ${n}ms if milliseconds are really meant)` : 'write it with a unit, such as 30d, 12h or 10m';
      throw new ConfigError(
        `${key} = ${show(value)} is not allowed (${envName ? `set in ${envName}` : `in ${source}`}): ${n} has no unit, so it would be read as ${n} milliseconds (${formatDuration(n)}); ${fix}`,
      );
    }
  }
}

/**
 * The known name closest to a misspelt one (at most a few letters apart), for "did you mean".
 * Hand-written Levenshtein distance: a dozen lines over about a hundred short names, not worth a
 * dependency.
 */
export function closestName(name: string, known: readonly string[]): string | undefined {
  const squash = (s: string) => s.replace(/_/g, '');
  const exact = known.find((k) => squash(k) === squash(name));
  if (exact) return exact;
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = distance(name, k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  // FERRY_ and the key path are long; allow about one typo per six letters of the setting's part.
  return bestD <= Math.max(2, Math.floor((name.length - ENV_PREFIX.length) / 6)) ? best : undefined;
}

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

function describeIssue(issue: z.core.$ZodIssue, raw: unknown, source: string, fromEnv: Map<string, string>): string {
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys') {
    const where = path.length ? `${path.join('.')}.` : '';
    const keys = issue.keys.map((k) => `${where}${k}`).join(', ');
    return `${keys} ${issue.keys.length > 1 ? 'are not known settings' : 'is not a known setting'} (in ${source}); see the configuration reference in the README`;
  }
  // A list given as one comma-separated string has no value at "key.1": name the key, show the whole value.
  let valuePath: (string | number | symbol)[] = [...issue.path];
  let value = getPath(raw, valuePath);
  while (value === undefined && typeof valuePath[valuePath.length - 1] === 'number') {
    valuePath = valuePath.slice(0, -1);
    value = getPath(raw, valuePath);
  }
  const key = valuePath.map(String).join('.') || '(top level)';
  const env = fromEnv.get(key);
  const origin = env ? `set in ${env}` : `in ${source}`;
  // A secret (or a URL with a password) is named, never shown. An item of a list of secrets
  // (admin.tokens.1) is secret by the list's name, not by its index.
  const name = [...valuePath].reverse().find((k) => typeof k !== 'number');
  const shown = redactValue(String(name ?? ''), value);
  // Say what a unitless duration was read as: "2592000 (read as milliseconds: 43.2m)".
  const kind = unitKinds().get(key);
  const readAs = kind === 'duration' && isBareNumber(value) ? ` (${String(value).trim()} was read as milliseconds, that is ${formatDuration(Number(value))}; write a unit such as 30d, 12h, 10m or 90s)` : '';
  return `${key} = ${show(shown)} is not allowed (${origin}): ${issue.message}${readAs}`;
}
