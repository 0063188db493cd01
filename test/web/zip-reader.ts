import fs from 'node:fs';

// A minimal ZIP reader for the tests, written from APPNOTE.TXT independently of web/zip.ts: it
// finds the (ZIP64) end of central directory, lists the central directory, and checks each
// entry's local header and data descriptor. It reads through a callback so it works on a Buffer
// and on a 4 GiB file on disk alike.

export interface CentralEntry {
  name: string;
  flags: number;
  method: number;
  versionNeeded: number;
  crc: number;
  compressedSize: number;
  size: number;
  offset: number;
  extraIds: number[];
  externalAttrs: number;
}

export interface ZipListing {
  entries: CentralEntry[];
  zip64: boolean;
  centralDirectoryOffset: number;
  centralDirectorySize: number;
}

type ReadAt = (offset: number, length: number) => Buffer;

export function bufferReader(buf: Buffer): { readAt: ReadAt; size: number } {
  return { readAt: (o, l) => buf.subarray(o, o + l), size: buf.length };
}

export function fileReader(path: string): { readAt: ReadAt; size: number; close(): void } {
  const fd = fs.openSync(path, 'r');
  const size = fs.fstatSync(fd).size;
  return {
    size,
    readAt: (o, l) => {
      const b = Buffer.alloc(l);
      const n = fs.readSync(fd, b, 0, l, o);
      return b.subarray(0, n);
    },
    close: () => fs.closeSync(fd),
  };
}

function u64(b: Buffer, at: number): number {
  const v = b.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error('value too large');
  return Number(v);
}

function extras(b: Buffer): Map<number, Buffer> {
  const m = new Map<number, Buffer>();
  for (let at = 0; at + 4 <= b.length; ) {
    const id = b.readUInt16LE(at);
    const len = b.readUInt16LE(at + 2);
    m.set(id, b.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  return m;
}

export function listZip({ readAt, size }: { readAt: ReadAt; size: number }): ZipListing {
  // No archive comment is written, so the EOCD is the last 22 bytes.
  const eocd = readAt(size - 22, 22);
  if (eocd.readUInt32LE(0) !== 0x06054b50) throw new Error('no end of central directory record');
  let count = eocd.readUInt16LE(10);
  let cdSize = eocd.readUInt32LE(12);
  let cdOffset = eocd.readUInt32LE(16);
  let zip64 = false;
  const locator = size >= 42 ? readAt(size - 42, 20) : Buffer.alloc(0);
  if (locator.length === 20 && locator.readUInt32LE(0) === 0x07064b50) {
    zip64 = true;
    const z = readAt(u64(locator, 8), 56);
    if (z.readUInt32LE(0) !== 0x06064b50) throw new Error('bad ZIP64 end of central directory record');
    count = u64(z, 32);
    cdSize = u64(z, 40);
    cdOffset = u64(z, 48);
  }
  const cd = readAt(cdOffset, cdSize);
  const entries: CentralEntry[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (cd.readUInt32LE(at) !== 0x02014b50) throw new Error(`bad central header ${i}`);
    const nameLen = cd.readUInt16LE(at + 28);
    const extraLen = cd.readUInt16LE(at + 30);
    const commentLen = cd.readUInt16LE(at + 32);
    const extra = extras(cd.subarray(at + 46 + nameLen, at + 46 + nameLen + extraLen));
    let size32 = cd.readUInt32LE(at + 24);
    let comp32 = cd.readUInt32LE(at + 20);
    let off32 = cd.readUInt32LE(at + 42);
    const z = extra.get(0x0001);
    let zi = 0;
    if (size32 === 0xffffffff) (size32 = u64(z!, zi)), (zi += 8);
    if (comp32 === 0xffffffff) (comp32 = u64(z!, zi)), (zi += 8);
    if (off32 === 0xffffffff) (off32 = u64(z!, zi)), (zi += 8);
    entries.push({
      name: cd.subarray(at + 46, at + 46 + nameLen).toString('utf8'),
      flags: cd.readUInt16LE(at + 8),
      method: cd.readUInt16LE(at + 10),
      versionNeeded: cd.readUInt16LE(at + 6),
      crc: cd.readUInt32LE(at + 16),
      compressedSize: comp32,
      size: size32,
      offset: off32,
      extraIds: [...extra.keys()],
      externalAttrs: cd.readUInt32LE(at + 38),
    });
    at += 46 + nameLen + extraLen + commentLen;
  }
  if (at !== cdSize) throw new Error('central directory size mismatch');
  return { entries, zip64, centralDirectoryOffset: cdOffset, centralDirectorySize: cdSize };
}

/** Checks an entry's local header against the central directory and returns where its data is and its descriptor. */
export function checkLocal({ readAt }: { readAt: ReadAt }, e: CentralEntry): { dataOffset: number; descriptor: { crc: number; size: number; compressedSize: number; length: number } } {
  const h = readAt(e.offset, 30);
  if (h.readUInt32LE(0) !== 0x04034b50) throw new Error(`no local header for ${e.name}`);
  const flags = h.readUInt16LE(6);
  const nameLen = h.readUInt16LE(26);
  const extraLen = h.readUInt16LE(28);
  const name = readAt(e.offset + 30, nameLen).toString('utf8');
  if (name !== e.name) throw new Error(`local name ${name} differs from central ${e.name}`);
  if (flags !== e.flags) throw new Error('local flags differ');
  const extra = extras(readAt(e.offset + 30 + nameLen, extraLen));
  const dataOffset = e.offset + 30 + nameLen + extraLen;
  const d = readAt(dataOffset + e.compressedSize, 24);
  if (d.readUInt32LE(0) !== 0x08074b50) throw new Error(`no data descriptor after ${e.name}`);
  const wide = extra.has(0x0001);
  return {
    dataOffset,
    descriptor: wide
      ? { crc: d.readUInt32LE(4), compressedSize: u64(d, 8), size: u64(d, 16), length: 24 }
      : { crc: d.readUInt32LE(4), compressedSize: d.readUInt32LE(8), size: d.readUInt32LE(12), length: 16 },
  };
}
