import crypto from 'node:crypto';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import { describe, expect, it } from 'vitest';
import { feedDataInBulk } from '../../gateway/dot-unstuffing.js';
import { pseudoRandom } from '../helpers/mail.js';
import { splitAt } from '../helpers/chunks.js';

// The DATA phase read in bulk (gateway/dot-unstuffing.ts) must give the message and the commands
// after it exactly as the rules say, whatever the TCP segmentation: a terminator or an escape
// split across chunks, a slow reader, the very first bytes. The rules are written out here once
// as a byte-by-byte model, and smtp-server's own parser (fed the whole input at once) must agree
// with the model too, so the bulk reader changes nothing a client could see.

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

/** The rules, one byte at a time: the message, and what follows the terminator. */
function model(input: Buffer): { body: Buffer; rest: Buffer } {
  const out: number[] = [];
  let p2 = CR; // the data starts as if after a CRLF
  let p1 = LF;
  for (let i = 0; i < input.length; i++) {
    const b = input[i];
    if (b === DOT && p1 === LF) {
      if (p2 === CR && input[i + 1] === CR && input[i + 2] === LF) return { body: Buffer.from(out), rest: input.subarray(i + 3) };
      if (input[i + 1] === DOT) {
        // the escape dot is dropped; the next one is content
        p2 = p1;
        p1 = DOT;
        continue;
      }
    }
    out.push(b);
    p2 = p1;
    p1 = b;
  }
  throw new Error('the test input has no terminator');
}

interface Parsed {
  body: Buffer;
  commands: string[];
  dataBytes: number;
}

/** Feeds the chunks to a real SMTPStream in data mode, with the bulk reader or the library's. */
async function parse(chunks: Buffer[], bulk = true, slowReader = false): Promise<Parsed> {
  const parser = new SMTPStream();
  if (bulk) (parser as unknown as { _feedDataStream: typeof feedDataInBulk })._feedDataStream = feedDataInBulk;
  const commands: string[] = [];
  parser.oncommand = (command: Buffer, callback?: () => void) => {
    commands.push(command.toString('latin1'));
    callback?.();
  };
  const data = parser.startDataMode();
  const parts: Buffer[] = [];
  let dataBytes = -1;
  data.on('end', () => {
    dataBytes = parser.dataBytes;
    parser.continue();
  });
  if (slowReader) {
    // reads a piece now and then, so the parser meets a full stream and waits for 'drain'
    const pump = (): void => {
      let piece: Buffer | null;
      while ((piece = data.read(4096)) !== null) parts.push(piece);
      if (!data.readableEnded) setTimeout(pump, 1);
    };
    data.on('readable', () => undefined);
    setTimeout(pump, 1);
  } else {
    data.on('data', (piece: Buffer) => parts.push(piece));
  }
  const finished = new Promise<void>((resolve, reject) => {
    parser.once('finish', resolve);
    parser.once('error', reject);
  });
  for (const chunk of chunks) parser.write(chunk);
  parser.end();
  await finished;
  if (parser._dataMode) throw new Error('the terminator was not found: the data never ended');
  if (!data.readableEnded) await new Promise((resolve) => data.once('end', resolve));
  return { body: Buffer.concat(parts), commands, dataBytes };
}

function commandsOf(rest: Buffer): string[] {
  return rest.toString('latin1').split(/\r?\n/).filter((line, i, all) => line !== '' || i < all.length - 1);
}

/** Inputs heavy in the bytes that matter, each ending in a terminator and two commands. */
function trickyInputs(count: number): Buffer[] {
  const tokens = ['.', '\r', '\n', 'a', '\r\n', '\r\n.', '\r\n..', '\n.', '\n..', '..', '\r\n.\r', 'xyz'];
  const bytes = pseudoRandom(count * 64, 'dots');
  const out: Buffer[] = [];
  for (let n = 0, k = 0; n < count; n++) {
    let text = '';
    const length = 2 + (bytes[k++] % 30);
    for (let t = 0; t < length; t++) text += tokens[bytes[k++] % tokens.length];
    out.push(Buffer.from(`${text}\r\n.\r\nNOOP\r\nQUIT\r\n`, 'latin1'));
  }
  return out;
}


