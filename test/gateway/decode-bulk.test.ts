import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Transform } from 'node:stream';
import { Joiner, Splitter, type MimeNode } from '@zone-eu/mailsplit';
import libqp from 'libqp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BulkSplitter } from '../../gateway/bulk-splitter.js';
import { Base64Decoder } from '../../gateway/decode-base64.js';
import { DecodeBuffers } from '../../gateway/decode-buffers.js';
import { QuotedPrintableDecoder } from '../../gateway/decode-qp.js';
import { UuDecoder } from '../../gateway/uudecode.js';
import { pseudoRandom, sha256 } from '../helpers/mail.js';

// The bulk byte path of an offloaded part (docs/performance.md, "Byte path"): the decoders must
// give, for every way the body is cut into chunks, the bytes Python's email package decodes
// (`get_payload(decode=True)`), which is what a recipient's tools read; and the bulk splitter
// must split a message exactly as mailsplit's Splitter does.

const python = ['/usr/bin/python3', '/usr/local/bin/python3'].find((p) => fs.existsSync(p));
if (!python) console.warn('decode-bulk: Python comparisons skipped: python3 not installed (Debian package python3)');

/** Chunk sizes: the sweep the issue asks for, plus seeded random ones (cut anew per write). */
const SWEEP = [1, 2, 3, 4, 5, 7, 63, 64, 65, 4095, 4096, 65536, 1 << 20];
const RANDOM = ['random-a', 'random-b'];

function cutter(spec: number | string): (remaining: number, i: number) => number {
  if (typeof spec === 'number') return () => spec;
  const seed = pseudoRandom(4096, spec);
  return (_r, i) => 1 + ((seed.readUInt16BE((i * 2) % 4094) * 7919) % 70_000);
}

/** `reuse`: the pieces are copied and given back at once, so the decoder fills the same buffers again. */
async function run(make: () => Transform, input: Buffer, spec: number | string, reuse?: DecodeBuffers): Promise<Buffer> {
  const t = make();
  const out: Buffer[] = [];
  t.on('data', (c: Buffer) => {
    if (!reuse) return out.push(c);
    out.push(Buffer.from(c));
    reuse.release(c);
  });
  const cut = cutter(spec);
  for (let off = 0, i = 0; off < input.length; i++) {
    const n = Math.min(cut(input.length - off, i), input.length - off);
    t.write(input.subarray(off, off + n));
    off += n;
  }
  t.end();
  await new Promise<void>((resolve, reject) => {
    t.on('end', resolve);
    t.on('error', reject);
  });
  return Buffer.concat(out);
}

interface Case {
  name: string;
  cte: 'base64' | 'quoted-printable' | 'x-uuencode';
  body: Buffer;
  /** The original bytes where they are known (URL-safe base64, which Python does not read). */
  original?: Buffer;
}

function wrap(text: string, width: number, eol: string): string {
  if (!width) return text + eol;
  let out = '';
  for (let i = 0; i < text.length; i += width) out += text.slice(i, i + width) + eol;
  return out;
}

function uuencode(data: Buffer, eol: string): Buffer {
  const enc = (v: number) => String.fromCharCode(v === 0 ? 96 : v + 32);
  let out = `begin 644 file name.bin${eol}`;
  for (let i = 0; i < data.length; i += 45) {
    const line = data.subarray(i, i + 45);
    let s = enc(line.length);
    for (let j = 0; j < line.length; j += 3) {
      const a = line[j]!;
      const b = line[j + 1] ?? 0;
      const c = line[j + 2] ?? 0;
      s += enc(a >> 2) + enc(((a << 4) | (b >> 4)) & 63) + enc(((b << 2) | (c >> 6)) & 63) + enc(c & 63);
    }
    out += s + eol;
  }
  return Buffer.from(`${out}\`${eol}end${eol}`, 'latin1');
}

