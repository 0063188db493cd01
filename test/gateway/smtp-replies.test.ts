import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFerry, type TestFerry } from '../helpers/ferry.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { Upstream } from '../helpers/upstream.js';

// The exact reply lines a client sees. FerryConnection reaches into smtp-server internals to
// give replies their own enhanced codes; these tests pin that behaviour to the wire.

let ferry: TestFerry;
let upstream: Upstream;

beforeAll(async () => {
  upstream = await new Upstream().start();
  ferry = await startFerry({ relay: { url: upstream.url }, smtp: { maxRecipients: 3, maxMessageSize: 1_000_000 } });
});
afterAll(async () => {
  await ferry?.stopAndClean();
  await upstream?.stop();
});

async function session() {
  const c = await RawSmtp.connect(ferry.smtpPort);
  await c.cmd('EHLO client.test');
  return c;
}

describe('reply lines', () => {
  it('greets and answers EHLO without enhanced codes (RFC 2034), then uses them everywhere', async () => {
    const c = await RawSmtp.connect(ferry.smtpPort);
    const ehlo = await c.cmd('EHLO client.test');
    expect(ehlo.split('\n')[0]).toMatch(/^250-ferry\.test Nice to meet you/);
    expect(await c.cmd('MAIL FROM:<alice@example.com>')).toBe('250 2.1.0 Accepted');
    expect(await c.cmd('RCPT TO:<bob@example.net>')).toBe('250 2.1.5 Accepted');
    expect(await c.cmd('RSET')).toBe('250 2.0.0 Flushed');
    c.close();
  });

  it('words the declared-size refusal itself, with 5.3.4 (not the library\'s 5.2.2 "mailbox full")', async () => {
    const c = await session();
    expect(await c.cmd('MAIL FROM:<alice@example.com> SIZE=2000000')).toBe(
      '552 5.3.4 Message size 2.0 MB exceeds the limit of 1.0 MB (1000000 bytes); it was not sent. Remove some attachments or share them another way, then send again.',
    );
    c.close();
  });

  it('refuses recipients past smtp.maxRecipients with 452 4.5.3 in plain words', async () => {
    const c = await session();
    await c.cmd('MAIL FROM:<alice@example.com>');
    for (const r of ['a', 'b', 'c']) expect(await c.cmd(`RCPT TO:<${r}@example.net>`)).toMatch(/^250 /);
    expect(await c.cmd('RCPT TO:<d@example.net>')).toBe('452 4.5.3 Too many recipients; at most 3 per message. Send the rest in another message.');
    c.close();
  });

  it('answers bad commands with the right codes', async () => {
    const c = await session();
    expect(await c.cmd('DATA')).toMatch(/^503 5\.5\.1 /);
    expect(await c.cmd('RCPT TO:<a@example.net>')).toMatch(/^503 5\.5\.1 /);
    expect(await c.cmd('MAIL FROM:<not an address')).toMatch(/^501 5\.1\.7 /);
    expect(await c.cmd('FOO')).toMatch(/^500 5\.5\.2 /);
    c.close();
  });

  it('greets one connection past smtp.maxConnections with 421 4.7.0 and closes it', async () => {
    const f = await startFerry({ relay: { url: upstream.url }, smtp: { maxConnections: 2 } });
    try {
      const open = [await RawSmtp.connect(f.smtpPort), await RawSmtp.connect(f.smtpPort)];
      const socket = net.connect({ port: f.smtpPort, host: '127.0.0.1' });
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
      await new Promise((resolve) => socket.once('close', resolve));
      expect(text).toBe('421 4.7.0 Too many connections are open to this gateway; please try again in a moment.\r\n');
      // The two within the limit still work.
      for (const c of open) expect(await c.cmd('EHLO client.test')).toMatch(/^250/);
      open.forEach((c) => c.close());
    } finally {
      await f.stopAndClean();
    }
  });

  it('answers commands with 421 4.3.2 once the gateway is shutting down', async () => {
    const f = await startFerry({ relay: { url: upstream.url } });
    const c = await RawSmtp.connect(f.smtpPort);
    await c.cmd('EHLO client.test');
    const closing = f.gateway.close();
    expect(await c.cmd('MAIL FROM:<alice@example.com>')).toBe('421 4.3.2 The gateway is shutting down; please try again shortly.');
    c.close();
    await closing;
    await f.stopAndClean();
  });

  it('says 452 4.3.1 at MAIL FROM when attachment storage cannot take mail', async () => {
    const f = await startFerry({ relay: { url: upstream.url }, storage: { blobs: 'file:/dev/null/blobs' } });
    try {
      const c = await RawSmtp.connect(f.smtpPort);
      await c.cmd('EHLO client.test');
      expect(await c.cmd('MAIL FROM:<alice@example.com>')).toBe('452 4.3.1 Attachment storage is temporarily unavailable; please try again later.');
      c.close();
    } finally {
      await f.stopAndClean();
    }
  });
});