describe('DATA read in bulk (dot-unstuffing)', () => {
  it('the first line: an empty message, an escaped lone dot, a dot that is content', async () => {
    const cases: Array<[string, string]> = [
      ['.\r\nQUIT\r\n', ''],
      ['..\r\n.\r\nQUIT\r\n', '.\r\n'],
      ['...\r\n.\r\nQUIT\r\n', '..\r\n'],
      ['.a\r\n.\r\nQUIT\r\n', '.a\r\n'],
      ['\r\n.\r\nQUIT\r\n', '\r\n'],
      ['Subject: x\r\n\r\n..hidden\r\n.\r\nQUIT\r\n', 'Subject: x\r\n\r\n.hidden\r\n'],
    ];
    for (const [input, body] of cases) {
      const raw = Buffer.from(input, 'latin1');
      for (let cut = 0; cut <= raw.length; cut++) {
        const got = await parse(splitAt(raw, [cut]));
        expect(got.body.toString('latin1'), `${JSON.stringify(input)} cut at ${cut}`).toBe(body);
        expect(got.commands).toEqual(['QUIT']);
        expect(got.dataBytes).toBe(Buffer.byteLength(body, 'latin1'));
      }
    }
  });

  it('bare LF and bare CR around a dot are content, not the end (the smuggling shapes)', async () => {
    for (const shape of ['\n.\n', '\n.\r\n', '\r.\r', '\r.\r\n', '\r\n.\n', '\r\n.\r', '\n.\r']) {
      const raw = Buffer.from(`first${shape}MAIL FROM:<m@evil.example>\r\n.\r\nQUIT\r\n`, 'latin1');
      for (let cut = 0; cut <= raw.length; cut++) {
        const got = await parse(splitAt(raw, [cut]));
        expect(got.body.toString('latin1'), `${JSON.stringify(shape)} cut at ${cut}`).toBe(`first${shape}MAIL FROM:<m@evil.example>\r\n`);
        expect(got.commands).toEqual(['QUIT']);
      }
    }
  });

  it('every cut into two and three chunks, and one byte at a time, gives what the rules say', async () => {
    for (const input of trickyInputs(120)) {
      const want = model(input);
      const wantCommands = commandsOf(want.rest);
      const chunkings: Buffer[][] = [[input], [...input].map((b) => Buffer.from([b]))];
      for (let a = 1; a < input.length; a++) {
        chunkings.push(splitAt(input, [a]));
        chunkings.push(splitAt(input, [a, Math.min(input.length, a + 1 + (a % 5))]));
      }
      for (const chunks of chunkings) {
        const got = await parse(chunks);
        const where = `${JSON.stringify(input.toString('latin1'))} in ${chunks.map((c) => c.length).join('+')}`;
        expect(got.body.equals(want.body), where).toBe(true);
        expect(got.commands, where).toEqual(wantCommands);
        expect(got.dataBytes, where).toBe(want.body.length);
      }
    }
  });

  it('agrees with smtp-server\'s own parser on whole inputs', async () => {
    // The one known difference is a bare LF as the very first byte of the data ("\n..": the
    // library never looks at the second byte); such inputs are left out.
    for (const input of trickyInputs(400).filter((b) => b[0] !== LF)) {
      const ours = await parse([input]);
      const library = await parse([input], false);
      const where = JSON.stringify(input.toString('latin1'));
      expect(ours.body.equals(library.body), where).toBe(true);
      expect(ours.commands, where).toEqual(library.commands);
      expect(ours.dataBytes, where).toBe(library.dataBytes);
    }
  });

  it('a 4 MiB message with dot-stuffed lines, in chunks of 1 byte to 1 MiB and to a slow reader, arrives byte-exact', async () => {
    const lines = pseudoRandom(3 * 1024 * 1024, 'bulk-dots').toString('base64').match(/.{1,76}/g) ?? [];
    // every 50th line starts with a dot: stuffed on the wire, one dot in the message
    const message = Buffer.from(lines.map((l, i) => (i % 50 === 0 ? `.${l}` : l)).join('\r\n') + '\r\n', 'latin1');
    const wire = Buffer.from(lines.map((l, i) => (i % 50 === 0 ? `..${l}` : l)).join('\r\n') + '\r\n.\r\nQUIT\r\n', 'latin1');
    const want = crypto.createHash('sha256').update(message).digest('hex');
    for (const size of [1, 7, 77, 78, 4096, 65_536, 65_537, 1024 * 1024]) {
      // one-byte chunks over the whole message would take minutes: the first 64 KiB that way
      const chunks: Buffer[] = [];
      const head = size === 1 ? 65_536 : 0;
      for (let i = 0; i < head; i++) chunks.push(wire.subarray(i, i + 1));
      for (let i = head; i < wire.length; i += size > 1 ? size : 65_536) chunks.push(wire.subarray(i, i + (size > 1 ? size : 65_536)));
      const got = await parse(chunks, true, size === 65_536);
      expect(crypto.createHash('sha256').update(got.body).digest('hex'), `chunks of ${size}`).toBe(want);
      expect(got.dataBytes).toBe(message.length);
      expect(got.commands).toEqual(['QUIT']);
    }
  });
});
