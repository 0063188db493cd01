import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/index.js';
import type { Config } from '../../config/schema.js';
import { createRelay, type Relay } from '../../gateway/relay.js';
import { queueReceipt, type ReceiptInput } from '../../gateway/senders/receipt.js';
import { getQueueEntry, listQueue, openStorage, type Storage } from '../../storage/index.js';
import { QueueRunner } from '../../worker/queue-runner.js';
import { freePort, startFerry, tempDir, type TestFerry } from '../helpers/ferry.js';
import { pseudoRandom, sha256 } from '../helpers/mail.js';
import { parseNotice, type ParsedNotice } from '../helpers/notice-mail.js';
import { hasPython } from '../helpers/queue-dsn.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { Upstream } from '../helpers/upstream.js';

// The sender's receipt (gateway/senders/receipt.ts): queued through storage/system-mail.ts,
// delivered by the real queue runner to a real SMTP sink, read with Python's email package and
// mailparser. Then end to end: a message with a large attachment through a whole Ferry, and the
// receipt the sender gets for it.

const MIN = 60_000;
const QUEUE = { retrySchedule: [5 * MIN], maxAge: 5 * 24 * 60 * MIN, delayWarning: 0, leaseTimeout: 10 * MIN, pollInterval: 1000, concurrency: 4 };
const logger = pino({ level: process.env.FERRY_TEST_LOG ?? 'silent' });
const dir = tempDir('ferry-receipt-');
let storage: Storage;
let upstream: Upstream;
let relay: Relay;
let clock = Date.now();

const configWith = (senders: Record<string, unknown> = {}): Config =>
  loadConfig({ env: {}, overrides: { dataDir: dir, smtp: { hostname: 'ferry.example.org' }, web: { publicUrl: 'https://files.example.org' }, senders } });

const runner = (r: Relay = relay) => new QueueRunner({ db: storage.db, blobs: storage.blobs, relay: r, logger, queue: QUEUE, hostname: 'ferry.example.org', now: () => clock, owner: 'receipt' });

const MANAGE = 'https://files.example.org/m/AbCdEfGhIjKlMnOpQrStUvWxYz0';
const INPUT: ReceiptInput = {
  transferId: 'tr0123456789',
  queueId: 'ABCDEF0123456789',
  sender: 'alice@example.com',
  subject: 'Quartalszahlen <Q4> & Anhänge',
  files: [
    { name: 'report.pdf', size: 12_345_678, sha256: sha256('report') },
    { name: 'Präsentation "final".pptx', size: 987, sha256: sha256('slides') },
  ],
  expiresAt: Date.UTC(2026, 11, 16, 9, 45),
  recipients: [
    { address: 'bob@example.net', perRecipientLink: true },
    { address: 'carol@example.org', perRecipientLink: true },
  ],
  manageUrl: MANAGE,
};

beforeAll(async () => {
  storage = await openStorage({ blobs: `file:${path.join(dir, 'blobs')}`, database: `sqlite:${path.join(dir, 'ferry.db')}` });
  upstream = await new Upstream().start();
  relay = createRelay({ url: upstream.url, hostname: 'ferry.example.org', timeoutMs: 5000, starttls: 'off', tlsVerify: false, poolSize: 0 });
});
afterAll(async () => {
  await relay?.close();
  await upstream?.stop();
  await storage?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  upstream.messages.length = 0;
  clock = Date.now();
  await storage.db.deleteFrom('queue_entries').execute();
});

async function receive(config: Config, input: ReceiptInput & { receiptsByRule: boolean | null }): Promise<{ id: string | undefined; parsed?: ParsedNotice; to?: string[]; from?: string }> {
  const id = await queueReceipt({ config, db: storage.db, blobs: storage.blobs, logger }, input);
  clock = Date.now();
  const w = runner();
  while ((await w.runOnce()) > 0);
  const m = upstream.messages.splice(0);
  if (!id) {
    expect(m).toHaveLength(0);
    return { id };
  }
  expect(m).toHaveLength(1);
  return { id, parsed: await parseNotice(m[0]!.raw), to: m[0]!.to, from: m[0]!.from };
}

