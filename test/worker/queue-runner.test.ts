import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { queueCommand } from '../../cli/queue.js';
import { loadConfig } from '../../config/index.js';
import { QueueRunner } from '../../worker/queue-runner.js';
import { backoff } from '../../storage/index.js';
import { createRelay, type Relay } from '../../gateway/relay.js';
import { sweepSpool } from '../../gateway/spool.js';
import {
  claimDue,
  deleteEntry,
  enqueue,
  getQueueEntry,
  listQueue,
  newQueueId,
  openStorage,
  queueBlobKey,
  queueStats,
  retryNow,
  type QueueRecipient,
  type Storage,
} from '../../storage/index.js';
import { tempDir } from '../helpers/ferry.js';
import { hasPython, parseDsn } from '../helpers/queue-dsn.js';
import { Upstream } from '../helpers/upstream.js';

// The queue runner against a real next-hop SMTP server, with a fake clock: the backoff
// schedule, the delay warning, giving up at queue.maxAge, the DSNs (read by mailparser and by
// Python's email package), leases, and the admin functions and CLI.

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const T0 = Math.floor(Date.now() / 60_000) * 60_000;
const QUEUE = { retrySchedule: [5 * MIN, 10 * MIN, 20 * MIN, 40 * MIN, HOUR, 2 * HOUR, 4 * HOUR], maxAge: 5 * DAY, delayWarning: 4 * HOUR, leaseTimeout: 10 * MIN, pollInterval: 1000, concurrency: 4 };

const dir = tempDir('ferry-queue-');
let storage: Storage;
let upstream: Upstream;
let relay: Relay;
let clock = T0;
const logger = pino({ level: process.env.FERRY_TEST_LOG ?? 'silent' });

function runner(owner = 'w1', queue = QUEUE) {
  return new QueueRunner({ db: storage.db, blobs: storage.blobs, relay, logger, queue, hostname: 'ferry.test', now: () => clock, owner });
}

const ORIGINAL = (subject: string) =>
  Buffer.from(
    [
      'From: Alice <alice@example.com>',
      'To: bob@example.net',
      `Subject: ${subject}`,
      'Message-ID: <orig-1@example.com>',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary=B',
      '',
      '--B',
      'Content-Type: text/plain',
      '',
      'The body, which a DSN must not carry.',
      '--B--',
      '',
    ].join('\r\n'),
  );

async function queueMessage(opts: { sender?: string; to: (string | QueueRecipient)[]; subject?: string; createdAt?: number; envid?: string; nextAttemptAt?: number }): Promise<string> {
  const id = newQueueId();
  const raw = ORIGINAL(opts.subject ?? 'Quarterly figures');
  await storage.blobs.put(queueBlobKey(id), Readable.from([raw]));
  const createdAt = opts.createdAt ?? clock;
  await enqueue(storage.db, {
    id,
    kind: 'message',
    transferId: null,
    sender: opts.sender ?? 'alice@example.com',
    recipients: opts.to.map((t) => (typeof t === 'string' ? { address: t, state: 'pending' as const } : t)),
    dsnEnvid: opts.envid ?? null,
    blobKey: queueBlobKey(id),
    size: raw.length,
    createdAt,
    nextAttemptAt: opts.nextAttemptAt ?? createdAt + backoff(QUEUE.retrySchedule, 1),
    attempts: 1,
  });
  return id;
}

beforeAll(async () => {
  storage = await openStorage({ blobs: `file:${path.join(dir, 'blobs')}`, database: `sqlite:${path.join(dir, 'ferry.db')}` });
  upstream = await new Upstream().start();
  relay = createRelay({ url: upstream.url, hostname: 'ferry.test', timeoutMs: 5000, starttls: 'off', tlsVerify: false, poolSize: 2 });
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
  clock = T0;
  await storage.db.deleteFrom('queue_entries').execute();
});