function cases(): Case[] {
  const out: Case[] = [];
  for (const size of [0, 1, 2, 3, 57, 1000, 100_003]) {
    const data = pseudoRandom(size, `b64-${size}`);
    const b64 = data.toString('base64');
    out.push({ name: `base64 ${size} B, 76 columns, CRLF`, cte: 'base64', body: Buffer.from(wrap(b64, 76, '\r\n')) });
    out.push({ name: `base64 ${size} B, 76 columns, LF`, cte: 'base64', body: Buffer.from(wrap(b64, 76, '\n')) });
    out.push({ name: `base64 ${size} B, one line`, cte: 'base64', body: Buffer.from(b64) });
    // Lines that are not a multiple of 4 long: groups straddle line ends.
    out.push({ name: `base64 ${size} B, 61 columns, CRLF`, cte: 'base64', body: Buffer.from(wrap(b64, 61, '\r\n')) });
    if (b64.endsWith('=')) {
      // Trailing garbage after the padding (a signature a mailer appended): ignored.
      out.push({ name: `base64 ${size} B, trailing garbage`, cte: 'base64', body: Buffer.from(`${wrap(b64, 76, '\r\n')}\r\n-- \r\nSent from my phone\r\nQUJD\r\n`) });
    }
    out.push({ name: `quoted-printable ${size} B, CRLF`, cte: 'quoted-printable', body: Buffer.from(libqp.wrap(libqp.encode(data), 76).replace(/\r?\n/g, '\r\n')) });
    out.push({ name: `quoted-printable ${size} B, LF`, cte: 'quoted-printable', body: Buffer.from(libqp.wrap(libqp.encode(data), 76).replace(/\r?\n/g, '\n')) });
    out.push({ name: `x-uuencode ${size} B, CRLF`, cte: 'x-uuencode', body: uuencode(data, '\r\n') });
    out.push({ name: `x-uuencode ${size} B, LF`, cte: 'x-uuencode', body: uuencode(data, '\n') });
  }
  // Zeros encode as "AAAA...": the decoder's one ambiguous case (where a group ends) in bulk.
  const zeros = Buffer.alloc(70_001);
  out.push({ name: 'base64 of zeros, 76 columns', cte: 'base64', body: Buffer.from(wrap(zeros.toString('base64'), 76, '\r\n')) });
  out.push({ name: 'base64 of zeros, 75 columns', cte: 'base64', body: Buffer.from(wrap(zeros.toString('base64'), 75, '\n')) });
  // Characters outside the alphabet inside the data, and a stray '=' that ends nothing: skipped.
  const noisy = pseudoRandom(5000, 'noisy').toString('base64');
  out.push({ name: 'base64 with junk characters', cte: 'base64', body: Buffer.from(wrap(noisy, 76, '\r\n').replace(/(.{50})/g, '$1*!').replace(/^(.{100})/, '$1=')) });
  // Text-like quoted-printable with what broken encoders write: lowercase hex, "==", a '=' that
  // starts nothing, a soft break after "=\r" junk, trailing white space, a '=' at the very end.
  out.push({ name: 'quoted-printable oddities', cte: 'quoted-printable', body: Buffer.from('caf=c3=a9 =3D==41 x=zz y=4\r\nline  \t\r\nsoft=\r\nbreak=\rjunk\nend=4=\r\n='.repeat(300)) });
  // A 1 MiB attachment, for the large chunk sizes.
  const big = pseudoRandom(1 << 20, 'big');
  out.push({ name: 'base64 1 MiB, 76 columns, CRLF', cte: 'base64', body: Buffer.from(wrap(big.toString('base64'), 76, '\r\n')) });
  out.push({ name: 'quoted-printable 1 MiB', cte: 'quoted-printable', body: Buffer.from(libqp.wrap(libqp.encode(big), 76).replace(/\r?\n/g, '\r\n')) });
  // URL-safe alphabet (RFC 4648 section 5): Python skips '-' and '_', so the reference is the data.
  const url = pseudoRandom(30_001, 'url');
  out.push({ name: 'base64url, 76 columns', cte: 'base64', body: Buffer.from(wrap(url.toString('base64url'), 76, '\r\n')), original: url });
  return out;
}