describe('queueReceipt', () => {
  it.skipIf(!hasPython)('the sender gets the files, sizes, SHA-256, expiry, recipients and the management link, from senders.from, null envelope sender', async () => {
    const r = await receive(configWith(), { ...INPUT, receiptsByRule: null });
    expect(r.id).toBeTruthy();
    expect(r.from).toBe('');
    expect(r.to).toEqual(['alice@example.com']);
    const p = r.parsed!;
    expect(p.from).toBe('ferry@ferry.example.org');
    expect(p.autoSubmitted).toBe('auto-generated');
    expect(p.subject).toContain('"Quartalszahlen <Q4> & Anhänge"');
    expect(p.subject).toContain('2 files available until 2026-12-16 09:45 UTC');
    for (const body of [p.text, p.html]) {
      expect(body).toContain('report.pdf');
      expect(body).toContain(sha256('report'));
      expect(body).toContain(sha256('slides'));
      expect(body).toContain('12.3 MB (12,345,678 bytes)');
      expect(body).toContain('987 bytes');
      expect(body).toContain('2026-12-16 09:45 UTC');
      expect(body).toContain('bob@example.net');
      expect(body).toContain('carol@example.org');
      expect(body).toContain(MANAGE);
      expect(body).toContain('ABCDEF0123456789');
    }
    expect(p.text).toContain('* bob@example.net (own link)');
    expect(p.text).toContain('Präsentation "final".pptx');
    expect(p.text).toContain('Do not forward this mail.');
    // The HTML escapes what came from the message: no markup from a subject or file name.
    expect(p.html).not.toContain('<Q4>');
    expect(p.html).toContain('Pr&#xE4;sentation &quot;final&quot;.pptx');
    expect(p.html).toContain(`href="${MANAGE}"`);
    // No password, no password paragraph.
    expect(p.text).not.toMatch(/password/i);
  });

  it.skipIf(!hasPython)('a password is in the receipt with the sentence to keep it to oneself; a shared link is said so', async () => {
    const r = await receive(configWith({ from: 'Ferry Notices <notices@example.org>' }), {
      ...INPUT,
      subject: null,
      recipients: [{ address: 'bob@example.net', perRecipientLink: false }],
      password: 'tulip-8QZ4-window-7KXP',
      receiptsByRule: null,
    });
    const p = r.parsed!;
    expect(p.from).toBe('Ferry Notices <notices@example.org>');
    expect(p.subject).toContain('your message');
    expect(p.text).toContain('Password: tulip-8QZ4-window-7KXP');
    expect(p.text).toContain('Keep it to yourself and pass it on another way, for example by phone');
    expect(p.html).toContain('tulip-8QZ4-window-7KXP');
    expect(p.text).toContain('* bob@example.net (shared link)');
  });

  it('never for a null sender', async () => {
    const r = await receive(configWith(), { ...INPUT, sender: '', receiptsByRule: true });
    expect(r.id).toBeUndefined();
    expect((await listQueue(storage.db)).total).toBe(0);
  });

  it('senders.receipts off turns it off; a retention rule overrides the setting either way', async () => {
    expect((await receive(configWith({ receipts: 'off' }), { ...INPUT, receiptsByRule: null })).id).toBeUndefined();
    expect((await receive(configWith({ receipts: 'off' }), { ...INPUT, receiptsByRule: true })).id).toBeTruthy();
    expect((await receive(configWith({ receipts: 'on' }), { ...INPUT, receiptsByRule: false })).id).toBeUndefined();
    // A password is in nothing but the receipt: it goes whatever the settings say.
    expect((await receive(configWith({ receipts: 'off' }), { ...INPUT, receiptsByRule: false, password: 'ABCDE-FGHJK-MNPQR-STVWX' })).id).toBeTruthy();
    // YAML 1.1 readers turn on/off into booleans: both spellings mean the same.
    expect(configWith({ receipts: false }).senders.receipts).toBe('off');
    expect(configWith().senders).toMatchObject({ receipts: 'on', from: 'ferry@ferry.example.org', notifyOnDownload: 'off', digestAt: '08:00' });
  });

  it('the next hop is down when the receipt is due: it stays queued and is delivered once the hop is back', async () => {
    const port = await freePort();
    const down = createRelay({ url: `smtp://127.0.0.1:${port}`, hostname: 'ferry.example.org', timeoutMs: 3000, starttls: 'off', tlsVerify: false, poolSize: 0 });
    const later = new Upstream();
    try {
      const id = await queueReceipt({ config: configWith(), db: storage.db, blobs: storage.blobs, logger }, { ...INPUT, receiptsByRule: null });
      clock = Date.now();
      const w = runner(down);
      expect(await w.runOnce()).toBe(1);
      const e = await getQueueEntry(storage.db, id!);
      expect(e).toMatchObject({ sender: '', attempts: 1, recipients: [{ address: 'alice@example.com', state: 'pending' }] });
      await later.start(port);
      clock = e!.nextAttemptAt;
      expect(await w.runOnce()).toBe(1);
      expect(later.messages).toHaveLength(1);
      expect(later.messages[0]!.raw.toString()).toContain('/m/AbCdEfGhIjKlMnOpQrStUvWxYz0');
      expect(await getQueueEntry(storage.db, id!)).toBeUndefined();
    } finally {
      await down.close();
      await later.stop().catch(() => undefined);
    }
  });
});

