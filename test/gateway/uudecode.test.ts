import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UuDecoder } from '../../gateway/uudecode.js';
import { pseudoRandom } from '../helpers/mail.js';

const uuencode = ['/usr/bin/uuencode', '/bin/uuencode'].find((p) => fs.existsSync(p));
if (!uuencode) console.warn('uudecode tests skipped: uuencode not installed (Debian package sharutils)');

async function decode(encoded: Buffer, chunk: number): Promise<Buffer> {
  const d = new UuDecoder();
  const out: Buffer[] = [];
  d.on('data', (c: Buffer) => out.push(c));
  for (let i = 0; i < encoded.length; i += chunk) d.write(encoded.subarray(i, i + chunk));
  d.end();
  await new Promise((r) => d.on('end', r));
  return Buffer.concat(out);
}

describe.skipIf(!uuencode)('x-uuencode parts decode to the original bytes', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-uu-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const size of [0, 1, 44, 45, 46, 100_003]) {
    it(`${size} bytes, any chunking, LF or CRLF`, async () => {
      const data = pseudoRandom(size, `uu${size}`);
      const file = path.join(dir, `f${size}`);
      fs.writeFileSync(file, data);
      const lf = execFileSync(uuencode!, [file, 'name with spaces.bin']);
      const crlf = Buffer.from(lf.toString('latin1').replace(/\n/g, '\r\n'), 'latin1');
      for (const chunk of [1, 7, 61, 65536]) {
        expect((await decode(lf, chunk)).equals(data)).toBe(true);
        expect((await decode(crlf, chunk)).equals(data)).toBe(true);
      }
      // Text around the begin/end block (a signature, a preamble) is not part of the file.
      const wrapped = Buffer.concat([Buffer.from('Here it is:\n\n'), lf, Buffer.from('\n-- \nAlice\n')]);
      expect((await decode(wrapped, 13)).equals(data)).toBe(true);
    });
  }
});
