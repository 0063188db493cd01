import { Transform, type TransformCallback } from 'node:stream';

/**
 * Streaming decoder for `Content-Transfer-Encoding: x-uuencode` parts (old Outlook Express, some
 * Unix mailers). mailsplit's getDecoder() knows only base64 and quoted-printable, and the npm
 * uuencode packages decode whole buffers, which would hold a whole attachment in memory; this one
 * keeps at most one partial line pending. The format is line-based (each line starts with its own
 * length), so it is decoded line by line, on bytes, without strings; it is rare, and only base64
 * and quoted-printable carry large attachments today.
 *
 * The rules follow Python's email package (`_decode_uu`, binascii.a2b_uu): data starts after a
 * `begin MODE NAME` line with an octal mode and ends at a line that is `end` (white space
 * around it allowed); a space or `` ` `` is zero; a line shorter than its length byte says is
 * padded with zeros; characters after the promised length are ignored. Where Python gives up on
 * a broken part (an empty line before `end`, no `begin` line) and returns the text undecoded,
 * this decoder stops at the empty line, or yields nothing.
 */
export class UuDecoder extends Transform {
  private pending: Buffer | undefined;
  private state = 'before' as 'before' | 'data' | 'done';

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.state === 'done') return cb();
    let buf = chunk;
    if (this.pending) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = undefined;
    }
    const out = Buffer.allocUnsafe(Math.ceil((buf.length * 3) / 4) + 64);
    let o = 0;
    let pos = 0;
    while (pos < buf.length && !this.finished()) {
      const lf = buf.indexOf(0x0a, pos);
      if (lf < 0) break;
      o = this.line(buf, pos, lf, out, o);
      pos = lf + 1;
    }
    // A line never legitimately exceeds 62 characters; cap what an attacker can make us hold.
    if (pos < buf.length && !this.finished()) this.pending = Buffer.from(buf.subarray(pos, Math.min(buf.length, pos + 4096)));
    if (o) this.push(out.subarray(0, o));
    cb();
  }

  override _flush(cb: TransformCallback): void {
    if (this.pending && this.state !== 'done') {
      const p = this.pending;
      const out = Buffer.allocUnsafe(p.length + 64);
      const o = this.line(p, 0, p.length, out, 0);
      if (o) this.push(out.subarray(0, o));
    }
    this.pending = undefined;
    cb();
  }

  private finished(): boolean {
    return this.state === 'done';
  }

  /** Decodes the line buf[start, end) (end at its LF, or the end of data) into out at o. */
  private line(buf: Buffer, start: number, end: number, out: Buffer, o: number): number {
    if (end > start && buf[end - 1] === 0x0d) end--;
    if (this.state === 'before') {
      if (BEGIN.test(buf.toString('latin1', start, Math.min(end, start + 64)))) this.state = 'data';
      return o;
    }
    if (end === start) {
      // Python calls an empty line inside the data truncated input.
      this.state = 'done';
      return o;
    }
    if (end - start <= 12 && buf.toString('latin1', start, end).trim() === 'end') {
      this.state = 'done';
      return o;
    }
    let n = (buf[start]! - 32) & 63;
    let acc = 0;
    let bits = 0;
    for (let i = start + 1; n > 0; i++) {
      // Past the end of a short line, zeros (binascii assumes spaces were eaten).
      const c = i < end ? (buf[i]! - 32) & 63 : 0;
      acc = ((acc << 6) | c) & 0xffffff;
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        out[o++] = (acc >> bits) & 0xff;
        n--;
      }
    }
    return o;
  }
}

const BEGIN = /^begin [0-7]+( |$)/;

const UUENCODE = new Set(['x-uuencode', 'uuencode', 'x-uue', 'uue']);

/** True for the transfer-encoding names uuencoded parts are labelled with in the wild. */
export function isUuencoded(encoding: unknown): boolean {
  return typeof encoding === 'string' && UUENCODE.has(encoding.toLowerCase().trim());
}
