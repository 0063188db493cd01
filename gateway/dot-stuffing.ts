import type { Transform, TransformCallback } from 'node:stream';

// The relay's side of the DATA phase: nodemailer's DataStream (smtp-connection/data-stream.js)
// escapes a dot at the start of a line and turns bare CR and bare LF into CRLF, in a JavaScript
// loop over every byte it relays: 4-5 % of the CPU of a small message, and every byte of a
// message relayed whole (up to offload.minAttachmentSize) goes through it. This is the same
// transform with the interesting bytes found by Buffer.indexOf: JavaScript runs once per line
// end, not once per byte. The output is nodemailer's, byte for byte, for every input and every
// chunking (test/gateway/dot-stuffing.test.ts runs both on the same inputs), including the
// smuggling shapes: a dot after a bare CR is stuffed as after any line end.
//
// Installed per connection by gateway/relay.ts on the stream nodemailer creates for the data
// (`_createSendStream`), so nodemailer's own counters stay as they are.
//
// Each chunk is passed on when the next one comes, and the last one together with the
// end-of-data line: nodemailer's own stream wrote that line on its own, one more write (and one
// more TCP segment) for every message relayed, a seventh of a small message's socket writes.

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const INSERT_LF = Buffer.from('\n');
const INSERT_LF_DOT = Buffer.from('\n.');
const INSERT_CR = Buffer.from('\r');
const INSERT_DOT = Buffer.from('.');

/** The fields of nodemailer's DataStream that its _transform and _flush share. */
interface DataStreamState {
  inByteCount: number;
  outByteCount: number;
  /** The last byte of the previous chunk; false before the first. */
  lastByte: number | false;
  /** Output not passed on yet: the last chunk waits for the next one or for the end-of-data line. */
  held?: Buffer;
}

type DataStreamLike = Transform & DataStreamState;

/** What to put before the byte at `i`, given the byte before it (nodemailer's three rules, in its order). */
function insertBefore(byte: number, prev: number | false): Buffer | undefined {
  if (prev === CR && byte !== LF) return byte === DOT ? INSERT_LF_DOT : INSERT_LF;
  if (byte === LF && prev !== CR) return INSERT_CR;
  if (byte === DOT && (prev === LF || prev === false)) return INSERT_DOT;
  return undefined;
}

/** DataStream._transform in bulk (`this` is nodemailer's DataStream). */
export function stuffInBulk(this: DataStreamLike, chunk: Buffer | string, _enc: BufferEncoding, done: TransformCallback): void {
  if (!chunk || !chunk.length) return done();
  const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
  this.inByteCount += buf.length;
  const parts: Buffer[] = [];
  let outLen = 0;
  let from = 0;
  const insert = (at: number, what: Buffer) => {
    if (at > from) {
      parts.push(buf.subarray(from, at));
      outLen += at - from;
    }
    parts.push(what);
    outLen += what.length;
    from = at;
  };

  // Only a byte right after a CR or an LF, a CR or LF itself, or the first byte can need an
  // insertion: the first byte against the previous chunk's last, then every line-end byte and
  // the byte after it.
  const first = insertBefore(buf[0]!, this.lastByte);
  if (first) insert(0, first);
  // NB `checked`: every byte before it has had its rule applied. The second byte of CR LF (or
  // LF CR, CR CR...) was checked as the byte after the first; checking it again as a line end
  // would insert twice.
  let checked = 1;
  let nextCr = buf.indexOf(CR, 0);
  let nextLf = buf.indexOf(LF, 0);
  while (nextCr >= 0 || nextLf >= 0) {
    const e = nextLf < 0 || (nextCr >= 0 && nextCr < nextLf) ? nextCr : nextLf;
    // The line-end byte itself (a bare LF takes a CR before it).
    if (e >= checked) {
      const ins = insertBefore(buf[e]!, buf[e - 1]!);
      if (ins) insert(e, ins);
    }
    // The byte after it.
    const n = e + 1;
    if (n < buf.length) {
      const ins = insertBefore(buf[n]!, buf[e]!);
      if (ins) insert(n, ins);
    }
    checked = n + 1;
    if (e === nextCr) nextCr = buf.indexOf(CR, e + 1);
    else nextLf = buf.indexOf(LF, e + 1);
  }

  if (parts.length) {
    if (from < buf.length) {
      parts.push(buf.subarray(from));
      outLen += buf.length - from;
    }
    this.outByteCount += outLen;
    hold(this, Buffer.concat(parts, outLen));
  } else {
    this.outByteCount += buf.length;
    hold(this, buf);
  }
  this.lastByte = buf[buf.length - 1]!;
  done();
}

function hold(s: DataStreamLike, out: Buffer): void {
  if (s.held) s.push(s.held);
  s.held = out;
}

/** DataStream._flush: the end-of-data line, after a line end of its own unless the data ended with one (nodemailer's rule), in one chunk with the held one. */
export function endInBulk(this: DataStreamLike, done: TransformCallback): void {
  const end = Buffer.from(this.lastByte === LF ? '.\r\n' : this.lastByte === CR ? '\n.\r\n' : '\r\n.\r\n', 'latin1');
  this.outByteCount += end.length;
  const held = this.held;
  this.held = undefined;
  this.push(held ? Buffer.concat([held, end], held.length + end.length) : end);
  done();
}

/** Makes one nodemailer DataStream escape in bulk and end in one chunk with the data. */
export function useBulkStuffing(stream: Transform): void {
  const s = stream as DataStreamLike;
  s._transform = stuffInBulk;
  s._flush = endInBulk;
}

interface SendStreamFactory {
  _createSendStream(callback: (...args: unknown[]) => void): Transform;
}

/** Makes the data streams of one nodemailer SMTPConnection escape in bulk. */
export function stuffDataInBulk(conn: object): void {
  const c = conn as SendStreamFactory;
  const create = c._createSendStream;
  if (typeof create !== 'function') throw new Error('this nodemailer version has no SMTPConnection._createSendStream: gateway/dot-stuffing.ts must follow it');
  c._createSendStream = function (this: SendStreamFactory, callback) {
    const stream = create.call(this, callback) as DataStreamLike;
    useBulkStuffing(stream);
    return stream;
  };
}
