import type { PassThrough } from 'node:stream';

// The DATA phase of smtp-server, done in bulk. The library's parser (SMTPStream._feedDataStream)
// looks at every byte of the message in a JavaScript loop to find line-start dots, and copies
// every chunk once to join it to the four bytes it kept from the last one: on a 100 MiB message
// that loop and its copies were a quarter of the CPU (docs/performance.md). This does the same
// job with Buffer.indexOf (native, memchr-fast) for "\n." and copies only the few chunks whose
// last bytes may begin a terminator or an escape.
//
// It replaces the method on each parser of a FerryConnection (gateway/smtp-server.ts), so it
// keeps the library's contract exactly: the same state fields, the same byte counting
// (_countDataBytes, which also sets sizeExceeded), the same hand-over to command mode
// (_endDataMode), the same wait for 'drain' or 'close'. smtp-server is pinned with ~ for this.
//
// The rules are the library's, and the same for every way the bytes are cut into chunks:
// - "\r\n.\r\n" ends the data; the CRLF before the dot belongs to the message. The data starts
//   as if after a CRLF, so ".\r\n" at once is an empty message.
// - "\n.." at a line start: the first dot is an escape and is dropped (also at the very start).
// - Anything else, a bare "\n.\n" or "\r.\r" included, is message content: those are the
//   smuggling shapes, and they stay in the message as text (test/gateway/smuggling.test.ts)
//   where the canonical line ends are restored later (line-ends.ts).
// One deliberate difference: the library never looked at a dot that is the second byte of the
// data ("\n..": the data beginning with a bare LF), so it kept its escape dot; here it is an
// escape like at any other line start.

/** The fields and methods of smtp-server's SMTPStream this works with (internal, not typed by the library). */
export interface DataModeParser {
  _dataStream: (PassThrough & { byteLength: number; sizeExceeded: boolean }) | null;
  /** Bytes kept from the last chunk: they may begin a terminator or an escape. */
  _lastBytes: Buffer | false;
  /** True until the first byte of the data has been decided on. */
  _atDataStart: boolean;
  _countDataBytes(length: number): void;
  _endDataMode(chunk: Buffer | false, remainder: Buffer, done: (err?: Error | null) => void): void;
}

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const LF_DOT = Buffer.from('\n.', 'latin1');

/** SMTPStream._feedDataStream in bulk: call with the parser as `this`. */
export function feedDataInBulk(this: DataModeParser, input: Buffer, done: (err?: Error | null) => void): void {
  const parser = this;
  const kept = parser._lastBytes;
  const chunk = kept && kept.length ? Buffer.concat([kept, input], kept.length + input.length) : input;
  parser._lastBytes = false;
  const len = chunk.length;
  let start = 0; // first byte not yet written to the data stream
  let from = 0; // where the search for the next line-start dot goes on

  if (parser._atDataStart) {
    // Three bytes decide the first line: ".\r\n" ends an empty message, ".." is an escape.
    if (len < 3) {
      parser._lastBytes = Buffer.from(chunk);
      return done();
    }
    if (chunk[0] === DOT && chunk[1] === CR && chunk[2] === LF) return parser._endDataMode(false, chunk.subarray(3), done);
    if (chunk[0] === DOT && chunk[1] === DOT) start = from = 1;
    // NB cleared here and not only by _countDataBytes: after a dropped escape dot nothing may
    // have been written yet, and the next chunk's leading dot is content, never a terminator
    // (the library's own guard against DATA ended early by TCP segmentation).
    parser._atDataStart = false;
  }

  const stream = parser._dataStream;
  let flowing = true;
  const write = (piece: Buffer): void => {
    if (!piece.length) return;
    parser._countDataBytes(piece.length);
    if (stream?.writable && !stream.write(piece)) flowing = false;
  };

  let holdFrom = -1;
  for (;;) {
    const lf = chunk.indexOf(LF_DOT, from);
    if (lf < 0) break;
    if (lf + 3 >= len) {
      // Too close to the end to tell: keep from the CR that may precede it.
      holdFrom = Math.max(start, lf - 1);
      break;
    }
    // NB lf - 1 can be in the last chunk only if that byte was not a CR: a trailing CR is
    // always kept for the next chunk (below), so lf === 0 never begins a terminator.
    if (lf > 0 && chunk[lf - 1] === CR && chunk[lf + 2] === CR && chunk[lf + 3] === LF) {
      const last = chunk.subarray(start, lf + 1);
      parser._countDataBytes(last.length);
      return parser._endDataMode(last.length ? last : false, chunk.subarray(lf + 4), done);
    }
    if (chunk[lf + 2] === DOT) {
      write(chunk.subarray(start, lf + 1));
      start = from = lf + 2;
      continue;
    }
    from = lf + 1;
  }

  if (holdFrom < 0) {
    // A CR or LF among the last four bytes may begin "\r\n.\r\n" or "\n..": keep it and what
    // follows for the next chunk, which is then joined to it (the only copy, and only then).
    holdFrom = len;
    for (let i = Math.max(start, len - 4); i < len; i++) {
      if (chunk[i] === CR || chunk[i] === LF) {
        holdFrom = i;
        break;
      }
    }
  }
  if (holdFrom < len) parser._lastBytes = Buffer.from(chunk.subarray(holdFrom));
  write(chunk.subarray(start, holdFrom));

  if (flowing || !stream || stream.destroyed) return done();
  // A stream the application destroys never drains, it only closes.
  const resume = (): void => {
    stream.removeListener('drain', resume);
    stream.removeListener('close', resume);
    done();
  };
  stream.once('drain', resume);
  stream.once('close', resume);
}
