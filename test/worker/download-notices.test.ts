import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createRelay, type Relay } from '../../gateway/relay.js';
import {
  addFile,
  createTransfer,
  FsBlobStore,
  hashToken,
  markLive,
  newBlobKey,
  newId,
  newLinkId,
  newQueueId,
  newToken,
  openDatabase,
  recordDownload,
  type BlobStore,
  type Db,
} from '../../storage/index.js';
import { buildWebApp } from '../../web/app.js';
import { lastDigestTime, noticesOnce, type DownloadNoticeContext, type NotifyMode } from '../../worker/download-notices.js';
import { QueueRunner } from '../../worker/queue-runner.js';
import { parseNotice } from '../helpers/notice-mail.js';
import { hasPython } from '../helpers/queue-dsn.js';
import { Upstream } from '../helpers/upstream.js';
import { createDatabase, dropDatabase, PG_MISSING, pgUrl, warnSkip } from '../storage/backends.js';
import { downloads, httpRequest, makeEnv, PUBLIC_URL, sha256, waitFor, type Env } from '../web/helpers.js';

// Download notices to senders (worker/download-notices.ts). Downloads are made with real HTTP
// requests against the web app (browser, scanner User-Agent, HEAD, partial Range), the notices
// are delivered by the real queue runner to a real SMTP sink and read with Python's email
// package and mailparser. Two workers on one database send each notice once (interleaved passes on
// SQLite, and two connection pools on PostgreSQL when FERRY_TEST_POSTGRES_URL is set).

const BROWSER = 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0';
const SCANNER = 'Mozilla/5.0 (compatible; Mimecast URL Protect)';
const HOUR = 3_600_000;
const QUEUE = { retrySchedule: [60_000], maxAge: 5 * 24 * HOUR, delayWarning: 0, leaseTimeout: 600_000, pollInterval: 1000, concurrency: 4 };
const logger = pino({ level: process.env.FERRY_TEST_LOG ?? 'silent' });

const FILES = [
  { name: 'plan.pdf', data: Buffer.from('%PDF-1.7 the whole plan, long enough for a partial range') },
  { name: 'notes.txt', data: Buffer.from('the notes') },
];

let env: Env;
let app: FastifyInstance;
let base: string;
let upstream: Upstream;
let relay: Relay;
let clock = Date.now();

beforeAll(async () => {
  env = await makeEnv();
  app = await buildWebApp({ publicUrl: PUBLIC_URL, db: env.db, blobs: env.blobs, rateLimit: false });
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  upstream = await new Upstream().start();
  relay = createRelay({ url: upstream.url, hostname: 'ferry.test', timeoutMs: 5000, starttls: 'off', tlsVerify: false, poolSize: 0 });
});
afterAll(async () => {
  await relay?.close();
  await upstream?.stop();
  await app?.close();
  await env?.close();
});
beforeEach(async () => {
  upstream.messages.length = 0;
  clock = Date.now();
  // Every test starts with nothing left to report from the one before.
  await env.db.updateTable('downloads').set({ notified: 1 }).execute();
  await env.db.deleteFrom('queue_entries').execute();
});

const ctx = (mode: NotifyMode, db: Db = env.db, digestAt = '08:00'): DownloadNoticeContext => ({ db, blobs: env.blobs, logger, hostname: 'ferry.test', from: 'Ferry <ferry@ferry.test>', mode, digestAt });

/** The queue runner (clock as the notices were queued) delivers everything queued; returns what the sink got. */
async function deliverAll() {
  const runner = new QueueRunner({ db: env.db, blobs: env.blobs, relay, logger, queue: QUEUE, hostname: 'ferry.test', now: () => clock });
  while ((await runner.runOnce()) > 0);
  const got = upstream.messages.splice(0);
  expect(got.every((m) => m.from === '')).toBe(true);
  return got;
}

async function transfer(opts: { sender?: string; subject?: string; recipients: string[]; blobs?: BlobStore; db?: Db }) {
  const db = opts.db ?? env.db;
  const blobs = opts.blobs ?? env.blobs;
  const id = newId();
  const links = opts.recipients.map((recipient) => ({ id: newLinkId(), recipient, token: newToken() }));
  await createTransfer(db, {
    id,
    tokenHash: hashToken(newToken()),
    queueId: newQueueId(),
    sender: opts.sender ?? 'alice@example.org',
    recipients: opts.recipients,
    subject: opts.subject ?? 'Plans',
    messageId: null,
    createdAt: Date.now() - 60_000,
    expiresAt: Date.now() + 7 * 24 * HOUR,
    links: links.map((l) => ({ id: l.id, recipient: l.recipient, tokenHash: hashToken(l.token) })),
  });
  for (const [i, f] of FILES.entries()) {
    const blobKey = newBlobKey(id, i + 1);
    await blobs.put(blobKey, Readable.from([f.data]));
    await addFile(db, { transferId: id, idx: i + 1, name: f.name, contentType: 'application/octet-stream', size: f.data.length, sha256: sha256(f.data), blobKey });
  }
  await markLive(db, id);
  const token = (r: string) => links.find((l) => l.recipient === r)!.token;
  const linkId = (r: string) => links.find((l) => l.recipient === r)!.id;
  return { id, token, linkId };
}

