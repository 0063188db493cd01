import os from 'node:os';
import { parseArgs as parseNodeArgs, type ParseArgsConfig } from 'node:util';
import type { Config } from '../config/schema.js';
import { formatSize } from '../config/units.js';
import { openStorage, retentionBounds, RetentionConflictError, seedRetentionRules, type Storage } from '../storage/index.js';
import { storageOptionsFrom } from './storage-options.js';

// Shared by `ferry transfers`, `ferry rules` and `ferry purge`: opening the configured storage,
// who the audit log names, and plain-text tables.

/**
 * The configured storage, with the configuration's retention values seeded as `ferry start` does.
 * When the file's bounds contradict those an admin set at run time, `ferry start` refuses; here
 * the seed is skipped with a warning (nothing changes), so `ferry rules set` can still fix it.
 */
export async function openAdminStorage(config: Config, warn: (s: string) => void = console.error): Promise<Storage> {
  const storage = await openStorage(storageOptionsFrom(config));
  try {
    await seedRetentionRules(storage.db, { ...retentionBounds(config), rules: config.retention.rules });
  } catch (err) {
    if (err instanceof RetentionConflictError) {
      warn(`ferry: warning: the configuration's retention values were not applied: ${err.message}`);
      return storage;
    }
    await storage.close();
    throw err;
  }
  return storage;
}

/** "cli:USER" in the audit log. */
export function cliActor(): string {
  let user = process.env.SUDO_USER || process.env.USER || '';
  try {
    user ||= os.userInfo().username;
  } catch {
    /* no passwd entry (containers): keep what the environment said */
  }
  return `cli:${user || 'unknown'}`;
}

// C0 and C1 controls (ESC starts terminal escape sequences; CR and LF would forge lines of the
// table), DEL, and the bidi controls that reorder what is shown.
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * A value from a message or the network (file name, subject, sender, a next hop's reply) made
 * safe to print on an admin's terminal: controls are shown as \xNN / \uNNNN, never sent raw.
 * A file name such as "report\x1b]0;...\x07.pdf" would otherwise drive the terminal.
 */
export function printable(v: string | number | null | undefined): string {
  return String(v ?? '').replace(UNPRINTABLE, (c) => {
    const n = c.charCodeAt(0);
    return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
  });
}

export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(printable))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

export function when(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '-';
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 16) + 'Z';
}

export const bytes = formatSize;

/** node:util parseArgs with errors that name the command. */
export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>>(command: string, args: string[], options: T) {
  try {
    return parseNodeArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`ferry ${command}: ${(err as Error).message}`);
  }
}

/** Bad command line: the message and exit code 2. */
export class UsageError extends Error {
  readonly code = 'FERRY_ERR_USAGE';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** "2026-12-01", "2026-12-01T10:00:00Z" -> ms; throws UsageError naming the flag. */
export function parseDate(flag: string, v: string): number {
  const ms = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v);
  if (!Number.isFinite(ms)) throw new UsageError(`--${flag}: "${v}" is not a date; use 2026-12-01 or 2026-12-01T10:00:00Z`);
  return ms;
}

export function parseNumber(flag: string, v: string, opts: { integer?: boolean; min?: number } = {}): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || (opts.integer && !Number.isInteger(n)) || (opts.min !== undefined && n < opts.min)) {
    throw new UsageError(`--${flag}: "${v}" is not ${opts.integer ? 'a whole number' : 'a number'}${opts.min !== undefined ? ` of at least ${opts.min}` : ''}`);
  }
  return n;
}
