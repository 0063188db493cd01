// Size and duration strings for the configuration ("25MB", "1.5GB", "512KiB", "30d", "10m").
// Hand-written because the common packages (bytes, ms) either treat "MB" as MiB or accept
// things like "1e3" silently; an admin who writes 25MB must get exactly 25,000,000 bytes.

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

/** Bytes from a number or a string like "25MB" (SI, 10^6) or "512KiB" (binary); undefined if unreadable. */
export function parseSize(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  if (!m) return undefined;
  const unit = (m[2] ?? '').toLowerCase() || 'b';
  const factor = SIZE_UNITS[unit];
  if (factor === undefined) return undefined;
  const bytes = Math.round(Number(m[1]) * factor);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** Milliseconds from a number (ms) or a string like "30d", "10m", "90s". */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  // A bare whole number is milliseconds, as a YAML number is (environment values are strings).
  if (/^\s*\d+\s*$/.test(value)) return parseDuration(Number(value));
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$/i.exec(value);
  if (!m) return undefined;
  const factor = DURATION_UNITS[(m[2] ?? '').toLowerCase()];
  if (factor === undefined) return undefined;
  return Math.round(Number(m[1]) * factor);
}

/** "2026-12-09 14:00 UTC": a moment as mail, pages and notices show it, to the minute, in UTC. */
export function formatUtc(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`;
}

/** "12.3 MB" style, SI units as in the configuration. */
export function formatSize(bytes: number): string {
  if (bytes < 1000) return `${bytes} bytes`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let i = -1;
  do {
    v /= 1000;
    i++;
  } while (v >= 1000 && i < units.length - 1);
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

/**
 * "12,345,678": a whole number with its thousands grouped by commas, as the receipt writes a byte
 * count. By hand rather than toLocaleString('en-GB'): the format is fixed (it goes to a sender
 * whatever the server's locale), and the first Intl number format of a process pages in about
 * 5 MB of ICU data from the node binary, counted in the RSS of every worker that writes a receipt
 * (docs/performance.md, "Code pages").
 */
export function groupDigits(n: number): string {
  // A comma before every run of three digits that reaches the end ("-" is no digit).
  return Number.isSafeInteger(n) ? String(n).replace(/\B(?=(\d{3})+$)/g, ',') : String(n);
}

const DURATION_STEPS: [ms: number, short: string, word: string][] = [
  [86_400_000, 'd', 'day'],
  [3_600_000, 'h', 'hour'],
  [60_000, 'm', 'minute'],
  [1000, 's', 'second'],
  [1, 'ms', 'millisecond'],
];

/**
 * A duration as an admin writes it: 30d, 5m, 90s, 100ms (the largest unit that divides it
 * exactly, so check-config's output reads back as the same value), or with `words`:
 * "30 days", "5 minutes". A value no unit divides (an elapsed time) is given to one decimal
 * of the largest unit that fits: 2.5h, never "0 days".
 */
export function formatDuration(ms: number, opts: { words?: boolean } = {}): string {
  const say = (n: number, short: string, word: string) => (opts.words ? `${n} ${word}${n === 1 ? '' : 's'}` : `${n}${short}`);
  if (!Number.isFinite(ms)) return String(ms);
  if (ms === 0) return say(0, 's', 'second');
  for (const [unit, short, word] of DURATION_STEPS) if (ms >= unit && ms % unit === 0) return say(ms / unit, short, word);
  for (const [unit, short, word] of DURATION_STEPS) if (ms >= unit) return say(+(ms / unit).toFixed(1), short, word);
  return say(+ms.toFixed(3), 'ms', 'millisecond');
}

/** "500 MB", "5 MiB", "2 GB" for a size from the configuration: exact where a unit divides it. */
export function formatConfigSize(bytes: number): string | number {
  // Some size settings also take a share (smtp.heapLimit: 0.8 = 80 %): not a byte count.
  if (!Number.isInteger(bytes) || bytes < 0) return bytes;
  for (const [unit, name] of [
    [1e12, 'TB'],
    [1e9, 'GB'],
    [1e6, 'MB'],
    [1024 ** 4, 'TiB'],
    [1024 ** 3, 'GiB'],
    [1024 ** 2, 'MiB'],
    [1e3, 'kB'],
    [1024, 'KiB'],
  ] as const) {
    if (bytes >= unit && bytes % unit === 0) return `${bytes / unit} ${name}`;
  }
  return bytes >= 1000 ? `${bytes} bytes (${formatSize(bytes)})` : `${bytes} bytes`;
}

/** True for a number, or a string of digits only: a duration written without a unit. */
export function isBareNumber(value: unknown): boolean {
  return typeof value === 'number' || (typeof value === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(value));
}