const decoders: Record<Case['cte'], () => Transform> = {
  base64: () => new Base64Decoder(),
  'quoted-printable': () => new QuotedPrintableDecoder(),
  'x-uuencode': () => new UuDecoder(),
};

describe('bulk decoders give what Python\'s email package decodes, however the body is chunked', () => {
  const all = cases();
  const expected = new Map<string, string>();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-decode-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  beforeAll(() => {
    if (!python) return;
    const list = all.map((c, i) => {
      const file = path.join(dir, `${i}.eml`);
      fs.writeFileSync(file, Buffer.concat([Buffer.from(`Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: ${c.cte}\r\n\r\n`), c.body]));
      return file;
    });
    const script = [
      'import email, hashlib, json, sys',
      'out = []',
      'for f in json.loads(sys.argv[1]):',
      '    m = email.message_from_bytes(open(f, "rb").read())',
      '    out.append(hashlib.sha256(m.get_payload(decode=True)).hexdigest())',
      'print(json.dumps(out))',
    ].join('\n');
    const hashes = JSON.parse(execFileSync(python, ['-c', script, JSON.stringify(list)], { maxBuffer: 1 << 20 }).toString()) as string[];
    all.forEach((c, i) => expected.set(c.name, hashes[i]!));
  }, 60_000);

  for (const c of all) {
    it.skipIf(!python && !c.original)(c.name, async () => {
      const want = c.original ? sha256(c.original) : expected.get(c.name)!;
      // 1-byte writes through a stream are slow; the smallest sizes run on bodies up to 150 KB.
      const specs = [...SWEEP.filter((n) => n >= 63 || c.body.length <= 150_000), ...RANDOM];
      for (const spec of specs) {
        const got = sha256(await run(decoders[c.cte], c.body, spec));
        expect(got, `${c.name}, chunks of ${spec}`).toBe(want);
      }
      if (c.cte === 'base64') {
        // Decoding into buffers that come back (gateway/decode-buffers.ts) gives the same bytes.
        const buffers = new DecodeBuffers(64 * 1024, 2);
        for (const spec of [65536, 1 << 20, ...RANDOM]) {
          const got = sha256(await run(() => new Base64Decoder(buffers), c.body, spec, buffers));
          expect(got, `${c.name}, chunks of ${spec}, buffers reused`).toBe(want);
        }
        if (c.body.length > 200_000) expect(buffers.kept).toBeGreaterThan(0);
      }
    }, 120_000);
  }
});

// ---- the splitter ----

type Obj = MimeNode | { type: 'body' | 'data'; node: MimeNode; value: Buffer };

/** The Splitter's output as [kind, part number, bytes], consecutive pieces of one kind merged. */
async function split(make: () => Transform, input: Buffer, spec: number | string): Promise<{ shape: string[]; joined: Buffer }> {
  const s = make();
  const joiner = new Joiner();
  const ids = new Map<MimeNode, number>();
  const shape: [string, number, Buffer[]][] = [];
  const joined: Buffer[] = [];
  joiner.on('data', (c: Buffer) => joined.push(c));
  s.on('data', (o: Obj) => {
    joiner.write(o);
    const node = o.type === 'node' ? (o as MimeNode) : (o as { node: MimeNode }).node;
    if (!ids.has(node)) ids.set(node, ids.size);
    const id = ids.get(node)!;
    const kind = o.type;
    const value = o.type === 'node' ? Buffer.from(String((o as MimeNode).contentType)) : (o as { value: Buffer }).value;
    const last = shape.at(-1);
    if (last && last[0] === kind && last[1] === id && kind !== 'node') last[2].push(value);
    else shape.push([kind, id, [value]]);
  });
  const cut = cutter(spec);
  for (let off = 0, i = 0; off < input.length; i++) {
    const n = Math.min(cut(input.length - off, i), input.length - off);
    s.write(input.subarray(off, off + n));
    off += n;
  }
  s.end();
  await new Promise<void>((resolve, reject) => {
    s.on('end', resolve);
    s.on('error', reject);
  });
  joiner.end();
  await new Promise((r) => (joiner as unknown as Transform).once('end', r));
  return { shape: shape.map(([k, id, v]) => `${k} ${id} ${sha256(Buffer.concat(v))}`), joined: Buffer.concat(joined) };
}

