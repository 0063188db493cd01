import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import Database from 'better-sqlite3';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, listFiles, tempDir } from '../helpers/ferry.js';
import { fileLinks, pseudoRandom, sha256 } from '../helpers/mail.js';
import { dotStuff, RawSmtp } from '../helpers/smtp-client.js';
import { Upstream } from '../helpers/upstream.js';
import { spawnFerry, type ChildFerry } from './child.js';

// SIGTERM to a real `ferry start` process while a message is arriving: the message either
// completes (within shutdown.timeout) or leaves nothing behind (cut at the timeout), and a
// client connecting meanwhile is told 421 4.3.2.

let upstream: Upstream;
beforeAll(async () => {
  upstream = await new Upstream().start();
});
afterAll(async () => upstream?.stop());

interface Running {
  child: ChildFerry;
  dir: string;
  smtpPort: number;
  publicUrl: string;
  metricsPort: number;
}

async function start(shutdownTimeout: string): Promise<Running> {
  const dir = tempDir('ferry-shutdown-');
  const [smtpPort, webPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  const child = spawnFerry(
    'start',
    {
      FERRY_DATA_DIR: dir,
      FERRY_SMTP_HOST: '127.0.0.1',
      FERRY_SMTP_PORT: String(smtpPort),
      FERRY_SMTP_HOSTNAME: 'ferry.test',
      FERRY_WEB_HOST: '127.0.0.1',
      FERRY_WEB_PORT: String(webPort),
      FERRY_WEB_PUBLIC_URL: `http://127.0.0.1:${webPort}`,
      FERRY_RELAY_URL: upstream.url,
      FERRY_OFFLOAD_MIN_ATTACHMENT_SIZE: '100KB',
      FERRY_SHUTDOWN_TIMEOUT: shutdownTimeout,
      FERRY_METRICS_PORT: String(metricsPort),
      FERRY_METRICS_HOST: '127.0.0.1',
      FERRY_LOG_LEVEL: 'info',
    },
    dir,
  );
  await child.waitForLog((l) => l.msg === 'Ferry is running');
  return { child, dir, smtpPort, publicUrl: `http://127.0.0.1:${webPort}`, metricsPort };
}

async function message(size = 1_500_000): Promise<{ wire: Buffer; file: Buffer }> {
  const file = pseudoRandom(size, 'shutdown');
  const raw = await new MailComposer({ from: 'alice@example.com', to: 'bob@example.net', subject: 'during shutdown', text: 'hi', attachments: [{ filename: 'f.bin', content: file }] })
    .compile()
    .build();
  return { wire: dotStuff(raw), file };
}

/** Opens a transaction and sends the first half of the message's data. */
async function startTransfer(port: number, wire: Buffer): Promise<RawSmtp> {
  const c = await RawSmtp.connect(port);
  await c.cmd('EHLO client.test');
  expect(await c.cmd('MAIL FROM:<alice@example.com>')).toMatch(/^250 /);
  expect(await c.cmd('RCPT TO:<bob@example.net>')).toMatch(/^250 /);
  expect(await c.cmd('DATA')).toMatch(/^354 /);
  c.write(wire.subarray(0, wire.length >> 1));
  return c;
}

function storedState(dir: string): { blobs: string[]; spool: string[]; transfers: { state: string }[] } {
  const db = new Database(path.join(dir, 'ferry.db'), { readonly: true });
  try {
    return {
      // The stored attachments; each recipient's relayed copy (copy-*) is kept beside them.
      blobs: listFiles(path.join(dir, 'blobs')).filter((f) => !path.basename(f).startsWith('copy-')),
      spool: listFiles(path.join(dir, 'spool')),
      transfers: db.prepare('select state from transfers').all() as { state: string }[],
    };
  } finally {
    db.close();
  }
}

describe('graceful shutdown (SIGTERM to ferry start)', () => {
  it('a message in flight completes within shutdown.timeout; a new connection gets 421 4.3.2; exit 0', async () => {
    const { child, dir, smtpPort, metricsPort } = await start('20s');
    const { wire, file } = await message();
    const before = upstream.messages.length;
    const ready = await fetch(`http://127.0.0.1:${metricsPort}/readyz`);
    expect([ready.status, await ready.text()]).toEqual([200, 'ready\n']);
    const c = await startTransfer(smtpPort, wire);
    // A connection that is open but between transactions when the drain begins.
    const idle = await RawSmtp.connect(smtpPort);
    expect(await idle.cmd('EHLO idle.test')).toMatch(/^250/);
    child.proc.kill('SIGTERM');
    await child.waitForLog((l) => l.signal === 'SIGTERM');
    // Its next command is refused with 421 4.3.2 (smtp-server answers every command so once its
    // close timer is set: FerrySMTPServer.drain()), so the client takes the message elsewhere
    // instead of starting a transaction that the shutdown would cut.
    expect(await idle.cmd('MAIL FROM:<alice@example.com>')).toMatch(/^421 4\.3\.2 /);
    idle.close();

    // Load balancers see the drain.
    const draining = await fetch(`http://127.0.0.1:${metricsPort}/readyz`);
    expect([draining.status, await draining.text()]).toEqual([503, 'not ready: shutting down\n']);

    // A client arriving now is greeted with 421 4.3.2 and disconnected.
    const late = await rawGreeting(smtpPort);
    expect(late).toBe('421 4.3.2 The gateway is shutting down; please try again shortly.');

    c.write(wire.subarray(wire.length >> 1));
    c.write('\r\n.\r\n');
    expect(await c.reply()).toMatch(/^250 2\.0\.0 Ok: queued as \w+, 1 attachment/);
    // The next command is answered 421 4.3.2 and the connection closed.
    expect(await c.cmd('MAIL FROM:<alice@example.com>')).toBe('421 4.3.2 The gateway is shutting down; please try again shortly.');
    expect(await child.exited).toBe(0);

    expect(upstream.messages.length).toBe(before + 1);
    const s = storedState(dir);
    expect(s.transfers).toEqual([{ state: 'live' }]);
    expect(s.blobs).toHaveLength(1);
    expect(sha256(fs.readFileSync(s.blobs[0]!))).toBe(sha256(file));
    expect(s.spool).toEqual([]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a message still arriving at the timeout is cut: 421 to the client, nothing stored, nothing relayed', async () => {
    const { child, dir, smtpPort } = await start('1500ms');
    const { wire } = await message();
    const before = upstream.messages.length;
    const c = await startTransfer(smtpPort, wire);
    // Let part of the attachment reach the blob store before the signal comes.
    await new Promise((r) => setTimeout(r, 300));
    child.proc.kill('SIGTERM');
    await child.waitForLog((l) => l.signal === 'SIGTERM');
    expect(await rawGreeting(smtpPort)).toMatch(/^421 4\.3\.2 /);

    // The client stalls; at the timeout Ferry cancels the message and closes the connection.
    const reply = await c.reply(20_000);
    expect(reply).toBe('421 4.3.2 The gateway is shutting down; please try again shortly.');
    expect(await child.exited).toBe(0);
    const aborted = child.logs.find((l) => l.result === 'aborted');
    expect(aborted?.detail).toBe('shutting down');

    expect(upstream.messages.length).toBe(before);
    const s = storedState(dir);
    expect(s.transfers).toEqual([]);
    expect(s.blobs).toEqual([]);
    expect(s.spool).toEqual([]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a download in flight finishes after SIGTERM (within shutdown.timeout)', async () => {
    const { child, dir, smtpPort, publicUrl } = await start('20s');
    // Larger than what the loopback socket buffers hold, so the response is still being written
    // when the signal comes.
    const { wire, file } = await message(16_000_000);
    const c = await startTransfer(smtpPort, wire);
    c.write(wire.subarray(wire.length >> 1));
    c.write('\r\n.\r\n');
    expect(await c.reply()).toMatch(/^250 /);
    c.close();
    const [link] = await fileLinks(upstream.messages.at(-1)!.raw, publicUrl);

    // Read the first chunk, then stop reading while Ferry is told to stop.
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => http.get(link!, { headers: { 'user-agent': 'Mozilla/5.0 Firefox/140.0' } }, resolve).on('error', reject));
    expect(res.statusCode).toBe(200);
    const chunks: Buffer[] = [];
    await new Promise<void>((resolve) => res.once('data', (d: Buffer) => (chunks.push(d), res.pause(), resolve())));
    child.proc.kill('SIGTERM');
    await child.waitForLog((l) => l.signal === 'SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    expect(child.proc.exitCode).toBeNull(); // still serving
    res.on('data', (d: Buffer) => chunks.push(d));
    await new Promise((resolve, reject) => res.once('end', resolve).once('error', reject).resume());
    expect(sha256(Buffer.concat(chunks))).toBe(sha256(file));
    expect(await child.exited).toBe(0);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a second signal ends the process at once, with status 1', async () => {
    const { child, dir, smtpPort } = await start('20s');
    const { wire } = await message();
    const c = await startTransfer(smtpPort, wire);
    child.proc.kill('SIGTERM');
    await child.waitForLog((l) => l.signal === 'SIGTERM');
    const t0 = Date.now();
    child.proc.kill('SIGTERM');
    expect(await child.exited).toBe(1);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(child.logs.some((l) => l.msg === 'second signal: exiting now')).toBe(true);
    c.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

/** The first line a new connection receives (the greeting, or 421 while draining). */
async function rawGreeting(port: number): Promise<string> {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      buf += d;
      if (buf.includes('\r\n')) {
        resolve(buf.split('\r\n')[0]!);
        s.destroy();
      }
    });
    s.on('error', (err) => resolve(`error: ${err.message}`));
    s.on('close', () => resolve(buf || 'closed without a reply'));
  });
}
