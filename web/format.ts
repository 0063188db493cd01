// How sizes and times read on the pages. Times are shown in UTC with the zone named, because the
// server cannot know the recipient's zone and pages carry no script to find out.

const UNITS = ['bytes', 'kB', 'MB', 'GB', 'TB'];

/** Decimal units, as file managers on most systems show them: 1 MB = 1,000,000 bytes. */
export function humanSize(bytes: number): string {
  if (bytes < 1000) return bytes === 1 ? '1 byte' : `${bytes} bytes`;
  let v = bytes;
  let u = 0;
  while (v >= 1000 && u < UNITS.length - 1) {
    v /= 1000;
    u++;
  }
  const digits = v < 10 ? 1 : 0;
  return `${v.toFixed(digits)} ${UNITS[u]}`;
}

/** 1234567 -> "1,234,567", independent of the server's locale. */
export function exactBytes(bytes: number): string {
  return String(bytes).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** "25 Nov 2025, 14:05 UTC" */
export function humanTime(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}, ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`;
}

/** For the datetime attribute of <time>. */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}