/** One request through a link, and the wait until the web app has logged it. */
async function fetchAndLog(transferId: string, path: string, opts: { method?: string; ua?: string; range?: string; status?: number } = {}) {
  const before = (await downloads(env.db, transferId)).length;
  const headers: Record<string, string> = { 'user-agent': opts.ua ?? BROWSER, ...(opts.range ? { range: opts.range } : {}) };
  const r = await httpRequest(`${base}${path}`, { method: opts.method ?? 'GET', headers });
  expect(r.status).toBe(opts.status ?? (opts.range ? 206 : 200));
  await waitFor(async () => ((await downloads(env.db, transferId)).length > before ? true : undefined), `the download log row for ${path}`);
}

describe('notifyOnDownload: first', () => {
  it.skipIf(!hasPython)('one notice per recipient at the first complete download; scanners, HEAD and partial ranges never trigger one', async () => {
    const t = await transfer({ recipients: ['bob@example.net', 'carol@example.org'], subject: 'Quartalszahlen Q4 – final' });
    // A link scanner fetching the whole file, a HEAD, a partial range: none of them is a person downloading.
    await fetchAndLog(t.id, `/t/${t.token('bob@example.net')}/1/plan.pdf`, { ua: SCANNER });
    await fetchAndLog(t.id, `/t/${t.token('carol@example.org')}/1/plan.pdf`, { method: 'HEAD' });
    await fetchAndLog(t.id, `/t/${t.token('carol@example.org')}/1/plan.pdf`, { range: 'bytes=0-9' });
    const rows = await downloads(env.db, t.id);
    // The scanner's fetch is a complete copy as far as the limit goes; only the User-Agent tells it apart.
    expect(rows.some((r) => r.scanner === 1)).toBe(true);
    expect(await noticesOnce(ctx('first'), clock)).toMatchObject({ mails: 0 });
    expect(await deliverAll()).toHaveLength(0);

    // Bob downloads plan.pdf: the sender hears of it once.
    await fetchAndLog(t.id, `/t/${t.token('bob@example.net')}/1/plan.pdf`);
    expect(await noticesOnce(ctx('first'), clock)).toMatchObject({ mails: 1 });
    const [first] = await deliverAll();
    expect(first!.to).toEqual(['alice@example.org']);
    const p = await parseNotice(first!.raw);
    expect(p.autoSubmitted).toBe('auto-generated');
    expect(p.from).toContain('ferry@ferry.test');
    expect(p.subject).toContain('bob@example.net');
    expect(p.subject).toContain('Quartalszahlen Q4 – final');
    expect(p.text).toContain('bob@example.net downloaded files of your message "Quartalszahlen Q4 – final"');
    expect(p.text).toMatch(/\* plan\.pdf, \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
    expect(p.text).not.toContain('carol@example.org');
    expect(p.html).toContain('plan.pdf');

    // More downloads through Bob's link (another file, the zip): no more mail about Bob.
    await fetchAndLog(t.id, `/t/${t.token('bob@example.net')}/2/notes.txt`);
    await fetchAndLog(t.id, `/t/${t.token('bob@example.net')}/zip`);
    expect(await noticesOnce(ctx('first'), clock)).toMatchObject({ mails: 0 });
    expect(await deliverAll()).toHaveLength(0);

    // Carol's first complete download (after her partial range and HEAD earlier) is her own notice.
    await fetchAndLog(t.id, `/t/${t.token('carol@example.org')}/zip`);
    expect(await noticesOnce(ctx('first'), clock)).toMatchObject({ mails: 1 });
    const [second] = await deliverAll();
    const q = await parseNotice(second!.raw);
    expect(q.subject).toContain('carol@example.org');
    expect(q.text).toContain('* all files (zip)');
    expect(q.text).not.toContain('bob@example.net');
  });

  it('a transfer with a null sender never leads to a notice', async () => {
    const t = await transfer({ sender: '', recipients: ['bob@example.net'] });
    await fetchAndLog(t.id, `/t/${t.token('bob@example.net')}/1/plan.pdf`);
    expect(await noticesOnce(ctx('first'), clock)).toMatchObject({ mails: 0 });
    expect((await downloads(env.db, t.id)).every((r) => r.notified === 1)).toBe(true);
  });

  it('off: downloads are marked covered, so turning notices on later never mails about them', async () => {
    const t = await transfer({ recipients: ['bob@example.net'] });
    await fetchAndLog(t.id, `/t/${t.token('bob@example.net')}/1/plan.pdf`);
    expect(await noticesOnce(ctx('off'), clock)).toMatchObject({ mails: 0 });
    expect(await noticesOnce(ctx('first'), clock)).toMatchObject({ mails: 0 });
    expect(await deliverAll()).toHaveLength(0);
  });
});

describe('notifyOnDownload: digest', () => {
  it.skipIf(!hasPython)('one mail a day at digestAt holding every complete download of the day, grouped by transfer and recipient', async () => {
    const now = Date.now();
    // The digest time an hour from now: until then, yesterday's digest time is the last one.
    const at = new Date(now + HOUR);
    const digestAt = `${String(at.getHours()).padStart(2, '0')}:${String(at.getMinutes()).padStart(2, '0')}`;
    const a = await transfer({ recipients: ['bob@example.net', 'carol@example.org'], subject: 'Plans' });
    const b = await transfer({ recipients: ['dave@example.com'], subject: 'Budget' });
    const other = await transfer({ sender: 'erin@example.org', recipients: ['frank@example.net'], subject: 'Elsewhere' });
    await fetchAndLog(a.id, `/t/${a.token('bob@example.net')}/1/plan.pdf`);
    await fetchAndLog(a.id, `/t/${a.token('bob@example.net')}/2/notes.txt`);
    await fetchAndLog(a.id, `/t/${a.token('carol@example.org')}/zip`);
    await fetchAndLog(a.id, `/t/${a.token('carol@example.org')}/1/plan.pdf`, { ua: SCANNER });
    await fetchAndLog(a.id, `/t/${a.token('carol@example.org')}/2/notes.txt`, { method: 'HEAD' });
    await fetchAndLog(a.id, `/t/${a.token('carol@example.org')}/1/plan.pdf`, { range: 'bytes=5-9' });
    await fetchAndLog(b.id, `/t/${b.token('dave@example.com')}/1/plan.pdf`);
    await fetchAndLog(other.id, `/t/${other.token('frank@example.net')}/2/notes.txt`);

    // Before the digest time: nothing.
    expect(await noticesOnce(ctx('digest', env.db, digestAt), now)).toMatchObject({ mails: 0 });

    // Past it: one mail per sender.
    clock = now + 2 * HOUR;
    expect(lastDigestTime(clock, digestAt)).toBeGreaterThan(now);
    expect(await noticesOnce(ctx('digest', env.db, digestAt), clock)).toMatchObject({ mails: 2, covered: 5 });
    const got = await deliverAll();
    expect(got.map((m) => m.to[0]).sort()).toEqual(['alice@example.org', 'erin@example.org']);
    const alice = await parseNotice(got.find((m) => m.to[0] === 'alice@example.org')!.raw);
    expect(alice.text).toContain('Complete downloads of your files up to');
    expect(alice.text).toContain(': 4.');
    // Grouped: transfer heading, then each recipient with their downloads, in this order.
    const t = alice.text;
    const order = ['"Plans"', 'bob@example.net:', '* plan.pdf', '* notes.txt', 'carol@example.org:', '* all files (zip)', '"Budget"', 'dave@example.com:', '* plan.pdf'];
    let from = 0;
    for (const s of order) {
      const i = t.indexOf(s, from);
      expect(i, `${s} after position ${from} in:\n${t}`).toBeGreaterThanOrEqual(0);
      from = i + s.length;
    }
    // Carol's scanner fetch, HEAD and partial range are not downloads of hers.
    expect(t.match(/\*/g)).toHaveLength(4);
    expect(t).not.toContain('Elsewhere');
    expect(t).not.toContain('frank@example.net');
    expect(alice.html).toContain('carol@example.org');
    const erin = await parseNotice(got.find((m) => m.to[0] === 'erin@example.org')!.raw);
    expect(erin.text).toContain('frank@example.net');
    expect(erin.text).not.toContain('Plans');

    // Later the same day: a new download waits for tomorrow's digest, even if the pass runs again.
    await fetchAndLog(a.id, `/t/${a.token('carol@example.org')}/2/notes.txt`);
    expect(await noticesOnce(ctx('digest', env.db, digestAt), clock)).toMatchObject({ mails: 0 });
    expect(await deliverAll()).toHaveLength(0);
    clock = now + 26 * HOUR;
    expect(await noticesOnce(ctx('digest', env.db, digestAt), clock)).toMatchObject({ mails: 1, covered: 1 });
    const [next] = await deliverAll();
    const n = await parseNotice(next!.raw);
    expect(n.text).toContain('carol@example.org:');
    expect(n.text).toContain('* notes.txt');
    expect(n.text).not.toContain('bob@example.net');
  });

  it('lastDigestTime is the latest digest time at or before now', () => {
    const d = new Date(2026, 11, 2, 9, 30);
    expect(new Date(lastDigestTime(d.getTime(), '08:00'))).toEqual(new Date(2026, 11, 2, 8, 0));
    expect(new Date(lastDigestTime(d.getTime(), '09:30'))).toEqual(new Date(2026, 11, 2, 9, 30));
    expect(new Date(lastDigestTime(d.getTime(), '23:15'))).toEqual(new Date(2026, 11, 1, 23, 15));
  });
});

/** Two workers run the same passes at the same time, each through the handle `open` gives it. */
async function twoWorkers(open: () => Promise<Db>, blobs: BlobStore, close: (db: Db) => Promise<void>) {
  const [db1, db2] = [await open(), await open()];
  try {
    const links: string[] = [];
    for (let i = 0; i < 6; i++) {
      const recipients = [`r${i}a@example.net`, `r${i}b@example.net`];
      const t = await transfer({ recipients, db: db1, blobs });
      for (const r of recipients) {
        links.push(t.linkId(r));
        for (const idx of [1, 2]) {
          await recordDownload(db1, { transferId: t.id, linkId: t.linkId(r), fileIdx: idx, status: 200, bytesSent: FILES[idx - 1]!.data.length, range: null, client: '192.0.2.1', userAgent: BROWSER, counted: true, scanner: false, method: 'GET' });
        }
      }
    }
    const c = (db: Db, mode: NotifyMode): DownloadNoticeContext => ({ db, blobs, logger, hostname: 'ferry.test', from: 'ferry@ferry.test', mode, digestAt: '00:00' });
    const runs = await Promise.all([noticesOnce(c(db1, 'first')), noticesOnce(c(db2, 'first')), noticesOnce(c(db1, 'first')), noticesOnce(c(db2, 'first'))]);
    const first = await db1.selectFrom('queue_entries').select(['id', 'recipients']).execute();
    expect(runs.reduce((n, r) => n + r.mails, 0)).toBe(links.length);
    expect(first).toHaveLength(links.length);
    expect(await db1.selectFrom('download_notices').select('link_key').where('link_key', 'in', links).execute()).toHaveLength(links.length);

    // The same downloads for the digest: every sender gets exactly one.
    await db1.updateTable('downloads').set({ notified: 0 }).where('link_id', 'in', links).execute();
    await db1.deleteFrom('sender_digests').execute();
    const later = Date.now() + 24 * HOUR;
    const digestRuns = await Promise.all([noticesOnce(c(db1, 'digest'), later), noticesOnce(c(db2, 'digest'), later), noticesOnce(c(db1, 'digest'), later), noticesOnce(c(db2, 'digest'), later)]);
    expect(digestRuns.reduce((n, r) => n + r.mails, 0)).toBe(1);
    expect(digestRuns.reduce((n, r) => n + r.covered, 0)).toBe(links.length * 2);
    expect(await db1.selectFrom('queue_entries').select('id').execute()).toHaveLength(links.length + 1);
  } finally {
    await close(db1);
    await close(db2);
  }
}

describe('two workers at once', () => {
  // One handle: better-sqlite3 waits for another connection's write lock synchronously, so two
  // connections in one process would stall each other; separate processes do not. The passes
  // still interleave at every await, both reading the same candidates before either claims them.
  it('SQLite (two passes interleaved on one database): each notice and digest is queued once', async () => {
    await twoWorkers(async () => env.db, env.blobs, async () => undefined);
    await env.db.deleteFrom('queue_entries').execute();
  });

  const pg = pgUrl();
  if (!pg) warnSkip('download notices on PostgreSQL', PG_MISSING);
  it.skipIf(!pg)('PostgreSQL (two connection pools): each notice and digest is queued once', async () => {
    const url = await createDatabase(pg!, 'ferry_notices');
    try {
      await twoWorkers(() => openDatabase(url, { postgres: { maxConnections: 4 } }), new FsBlobStore(`${env.dir}/pg-blobs`), (db) => db.destroy());
    } finally {
      await dropDatabase(pg!, url);
    }
  });
});
