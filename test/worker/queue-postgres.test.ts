import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QueueRunner } from '../../worker/queue-runner.js';
import { createRelay, type Relay } from '../../gateway/relay.js';
import { claimDue, enqueue, FsBlobStore, getQueueEntry, listQueue, openDatabase, queueBlobKey, saveAttempt, type Db } from '../../storage/index.js';
import { tempDir } from '../helpers/ferry.js';
import { Upstream } from '../helpers/upstream.js';

// Several workers on one PostgreSQL database: 500 queued messages, two queue runners with
// their own connection pools and relay connections, each message delivered exactly once.

const url = process.env.FERRY_TEST_POSTGRES_URL;
if (!url) console.warn('queue-postgres.test.ts skipped: no PostgreSQL (set FERRY_TEST_POSTGRES_URL, e.g. eval "$(bash scripts/postgres/pg-up.sh /tmp/ferry-pg)")');

const N = 500;
const dir = tempDir('ferry-queue-pg-');
const dbName = `ferry_queue_${process.pid}_${Date.now().toString(36)}`;
let dbUrl = '';
const dbs: Db[] = [];
const relays: Relay[] = [];
let upstream: Upstream;

async function admin<T>(f: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await f(c);
  } finally {
    await c.end();
  }
}

describe.skipIf(!url)('queue on PostgreSQL with two workers', () => {
  beforeAll(async () => {
    // A database of its own: other test files use the shared one at the same time.
    await admin((c) => c.query(`CREATE DATABASE "${dbName}"`));
    const u = new URL(url!);
    u.pathname = `/${dbName}`;
    dbUrl = u.toString();
    upstream = await new Upstream().start();
  });
  afterAll(async () => {
    for (const r of relays) await r.close();
    for (const d of dbs) await d.destroy();
    await upstream?.stop();
    if (url) await admin((c) => c.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`)).catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('500 queued messages, two workers: each message delivered exactly once, both workers take part', async () => {
    const blobs = new FsBlobStore(path.join(dir, 'blobs'));
    const db0 = await openDatabase(dbUrl, { postgres: { maxConnections: 8 } });
    dbs.push(db0);
    const now = Date.now();
    const ids: string[] = [];
    for (let i = 0; i < N; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, N - i) }, async (_, j) => {
          const n = i + j;
          const id = `Q${String(n).padStart(15, '0')}`;
          ids.push(id);
          const raw = Buffer.from(`From: a@example.com\r\nTo: b@example.net\r\nSubject: n${n}\r\nMessage-ID: <${id}@test>\r\n\r\nbody ${n}\r\n`);
          await blobs.put(queueBlobKey(id), Readable.from([raw]));
          await enqueue(db0, {
            id,
            kind: 'message',
            transferId: null,
            sender: 'a@example.com',
            recipients: [{ address: `b${n % 7}@example.net`, state: 'pending' }],
            blobKey: queueBlobKey(id),
            size: raw.length,
            createdAt: now,
            nextAttemptAt: now,
            attempts: 1,
          });
        }),
      );
    }
    expect((await listQueue(db0)).total).toBe(N);

    const sentBy = [0, 0];
    const workers = await Promise.all(
      [0, 1].map(async (w) => {
        const db = await openDatabase(dbUrl, { postgres: { maxConnections: 4 } });
        dbs.push(db);
        const inner = createRelay({ url: upstream.url, hostname: 'ferry.test', timeoutMs: 10_000, starttls: 'off', tlsVerify: false, poolSize: 4 });
        relays.push(inner);
        const relay: Relay = { description: inner.description, send: (e, m, id) => (sentBy[w]!++, inner.send(e, m, id)), close: () => inner.close() };
        return new QueueRunner({
          db,
          blobs,
          relay,
          logger: pino({ level: 'silent' }),
          hostname: 'ferry.test',
          owner: `worker-${w}`,
          queue: { retrySchedule: [60_000], maxAge: 86_400_000, delayWarning: 0, leaseTimeout: 120_000, pollInterval: 20, concurrency: 8 },
        });
      }),
    );
    for (const w of workers) w.start();
    try {
      await expect.poll(async () => (await listQueue(db0)).total, { timeout: 60_000, interval: 100 }).toBe(0);
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
    const perId = new Map<string, number>();
    for (const m of upstream.messages) {
      const id = /Message-ID: <(Q\d+)@test>/.exec(m.raw.toString())![1]!;
      perId.set(id, (perId.get(id) ?? 0) + 1);
    }
    expect(upstream.messages).toHaveLength(N);
    expect(perId.size).toBe(N);
    expect([...perId.values()].every((n) => n === 1)).toBe(true);
    expect(sentBy[0]! + sentBy[1]!).toBe(N);
    expect(sentBy[0]).toBeGreaterThan(0);
    expect(sentBy[1]).toBeGreaterThan(0);
    for (const id of ids.slice(0, 20)) expect(await blobs.exists(queueBlobKey(id))).toBe(false);
  });

  it('two workers claiming at the same moment never get the same entry (FOR UPDATE SKIP LOCKED and the lease re-check)', async () => {
    const db = dbs[0]!;
    const now = Date.now();
    for (let n = 0; n < 40; n++) {
      await enqueue(db, { id: `R${n}`, kind: 'message', transferId: null, sender: 'a@example.com', recipients: [{ address: 'b@example.net', state: 'pending' }], blobKey: queueBlobKey(`R${n}`), size: 1, createdAt: now, nextAttemptAt: now });
    }
    const claims = await Promise.all(Array.from({ length: 8 }, (_, i) => claimDue(dbs[i % dbs.length]!, { owner: `c${i}`, now: Date.now(), leaseMs: 60_000, limit: 10 })));
    const all = claims.flat().map((e) => e.id);
    expect(new Set(all).size).toBe(all.length);
    expect(all.length).toBe(40);

    // Rescheduling names the lease owner; an admin's bounce request keeps the entry due.
    const [mine] = claims.find((c) => c.length)!;
    const owner = `c${claims.findIndex((c) => c.includes(mine!))}`;
    expect(await saveAttempt(db, mine!.id, 'someone-else', { recipients: mine!.recipients, nextAttemptAt: now + 1000, attempts: 2, lastError: 'x' })).toBe(false);
    expect(await saveAttempt(db, mine!.id, owner, { recipients: mine!.recipients, nextAttemptAt: now + 60_000, attempts: 2, lastError: 'later' })).toBe(true);
    expect(await getQueueEntry(db, mine!.id)).toMatchObject({ nextAttemptAt: now + 60_000, attempts: 2, lastError: 'later', leaseOwner: null, leaseUntil: 0 });
    const [again] = await claimDue(db, { owner: 'c9', now: now + 60_000, leaseMs: 60_000, limit: 1 });
    expect(again!.id).toBe(mine!.id);
    await db.updateTable('queue_entries').set({ cancel: 'bounce', next_attempt_at: now }).where('id', '=', mine!.id).execute();
    expect(await saveAttempt(db, mine!.id, 'c9', { recipients: mine!.recipients, nextAttemptAt: now + 999_999, attempts: 3, lastError: null })).toBe(true);
    expect(await getQueueEntry(db, mine!.id)).toMatchObject({ nextAttemptAt: now, attempts: 3, cancel: 'bounce' });
  });
});
