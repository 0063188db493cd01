import { Transform, type TransformCallback } from 'node:stream';

/**
 * Streaming decoder for `Content-Transfer-Encoding: x-uuencode` parts (old Outlook Express, some
 * Unix mailers). mailsplit's getDecoder() knows only base64 and quoted-printable, and the npm
 * uuencode packages decode whole buffers, which would hold a whole attachment in memory; this one
 * works line by line, with at most one partial line pending.
 *
 * Accepts the `begin MODE NAME` header and `end` trailer, `` ` `` or space for zero, CRLF or LF.
 * Text outside begin/end is skipped. A malformed line is decoded as far as its length byte says.
 */
export class UuDecoder extends Transform {
  private pending = '';
  private state: 'before' | 'data' | 'done' = 'before';

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const text = this.pending + chunk.toString('latin1');
    const lines = text.split('\n');
    this.pending = lines.pop() ?? '';
    // A line never legitimately exceeds 62 characters; cap what an attacker can make us hold.
    if (this.pending.length > 4096) this.pending = this.pending.slice(0, 4096);
    const out: Buffer[] = [];
    for (const line of lines) this.line(line.replace(/\r$/, ''), out);
    if (out.length) this.push(Buffer.concat(out));
    cb();
  }

  override _flush(cb: TransformCallback): void {
    const out: Buffer[] = [];
    if (this.pending) this.line(this.pending.replace(/\r$/, ''), out);
    if (out.length) this.push(Buffer.concat(out));
    cb();
  }

  private line(line: string, out: Buffer[]): void {
    if (this.state === 'done') return;
    if (this.state === 'before') {
      if (/^begin(-base64)? [0-7]{3,4} /.test(line)) this.state = 'data';
      return;
    }
    if (line === 'end') {
      this.state = 'done';
      return;
    }
    if (!line) return;
    const n = (line.charCodeAt(0) - 32) & 63;
    if (n === 0) return;
    const buf = Buffer.alloc(Math.ceil(n / 3) * 3);
    let o = 0;
    for (let i = 1; i < line.length && o < n; i += 4) {
      const c = [0, 1, 2, 3].map((k) => (i + k < line.length ? (line.charCodeAt(i + k) - 32) & 63 : 0));
      buf[o++] = ((c[0]! << 2) | (c[1]! >> 4)) & 0xff;
      buf[o++] = ((c[1]! << 4) | (c[2]! >> 2)) & 0xff;
      buf[o++] = ((c[2]! << 6) | c[3]!) & 0xff;
    }
    out.push(buf.subarray(0, Math.min(n, o)));
  }
}

const UUENCODE = new Set(['x-uuencode', 'uuencode', 'x-uue', 'uue']);

/** True for the transfer-encoding names uuencoded parts are labelled with in the wild. */
export function isUuencoded(encoding: unknown): boolean {
  return typeof encoding === 'string' && UUENCODE.has(encoding.toLowerCase().trim());
}
