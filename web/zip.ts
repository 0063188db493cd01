import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { savedName } from '../storage/index.js';

// "Download all" as one ZIP archive, streamed straight from the blob store.
//
// Written by hand (about 250 lines) rather than taken from a package because the archive must
// satisfy four things at once: (1) its exact length is known before the first byte, so the
// response carries Content-Length and browsers show progress and a real "time left"; (2) nothing
// is buffered or spooled to disk: memory stays bounded whatever the size; (3) ZIP64 where a
// size or offset needs it; (4) entries are stored, not compressed (attachments are nearly
// always compressed already, and storing is what makes the length predictable). The popular
// streaming writers (archiver/zip-stream) cannot announce the length; yazl can (its finalSize)
// but is not a dependency of this project, and the format needed here is small and fully
// specified by PKWARE's APPNOTE.TXT, which this file follows section by section.
//
// Layout per file: local header (bit 3 set: CRC and sizes follow the data, bit 11: UTF-8 name),
// the stored bytes, a data descriptor; then the central directory; then, when needed, the ZIP64
// end-of-central-directory record and locator; then the end-of-central-directory record. Bit 3
// is what lets the CRC-32 be computed while the file streams (it cannot be known before the
// data has been read once), and the descriptor has a fixed size (16 bytes, or 24 for ZIP64
// entries), so the total length is still exact.

export interface ZipSource {
  idx: number;
  /** The name from the record; made safe and unique here. */
  name: string;
  size: number;
  /** SHA-256 (hex) from the record: the bytes are checked against it as they stream. */
  sha256?: string;
  /** Modification time written into the entry (ms since the epoch). */
  mtime: number;
}

export interface ZipEntryPlan extends ZipSource {
  /** The name inside the archive: savedName(), de-duplicated with " (2)", " (3)"... */
  entryName: string;
  nameBytes: Buffer;
  /** Sizes need the ZIP64 extra field (and an 8-byte data descriptor). */
  zip64: boolean;
  /** Offset of the local header from the start of the archive. */
  offset: number;
  /** Length of local header + data + descriptor. */
  length: number;
}

export interface ZipPlan {
  entries: ZipEntryPlan[];
  centralDirectoryOffset: number;
  centralDirectorySize: number;
  /** A ZIP64 end-of-central-directory record is written. */
  zip64: boolean;
  /** Exact length of the whole archive in bytes. */
  size: number;
  threshold: number;
}

/** Sizes and offsets at or above this go into ZIP64 fields (0xFFFFFFFF marks "see ZIP64"). */
export const ZIP64_LIMIT = 0xffffffff;
const MAX_ENTRIES_16 = 0xffff;

const SIG_LOCAL = 0x04034b50;
const SIG_DESCRIPTOR = 0x08074b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_EOCD = 0x06054b50;

const FLAG_DESCRIPTOR = 1 << 3;
const FLAG_UTF8 = 1 << 11;
const METHOD_STORE = 0;
const VERSION_DEFAULT = 20; // 2.0: data descriptors
const VERSION_ZIP64 = 45; // 4.5: ZIP64
const MADE_BY_UNIX = 3 << 8;
const UNIX_FILE_0644 = (0o100644 << 16) >>> 0;

const LOCAL_FIXED = 30;
const CENTRAL_FIXED = 46;
const EOCD_SIZE = 22;
const ZIP64_EOCD_SIZE = 56;
const ZIP64_LOCATOR_SIZE = 20;
/** Extended timestamp (0x5455) with the modification time only: 4 header + 1 flags + 4 time. */
const EXTRA_TIME_SIZE = 9;
/** ZIP64 extra field in a local header: 4 header + original size (8) + compressed size (8). */
const EXTRA_ZIP64_LOCAL_SIZE = 20;

/**
 * Entry names: savedName() is the one rule for saved names (no path separators, no "..", no
 * control or bidi characters); two files with the same name (compared case-insensitively, since
 * Windows and macOS file systems are) become "name.ext", "name (2).ext", "name (3).ext".
 */
