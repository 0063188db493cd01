// How sizes and times read on the pages. Times are shown in UTC with the zone named, because the
// server cannot know the recipient's zone; the page script (when it runs) adds the local time.

const UNITS = ['bytes', 'kB', 'MB', 'GB', 'TB'];

function scaled(bytes: number): { value: number; unit: number } {
  let v = bytes;
  let u = 0;
  while (v >= 1000 && u < UNITS.length - 1) {
    v /= 1000;
    u++;
  }
  return { value: v, unit: u };
}

/** Decimal units, as file managers on most systems show them: 1 MB = 1,000,000 bytes. */
export function humanSize(bytes: number, locale = 'en-GB'): string {
  if (bytes < 1000) return bytes === 1 ? '1 byte' : `${bytes} bytes`;
  const { value, unit } = scaled(bytes);
  const digits = value < 10 ? 1 : 0;
  // Rounding first keeps 9.96 MB from printing as "10.0 MB".
  const shown = new Intl.NumberFormat(locale, { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(value);
  return `${shown} ${UNITS[unit]}`;
}

/** 1234567 -> "1,234,567" (or the locale's grouping), independent of the server's locale. */
export function exactBytes(bytes: number, locale = 'en-GB'): string {
  return new Intl.NumberFormat(locale, { useGrouping: true, maximumFractionDigits: 0 }).format(bytes);
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** "25 Nov 2025, 14:05 UTC" (in English; other locales use their own order and month names). */
export function humanTime(ms: number, locale = 'en-GB'): string {
  let f = formatters.get(locale);
  if (!f) {
    f = new Intl.DateTimeFormat(locale, {
      day: 'numeric',
      month: 'short',
      year: 'numeric',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
      timeZone: 'UTC',
    });
    formatters.set(locale, f);
  }
  return `${f.format(ms)} UTC`;
}

/** For the datetime attribute of <time>. */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * The largest whole unit of a remaining duration: "7 days", "3 hours", "12 minutes". Days and
 * hours are rounded to the nearest unit, so a 7-day link opened a minute after it was sent says
 * "7 days left" (rounding down said "6 days", which reads as a wrong retention period); the
 * exact expiry time stands beside it on the page. Minutes are rounded down: at the very end,
 * never promise a minute that is not there.
 */
export function timeLeftParts(ms: number): { unit: 'day' | 'hour' | 'minute'; n: number } | undefined {
  if (ms < 60_000) return undefined;
  if (ms >= 2 * 86_400_000) return { unit: 'day', n: Math.round(ms / 86_400_000) };
  if (ms >= 2 * 3_600_000) return { unit: 'hour', n: Math.round(ms / 3_600_000) };
  return { unit: 'minute', n: Math.floor(ms / 60_000) };
}