describe('backoff, delay warning and max age (fake clock)', () => {
  it.skipIf(!hasPython)('retries on the schedule, warns once after 4 h, gives up at 5 days with a DSN naming the recipient', async () => {
    upstream.behaviour = { rcpt: (a) => (a === 'bob@example.net' ? { code: 451, message: 'Mailbox busy, try later' } : undefined) };
    const id = await queueMessage({ to: ['bob@example.net'], envid: 'ENV-42' });
    const w = runner();

    // Not due before the first wait (5 min) is over.
    clock = T0 + 4 * MIN;
    expect(await w.runOnce()).toBe(0);

    const attemptsAt: number[] = [];
    const dsnAt: { at: number; action: string }[] = [];
    for (let guard = 0; guard < 100; guard++) {
      const e = await getQueueEntry(storage.db, id);
      if (!e) break;
      clock = e.nextAttemptAt;
      const before = upstream.messages.length;
      await w.runOnce();
      attemptsAt.push(clock - T0);
      // A notice queued in this pass is due now; the next pass sends it.
      while ((await w.runOnce()) > 0);
      for (const m of upstream.messages.slice(before)) dsnAt.push({ at: clock - T0, action: /Action: (\w+)/.exec(m.raw.toString())![1]! });
    }
    // 5m, +10m, +20m, +40m, +1h, +2h, +4h, then every 4 h, and a last attempt at exactly 5 days.
    const waits = attemptsAt.map((t, i) => t - (i ? attemptsAt[i - 1]! : 0));
    expect(waits.slice(0, 8)).toEqual([5 * MIN, 10 * MIN, 20 * MIN, 40 * MIN, HOUR, 2 * HOUR, 4 * HOUR, 4 * HOUR]);
    expect(attemptsAt.at(-1)).toBe(5 * DAY);
    expect(waits.slice(6, -1).every((w) => w === 4 * HOUR)).toBe(true);
    // One delay warning (at the first attempt 4 h or more after arrival), one failure notice at the end.
    const firstAfter4h = attemptsAt.find((t) => t >= 4 * HOUR)!;
    expect(dsnAt).toEqual([
      { at: firstAfter4h, action: 'delayed' },
      { at: 5 * DAY, action: 'failed' },
    ]);
    expect(await getQueueEntry(storage.db, id)).toBeUndefined();
    expect(await storage.blobs.exists(queueBlobKey(id))).toBe(false);
    expect((await queueStats(storage.db, clock)).size).toBe(0);

    const [delay, failure] = upstream.messages;
    expect([delay!.from, delay!.to, failure!.from, failure!.to]).toEqual(['', ['alice@example.com'], '', ['alice@example.com']]);
    const d = await parseDsn(delay!.raw);
    expect(d.recipients).toEqual([{ finalRecipient: 'rfc822; bob@example.net', action: 'delayed', status: '4.3.0', diagnostic: 'smtp; 451 4.3.0 Mailbox busy, try later' }]);
    expect(d.subject).toBe('Delayed Mail (still being retried)');

    const f = await parseDsn(failure!.raw);
    expect([f.contentType, f.reportType, f.mailparserReportType]).toEqual(['multipart/report', 'delivery-status', 'delivery-status']);
    expect(f.parts).toEqual(['text/plain', 'message/delivery-status', 'text/rfc822-headers']);
    expect(f.recipients).toEqual([{ finalRecipient: 'rfc822; bob@example.net', action: 'failed', status: '4.3.0', diagnostic: 'smtp; 451 4.3.0 Mailbox busy, try later' }]);
    expect(f.perMessage).toMatchObject({ 'Reporting-MTA': 'dns; ferry.test', 'Original-Envelope-Id': 'ENV-42' });
    expect(f.mailparserText).toContain('could not be delivered to the recipient below because it could not be delivered within 5 days');
    expect(f.mailparserText).toMatch(/Final-Recipient: rfc822; bob@example\.net\nAction: failed/);
    expect(f.returnedHeaders).toMatch(/^Subject: Quarterly figures\r?$/m);
    expect(f.returnedHeaders).not.toContain('must not carry');
    expect(failure!.raw.toString()).not.toContain('must not carry');
  });

  it.skipIf(!hasPython)('a next hop that is unreachable (no reply at all) also gives up at max age, with 4.4.7 "delivery time expired"', async () => {
    const down = createRelay({ url: 'smtp://127.0.0.1:1', hostname: 'ferry.test', timeoutMs: 2000, starttls: 'off', tlsVerify: false });
    const w = new QueueRunner({ db: storage.db, blobs: storage.blobs, relay: down, logger, queue: { ...QUEUE, delayWarning: 0 }, hostname: 'ferry.test', now: () => clock, owner: 'w-down' });
    const id = await queueMessage({ to: ['bob@example.net', 'carol@example.org'] });
    clock = T0 + 5 * DAY;
    await retryNow(storage.db, id, clock);
    expect(await w.runOnce()).toBe(1);
    await down.close();
    // The failure DSN goes through the working relay.
    while ((await runner().runOnce()) > 0);
    expect(upstream.messages).toHaveLength(1);
    const f = await parseDsn(upstream.messages[0]!.raw);
    expect(f.recipients.map((r) => [r.finalRecipient, r.action, r.status])).toEqual([
      ['rfc822; bob@example.net', 'failed', '4.4.7'],
      ['rfc822; carol@example.org', 'failed', '4.4.7'],
    ]);
  });

  it('a failed DSN (null sender) is dropped, never bounced', async () => {
    upstream.behaviour = { rcpt: () => ({ code: 550, message: 'No such user' }) };
    const id = await queueMessage({ sender: '', to: ['bob@example.net'] });
    clock = T0 + HOUR;
    expect(await runner().runOnce()).toBe(1);
    expect(await runner().runOnce()).toBe(0);
    expect(await getQueueEntry(storage.db, id)).toBeUndefined();
    expect(upstream.messages).toHaveLength(0);
  });
});

