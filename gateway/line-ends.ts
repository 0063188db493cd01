import { Transform, type TransformCallback } from 'node:stream';

/**
 * Turns every bare LF into CRLF. The joined message must have uniform line ends before it is
 * relayed: a bare LF in a message is both an interoperability problem and, combined with a
 * dot, the raw material of SMTP smuggling (CVE-2023-51764) at the next hop.
 */
export class CrlfNormalizer extends Transform {
  private lastWasCr = false;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    let extra = 0;
    for (let i = 0; i < chunk.length; i++) if (chunk[i] === 0x0a && (i === 0 ? !this.lastWasCr : chunk[i - 1] !== 0x0d)) extra++;
    if (extra === 0) {
      if (chunk.length) this.lastWasCr = chunk[chunk.length - 1] === 0x0d;
      return cb(null, chunk);
    }
    const out = Buffer.allocUnsafe(chunk.length + extra);
    let j = 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (c === 0x0a && (i === 0 ? !this.lastWasCr : chunk[i - 1] !== 0x0d)) out[j++] = 0x0d;
      out[j++] = c;
    }
    this.lastWasCr = chunk[chunk.length - 1] === 0x0d;
    cb(null, out);
  }
}
