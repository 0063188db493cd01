import { Readable } from 'node:stream';
import DataStream from 'nodemailer/lib/smtp-connection/data-stream';
import { describe, expect, it } from 'vitest';
import { useBulkStuffing } from '../../gateway/dot-stuffing.js';
import { inChunks, splitAt } from '../helpers/chunks.js';

// gateway/dot-stuffing.ts must give exactly what nodemailer's own DataStream gives (the relay
// installs it in its place): for every input and every way of cutting it into chunks.

type Stream = InstanceType<typeof DataStream> & { inByteCount: number; outByteCount: number };

async function run(chunks: Buffer[], bulk: boolean): Promise<{ out: Buffer; inBytes: number; outBytes: number }> {
  const { out, inBytes, outBytes } = await runChunks(chunks, bulk);
  return { out: Buffer.concat(out), inBytes, outBytes };
}

async function runChunks(chunks: Buffer[], bulk: boolean): Promise<{ out: Buffer[]; inBytes: number; outBytes: number }> {
  const s = new DataStream() as Stream;
  if (bulk) useBulkStuffing(s);
  const got: Buffer[] = [];
  s.on('data', (c: Buffer) => got.push(c));
  const ended = new Promise((r) => s.on('end', r));
  for (const c of chunks) s.write(c);
  s.end();
  await ended;
  return { out: got, inBytes: s.inByteCount, outBytes: s.outByteCount };
}


/** Inputs made of the bytes that matter (CR, LF, dot) and a letter, every arrangement up to length 5, plus real shapes. */
function inputs(): Buffer[] {
  const alphabet = ['\r', '\n', '.', 'a'];
  const all: string[] = [''];
  let level = [''];
  for (let len = 1; len <= 5; len++) {
    level = level.flatMap((p) => alphabet.map((c) => p + c));
    all.push(...level);
  }
  all.push(
    'Subject: x\r\n\r\n.hidden\r\n..two\r\n.\r\nMAIL FROM:<evil@example.com>\r\n',
    'a\n.\nb\r.\rc\r\n.\r\n',
    '.\r\n',
    'line\r\n.',
    'bare lf\nthen\n.dot\n',
    'bare cr\rthen\r.dot\r',
    '\r\r\n\n\r.\n.\r\n.',
  );
  return all.map((s) => Buffer.from(s, 'latin1'));
}

describe('bulk dot-stuffing against nodemailer DataStream', () => {
  it('every input of up to 5 bytes, whole and cut at every one and two places', async () => {
    for (const input of inputs()) {
      const expected = await run([input], false);
      const whole = await run([input], true);
      expect(whole, JSON.stringify(input.toString('latin1'))).toEqual(expected);
      for (let i = 0; i <= input.length; i++) {
        expect((await run(splitAt(input, [i]), true)).out.equals(expected.out), `${JSON.stringify(input.toString('latin1'))} cut at ${i}`).toBe(true);
        for (let j = i; j <= input.length; j++) {
          expect((await run(splitAt(input, [i, j]), true)).out.equals(expected.out), `${JSON.stringify(input.toString('latin1'))} cut at ${i},${j}`).toBe(true);
        }
      }
    }
  });

  it('the same inputs one byte at a time', async () => {
    for (const input of inputs()) {
      const expected = await run([input], false);
      const bytes = inChunks(input, 1);
      expect(await run(bytes, true)).toEqual(await run(bytes, false));
      expect((await run(bytes, true)).out.equals(expected.out)).toBe(true);
    }
  });

  it('a 1 MiB message of mixed line ends and dots, in chunks of 1 byte to 1 MiB, counts included', async () => {
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const pieces = ['\r\n', '\n', '\r', '.', '..', 'text ', '\r\n.', '\n.', '\r.', 'x'.repeat(70)];
    let s = '';
    while (s.length < 1024 * 1024) s += pieces[Math.floor(rnd() * pieces.length)];
    const input = Buffer.from(s, 'latin1');
    const expected = await run([input], false);
    for (const size of [1, 2, 3, 7, 64, 4095, 65536, 1024 * 1024]) {
      const got = await run(inChunks(input, size), true);
      expect(got.out.equals(expected.out), `chunks of ${size}`).toBe(true);
      expect([got.inBytes, got.outBytes]).toEqual([expected.inBytes, expected.outBytes]);
    }
  });

  // Each chunk out is one write to the next hop's socket: a small message (one chunk, the usual
  // case) must leave as one write, the end-of-data line included, not two.
  it('the end-of-data line leaves with the last chunk: as many chunks out as came in', async () => {
    const body = Buffer.from('Subject: x\r\n\r\n.dot\r\nlast line', 'latin1');
    const one = await runChunks([body], true);
    expect(one.out.map((c) => c.toString('latin1'))).toEqual(['Subject: x\r\n\r\n..dot\r\nlast line\r\n.\r\n']);
    const three = await runChunks(splitAt(body, [5, 20]), true);
    expect(three.out).toHaveLength(3);
    expect(three.out.at(-1)!.toString('latin1')).toBe('last line\r\n.\r\n');
    expect(Buffer.concat(three.out).equals(Buffer.concat(one.out))).toBe(true);
    expect((await runChunks([], true)).out.map((c) => c.toString('latin1'))).toEqual(['\r\n.\r\n']);
  });

  it('a string chunk is taken as nodemailer takes it', async () => {
    const s = new DataStream() as Stream;
    useBulkStuffing(s);
    const out = await new Promise<Buffer>((resolve) => {
      const got: Buffer[] = [];
      s.on('data', (c: Buffer) => got.push(c));
      s.on('end', () => resolve(Buffer.concat(got)));
      Readable.from(['.a\r\n', '.b\n'], { objectMode: true }).pipe(s);
    });
    expect(out.toString('latin1')).toBe('..a\r\n..b\r\n.\r\n');
  });
});
