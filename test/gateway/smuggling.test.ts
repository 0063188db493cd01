import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CrlfNormalizer } from '../../gateway/line-ends.js';
import { startFerry, type TestFerry } from '../helpers/ferry.js';
import { pseudoRandom } from '../helpers/mail.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { Upstream } from '../helpers/upstream.js';

// Issue 15, item 5: bare CR and bare LF reached outbox files unchanged (`first message\n.\nMAIL
// FROM:<...>` written as is) and `\r.\r` survived the rewrite. Everything Ferry writes or
// relays now carries canonical CRLF line ends. Every smuggling variant is fed to both kinds of
// next hop (outbox: and smtp:), in a message passed through and in a rewritten one; in each case
// exactly one message comes out, its line ends are all CRLF, and the smuggled commands are
// still there as text (nothing is lost).

const VARIANTS: Record<string, string> = {
  'LF . LF': '\n.\n',
  'LF . CRLF': '\n.\r\n',
  'CR . CR': '\r.\r',
  'CR . CRLF': '\r.\r\n',
  'CRLF . LF': '\r\n.\n',
  'CRLF . CR': '\r\n.\r',
  'LF . CR': '\n.\r',
};

const THRESHOLD = 4096;
const SMUGGLED = 'MAIL FROM:<mallory@evil.example>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\nSubject: smuggled\r\n\r\nsecond message\r\n';

function passthrough(variant: string): Buffer {
  return Buffer.from(`From: alice@example.com\r\nTo: bob@example.net\r\nSubject: plain\r\n\r\nfirst message${variant}${SMUGGLED}`, 'latin1');
}

function rewritten(variant: string): Buffer {
  const file = pseudoRandom(20_000, 'smuggle').toString('base64').replace(/.{76}/g, '$&\r\n');
  return Buffer.from(
    'From: alice@example.com\r\nTo: bob@example.net\r\nSubject: with file\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="zz"\r\n\r\n' +
      `--zz\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nfirst message${variant}${SMUGGLED}--zz\r\n` +
      `Content-Type: application/octet-stream; name="a.bin"\r\nContent-Disposition: attachment; filename="a.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n${file}\r\n--zz--\r\n`,
    'latin1',
  );
}

/** Offsets of CR not followed by LF and LF not preceded by CR. */
function bareLineEnds(b: Buffer): number[] {
  const out: number[] = [];
  for (let i = 0; i < b.length; i++) {
    if (b[i] === 0x0d && b[i + 1] !== 0x0a) out.push(i);
    if (b[i] === 0x0a && b[i - 1] !== 0x0d) out.push(i);
  }
  return out;
}

async function send(port: number, raw: Buffer): Promise<string> {
  const c = await RawSmtp.connect(port);
  try {
    expect(await c.cmd('EHLO client.test')).toMatch(/^250/);
    expect(await c.cmd('MAIL FROM:<alice@example.com>')).toMatch(/^250/);
    expect(await c.cmd('RCPT TO:<bob@example.net>')).toMatch(/^250/);
    return await c.data(raw);
  } finally {
    c.close();
  }
}

describe.each([
  ['passthrough', passthrough, 0],
  ['rewritten', rewritten, 1],
] as const)('SMTP smuggling variants, %s message', (_kind, build, offloaded) => {
  let outboxFerry: TestFerry;
  let smtpFerry: TestFerry;
  let upstream: Upstream;
  beforeAll(async () => {
    upstream = await new Upstream().start();
    outboxFerry = await startFerry({ offload: { minAttachmentSize: THRESHOLD } });
    smtpFerry = await startFerry({ relay: { url: upstream.url }, offload: { minAttachmentSize: THRESHOLD } });
  });
  afterAll(async () => {
    await outboxFerry?.stopAndClean();
    await smtpFerry?.stopAndClean();
    await upstream?.stop();
  });

  it.each(Object.entries(VARIANTS))('%s to an outbox: one file, canonical CRLF', async (_name, variant) => {
    const before = fs.existsSync(outboxFerry.outbox) ? fs.readdirSync(outboxFerry.outbox).length : 0;
    const reply = await send(outboxFerry.smtpPort, build(variant));
    expect(reply).toMatch(offloaded ? /^250 2\.0\.0 .*1 attachment turned into download links/ : /^250 2\.0\.0 Ok: queued as [A-Z0-9]+$/);
    const id = /queued as ([A-Z0-9]+)/.exec(reply)![1]!;
    // One .eml and its .json: one message, whatever the variant.
    expect(fs.readdirSync(outboxFerry.outbox).length).toBe(before + 2);
    const eml = fs.readFileSync(path.join(outboxFerry.outbox, `${id}.eml`));
    expect(bareLineEnds(eml)).toEqual([]);
    expect(eml.toString('latin1')).toContain('\r\nMAIL FROM:<mallory@evil.example>\r\n');
  });

  it.each(Object.entries(VARIANTS))('%s to an SMTP next hop: one message, canonical CRLF', async (_name, variant) => {
    const before = upstream.messages.length;
    const reply = await send(smtpFerry.smtpPort, build(variant));
    expect(reply).toMatch(/^250 2\.0\.0 /);
    // Let a smuggled second transaction, if any, arrive before counting.
    await new Promise((r) => setTimeout(r, 200));
    expect(upstream.messages.length).toBe(before + 1);
    const got = upstream.messages.at(-1)!;
    expect(got.from).toBe('alice@example.com');
    expect(bareLineEnds(got.raw)).toEqual([]);
    expect(got.raw.toString('latin1')).toContain('MAIL FROM:<mallory@evil.example>');
    expect(upstream.messages.some((m) => m.from.includes('mallory'))).toBe(false);
  });
});

describe('CrlfNormalizer', () => {
  async function run(chunks: string[]): Promise<string> {
    const out: Buffer[] = [];
    const n = new CrlfNormalizer();
    n.on('data', (c: Buffer) => out.push(c));
    await new Promise<void>((resolve, reject) => {
      n.on('end', resolve).on('error', reject);
      Readable.from(chunks.map((c) => Buffer.from(c, 'latin1'))).pipe(n);
    });
    return Buffer.concat(out).toString('latin1');
  }

  it('leaves canonical input byte for byte and fixes bare CR and LF wherever chunks are cut', async () => {
    const canonical = 'a\r\nb\r\n\r\n.\r\nc';
    for (let cut = 0; cut <= canonical.length; cut++) expect(await run([canonical.slice(0, cut), canonical.slice(cut)])).toBe(canonical);
    const messy = 'a\nb\r.\rc\r\n\r\rd\n\re\r';
    const fixed = 'a\r\nb\r\n.\r\nc\r\n\r\n\r\nd\r\n\r\ne\r\n';
    expect(await run([messy])).toBe(fixed);
    for (let cut = 0; cut <= messy.length; cut++) expect(await run([messy.slice(0, cut), messy.slice(cut)])).toBe(fixed);
    expect(await run(messy.split(''))).toBe(fixed);
  });
});