export function uniqueEntryNames(names: string[]): string[] {
  const used = new Set<string>();
  return names.map((raw) => {
    const base = savedName(raw);
    let candidate = base;
    if (used.has(candidate.toLowerCase())) {
      const dot = base.lastIndexOf('.');
      const [stem, ext] = dot > 0 ? [base.slice(0, dot), base.slice(dot)] : [base, ''];
      for (let n = 2; used.has(candidate.toLowerCase()); n++) candidate = `${stem} (${n})${ext}`;
    }
    used.add(candidate.toLowerCase());
    return candidate;
  });
}

function centralExtraSize(e: ZipEntryPlan, threshold: number): number {
  const fields = (e.zip64 ? 2 : 0) + (e.offset >= threshold ? 1 : 0);
  return EXTRA_TIME_SIZE + (fields > 0 ? 4 + 8 * fields : 0);
}

/** Lays the archive out from the records alone: every offset and the exact total length. */
export function planZip(sources: ZipSource[], opts: { zip64Threshold?: number } = {}): ZipPlan {
  const threshold = opts.zip64Threshold ?? ZIP64_LIMIT;
  const names = uniqueEntryNames(sources.map((s) => s.name));
  let offset = 0;
  const entries: ZipEntryPlan[] = sources.map((s, i) => {
    const nameBytes = Buffer.from(names[i]!, 'utf8');
    const zip64 = s.size >= threshold;
    const length = LOCAL_FIXED + nameBytes.length + EXTRA_TIME_SIZE + (zip64 ? EXTRA_ZIP64_LOCAL_SIZE : 0) + s.size + (zip64 ? 24 : 16);
    const e: ZipEntryPlan = { ...s, entryName: names[i]!, nameBytes, zip64, offset, length };
    offset += length;
    return e;
  });
  const centralDirectoryOffset = offset;
  const centralDirectorySize = entries.reduce((n, e) => n + CENTRAL_FIXED + e.nameBytes.length + centralExtraSize(e, threshold), 0);
  const zip64 =
    entries.some((e) => e.zip64 || e.offset >= threshold) ||
    entries.length >= MAX_ENTRIES_16 ||
    centralDirectoryOffset >= threshold ||
    centralDirectorySize >= threshold;
  const size = centralDirectoryOffset + centralDirectorySize + (zip64 ? ZIP64_EOCD_SIZE + ZIP64_LOCATOR_SIZE : 0) + EOCD_SIZE;
  return { entries, centralDirectoryOffset, centralDirectorySize, zip64, size, threshold };
}