describe('leases', () => {
  it('an entry claimed by a worker that died is taken over by another after the lease runs out, and delivered once', async () => {
    const id = await queueMessage({ to: ['bob@example.net'] });
    clock = T0 + HOUR;
    // Worker "dead" claims it and never reports back.
    expect((await claimDue(storage.db, { owner: 'dead', now: clock, leaseMs: 10 * MIN, limit: 10 })).map((e) => e.id)).toEqual([id]);
    const w = runner('alive');
    clock += 9 * MIN;
    expect(await w.runOnce()).toBe(0); // still leased
    clock += 2 * MIN;
    expect(await w.runOnce()).toBe(1); // lease ran out
    expect(upstream.messages.map((m) => m.to)).toEqual([['bob@example.net']]);
    expect(await getQueueEntry(storage.db, id)).toBeUndefined();
  });
});

describe('admin: storage functions and `ferry queue`', () => {
  it.skipIf(!hasPython)('lists, retries now, deletes silently and with a DSN; size and oldest age for metrics', async () => {
    upstream.behaviour = { rcpt: (a) => (a === 'bob@example.net' ? { code: 451, message: 'later' } : undefined) };
    const a = await queueMessage({ to: ['bob@example.net'], createdAt: T0 - 2 * HOUR, nextAttemptAt: T0 + 5 * MIN });
    const b = await queueMessage({ to: ['bob@example.net', 'carol@example.org'], createdAt: T0 - HOUR, nextAttemptAt: T0 + 5 * MIN });
    const c = await queueMessage({ to: ['bob@example.net'], subject: 'Will be returned' });
    expect(await queueStats(storage.db, T0)).toEqual({ size: 3, oldestAgeMs: 2 * HOUR });
    expect((await listQueue(storage.db)).entries.map((e) => e.id)).toEqual([a, b, c]);

    // retryNow makes an entry due at once.
    expect(await runner().runOnce()).toBe(0);
    expect(await retryNow(storage.db, b, clock)).toBe(1);
    expect(await runner().runOnce()).toBe(1);
    expect(upstream.messages.map((m) => m.to)).toEqual([['carol@example.org']]); // bob deferred
    expect(await retryNow(storage.db, 'NOPE', clock)).toBe(0);

    // Silent delete: the record and the stored message go; nobody is told.
    expect(await deleteEntry(storage.db, storage.blobs, a)).toBe('deleted');
    expect(await storage.blobs.exists(queueBlobKey(a))).toBe(false);
    expect(await deleteEntry(storage.db, storage.blobs, a)).toBe('not-found');
    // A worker holding the entry right now: not deleted under its feet.
    await storage.db.updateTable('queue_entries').set({ lease_owner: 'busy', lease_until: clock + 10 * MIN }).where('id', '=', b).execute();
    expect(await deleteEntry(storage.db, storage.blobs, b, { now: clock })).toBe('busy');

    // Delete with a DSN: the next worker pass returns it to the sender.
    expect(await deleteEntry(storage.db, storage.blobs, c, { bounce: true, now: clock })).toBe('bounce-scheduled');
    upstream.messages.length = 0;
    while ((await runner().runOnce()) > 0);
    expect(await getQueueEntry(storage.db, c)).toBeUndefined();
    expect(upstream.messages).toHaveLength(1);
    const f = await parseDsn(upstream.messages[0]!.raw);
    expect(f.recipients.map((r) => [r.finalRecipient, r.action])).toEqual([['rfc822; bob@example.net', 'failed']]);
    expect(f.mailparserText).toContain('removed from the queue by an administrator');
    expect(f.returnedHeaders).toMatch(/^Subject: Will be returned\r?$/m);

    // The CLI, against the same database.
    const config = loadConfig({ env: {}, overrides: { dataDir: dir, storage: { blobs: `file:${path.join(dir, 'blobs')}`, database: `sqlite:${path.join(dir, 'ferry.db')}` } } });
    const run = async (...args: string[]) => {
      const out: string[] = [];
      const err: string[] = [];
      const code = await queueCommand(config, args, (s) => out.push(s), (s) => err.push(s));
      return { code, out: out.join('\n'), err: err.join('\n') };
    };
    const list = await run('list');
    expect(list.code).toBe(0);
    expect(list.out.split('\n')[0]).toMatch(/^QUEUE ID\s+AGE\s+SIZE\s+TRIES\s+NEXT\s+SENDER\s+PENDING RECIPIENTS\s+LAST ERROR$/);
    expect(list.out).toContain(b);
    expect(list.out).toMatch(/1 entry$/);
    const json = JSON.parse((await run('list', '--json')).out);
    expect(json.total).toBe(1);
    expect(json.entries[0]).toMatchObject({ id: b, sender: 'alice@example.com', attempts: 2, beingDelivered: true });
    expect(json.entries[0].recipients.map((r: QueueRecipient) => [r.address, r.state])).toEqual([
      ['bob@example.net', 'pending'],
      ['carol@example.org', 'delivered'],
    ]);
    expect(await run('retry', '--all')).toMatchObject({ code: 0, out: expect.stringMatching(/^1 entry due now/) });
    expect(await run('delete', 'NOPE')).toMatchObject({ code: 1, err: expect.stringMatching(/no queue entry NOPE/) });
    expect(await run('frobnicate')).toMatchObject({ code: 2, err: expect.stringContaining('Usage: ferry queue') });
  });
});

describe('spool upkeep', () => {
  it('working files a killed process left are removed after a day without writes; current ones stay', async () => {
    const spool = path.join(dir, 'spool');
    fs.mkdirSync(spool, { recursive: true });
    fs.writeFileSync(path.join(spool, 'OLD.a'), 'x');
    fs.writeFileSync(path.join(spool, 'NEW.a'), 'y');
    const old = (Date.now() - 2 * DAY) / 1000;
    fs.utimesSync(path.join(spool, 'OLD.a'), old, old);
    expect(await sweepSpool(spool, DAY)).toBe(1);
    expect(fs.readdirSync(spool)).toEqual(['NEW.a']);
    expect(await sweepSpool(path.join(dir, 'no-such-dir'), DAY)).toBe(0);
  });
});