function messages(): [string, Buffer][] {
  const data = pseudoRandom(300_000, 'split').toString('base64');
  const b64 = wrap(data, 76, '\r\n');
  const crlf = (s: string) => Buffer.from(s.replace(/\r?\n/g, '\r\n'), 'latin1');
  const text = 'Hello\r\n--Bnot-a-delimiter\r\n---B\r\n--B is mentioned here\r\n';
  return [
    [
      'multipart/mixed, base64 attachment, CRLF',
      Buffer.concat([
        crlf(`From: a@example.com\nContent-Type: multipart/mixed; boundary="B"\n\npreamble\n--B\nContent-Type: text/plain\n\n${text}\n--B\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n`),
        Buffer.from(b64),
        crlf('--B--\nepilogue\n'),
      ]),
    ],
    [
      'nested multiparts, LF only, delimiter with trailing white space, lone CR before a delimiter',
      Buffer.from(
        `Content-Type: multipart/mixed; boundary=outer\n\n--outer\nContent-Type: multipart/alternative; boundary="inner"\n\n--inner\nContent-Type: text/plain\n\nplain\n--inner  \t\nContent-Type: text/html\n\n<p>x</p>\n\r--inner--\n--outer\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n${wrap(data.slice(0, 100_000), 64, '\n')}--outer--`,
        'latin1',
      ),
    ],
    [
      'an inner multipart never closed; the outer delimiter ends it',
      crlf(`Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: multipart/mixed; boundary=i\n\n--i\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\n${wrap(data.slice(0, 50_000), 76, '\n')}--o\nContent-Type: text/plain\n\nafter\n--o--\n`),
    ],
    ['a single-part message that is all body', Buffer.concat([crlf('Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n'), Buffer.from(b64)])],
    ['a part whose body is one long line', crlf(`Content-Type: multipart/mixed; boundary=L\n\n--L\nContent-Type: application/octet-stream\n\n${data.slice(0, 200_000)}\n--L--\n`)],
    ['an empty part and a part with no headers', crlf('Content-Type: multipart/mixed; boundary=E\n\n--E\n\n--E\nContent-Type: text/plain\n\n\n--E--\n')],
  ];
}

describe('the bulk splitter splits a message exactly as mailsplit does', () => {
  const limits = { maxDepth: 100, maxParts: 1000, maxHeadChain: 4 << 20 };
  const options = { ignoreEmbedded: true, maxHeadSize: 2 << 20, maxChildNodes: 10_000 };
  for (const [name, msg] of messages()) {
    it(name, async () => {
      // The reference: the plain Splitter given the whole message at once (no chunk seams).
      const want = await split(() => new Splitter(options) as unknown as Transform, msg, msg.length);
      expect(want.joined.equals(msg)).toBe(true);
      for (const spec of [...SWEEP, ...RANDOM]) {
        if (spec === 1 && msg.length > 150_000) continue;
        const bulk = () => new BulkSplitter(options, limits) as unknown as Transform;
        const got = await split(bulk, msg, spec);
        expect(got.joined.equals(msg), `${name}: bytes, chunks of ${spec}`).toBe(true);
        expect(got.shape, `${name}: parts, chunks of ${spec}`).toEqual(want.shape);
      }
    }, 120_000);
  }

  it('reads the body of a large part in bulk', async () => {
    const [, msg] = messages()[0]!;
    const s = new BulkSplitter(options, limits);
    await split(() => s as unknown as Transform, msg, 65536);
    expect(s.bulkBytes).toBeGreaterThan(350_000);
  });
});