/** MS-DOS date and time (2-second resolution, no zone: UTC is written, as most tools do). */
function dosDateTime(ms: number): { date: number; time: number } {
  const d = new Date(Math.max(ms, Date.UTC(1980, 0, 1)));
  const year = Math.min(d.getUTCFullYear(), 2107);
  return {
    date: ((year - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate(),
    time: (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | Math.floor(d.getUTCSeconds() / 2),
  };
}

function unixSeconds(ms: number): number {
  return Math.min(Math.max(0, Math.floor(ms / 1000)), 0xffffffff);
}

function timeExtra(ms: number): Buffer {
  const b = Buffer.alloc(EXTRA_TIME_SIZE);
  b.writeUInt16LE(0x5455, 0);
  b.writeUInt16LE(5, 2);
  b.writeUInt8(1, 4); // modification time present
  b.writeUInt32LE(unixSeconds(ms), 5);
  return b;
}

function u64(b: Buffer, value: number, at: number): void {
  b.writeBigUInt64LE(BigInt(value), at);
}

export function localHeader(e: ZipEntryPlan): Buffer {
  const extraLen = EXTRA_TIME_SIZE + (e.zip64 ? EXTRA_ZIP64_LOCAL_SIZE : 0);
  const b = Buffer.alloc(LOCAL_FIXED + e.nameBytes.length + extraLen);
  const { date, time } = dosDateTime(e.mtime);
  b.writeUInt32LE(SIG_LOCAL, 0);
  b.writeUInt16LE(e.zip64 ? VERSION_ZIP64 : VERSION_DEFAULT, 4);
  b.writeUInt16LE(FLAG_DESCRIPTOR | FLAG_UTF8, 6);
  b.writeUInt16LE(METHOD_STORE, 8);
  b.writeUInt16LE(time, 10);
  b.writeUInt16LE(date, 12);
  // CRC-32 and sizes are 0 here (bit 3): they follow the data in the descriptor. A ZIP64 entry
  // marks its sizes 0xFFFFFFFF and carries a ZIP64 extra field, which tells readers that its
  // descriptor holds 8-byte sizes (APPNOTE 4.3.9.2).
  b.writeUInt32LE(0, 14);
  b.writeUInt32LE(e.zip64 ? ZIP64_LIMIT : 0, 18);
  b.writeUInt32LE(e.zip64 ? ZIP64_LIMIT : 0, 22);
  b.writeUInt16LE(e.nameBytes.length, 26);
  b.writeUInt16LE(extraLen, 28);
  e.nameBytes.copy(b, LOCAL_FIXED);
  let at = LOCAL_FIXED + e.nameBytes.length;
  timeExtra(e.mtime).copy(b, at);
  at += EXTRA_TIME_SIZE;
  if (e.zip64) {
    b.writeUInt16LE(0x0001, at);
    b.writeUInt16LE(16, at + 2);
    u64(b, 0, at + 4);
    u64(b, 0, at + 12);
  }
  return b;
}

export function dataDescriptor(e: ZipEntryPlan, crc: number): Buffer {
  const b = Buffer.alloc(e.zip64 ? 24 : 16);
  b.writeUInt32LE(SIG_DESCRIPTOR, 0);
  b.writeUInt32LE(crc >>> 0, 4);
  if (e.zip64) {
    u64(b, e.size, 8);
    u64(b, e.size, 16);
  } else {
    b.writeUInt32LE(e.size, 8);
    b.writeUInt32LE(e.size, 12);
  }
  return b;
}

function centralHeader(e: ZipEntryPlan, crc: number, threshold: number): Buffer {
  const offset64 = e.offset >= threshold;
  const extraLen = centralExtraSize(e, threshold);
  const b = Buffer.alloc(CENTRAL_FIXED + e.nameBytes.length + extraLen);
  const { date, time } = dosDateTime(e.mtime);
  const needs64 = e.zip64 || offset64;
  b.writeUInt32LE(SIG_CENTRAL, 0);
  b.writeUInt16LE(MADE_BY_UNIX | (needs64 ? VERSION_ZIP64 : VERSION_DEFAULT), 4);
  b.writeUInt16LE(needs64 ? VERSION_ZIP64 : VERSION_DEFAULT, 6);
  b.writeUInt16LE(FLAG_DESCRIPTOR | FLAG_UTF8, 8);
  b.writeUInt16LE(METHOD_STORE, 10);
  b.writeUInt16LE(time, 12);
  b.writeUInt16LE(date, 14);
  b.writeUInt32LE(crc >>> 0, 16);
  b.writeUInt32LE(e.zip64 ? ZIP64_LIMIT : e.size, 20);
  b.writeUInt32LE(e.zip64 ? ZIP64_LIMIT : e.size, 24);
  b.writeUInt16LE(e.nameBytes.length, 28);
  b.writeUInt16LE(extraLen, 30);
  b.writeUInt16LE(0, 32); // comment length
  b.writeUInt16LE(0, 34); // disk number start
  b.writeUInt16LE(0, 36); // internal attributes
  b.writeUInt32LE(UNIX_FILE_0644, 38);
  b.writeUInt32LE(offset64 ? ZIP64_LIMIT : e.offset, 42);
  e.nameBytes.copy(b, CENTRAL_FIXED);
  let at = CENTRAL_FIXED + e.nameBytes.length;
  timeExtra(e.mtime).copy(b, at);
  at += EXTRA_TIME_SIZE;
  if (needs64) {
    // Only the fields whose 32-bit slot says 0xFFFFFFFF, in APPNOTE order (4.5.3).
    const fields = [...(e.zip64 ? [e.size, e.size] : []), ...(offset64 ? [e.offset] : [])];
    b.writeUInt16LE(0x0001, at);
    b.writeUInt16LE(8 * fields.length, at + 2);
    fields.forEach((v, i) => u64(b, v, at + 4 + 8 * i));
  }
  return b;
}

function endRecords(plan: ZipPlan): Buffer {
  const parts: Buffer[] = [];
  const n = plan.entries.length;
  const t = plan.threshold;
  if (plan.zip64) {
    const z = Buffer.alloc(ZIP64_EOCD_SIZE);
    z.writeUInt32LE(SIG_ZIP64_EOCD, 0);
    u64(z, ZIP64_EOCD_SIZE - 12, 4);
    z.writeUInt16LE(MADE_BY_UNIX | VERSION_ZIP64, 12);
    z.writeUInt16LE(VERSION_ZIP64, 14);
    z.writeUInt32LE(0, 16);
    z.writeUInt32LE(0, 20);
    u64(z, n, 24);
    u64(z, n, 32);
    u64(z, plan.centralDirectorySize, 40);
    u64(z, plan.centralDirectoryOffset, 48);
    const loc = Buffer.alloc(ZIP64_LOCATOR_SIZE);
    loc.writeUInt32LE(SIG_ZIP64_LOCATOR, 0);
    loc.writeUInt32LE(0, 4);
    u64(loc, plan.centralDirectoryOffset + plan.centralDirectorySize, 8);
    loc.writeUInt32LE(1, 16);
    parts.push(z, loc);
  }
  const e = Buffer.alloc(EOCD_SIZE);
  e.writeUInt32LE(SIG_EOCD, 0);
  e.writeUInt16LE(0, 4);
  e.writeUInt16LE(0, 6);
  e.writeUInt16LE(Math.min(n, MAX_ENTRIES_16), 8);
  e.writeUInt16LE(Math.min(n, MAX_ENTRIES_16), 10);
  e.writeUInt32LE(plan.centralDirectorySize >= t ? ZIP64_LIMIT : plan.centralDirectorySize, 12);
  e.writeUInt32LE(plan.centralDirectoryOffset >= t ? ZIP64_LIMIT : plan.centralDirectoryOffset, 16);
  e.writeUInt16LE(0, 20);
  parts.push(e);
  return Buffer.concat(parts);
}

// zlib.crc32 exists from Node 20.15 / 22.2; the table is the fallback for older runtimes.
const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;
let table: Uint32Array | undefined;
function tableCrc32(data: Uint8Array, value = 0): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[i] = c >>> 0;
    }
  }
  let crc = ~value >>> 0;
  for (let i = 0; i < data.length; i++) crc = table[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}
export const crc32: (data: Uint8Array, value?: number) => number = nativeCrc32 ?? tableCrc32;
export { tableCrc32 };

/** A stored blob does not match its record (length or SHA-256): the archive is cut short. */
export class ZipIntegrityError extends Error {
  constructor(readonly idx: number, what: string) {
    super(`file ${idx}: ${what}`);
    this.name = 'ZipIntegrityError';
  }
}

/**
 * The archive's bytes, in order. `open(entry)` gives each file's stream when its turn comes,
 * so at most one blob is open at a time. A blob whose length differs from its record would make
 * the announced Content-Length a lie, and one whose SHA-256 differs would be packed with a CRC
 * that happily matches the wrong bytes: either throws before the entry's descriptor is written,
 * so the response is cut short and the browser reports a failed download instead of saving an
 * archive that looks fine. (SHA-256 runs at well over 1 GB/s a core; the network is slower.)
 */
export async function* zipChunks(plan: ZipPlan, open: (entry: ZipEntryPlan) => Promise<Readable>): AsyncGenerator<Buffer> {
  const crcs: number[] = [];
  for (const e of plan.entries) {
    yield localHeader(e);
    let crc = 0;
    let n = 0;
    const expectedSha = e.sha256 && /^[0-9a-f]{64}$/i.test(e.sha256) ? e.sha256.toLowerCase() : undefined;
    const hash = expectedSha ? createHash('sha256') : undefined;
    const stream = await open(e);
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        n += chunk.length;
        if (n > e.size) throw new ZipIntegrityError(e.idx, `stored blob is longer than the ${e.size} bytes of its record`);
        crc = crc32(chunk, crc);
        hash?.update(chunk);
        yield chunk;
      }
    } finally {
      stream.destroy();
    }
    if (n !== e.size) throw new ZipIntegrityError(e.idx, `stored blob has ${n} bytes, its record says ${e.size}`);
    if (hash && hash.digest('hex') !== expectedSha) throw new ZipIntegrityError(e.idx, 'stored blob does not match the SHA-256 of its record');
    crcs.push(crc);
    yield dataDescriptor(e, crc);
  }
  const central = plan.entries.map((e, i) => centralHeader(e, crcs[i]!, plan.threshold));
  yield Buffer.concat([...central, endRecords(plan)]);
}
