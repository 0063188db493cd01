import { Transform, type TransformCallback } from 'node:stream';

/**
 * Streaming quoted-printable decoder for the body of an offloaded part, in bulk: the runs of
 * literal bytes between two `=` are found with `Buffer.indexOf` and copied natively, so
 * JavaScript runs once per escape, not once per byte (libqp, which mailsplit's getDecoder()
 * returns, builds a string and walks it character by character).
 *
 * The rules are those of Python's email package (binascii.a2b_qp, which recipients' tools and
 * Ferry's tests use as the reference): `=XX` with upper- or lower-case hex is a byte; `=` before
 * a line end is a soft break (after `=\r` everything up to the next LF is skipped); `==` is a
 * single `=`; any other `=` stays as it is; a `=` at the very end is dropped; trailing white
 * space is kept.
 */
export class QuotedPrintableDecoder extends Transform {
  /** "=" or "=X" cut off by the end of the previous chunk. */
  private pending: Buffer | undefined;
  /** After "=\r": skipping up to and including the next LF. */
  private skipToLf = false;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    let buf = chunk;
    if (this.pending) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = undefined;
    }
    let pos = 0;
    if (this.skipToLf) {
      const lf = buf.indexOf(LF);
      if (lf < 0) return cb();
      pos = lf + 1;
      this.skipToLf = false;
    }
    const out = Buffer.allocUnsafe(buf.length - pos);
    let o = 0;
    while (pos < buf.length) {
      const eq = buf.indexOf(EQ, pos);
      if (eq < 0) {
        o += buf.copy(out, o, pos);
        break;
      }
      if (eq > pos) o += buf.copy(out, o, pos, eq);
      if (eq + 1 >= buf.length) {
        this.pending = Buffer.from(buf.subarray(eq));
        break;
      }
      const c1 = buf[eq + 1]!;
      if (c1 === LF) {
        pos = eq + 2;
      } else if (c1 === CR) {
        const lf = buf.indexOf(LF, eq + 2);
        if (lf < 0) {
          this.skipToLf = true;
          break;
        }
        pos = lf + 1;
      } else if (c1 === EQ) {
        // "==": a broken encoder's way of writing "=" (binascii keeps one).
        out[o++] = EQ;
        pos = eq + 2;
      } else if (HEX[c1]! < 16) {
        if (eq + 2 >= buf.length) {
          this.pending = Buffer.from(buf.subarray(eq));
          break;
        }
        const c2 = buf[eq + 2]!;
        if (HEX[c2]! < 16) {
          out[o++] = (HEX[c1]! << 4) | HEX[c2]!;
          pos = eq + 3;
        } else {
          out[o++] = EQ;
          pos = eq + 1;
        }
      } else {
        out[o++] = EQ;
        pos = eq + 1;
      }
    }
    if (o) this.push(out.subarray(0, o));
    cb();
  }

  override _flush(cb: TransformCallback): void {
    // "=X" at the very end: not an escape, both bytes stay; a lone "=" is dropped.
    if (this.pending && this.pending.length === 2) this.push(this.pending);
    this.pending = undefined;
    cb();
  }
}

const EQ = 0x3d;
const CR = 0x0d;
const LF = 0x0a;
const HEX = new Uint8Array(256).fill(255);
for (let i = 0; i < 10; i++) HEX[0x30 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX[0x41 + i] = 10 + i;
  HEX[0x61 + i] = 10 + i;
}
