import { Transform, type TransformCallback } from 'node:stream';
import { Splitter, type MimeNode } from '@zone-eu/mailsplit';
import { LimitedSplitter } from './mime-limits.js';

// mailsplit's Splitter, except over the body of a leaf part, which it would otherwise read line
// by line in JavaScript (its iterateData looks at every byte for LF: the largest JavaScript
// cost of a large message). Once the Splitter has emitted a leaf part's headers, the bytes up to
// the part's closing delimiter are found with Buffer.indexOf for `--<boundary>` of every open
// multipart and handed on as body objects in chunks as large as the input's; at a possible
// delimiter, control goes back to the Splitter, which decides (and handles the delimiter
// line, the next part's headers, preambles and epilogues) exactly as before.
//
// Outside leaf bodies the input is fed to the Splitter in pieces that end after the first line
// that can change its state (a blank line ending a header block, a line starting with "-"), so
// bulk mode starts right after a part's headers instead of at the next input chunk. Pieces end
// just after an LF, so a CRLF is never split (the reason ChunkedPassthrough exists).
//
// What the Splitter would have done is kept byte for byte, including which object the line
// end before a delimiter belongs to (the delimiter's, RFC 2046 5.1.1): it is handed back as the
// Splitter's pending line. The Splitter's fields used here (state, node, the pending line) are
// internal to @zone-eu/mailsplit 5.4; test/gateway/decode-bulk.test.ts compares the output with
// the plain Splitter's on every chunking, so an upgrade that changes them fails there.

const LF = 0x0a;
const CR = 0x0d;
const DASH = 0x2d;
/** mailsplit's BODY state. */
const BODY = 0x02;
/** Longest a delimiter line can be beyond its boundary (mailsplit's BOUNDARY_LINE_OVERHEAD). */
const DELIMITER_OVERHEAD = 2 + 2 + 998 + 2 + 2;
/** How far back the line before a delimiter is looked for (the Splitter's MAX_PENDING_LINE_SIZE). */
const MAX_LOOKBACK = 64 * 1024;

type Node = MimeNode & { _boundary?: Buffer | false; _parentBoundaryOwner?: Node | false };

/** The parts of mailsplit's Splitter this class works with. */
interface SplitterState {
  state: number;
  node: Node;
  hasFailed: boolean;
  pendingLineTruncated: boolean;
  /** Bytes of the pending line (the Splitter's, kept for the next chunk). */
  lineLength: number;
  takePendingLine(): Buffer | false;
  appendPendingLine(chunk: Buffer): void;
}

