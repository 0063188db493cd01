import fs from 'node:fs';
import { unitKinds } from '../config/key-units.js';
import { redactConfig } from '../config/redact.js';
import type { Config } from '../config/schema.js';
import { formatConfigSize, formatDuration } from '../config/units.js';
import { boundsConflict, plannedRules, retentionBounds, rulesInEffect, type RetentionRule } from '../storage/retention.js';
import { checkConfigFiles } from './check-files.js';

// `ferry check-config`: the effective configuration on stdout (JSON, which is also YAML, so it
// can be saved as a ferry.yaml), with durations and sizes as an admin writes them (30d, 500 MB),
// secrets masked and deprecated aliases left out; then, on stderr, the retention rules in effect
// from the database and the file, each saying where it comes from. Refuses (exit 78) what
// `ferry start` would refuse, retention bounds that contradict each other included.
// Imports only the configuration, the retention rules and the database driver: never the SMTP
// server, Fastify or the S3 SDK, so it answers quickly.

/** Keys still accepted under an earlier name; the printout shows only the current one. */
const DEPRECATED_ALIASES = new Set(['relay.timeout']);

/** The configuration as it is printed: units written out, aliases gone, secrets masked. */
export function printableConfig(config: Config): Record<string, unknown> {
  const kinds = unitKinds();
  const walk = (v: unknown, path: string[]): unknown => {
    const key = path.join('.');
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(
        Object.entries(v)
          .filter(([k]) => !DEPRECATED_ALIASES.has([...path, k].join('.')))
          .map(([k, x]) => [k, walk(x, [...path, k])]),
      );
    }
    const kind = kinds.get(key);
    if (kind === 'duration' && typeof v === 'number') return formatDuration(v);
    if (kind === 'durations' && Array.isArray(v)) return v.map((x) => (typeof x === 'number' ? formatDuration(x) : x));
    if (kind === 'size' && typeof v === 'number') return formatConfigSize(v);
    return v;
  };
  return walk(redactConfig(config), []) as Record<string, unknown>;
}

/** The rules table, or why it cannot be read (a database not created yet is no error). */
async function readRules(config: Config): Promise<{ rules?: RetentionRule[]; why?: string }> {
  const url = config.storage.database;
  const file = /^sqlite:(.+)$/.exec(url)?.[1];
  if (file && file !== ':memory:' && !fs.existsSync(file)) return { why: `the database ${file} does not exist yet` };
  const { openDatabase, redactUrl } = await import('../storage/database.js');
  const { listRules } = await import('../storage/retention.js');
  let db;
  try {
    const pg = config.storage.postgres;
    db = await openDatabase(url, { postgres: { maxConnections: 1, connectionTimeoutMs: pg.connectTimeout, statementTimeoutMs: pg.statementTimeout } });
    return { rules: await listRules(db) };
  } catch (err) {
    return { why: `cannot read the database ${redactUrl(url)}: ${(err as Error).message.split('\n')[0]}` };
  } finally {
    await db?.destroy();
  }
}

export async function checkConfigCommand(
  config: Config,
  configName: string,
  io: { out: (s: string) => void; err: (s: string) => void } = { out: console.log, err: console.error },
): Promise<number> {
  io.out(JSON.stringify(printableConfig(config), null, 2));
  const problems = checkConfigFiles(config);

  const cfg = { ...retentionBounds(config), rules: config.retention.rules };
  const { rules, why } = await readRules(config);
  const planned = rules ? plannedRules(rules, cfg) : undefined;
  const conflict = planned && boundsConflict(planned);
  if (conflict) problems.push(conflict);
  const effect = rulesInEffect(planned, cfg);
  // The switches lead the note (most rules have none), so the columns stay as scripts know them.
  const switches = (r: (typeof effect)[number]) => [r.requirePassword ? 'password required' : '', r.receipts === true ? 'receipts on' : r.receipts === false ? 'receipts off' : ''].filter(Boolean);
  const cells = [
    ['RULE', 'PERIOD', 'DOWNLOAD LIMIT', 'FROM', 'NOTE'],
    ...effect.map((r) => [r.id, formatDuration(r.periodMs), r.downloadLimit === null ? '-' : String(r.downloadLimit), r.from, [...switches(r), ...r.notes].join('; ')]),
  ];
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((c) => c[i]!.length)));
  io.err(`ferry: retention rules in effect${why ? ` (from the file only: ${why})` : ' (database and file)'}:`);
  for (const c of cells) io.err(`  ${c.map((x, i) => (i === c.length - 1 ? x : x.padEnd(widths[i]!))).join('  ')}`.trimEnd());

  if (problems.length) {
    for (const p of problems) io.err(`ferry: configuration error: ${p}`);
    return 78;
  }
  io.err(`ferry: configuration ${configName} is valid`);
  return 0;
}
