import { Transform, type TransformCallback } from 'node:stream';
import type { DecodeBuffers } from './decode-buffers.js';

/**
 * Streaming base64 decoder for the body of an offloaded part, in bulk: each chunk is decoded by
 * Node's native decoder (`Buffer.from(str, 'base64')`), which skips line breaks and other
 * characters outside the alphabet by itself and also reads the URL-safe alphabet (`-` and `_`,
 * RFC 4648 section 5), so JavaScript never looks at the body line by line. libbase64, which
 * mailsplit's getDecoder() returns, strips every chunk with a regular expression first; that
 * was a fifth of the CPU time of a large message (docs/performance.md, "Byte path").
 *
 * What JavaScript still does per chunk: the up to 3 significant characters after the last
 * complete group of 4 are carried into the next chunk (a group cut by a chunk boundary must be
 * decoded whole), and padding is read the way Python's email package reads it
 * (binascii.a2b_base64, non-strict): a `=` ends the data only when it completes a group ("QQ==",
 * "QUJ="); a stray `=` elsewhere is skipped; whatever follows the end (a signature, a second
 * copy, garbage) is ignored. Node's decoder alone would stop at any `=`, so `=` never reaches it.
 *
 * Given `buffers`, it decodes into buffers from there (Buffer#write) instead of a new one per
 * piece, and whoever consumes the pieces gives them back (gateway/decode-buffers.ts).
 *
 * Known differences from Python, both on broken input: a single character left over at the end
 * (not a valid length) is dropped, where Python's email package returns the undecoded text; and
 * `-`/`_` decode as the URL-safe alphabet, where Python skips them.
 */
export class Base64Decoder extends Transform {
  /** Significant characters after the last complete group (0 to 3 of them). */
  private carry = '';
  /** `=` seen since the last significant character (Python's `pads`). */
  private pads = 0;
  private done = false;

  constructor(private readonly buffers?: DecodeBuffers) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.done) return cb();
    let pos = 0;
    while (pos < chunk.length) {
      const eq = chunk.indexOf(0x3d, pos);
      const end = eq < 0 ? chunk.length : eq;
      // NB strings of at most 64 KiB: a longer one goes to V8's large-object space, and making
      // one per chunk cost three times the CPU of the whole decode (measured on Node 20).
      for (let at = pos; at < end; at += SEGMENT) this.decodeRun(chunk.toString('latin1', at, Math.min(end, at + SEGMENT)));
      if (eq < 0) break;
      // NB: Python counts '=' across skipped characters (line breaks) and resets on data.
      const q = this.carry.length;
      this.pads++;
      if (q >= 2 && q + this.pads >= 4) {
        this.finish();
        this.done = true;
        break;
      }
      pos = eq + 1;
    }
    cb();
  }

  override _flush(cb: TransformCallback): void {
    if (!this.done) this.finish();
    cb();
  }

  /** Decodes the group the carry holds (2 or 3 characters give 1 or 2 bytes; 1 gives none). */
  private finish(): void {
    if (this.carry.length >= 2) this.push(Buffer.from(this.carry, 'base64'));
    this.carry = '';
  }

  /** Decodes a run of text without '=': everything up to its last complete group of 4. */
  private decodeRun(run: string): void {
    const s = this.carry ? this.carry + run : run;
    const into = this.buffers?.take();
    // NB `s` is at most SEGMENT + 3 characters: its bytes always fit a buffer of SEGMENT bytes.
    const decoded = into ? into.subarray(0, into.write(s, 0, 'base64')) : Buffer.from(s, 'base64');
    const d = decoded.length;
    // Significant characters (sig) decode to floor(sig * 3 / 4) bytes: d % 3 says sig % 4 is
    // 2 (d % 3 == 1) or 3 (d % 3 == 2); when d % 3 == 0 it is 0 or 1, decided below.
    const r = d % 3;
    let keep = r === 0 ? -1 : r + 1;
    const tail = lastSignificant(s, 5);
    if (tail.length && tail[tail.length - 1]! >= this.carry.length) this.pads = 0;
    if (keep < 0) {
      if (tail.length < 5) {
        // All of `s` was walked: the count is exact.
        keep = tail.length % 4;
      } else {
        // If sig % 4 == 0 the last 4 significant characters are the last group decoded; if a
        // lone character is left over, they are shifted by one and decode differently, unless
        // the last 5 are all the same character (zeros: "AAAAA"), which one more decode settles.
        const last4 = tail.slice(0, 4).reverse().map((i) => s[i]).join('');
        const same = Buffer.from(last4, 'base64').equals(decoded.subarray(d - 3));
        if (!same) keep = 1;
        else if (tail.every((i) => s[i] === s[tail[0]!])) {
          const without = s.slice(0, tail[0]) + s.slice(tail[0]! + 1);
          keep = Buffer.from(without, 'base64').length === d ? 1 : 0;
        } else keep = 0;
      }
    }
    const complete = d - r;
    if (complete > 0) this.push(r === 0 ? decoded : decoded.subarray(0, complete));
    else if (into) this.buffers!.release(into);
    this.carry = keep > 0 ? tail.slice(0, keep).reverse().map((i) => s[i]).join('') : '';
  }
}

const SEGMENT = 64 * 1024;

const SIGNIFICANT = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_') SIGNIFICANT[c.charCodeAt(0)] = 1;

/** Indexes of the last `n` significant characters of `s`, last first (fewer if `s` has fewer). */
function lastSignificant(s: string, n: number): number[] {
  const out: number[] = [];
  for (let i = s.length - 1; i >= 0 && out.length < n; i--) if (SIGNIFICANT[s.charCodeAt(i) & 0xff] && s.charCodeAt(i) < 256) out.push(i);
  return out;
}