/** LimitedSplitter (mime.maxDepth, mime.maxParts) with leaf bodies read in bulk. */
export class BulkSplitter extends LimitedSplitter {
  /** Bytes handed on in bulk (for tests and the profile notes). */
  bulkBytes = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.step(chunk, cb);
  }

  private get s(): SplitterState {
    return this as unknown as SplitterState;
  }

  private superTransform(buf: Buffer, cb: TransformCallback): void {
    (Splitter.prototype as unknown as Transform)._transform.call(this, buf, 'binary' as BufferEncoding, cb);
  }

  private step(buf: Buffer, cb: TransformCallback): void {
    if (!buf.length) return cb();
    const s = this.s;
    // A structure limit passed when this part opened fails on the Splitter's next line: let it.
    if (!s.hasFailed && !this.exceeded && s.state === BODY && s.node && !s.node.multipart) return this.bulk(buf, cb);
    const end = pieceEnd(buf);
    if (end >= buf.length) return this.superTransform(buf, cb);
    this.superTransform(buf.subarray(0, end), (err) => (err ? cb(err) : this.step(buf.subarray(end), cb)));
  }

  /**
   * `nextByte`: the byte that follows `chunk` in the input, when the caller knows it and it cannot
   * begin a delimiter line; then a line end at the very end of `chunk` is body, not held back.
   */
  private bulk(chunk: Buffer, cb: TransformCallback, nextByte?: number): void {
    const s = this.s;
    // NB joining the pending line to the chunk copies the whole chunk, and there is a pending
    // line at almost every chunk (the partial last line, or at least the line end that a
    // delimiter on the next line would own). When that line ends in this chunk and the line
    // after it cannot begin a delimiter (it starts with neither "-" nor a CR), only the first line
    // is joined, and the rest of the chunk goes on without a copy.
    if (nextByte === undefined && s.lineLength > 0) {
      const lf = chunk.indexOf(LF);
      const next = lf + 1;
      if (lf >= 0 && next < chunk.length && chunk[next] !== DASH && chunk[next] !== CR) {
        return this.bulk(chunk.subarray(0, next), (err) => (err ? cb(err) : this.step(chunk.subarray(next), cb)), chunk[next]);
      }
    }
    const node = s.node;
    const delimiters: Buffer[] = [];
    let longest = 0;
    for (let o = node._parentBoundaryOwner; o; o = o._parentBoundaryOwner) {
      if (!o._boundary) continue;
      delimiters.push(Buffer.concat([DASHES, o._boundary]));
      longest = Math.max(longest, o._boundary.length);
    }
    // The line being read started at a line start unless the Splitter flushed it as overlong.
    const lineStart = !s.pendingLineTruncated;
    const pending = s.takePendingLine();
    s.pendingLineTruncated = false;
    const buf = pending ? Buffer.concat([pending, chunk]) : chunk;

    let hit = -1;
    for (const d of delimiters) {
      const at = firstAtLineStart(buf, d, lineStart, hit < 0 ? buf.length : hit);
      if (at >= 0 && (hit < 0 || at < hit)) hit = at;
    }
    if (hit >= 0) {
      // The line starts at `hit` (or at a lone CR before it, which mailsplit also accepts); the
      // line end before it goes back to the Splitter with the line, as its pending line.
      let lineAt = hit;
      if (hit > 0 && buf[hit - 1] === CR && (hit - 1 === 0 || buf[hit - 2] === LF)) lineAt = hit - 1;
      let e = lineAt;
      if (e > 0 && buf[e - 1] === LF) {
        e--;
        if (e > 0 && buf[e - 1] === CR) e--;
      }
      const lf = buf.indexOf(LF, lineAt);
      const lineEnd = lf < 0 ? buf.length : lf + 1;
      if (lineAt < hit) {
        // NB a delimiter after a lone CR is recognised by the Splitter only as a line of its
        // own, never joined to a pending line end: give it the last line with content before
        // it as well, so it cuts there exactly as it would reading line by line.
        let from = e;
        while (from > 0 && e - from < MAX_LOOKBACK) {
          const prev = buf.lastIndexOf(LF, from - 1) + 1;
          const empty = prev === from - 1 || (prev === from - 2 && buf[from - 2] === CR);
          from = prev;
          if (!empty) break;
        }
        if (from === 0 ? lineStart : e - from < MAX_LOOKBACK) {
          this.pushBody(node, buf, 0, from);
          this.superTransform(buf.subarray(from, lineEnd), (err) => (err ? cb(err) : this.step(buf.subarray(lineEnd), cb)));
          return;
        }
      }
      this.pushBody(node, buf, 0, e);
      if (lineAt > e) s.appendPendingLine(buf.subarray(e, lineAt));
      this.superTransform(buf.subarray(lineAt, lineEnd), (err) => (err ? cb(err) : this.step(buf.subarray(lineEnd), cb)));
      return;
    }

    // No delimiter: everything goes on but the last (partial) line and the line end before it,
    // which could still turn out to be one (the Splitter keeps exactly that much pending too).
    const maxLine = longest + DELIMITER_OVERHEAD;
    const lastLf = buf.lastIndexOf(LF);
    let keep = buf.length;
    let truncated = false;
    if (lastLf < 0) {
      if (lineStart && buf.length <= maxLine) keep = 0;
      else truncated = true;
    } else if (lastLf === buf.length - 1 && nextByte !== undefined) {
      // A whole line, and the next one is known not to be a delimiter: its line end is body.
      keep = buf.length;
    } else if (buf.length - lastLf - 1 <= maxLine) {
      keep = lastLf > 0 && buf[lastLf - 1] === CR ? lastLf - 1 : lastLf;
    } else {
      truncated = true;
    }
    this.pushBody(node, buf, 0, keep);
    if (keep < buf.length) s.appendPendingLine(buf.subarray(keep));
    // The rest of an overlong line can never be a delimiter (as in the Splitter).
    s.pendingLineTruncated = truncated;
    cb();
  }

  private pushBody(node: Node, buf: Buffer, start: number, end: number): void {
    if (end <= start) return;
    this.bulkBytes += end - start;
    this.push({ node, type: 'body', value: buf.subarray(start, end) });
  }
}

const DASHES = Buffer.from('--');

/** First index of `delim` in `buf` (before `limit`) that starts a line, or with one CR in front of it. */
function firstAtLineStart(buf: Buffer, delim: Buffer, lineStart: boolean, limit: number): number {
  for (let at = buf.indexOf(delim); at >= 0 && at < limit; at = buf.indexOf(delim, at + 1)) {
    if (at === 0) {
      if (lineStart) return at;
      continue;
    }
    const before = buf[at - 1];
    if (before === LF) return at;
    if (before === CR && (at === 1 ? lineStart : buf[at - 2] === LF)) return at;
  }
  return -1;
}

const BLANK_LF = Buffer.from('\n\n');
const BLANK_CRLF = Buffer.from('\n\r\n');
const LINE_DASH = Buffer.from('\n-');

/** End (just past its LF) of the first line in `buf` that may change the Splitter's state. */
function pieceEnd(buf: Buffer): number {
  let end = buf.length;
  const lineEndAfter = (i: number) => {
    const lf = buf.indexOf(LF, i);
    return lf < 0 ? buf.length : lf + 1;
  };
  if (buf[0] === DASH || buf[0] === LF || (buf[0] === CR && buf[1] === LF)) end = Math.min(end, lineEndAfter(0));
  const a = buf.indexOf(BLANK_LF);
  if (a >= 0) end = Math.min(end, a + 2);
  const b = buf.indexOf(BLANK_CRLF);
  if (b >= 0) end = Math.min(end, b + 3);
  const c = buf.indexOf(LINE_DASH);
  if (c >= 0 && c < end) end = Math.min(end, lineEndAfter(c + 1));
  return end;
}

/**
 * Re-chunks bytes into pieces of at least `size` (the last may be smaller): fewer, larger body
 * objects downstream. Unlike mailsplit's ChunkedPassthrough it copies once per output chunk
 * (not once per input chunk), and passes a large input chunk through without copying.
 */
export class BulkChunker extends Transform {
  private parts: Buffer[] = [];
  private length = 0;
  constructor(private readonly size: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.length === 0 && chunk.length >= this.size) return cb(null, chunk);
    this.parts.push(chunk);
    this.length += chunk.length;
    if (this.length >= this.size) this.release();
    cb();
  }
  override _flush(cb: TransformCallback): void {
    if (this.length) this.release();
    cb();
  }
  private release(): void {
    const out = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.length);
    this.parts = [];
    this.length = 0;
    this.push(out);
  }
}
