import { Transform, type TransformCallback } from 'node:stream';

const CR = 0x0d;
const LF = 0x0a;
const CRLF = Buffer.from('\r\n');

/**
 * Turns every bare LF and every bare CR into CRLF; input that is already canonical passes
 * through unchanged (a message that came with CRLF stays byte for byte).
 *
 * Everything Ferry writes or relays goes through this: a bare LF or CR next to a dot is the raw
 * material of SMTP smuggling (CVE-2023-51764, `\n.\n`, `\r.\r` and their mixes) at a next hop
 * or a program reading the outbox that takes it for the end of the data, and bare line ends
 * are an interoperability problem anyway (RFC 5321 2.3.8).
 *
 * NB a CR at the end of a chunk is held back: only the next chunk tells whether it is half of a
 * CRLF or a bare CR.
 */
export class CrlfNormalizer extends Transform {
  private pendingCr = false;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (!chunk.length) return cb();
    const pending = this.pendingCr;
    const endsInCr = chunk[chunk.length - 1] === CR;
    const body = endsInCr ? chunk.subarray(0, chunk.length - 1) : chunk;
    this.pendingCr = endsInCr;
    if (pending) {
      // The held CR: half of a CRLF when this chunk starts with LF, otherwise bare.
      if (chunk[0] === LF) {
        this.push(Buffer.from([CR]));
      } else {
        this.push(CRLF);
      }
    }
    if (!body.length) return cb();
    const fixed = canonical(body, pending && chunk[0] === LF);
    cb(null, fixed);
  }

  override _flush(cb: TransformCallback): void {
    if (this.pendingCr) this.push(CRLF);
    this.pendingCr = false;
    cb();
  }
}

/**
 * `buf` with bare CR and LF made CRLF; `buf` itself when it has none. `crBefore`: the byte
 * before `buf` was a CR (so a leading LF completes it). `buf` never ends in CR here.
 */
function canonical(buf: Buffer, crBefore: boolean): Buffer {
  if (!hasBare(buf, crBefore)) return buf;
  // At most one extra byte per input byte.
  const out = Buffer.allocUnsafe(buf.length * 2);
  let j = 0;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i]!;
    if (c === CR) {
      out[j++] = CR;
      out[j++] = LF;
      if (buf[i + 1] === LF) i++;
    } else if (c === LF) {
      if (!(i === 0 && crBefore)) out[j++] = CR;
      out[j++] = LF;
    } else {
      out[j++] = c;
    }
  }
  return out.subarray(0, j);
}

/** Found with indexOf (native, fast on long lines): a CR not followed by LF, or an LF not after CR. */
function hasBare(buf: Buffer, crBefore: boolean): boolean {
  for (let i = buf.indexOf(LF); i >= 0; i = buf.indexOf(LF, i + 1)) {
    if (i === 0 ? !crBefore : buf[i - 1] !== CR) return true;
  }
  for (let i = buf.indexOf(CR); i >= 0; i = buf.indexOf(CR, i + 1)) {
    if (buf[i + 1] !== LF) return true;
  }
  return false;
}
