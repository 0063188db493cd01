import type { ByteRange } from '../storage/index.js';

// Parsing of the Range request header (RFC 9110 §14.1-14.2) as a pure function, so that every
// case of the matrix can be tested without a server. Written out rather than taken from
// range-parser because that package accepts any unit, answers "unsatisfiable" for syntactically
// invalid specs such as 5-2 (RFC 9110 says such a header is invalid and is to be ignored), and
// leaves zero-length files to the caller.

export type RangeRequest =
  /** A single satisfiable range, clamped to the file. */
  | { kind: 'single'; range: ByteRange }
  /** Syntactically valid, but no range overlaps the file: 416. */
  | { kind: 'unsatisfiable' }
  /** More than one disjoint range: served as a whole 200 (no multipart/byteranges). */
  | { kind: 'multiple' }
  /** Not a bytes range we understand: ignored, served as a whole 200. */
  | { kind: 'malformed' };

// A cap on specs per header; a longer list is a resource probe, not a download manager.
const MAX_SPECS = 64;

export function parseRange(header: string, size: number): RangeRequest {
  const m = /^\s*bytes\s*=(.*)$/i.exec(header);
  if (!m) return { kind: 'malformed' };
  // range-set is an HTTP list: empty elements and whitespace around commas are allowed.
  const specs = m[1]!.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (specs.length === 0) return { kind: 'malformed' };
  if (specs.length > MAX_SPECS) return { kind: 'multiple' };

  const ranges: ByteRange[] = [];
  for (const spec of specs) {
    const int = /^(\d+)\s*-\s*(\d*)$/.exec(spec);
    if (int) {
      const first = Number(int[1]);
      const last = int[2] === '' ? Infinity : Number(int[2]);
      if (last < first) return { kind: 'malformed' };
      if (first < size) ranges.push({ start: first, end: Math.min(last, size - 1) });
      continue;
    }
    const suffix = /^-\s*(\d+)$/.exec(spec);
    if (suffix) {
      const length = Number(suffix[1]);
      if (length > 0 && size > 0) ranges.push({ start: Math.max(0, size - length), end: size - 1 });
      continue;
    }
    return { kind: 'malformed' };
  }
  if (ranges.length === 0) return { kind: 'unsatisfiable' };

  const merged = mergeRanges(ranges);
  return merged.length === 1 ? { kind: 'single', range: merged[0]! } : { kind: 'multiple' };
}

/** Overlapping or adjacent ranges become one: "0-99,100-199" is a single range. */
function mergeRanges(ranges: ByteRange[]): ByteRange[] {
  const sorted = [...ranges].sort((a, b) => a.start - b.start);
  const out: ByteRange[] = [{ ...sorted[0]! }];
  for (const r of sorted.slice(1)) {
    const last = out[out.length - 1]!;
    if (r.start <= last.end + 1) last.end = Math.max(last.end, r.end);
    else out.push({ ...r });
  }
  return out;
}
