import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFerry, type TestFerry } from '../helpers/ferry.js';
import { landingLinks, parse } from '../helpers/mail.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { Upstream } from '../helpers/upstream.js';
import { fixtureBytes, manifest, type Fixture } from '../helpers/fixtures.js';

// The notice goes into text bodies written in the charsets and transfer encodings real composers
// use. The recipient's client must show the notice and the sender's own words, both intact: no
// mojibake, no replacement characters, no broken soft line breaks.

const byName = new Map(manifest.fixtures.filter((f) => !f.skipped).map((f) => [f.name, f]));

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

async function relay(f: Fixture): Promise<Buffer> {
  const before = upstream.messages.length;
  const c = await RawSmtp.connect(ferry.smtpPort);
  try {
    await c.cmd('EHLO client.test');
    await c.cmd('MAIL FROM:<alice@example.com>');
    await c.cmd('RCPT TO:<bob@example.net>');
    expect(await c.data(fixtureBytes(f))).toMatch(/^250 /);
  } finally {
    c.close();
  }
  expect(upstream.messages.length).toBe(before + 1);
  return upstream.messages.at(-1)!.raw;
}

/** Headers of the first leaf part whose Content-Type starts with `type`, from the raw message. */
function partHeaders(raw: Buffer, type: string): string {
  const text = raw.toString('latin1');
  const re = new RegExp(`(?:^|\\r\\n)(Content-Type:\\s*${type}[\\s\\S]*?)\\r\\n\\r\\n`, 'i');
  return re.exec(text)?.[1] ?? '';
}

const cases: { name: string; text: RegExp; cte: RegExp; html?: boolean }[] = [
  { name: 'py-utf8-8bit', text: /charset="?utf-8"?/i, cte: /^Content-Transfer-Encoding:\s*(8bit|quoted-printable|base64)/im },
  { name: 'py-utf8-qp', text: /charset="?utf-8"?/i, cte: /^Content-Transfer-Encoding:\s*quoted-printable/im },
  // Latin-1 quoted-printable: the notice is plain ASCII, so the part keeps its charset and encoding.
  { name: 'py-latin1-qp-alternative', text: /charset="?iso-8859-1"?/i, cte: /^Content-Transfer-Encoding:\s*quoted-printable/im, html: true },
  // Shift_JIS can carry the notice's characters too: the part stays Shift_JIS.
  { name: 'py-shift-jis', text: /charset="?shift_jis"?/i, cte: /^Content-Transfer-Encoding:/im },
  { name: 'py-html-base64-alternative', text: /charset=/i, cte: /^Content-Transfer-Encoding:/im, html: true },
];

describe('the notice in real-world charsets and encodings', () => {
  for (const c of cases) {
    const f = byName.get(c.name);
    it.skipIf(!f)(`${c.name}${f ? '' : ' (fixture missing: run `npm run fixtures`)'}`, async () => {
      const raw = await relay(f!);
      const mail = await parse(raw);
      const text = mail.text ?? '';
      expect(text).not.toContain('\uFFFD');
      // The notice leads the text body; the sender's words follow, intact.
      expect(text).toMatch(/^-{60}\s+1 attachment was sent as a download link, available until \d{4}-\d\d-\d\d \d\d:\d\d UTC:/);
      expect(text).toContain(f!.bodyText!);
      expect(text.indexOf('sent as a download link')).toBeLessThan(text.indexOf(f!.bodyText!));
      expect(await landingLinks(raw, ferry.publicUrl)).toHaveLength(1);
      const headers = partHeaders(raw, 'text/plain');
      expect(headers).toMatch(c.text);
      expect(headers).toMatch(c.cte);
      if (c.html) {
        const html = String(mail.html || '');
        expect(html).not.toContain('\uFFFD');
        expect(html).toContain('sent as a download link');
        expect(html).toContain(f!.bodyHtml!);
        expect(html.indexOf('sent as a download link')).toBeLessThan(html.indexOf(f!.bodyHtml!));
      }
    });
  }
});