describe('end to end through a whole Ferry', () => {
  let ferry: TestFerry;
  let sink: Upstream;
  beforeAll(async () => {
    sink = await new Upstream().start();
    ferry = await startFerry({ relay: { url: sink.url }, offload: { minAttachmentSize: 100_000 }, queue: { pollInterval: '200ms' }, senders: { receipts: 'on' } });
  });
  afterAll(async () => {
    await ferry?.stopAndClean();
    await sink?.stop();
  });

  it.skipIf(!hasPython)('a message with a large attachment to two recipients: the sender gets one receipt naming both, with the file hash and a working /m/ link', async () => {
    const data = pseudoRandom(300_000, 'receipt-e2e');
    const raw =
      'From: Alice <alice@example.com>\r\nTo: bob@example.net, carol@example.org\r\nSubject: The figures\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n' +
      '--b1\r\nContent-Type: text/plain\r\n\r\nHello.\r\n' +
      `--b1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="figures.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n${data.toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n--b1--\r\n`;
    const c = await RawSmtp.connect(ferry.smtpPort!);
    try {
      await c.cmd('EHLO client.test');
      await c.cmd('MAIL FROM:<alice@example.com>');
      await c.cmd('RCPT TO:<bob@example.net>');
      await c.cmd('RCPT TO:<carol@example.org>');
      expect(await c.data(raw)).toMatch(/^250 /);
    } finally {
      c.close();
    }
    const deadline = Date.now() + 20_000;
    while (!sink.messages.some((m) => m.to.includes('alice@example.com')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const receipts = sink.messages.filter((m) => m.to.includes('alice@example.com'));
    expect(receipts).toHaveLength(1);
    expect(receipts[0]!.from).toBe('');
    const p = await parseNotice(receipts[0]!.raw);
    expect(p.subject).toContain('"The figures"');
    expect(p.text).toContain('figures.bin');
    expect(p.text).toContain(sha256(data));
    expect(p.text).toContain('bob@example.net');
    expect(p.text).toContain('carol@example.org');
    // Neither recipient's copy has the management link.
    const manage = new RegExp(`${ferry.publicUrl.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/m/[A-Za-z0-9_-]+`).exec(p.text)?.[0];
    expect(manage).toBeTruthy();
    for (const m of sink.messages.filter((x) => !x.to.includes('alice@example.com'))) expect(m.raw.toString()).not.toContain('/m/');
    const page = await fetch(manage!);
    expect(page.status).toBe(200);
  });
});

describe('with an outbox next hop', () => {
  let ferry: TestFerry;
  beforeAll(async () => {
    ferry = await startFerry({ offload: { minAttachmentSize: 100_000 }, queue: { pollInterval: '200ms' }, senders: { receipts: 'on' } });
  });
  afterAll(async () => {
    await ferry?.stopAndClean();
  });

  it('the receipt is its own <id>.eml and .json beside the recipients\' copies', async () => {
    const data = pseudoRandom(200_000, 'receipt-outbox');
    const raw =
      'From: alice@example.com\r\nTo: bob@example.net\r\nSubject: Outbox\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n' +
      '--b1\r\nContent-Type: text/plain\r\n\r\nHello.\r\n' +
      `--b1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="big.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n${data.toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n--b1--\r\n`;
    const c = await RawSmtp.connect(ferry.smtpPort!);
    try {
      await c.cmd('EHLO client.test');
      await c.cmd('MAIL FROM:<alice@example.com>');
      await c.cmd('RCPT TO:<bob@example.net>');
      expect(await c.data(raw)).toMatch(/^250 /);
    } finally {
      c.close();
    }
    const envelopes = () =>
      (fs.existsSync(ferry.outbox) ? fs.readdirSync(ferry.outbox) : [])
        .filter((f) => f.endsWith('.json'))
        .map((f) => ({ id: f.slice(0, -5), env: JSON.parse(fs.readFileSync(path.join(ferry.outbox, f), 'utf8')) as { from: string; to: string[] } }));
    const deadline = Date.now() + 20_000;
    while (envelopes().length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const all = envelopes();
    const receipt = all.filter((e) => e.env.to.includes('alice@example.com'));
    const copies = all.filter((e) => e.env.to.includes('bob@example.net'));
    expect(receipt).toHaveLength(1);
    expect(copies).toHaveLength(1);
    expect(receipt[0]!.env).toMatchObject({ from: '', to: ['alice@example.com'] });
    expect(receipt[0]!.id).not.toBe(copies[0]!.id);
    const eml = fs.readFileSync(path.join(ferry.outbox, `${receipt[0]!.id}.eml`), 'utf8');
    expect(eml).toContain('Auto-Submitted: auto-generated');
  });
});
