import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countTransfers } from '../../storage/index.js';
import { listFiles, startFerry, type TestFerry } from '../helpers/ferry.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { Upstream } from '../helpers/upstream.js';

// RFC 1870 as DESIGN.md wants it, checked on the wire with a raw socket.

const MAX = 2_000_000;
const HARD = 6_000_000;

let ferry: TestFerry;
let upstream: Upstream;

beforeAll(async () => {
  upstream = await new Upstream().start();
  ferry = await startFerry({
    smtp: { maxMessageSize: MAX, hardLimit: HARD },
    offload: { minAttachmentSize: 100_000 },
    relay: { url: upstream.url },
  });
});
afterAll(async () => {
  await ferry?.stopAndClean();
  await upstream?.stop();
});

function message(bodyBytes: number, withAttachment = true): string {
  const b64 = crypto.randomBytes(Math.ceil((bodyBytes * 3) / 4)).toString('base64').replace(/.{76}/g, '$&\r\n');
  return [
    'From: alice@example.com',
    'To: bob@example.net',
    'Subject: size test',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b1"',
    '',
    '--b1',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Hello.',
    '--b1',
    `Content-Type: application/octet-stream; name="big.bin"`,
    'Content-Disposition: attachment; filename="big.bin"',
    'Content-Transfer-Encoding: base64',
    '',
    withAttachment ? b64 : '',
    '--b1--',
    '',
  ].join('\r\n');
}

async function snapshot() {
  return { blobs: listFiles(`${ferry.dir}/blobs`), spool: listFiles(`${ferry.dir}/spool`), transfers: await countTransfers(ferry.storage.db) };
}

/** Nothing of a rejected message remains: same blobs, no spool files, same records as before it. */
async function nothingLeft(before: Awaited<ReturnType<typeof snapshot>>) {
  const now = await snapshot();
  expect(now.blobs).toEqual(before.blobs);
  expect(now.spool).toEqual([]);
  expect(now.transfers).toBe(before.transfers);
}

describe('size policy (RFC 1870)', () => {
  it('advertises SIZE with the limit, PIPELINING, 8BITMIME, SMTPUTF8 and ENHANCEDSTATUSCODES in EHLO', async () => {
    const c = await RawSmtp.connect(ferry.smtpPort);
    const ehlo = await c.cmd('EHLO client.test');
    c.close();
    const lines = ehlo.split('\n').map((l) => l.slice(4));
    expect(lines).toContain(`SIZE ${MAX}`);
    for (const ext of ['PIPELINING', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES']) expect(lines).toContain(ext);
  });

  it('refuses a declared SIZE over the limit at MAIL FROM with 552 5.3.4 and a sentence naming the limit', async () => {
    const c = await RawSmtp.connect(ferry.smtpPort);
    await c.cmd('EHLO client.test');
    const r = await c.cmd(`MAIL FROM:<alice@example.com> SIZE=${MAX + 1}`);
    expect(r).toMatch(/^552 5\.3\.4 /);
    expect(r).toContain(`${MAX} bytes`);
    expect(r).not.toMatch(/5\.2\.2/);
    // The session stays usable: a declared size within the limit is accepted.
    expect(await c.cmd(`MAIL FROM:<alice@example.com> SIZE=${MAX - 1}`)).toMatch(/^250 /);
    c.close();
  });

  it('reads an undeclared over-size message to the end, answers 552 5.3.4 after the dot, keeps the session usable', async () => {
    const before = upstream.messages.length;
    const snap = await snapshot();
    const c = await RawSmtp.connect(ferry.smtpPort);
    await c.cmd('EHLO client.test');
    expect(await c.cmd('MAIL FROM:<alice@example.com>')).toMatch(/^250 /);
    expect(await c.cmd('RCPT TO:<bob@example.net>')).toMatch(/^250 /);
    const big = message(MAX + 500_000);
    const r = await c.data(big);
    expect(r).toMatch(/^552 5\.3\.4 /);
    expect(r).toMatch(/exceeds the limit of 2\.0 MB \(2000000 bytes\)/);
    expect(c.closed).toBe(false);
    await nothingLeft(snap);

    // RSET and a good message on the same connection.
    expect(await c.cmd('RSET')).toMatch(/^250 /);
    expect(await c.cmd('MAIL FROM:<alice@example.com>')).toMatch(/^250 /);
    expect(await c.cmd('RCPT TO:<bob@example.net>')).toMatch(/^250 /);
    expect(await c.data(message(300_000))).toMatch(/^250 2\.0\.0 Ok: queued as [0-9A-F]+, 1 attachment/);
    expect(upstream.messages.length).toBe(before + 1);
    c.close();
  });

  it('drops the connection with 421 only past the hard limit, leaving nothing behind', async () => {
    const snap = await snapshot();
    const c = await RawSmtp.connect(ferry.smtpPort);
    await c.cmd('EHLO client.test');
    await c.cmd('MAIL FROM:<alice@example.com>');
    await c.cmd('RCPT TO:<bob@example.net>');
    expect(await c.cmd('DATA')).toMatch(/^354/);
    // An attachment whose upload is under way when the hard limit is crossed, never finished.
    const head = message(0, false).split('--b1--')[0]!;
    c.write(head);
    const chunk = Buffer.from(`${crypto.randomBytes(57 * 1000).toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n`);
    let sent = 0;
    const replyP = c.reply(60_000);
    while (!c.closed && sent < HARD * 3) {
      if (!c.write(chunk)) await new Promise((res) => { c.socket.once('drain', res); c.socket.once('close', res); });
      sent += chunk.length;
    }
    const r = await replyP;
    expect(r).toMatch(/^421 4\.3\.4 /);
    await new Promise((res) => (c.closed ? res(null) : c.socket.once('close', res)));
    expect(c.closed).toBe(true);
    expect(sent).toBeGreaterThan(HARD);
    await nothingLeft(snap);
  });
});

describe('relay access', () => {
  it('refuses RCPT from a client outside smtp.trustedNetworks with 550 5.7.1 (never an open relay)', async () => {
    const up = await new Upstream().start();
    const f = await startFerry({ smtp: { trustedNetworks: ['10.0.0.0/8'] }, relay: { url: up.url } });
    try {
      const c = await RawSmtp.connect(f.smtpPort);
      await c.cmd('EHLO client.test');
      expect(await c.cmd('MAIL FROM:<alice@example.com>')).toMatch(/^250 /);
      const r = await c.cmd('RCPT TO:<victim@example.org>');
      expect(r).toMatch(/^550 5\.7\.1 /);
      expect(r).toContain('victim@example.org');
      expect(await c.cmd('DATA')).toMatch(/^503 /);
      c.close();
      expect(up.messages).toHaveLength(0);
    } finally {
      await f.stopAndClean();
      await up.stop();
    }
  });
});
