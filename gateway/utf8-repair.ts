import { Transform, type TransformCallback } from 'node:stream';
import iconv from 'iconv-lite';

// Text labelled us-ascii (or with no charset) that carries 8-bit bytes anyway is common: old
// scripts write Latin-1 or windows-1252 and never say so, and mail programs show it by guessing.
// When Ferry relabels such a part UTF-8 (the notice needs it), that guess is gone, so this stream
// rewrites every byte that is not part of a valid UTF-8 sequence as the windows-1252 character
// it most likely is (the guess mail programs make), in UTF-8. ASCII and valid UTF-8 pass
// unchanged, byte for byte. iconv-lite has no "UTF-8 where valid, else windows-1252" decoder.

/** UTF-8 bytes of windows-1252 characters 0x80-0xFF (undefined ones as their Latin-1 control). */
const CP1252 = Array.from({ length: 128 }, (_, i) => {
  const ch = iconv.decode(Buffer.from([0x80 + i]), 'windows-1252');
  return Buffer.from(ch === '\ufffd' ? String.fromCharCode(0x80 + i) : ch, 'utf8');
});

/** Length of the valid UTF-8 sequence at `i`; 0 if invalid; -1 if it may continue past the end. */
function sequenceAt(buf: Buffer, i: number): number {
  const b = buf[i]!;
  let n: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (b >= 0xc2 && b <= 0xdf) n = 2;
  else if (b >= 0xe0 && b <= 0xef) {
    n = 3;
    if (b === 0xe0) lo = 0xa0; // no overlong forms
    if (b === 0xed) hi = 0x9f; // no surrogates
  } else if (b >= 0xf0 && b <= 0xf4) {
    n = 4;
    if (b === 0xf0) lo = 0x90;
    if (b === 0xf4) hi = 0x8f;
  } else return 0;
  for (let k = 1; k < n; k++) {
    if (i + k >= buf.length) return -1;
    const c = buf[i + k]!;
    if (k === 1 ? c < lo || c > hi : c < 0x80 || c > 0xbf) return 0;
  }
  return n;
}

/** Holds at most 3 bytes between chunks (an unfinished UTF-8 sequence). */
export class Utf8OrCp1252 extends Transform {
  private carry: Buffer | undefined;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const buf = this.carry ? Buffer.concat([this.carry, chunk]) : chunk;
    this.carry = undefined;
    cb(null, this.convert(buf, false));
  }

  override _flush(cb: TransformCallback): void {
    const rest = this.carry;
    this.carry = undefined;
    if (rest?.length) this.push(this.convert(rest, true));
    cb();
  }

  private convert(buf: Buffer, final: boolean): Buffer {
    const out: Buffer[] = [];
    let start = 0;
    let i = 0;
    while (i < buf.length) {
      if (buf[i]! < 0x80) {
        i++;
        continue;
      }
      const n = sequenceAt(buf, i);
      if (n > 0) {
        i += n;
        continue;
      }
      if (n < 0 && !final) {
        this.carry = Buffer.from(buf.subarray(i));
        break;
      }
      out.push(buf.subarray(start, i), CP1252[buf[i]! - 0x80]!);
      start = ++i;
    }
    out.push(buf.subarray(start, this.carry ? i : buf.length));
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }
}
