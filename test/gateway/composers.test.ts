import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { savedName } from '../../storage/filenames.js';
import { startFerry, type TestFerry } from '../helpers/ferry.js';
import { dispositionName, download, fileLinks, parse, sha256 } from '../helpers/mail.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { Upstream } from '../helpers/upstream.js';
import { fixtureBytes, manifest, type Fixture } from '../helpers/fixtures.js';
import { stripFerryReceived } from '../helpers/received.js';

// Every message made by a real mail composer (test/fixtures/generate.mjs: Python's email
// package, nodemailer, mutt, mpack, swaks, openssl S/MIME) goes through Ferry to a real next
// hop, and what arrives is checked against what the composer put in.

const runnable = manifest.fixtures.filter((f) => !f.skipped);
const skipped = manifest.fixtures.filter((f) => f.skipped);

let ferry: TestFerry;
let upstream: Upstream;

beforeAll(async () => {
  upstream = await new Upstream().start();
  ferry = await startFerry({ relay: { url: upstream.url }, offload: { minAttachmentSize: manifest.threshold } });
});
afterAll(async () => {
  await ferry?.stopAndClean();
  await upstream?.stop();
});

async function relay(f: Fixture): Promise<{ reply: string; raw: Buffer }> {
  const before = upstream.messages.length;
  const c = await RawSmtp.connect(ferry.smtpPort);
  try {
    await c.cmd('EHLO client.test');
    await c.cmd(`MAIL FROM:<${f.from || 'alice@example.com'}>`);
    for (const to of f.to?.length ? f.to : ['bob@example.net']) await c.cmd(`RCPT TO:<${to}>`);
    const reply = await c.data(fixtureBytes(f));
    return { reply, raw: upstream.messages.length > before ? upstream.messages.at(-1)!.raw : Buffer.alloc(0) };
  } finally {
    c.close();
  }
}

const crlf = (b: Buffer) => Buffer.from(b.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');

describe('messages from real mail composers', () => {
  if (!runnable.length) it.skip('fixtures are missing: run `npm run fixtures` (needs python3; see test/fixtures/README.md)', () => {});
  for (const f of skipped) it.skip(`${f.name}: ${f.skipped}`, () => {});

  for (const f of runnable) {
    const large = f.attachments.filter((a) => a.large && !a.nested);
    const small = f.attachments.filter((a) => !a.large && !a.nested);

    it(`${f.name} (${f.composer})`, async () => {
      const original = fixtureBytes(f);
      const { reply, raw } = await relay(f);
      expect(reply).toMatch(/^250 2\.0\.0 Ok: queued as /);
      expect(raw.length).toBeGreaterThan(0);

      if (f.expectUnchanged || f.signed || f.encrypted || f.name === 'malformed-missing-boundary') {
        // Nothing to offload, or signed/encrypted (passed untouched by default): the exact bytes
        // arrive after Ferry's Received field (the next-hop client only turns bare LF into CRLF).
        expect(sha256(stripFerryReceived(raw))).toBe(sha256(crlf(original)));
        return;
      }
      if (f.malformed) {
        // Broken structure: still relayed, never lost; whatever was parsable stays readable.
        await expect(parse(raw)).resolves.toBeDefined();
        return;
      }

      const mail = await parse(raw);
      expect(mail.headers.get('x-ferry-offloaded')).toBe(`${large.length} file${large.length === 1 ? '' : 's'}; ${large.reduce((s, a) => s + a.size, 0)} bytes`);
      const notice = `${mail.text ?? ''}\n${String(mail.html || '')}`;
      expect(notice).toMatch(/sent as (a )?download link/);
      if (f.bodyText) expect(mail.text ?? '').toContain(f.bodyText);
      if (f.bodyHtml) expect(String(mail.html || '')).toContain(f.bodyHtml);

      // Small attachments are still attached, unchanged. (In a message with bare-LF line ends a
      // 7bit text attachment arrives with CRLF, SMTP's canonical form: there, check it is there.)
      for (const a of small) {
        const kept = f.lineEnding === 'crlf' ? mail.attachments.some((m) => sha256(m.content) === a.sha256) : mail.attachments.some((m) => m.filename === a.filename);
        expect(kept, `small attachment ${a.filename} kept`).toBe(true);
      }
      // Each large one is a link that downloads the exact bytes under its (cleaned) name.
      const links = await fileLinks(raw, ferry.publicUrl);
      expect(links).toHaveLength(large.length);
      const got = new Map<string, string>();
      for (const link of links) {
        const r = await download(link);
        expect(r.status).toBe(200);
        got.set(sha256(r.body), dispositionName(r.headers.get('content-disposition')) ?? '');
      }
      for (const a of large) {
        expect(got.has(a.sha256), `download of ${a.filename}`).toBe(true);
        const saved = got.get(a.sha256)!;
        if (a.filename) expect(saved).toBe(savedName(a.filename));
      }
    });
  }
});
