import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createRelay, type Relay } from '../../gateway/relay.js';
import { getQueueEntry, listQueue, openStorage, queueSystemMail, type Storage } from '../../storage/index.js';
import { QueueRunner } from '../../worker/queue-runner.js';
import { freePort, tempDir } from '../helpers/ferry.js';
import { parseNotice } from '../helpers/notice-mail.js';
import { hasPython } from '../helpers/queue-dsn.js';
import { Upstream } from '../helpers/upstream.js';

// storage/system-mail.ts: the one way Ferry writes mail of its own. Queued like a DSN and sent
// by the real queue runner to a real next hop: a null envelope sender, never bounced, kept while
// the next hop is down, one outbox file pair per mail.

const MIN = 60_000;
const QUEUE = { retrySchedule: [5 * MIN], maxAge: 5 * 24 * 60 * MIN, delayWarning: 4 * 60 * MIN, leaseTimeout: 10 * MIN, pollInterval: 1000, concurrency: 4 };
const logger = pino({ level: process.env.FERRY_TEST_LOG ?? 'silent' });
const dir = tempDir('ferry-sysmail-');
let storage: Storage;
let upstream: Upstream;
let relay: Relay;
let clock = Date.now();

const runner = (r: Relay) => new QueueRunner({ db: storage.db, blobs: storage.blobs, relay: r, logger, queue: QUEUE, hostname: 'ferry.test', now: () => clock, owner: 'sysmail' });
const ctx = () => ({ db: storage.db, blobs: storage.blobs, hostname: 'ferry.test' });

beforeAll(async () => {
  storage = await openStorage({ blobs: `file:${path.join(dir, 'blobs')}`, database: `sqlite:${path.join(dir, 'ferry.db')}` });
  upstream = await new Upstream().start();
  relay = createRelay({ url: upstream.url, hostname: 'ferry.test', timeoutMs: 5000, starttls: 'off', tlsVerify: false, poolSize: 0 });
});
afterAll(async () => {
  await relay?.close();
  await upstream?.stop();
  await storage?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  upstream.behaviour = {};
  upstream.messages.length = 0;
  clock = Date.now();
  await storage.db.deleteFrom('queue_entries').execute();
});

describe('queueSystemMail', () => {
  it.skipIf(!hasPython)('is delivered with a null envelope sender, readable by Python and mailparser, with text and HTML', async () => {
    const id = await queueSystemMail(ctx(), {
      to: 'alice@example.com',
      from: 'Ferry <ferry@ferry.test>',
      subject: 'Empfangsbestätigung: Quartalszahlen',
      text: 'Grüße aus Ferry.\nSecond line.',
      html: '<p>Grüße aus <b>Ferry</b>.</p>',
    }, clock);
    const entry = await getQueueEntry(storage.db, id);
    // No transfer named: an undeliverable notice must not retire the transfer it describes.
    expect(entry).toMatchObject({ kind: 'dsn', sender: '', transferId: null, recipients: [{ address: 'alice@example.com', state: 'pending' }] });

    expect(await runner(relay).runOnce()).toBe(1);
    expect(upstream.messages).toHaveLength(1);
    const m = upstream.messages[0]!;
    expect(m.from).toBe('');
    expect(m.to).toEqual(['alice@example.com']);
    const p = await parseNotice(m.raw);
    expect(p.subject).toBe('Empfangsbestätigung: Quartalszahlen');
    expect(p.autoSubmitted).toBe('auto-generated');
    expect(p.from).toContain('ferry@ferry.test');
    expect(p.to).toContain('alice@example.com');
    expect(p.messageId).toBe(`<${id.toLowerCase()}.ferry@ferry.test>`);
    expect(p.contentType).toBe('multipart/alternative');
    expect(p.text.trim()).toBe('Grüße aus Ferry.\nSecond line.');
    expect(p.html).toContain('<b>Ferry</b>');
    // Delivered: nothing left in the queue or the blob store's queue area.
    expect((await listQueue(storage.db)).total).toBe(0);
    expect(await storage.blobs.exists(entry!.blobKey)).toBe(false);
  });

  it('a subject with line breaks cannot add a header', async () => {
    await queueSystemMail(ctx(), { to: 'alice@example.com', from: 'ferry@ferry.test', subject: 'Report\r\nBcc: mallory@example.org', text: 'x' }, clock);
    await runner(relay).runOnce();
    const head = upstream.messages[0]!.raw.toString('latin1').split('\r\n\r\n')[0]!;
    expect(head).not.toMatch(/^Bcc:/im);
    expect(upstream.messages[0]!.to).toEqual(['alice@example.com']);
  });

  it('a permanent refusal drops it without a bounce (no loop)', async () => {
    upstream.behaviour = { rcpt: () => ({ code: 550, message: '5.1.1 No such user' }) };
    await queueSystemMail(ctx(), { to: 'gone@example.com', from: 'ferry@ferry.test', subject: 'Receipt', text: 'x' }, clock);
    const w = runner(relay);
    while ((await w.runOnce()) > 0);
    expect((await listQueue(storage.db)).total).toBe(0);
    expect(upstream.messages).toHaveLength(0);
  });

  it('stays queued while the next hop is down and is delivered once it is back', async () => {
    const port = await freePort();
    const down = createRelay({ url: `smtp://127.0.0.1:${port}`, hostname: 'ferry.test', timeoutMs: 3000, starttls: 'off', tlsVerify: false, poolSize: 0 });
    const later = new Upstream();
    try {
      const id = await queueSystemMail(ctx(), { to: 'alice@example.com', from: 'ferry@ferry.test', subject: 'Receipt', text: 'kept' }, clock);
      const w = runner(down);
      expect(await w.runOnce()).toBe(1);
      const e = await getQueueEntry(storage.db, id);
      expect(e).toMatchObject({ attempts: 1, recipients: [{ state: 'pending' }] });
      expect(e!.lastError).toBeTruthy();

      await later.start(port);
      clock = e!.nextAttemptAt;
      expect(await w.runOnce()).toBe(1);
      expect(later.messages).toHaveLength(1);
      expect(later.messages[0]!.raw.toString()).toContain('kept');
      expect(await getQueueEntry(storage.db, id)).toBeUndefined();
    } finally {
      await down.close();
      await later.stop().catch(() => undefined);
    }
  });

  it('with an outbox next hop each mail is its own <id>.eml and .json', async () => {
    const outbox = path.join(dir, 'outbox');
    const out = createRelay({ url: `outbox:${outbox}`, hostname: 'ferry.test', timeoutMs: 5000, starttls: 'off', tlsVerify: false });
    const a = await queueSystemMail(ctx(), { to: 'alice@example.com', from: 'ferry@ferry.test', subject: 'One', text: 'one' }, clock);
    const b = await queueSystemMail(ctx(), { to: 'bob@example.com', from: 'ferry@ferry.test', subject: 'Two', text: 'two' }, clock);
    expect(await runner(out).runOnce()).toBe(2);
    expect(fs.readdirSync(outbox).sort()).toEqual([`${a}.eml`, `${a}.json`, `${b}.eml`, `${b}.json`].sort());
    expect(JSON.parse(fs.readFileSync(path.join(outbox, `${a}.json`), 'utf8'))).toMatchObject({ from: '', to: ['alice@example.com'] });
    expect(fs.readFileSync(path.join(outbox, `${b}.eml`), 'utf8')).toContain('Subject: Two');
  });
});
