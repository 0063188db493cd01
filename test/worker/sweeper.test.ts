import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addFile,
  createTransfer,
  adminStats,
  DAY_MS,
  decideRetention,
  deleteTransferNow,
  getTransfer,
  hashToken,
  holdTransfer,
  listAudit,
  listRules,
  markLive,
  newBlobKey,
  newId,
  newQueueId,
  newToken,
  openBlobStore,
  openDatabase,
  reapplyRetention,
  releaseTransfer,
  revokeTransfer,
  searchTransfers,
  seedRetentionRules,
  setRule,
  setTransferExpiry,
  type BlobStore,
  type Db,
} from '../../storage/index.js';
import { sweepOnce } from '../../worker/sweeper.js';
import { buildWebApp } from '../../web/app.js';
import { CreateMultipartUploadCommand } from '@aws-sdk/client-s3';
import { bucketContents, createBucket, createDatabase, dropBucket, dropDatabase, pgUrl, s3Admin, s3Env, s3Url, warnSkip, type S3Env } from '../storage/backends.js';

// The sweeper on every driver: the filesystem with SQLite always; S3 (Ceph RGW) with PostgreSQL
// when .ci/run (or the developer) started them. Everything goes through the BlobStore interface.

interface Backend {
  db: Db;
  /** A second, independent connection (another worker process). */
  db2: Db;
  blobs: BlobStore;
  blobs2: BlobStore;
  /** The S3 bucket, for the S3 backend. */
  s3?: { env: S3Env; bucket: string };
  close(): Promise<void>;
}

const backends: { name: string; missing?: string; open: () => Promise<Backend> }[] = [
  {
    name: 'filesystem + SQLite',
    async open() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-sweep-'));
      const db = await openDatabase(`sqlite:${dir}/db.sqlite`);
      const db2 = await openDatabase(`sqlite:${dir}/db.sqlite`);
      return {
        db,
        db2,
        blobs: openBlobStore(`file:${dir}/blobs`),
        blobs2: openBlobStore(`file:${dir}/blobs`),
        async close() {
          await db.destroy();
          await db2.destroy();
          fs.rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 'S3 + PostgreSQL',
    missing: !s3Env() ? 'no S3 server (FERRY_TEST_S3_*)' : !pgUrl() ? 'no PostgreSQL (FERRY_TEST_POSTGRES_URL)' : undefined,
    async open() {
      const env = s3Env()!;
      const bucket = await createBucket(env, 'ferry-sweep');
      const dbUrl = await createDatabase(pgUrl()!, 'ferry_sweep');
      const db = await openDatabase(dbUrl);
      const db2 = await openDatabase(dbUrl);
      const s3 = { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey };
      const blobs = openBlobStore(s3Url(env, bucket), { s3 });
      const blobs2 = openBlobStore(s3Url(env, bucket), { s3 });
      return {
        db,
        db2,
        blobs,
        blobs2,
        s3: { env, bucket },
        async close() {
          await blobs.close();
          await blobs2.close();
          await db.destroy();
          await db2.destroy();
          await dropDatabase(pgUrl()!, dbUrl);
          await dropBucket(env, bucket);
        },
      };
    },
  },
];

/** Counts deletes per key, to prove no blob is deleted twice across workers. */
function countingStore(inner: BlobStore, counts: Map<string, number>): BlobStore {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'delete') {
        return async (key: string) => {
          counts.set(key, (counts.get(key) ?? 0) + 1);
          return target.delete(key);
        };
      }
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

async function addTransfer(b: Backend, opts: { expiresAt: number; createdAt?: number; files?: number; state?: 'live' | 'pending' }) {
  const token = newToken();
  const id = newId();
  const createdAt = opts.createdAt ?? Date.now() - DAY_MS;
  await createTransfer(b.db, {
    id,
    tokenHash: hashToken(token),
    queueId: newQueueId(),
    sender: 'alice@example.org',
    recipients: ['bob@example.net'],
    subject: 'figures',
    messageId: null,
    createdAt,
    expiresAt: opts.expiresAt,
  });
  const keys: string[] = [];
  for (let idx = 1; idx <= (opts.files ?? 2); idx++) {
    const blobKey = newBlobKey(id, idx);
    const data = Buffer.from(`file ${idx} of ${id}`);
    await b.blobs.put(blobKey, Readable.from([data]));
    await addFile(b.db, { transferId: id, idx, name: `f${idx}.txt`, contentType: 'text/plain', size: data.length, sha256: 'x'.repeat(64), blobKey });
    keys.push(blobKey);
  }
  if ((opts.state ?? 'live') === 'live') await markLive(b.db, id);
  return { id, token, keys };
}

async function existing(b: Backend, keys: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const k of keys) if (await b.blobs.exists(k)) out.push(k);
  return out;
}

const KEEP = 180 * DAY_MS;

for (const backend of backends) {
  if (backend.missing) warnSkip(`retention sweeper on ${backend.name}`, backend.missing);
  describe.skipIf(!!backend.missing)(`retention sweeper on ${backend.name}`, () => {
    let b: Backend;
    beforeAll(async () => {
      b = await backend.open();
    }, 60_000);
    afterAll(async () => b?.close(), 60_000);

    it('a transfer past its expiry answers 410 before any sweep, and after the sweep its blobs are gone', async () => {
      const t = await addTransfer(b, { expiresAt: Date.now() - 1000 });
      const web = await buildWebApp({ publicUrl: 'https://files.example.test', db: b.db, blobs: b.blobs, rateLimit: false });
      try {
        expect((await web.inject({ url: `/t/${t.token}` })).statusCode).toBe(410);
        expect((await web.inject({ url: `/t/${t.token}/1/f1.txt` })).statusCode).toBe(410);
        expect(await existing(b, t.keys)).toEqual(t.keys);
        const s = await sweepOnce(b.db, b.blobs, { keepRecordsMs: KEEP });
        expect(s.errors).toEqual([]);
        expect(s.expired).toBeGreaterThanOrEqual(1);
        expect(await existing(b, t.keys)).toEqual([]);
        expect(await getTransfer(b.db, t.id)).toMatchObject({ state: 'expired' });
        expect((await getTransfer(b.db, t.id))!.purgedAt).not.toBeNull();
        expect((await web.inject({ url: `/t/${t.token}` })).statusCode).toBe(410);
        const audit = await listAudit(b.db, { transferId: t.id });
        expect(audit.map((e) => e.action)).toEqual(['expired', 'link_issued', 'stored']);
        expect(audit[0]!.actor).toMatch(/^sweeper:/);
      } finally {
        await web.close();
      }
    });

    it('a live transfer not yet expired is left alone', async () => {
      const t = await addTransfer(b, { expiresAt: Date.now() + DAY_MS });
      await sweepOnce(b.db, b.blobs, { keepRecordsMs: KEEP });
      expect(await existing(b, t.keys)).toEqual(t.keys);
      expect(await getTransfer(b.db, t.id)).toMatchObject({ state: 'live', purgedAt: null });
    });

    it('a held transfer survives every sweep until it is released', async () => {
      const t = await addTransfer(b, { expiresAt: Date.now() - 1000 });
      await holdTransfer(b.db, t.id, 'admin:test', 'litigation 2026-17');
      const s = await sweepOnce(b.db, b.blobs, { keepRecordsMs: 0 });
      expect(s.heldSkipped).toBeGreaterThanOrEqual(1);
      // Far in the future, records too would be due: the hold keeps everything.
      await sweepOnce(b.db, b.blobs, { keepRecordsMs: 0, now: Date.now() + 1000 * DAY_MS });
      expect(await existing(b, t.keys)).toEqual(t.keys);
      expect(await getTransfer(b.db, t.id)).toMatchObject({ held: true, holdReason: 'litigation 2026-17', purgedAt: null });
      await expect(deleteTransferNow(b.db, b.blobs, t.id, 'admin:test')).rejects.toThrow(/legal hold/);
      await releaseTransfer(b.db, t.id, 'admin:test');
      await sweepOnce(b.db, b.blobs, { keepRecordsMs: KEEP });
      expect(await existing(b, t.keys)).toEqual([]);
    });

    it('revoked transfers lose their files at the next sweep; records go after keepRecords', async () => {
      const t = await addTransfer(b, { expiresAt: Date.now() + DAY_MS });
      await revokeTransfer(b.db, t.id, 'admin:test');
      const s = await sweepOnce(b.db, b.blobs, { keepRecordsMs: KEEP });
      expect(s.revokedOrDeleted).toBeGreaterThanOrEqual(1);
      expect(await existing(b, t.keys)).toEqual([]);
      expect(await getTransfer(b.db, t.id)).toMatchObject({ state: 'revoked' });
      await sweepOnce(b.db, b.blobs, { keepRecordsMs: KEEP, now: Date.now() + KEEP - DAY_MS });
      expect(await getTransfer(b.db, t.id)).toBeDefined();
      const later = await sweepOnce(b.db, b.blobs, { keepRecordsMs: KEEP, now: Date.now() + KEEP + DAY_MS });
      expect(later.recordsRemoved).toBeGreaterThanOrEqual(1);
      expect(await getTransfer(b.db, t.id)).toBeUndefined();
      // The audit log outlives the records.
      expect((await listAudit(b.db, { transferId: t.id })).map((e) => e.action)).toContain('revoked');
    });

    it('pending transfers older than an hour go with their blobs; younger ones stay', async () => {
      const old = await addTransfer(b, { expiresAt: Date.now() + DAY_MS, createdAt: Date.now() - 2 * 3_600_000, state: 'pending' });
      const young = await addTransfer(b, { expiresAt: Date.now() + DAY_MS, createdAt: Date.now() - 60_000, state: 'pending' });
      const s = await sweepOnce(b.db, b.blobs, { keepRecordsMs: KEEP });
      expect(s.abandoned).toBeGreaterThanOrEqual(1);
      expect(await existing(b, old.keys)).toEqual([]);
      expect(await getTransfer(b.db, old.id)).toBeUndefined();
      expect(await existing(b, young.keys)).toEqual(young.keys);
    });

    it('a row another worker is sweeping is left to it; a claim left by a dead worker is taken over after the lease', async () => {
      const busy = await addTransfer(b, { expiresAt: Date.now() - 1000 });
      const dead = await addTransfer(b, { expiresAt: Date.now() - 1000 });
      await b.db.updateTable('transfers').set({ sweep_claim: 'other-worker', sweep_claimed_at: Date.now() }).where('id', '=', busy.id).execute();
      await b.db.updateTable('transfers').set({ sweep_claim: 'dead-worker', sweep_claimed_at: Date.now() - 11 * 60_000 }).where('id', '=', dead.id).execute();
      await sweepOnce(b.db, b.blobs, { keepRecordsMs: KEEP });
      expect(await existing(b, busy.keys)).toEqual(busy.keys);
      expect(await existing(b, dead.keys)).toEqual([]);
      // A hold cannot slip in while a sweeper owns the row: it is refused, not silently lost.
      await expect(holdTransfer(b.db, busy.id, 'admin:test', 'late')).rejects.toThrow(/being swept/);
      await b.db.updateTable('transfers').set({ sweep_claim: null, sweep_claimed_at: null }).where('id', '=', busy.id).execute();
      await sweepOnce(b.db, b.blobs, { keepRecordsMs: KEEP });
      expect(await existing(b, busy.keys)).toEqual([]);
    });

    it('aborts incomplete multipart uploads older than an hour (S3); the filesystem has none', async () => {
      if (!b.s3) {
        expect((await sweepOnce(b.db, b.blobs, { keepRecordsMs: KEEP })).uploadsAborted).toBeNull();
        return;
      }
      const admin = s3Admin(b.s3.env);
      try {
        await admin.send(new CreateMultipartUploadCommand({ Bucket: b.s3.bucket, Key: `t/${newId()}/1-crashed` }));
      } finally {
        admin.destroy();
      }
      expect((await bucketContents(b.s3.env, b.s3.bucket)).uploads).toHaveLength(1);
      // Young uploads may still be running in another process: left alone.
      expect((await sweepOnce(b.db, b.blobs, { keepRecordsMs: KEEP })).uploadsAborted).toBe(0);
      const s = await sweepOnce(b.db, b.blobs, { keepRecordsMs: KEEP, now: Date.now() + 2 * 3_600_000 });
      expect(s.uploadsAborted).toBe(1);
      expect((await bucketContents(b.s3.env, b.s3.bucket)).uploads).toEqual([]);
    });

    it('a dry run counts and changes nothing', async () => {
      const t = await addTransfer(b, { expiresAt: Date.now() - 1000, files: 3 });
      const s = await sweepOnce(b.db, b.blobs, { keepRecordsMs: KEEP, dryRun: true });
      expect(s).toMatchObject({ dryRun: true, expired: 1, blobsDeleted: 3 });
      expect(await existing(b, t.keys)).toEqual(t.keys);
      expect(await getTransfer(b.db, t.id)).toMatchObject({ state: 'live', purgedAt: null });
      await sweepOnce(b.db, b.blobs, { keepRecordsMs: KEEP });
    });

    it('rules, search, stats and admin actions run on this database too', async () => {
      const bounds = { defaultMs: 30 * DAY_MS, minMs: DAY_MS, maxMs: 90 * DAY_MS };
      await seedRetentionRules(b.db, { ...bounds, rules: [{ recipientDomain: 'example.net', days: 5, downloadLimit: 2 }] });
      await seedRetentionRules(b.db2, { ...bounds, rules: [{ recipientDomain: 'example.net', days: 5, downloadLimit: 2 }] });
      expect(await decideRetention(b.db, { sender: 'a@x.example', recipients: ['b@example.net'], at: 0 }, bounds)).toMatchObject({ expiresAt: 5 * DAY_MS, downloadLimit: 2 });
      await setRule(b.db, { kind: 'sender', match: 'boss@x.example', periodMs: 9 * DAY_MS }, 'admin:t', bounds);
      expect((await listRules(b.db)).map((r) => r.id)).toEqual(['default', 'minimum', 'maximum', 'sender:boss@x.example', 'recipient_domain:example.net']);
      const t = await addTransfer(b, { expiresAt: Date.now() + DAY_MS, files: 1 });
      await b.db.updateTable('files').set({ name: 'Big_Report 100%.PDF' }).where('transfer_id', '=', t.id).execute();
      const found = await searchTransfers(b.db, { fileName: 'report 100%', sender: 'ALICE' });
      expect(found.items.map((x) => x.id)).toEqual([t.id]);
      expect((await searchTransfers(b.db, { fileName: 'report_100' })).items).toEqual([]);
      const page1 = await searchTransfers(b.db, { limit: 1 });
      const page2 = await searchTransfers(b.db, { limit: 1, cursor: page1.nextCursor! });
      expect(page2.items[0]!.id).not.toBe(page1.items[0]!.id);
      const stats = await adminStats(b.db, { days: 3 });
      expect(stats.liveTransfers).toBeGreaterThanOrEqual(1);
      expect(stats.storedBytes).toBeGreaterThan(0);
      expect(stats.transfersPerDay).toHaveLength(3);
      await setTransferExpiry(b.db, t.id, Date.now() + 3 * DAY_MS, 'admin:t', bounds);
      expect((await reapplyRetention(b.db, 'admin:t', bounds)) >= 0).toBe(true);
      expect((await getTransfer(b.db, t.id))!.retentionRule).toBe('admin');
      await deleteTransferNow(b.db, b.blobs, t.id, 'admin:t');
      expect(await existing(b, t.keys)).toEqual([]);
      // The audit log refuses changes.
      await expect(b.db.updateTable('audit_log').set({ actor: 'x' }).execute()).rejects.toThrow(/append-only/);
      await expect(b.db.deleteFrom('audit_log').execute()).rejects.toThrow(/append-only/);
    });

    it('two sweepers at once finish without error and without deleting any blob twice', async () => {
      const ts = [];
      for (let i = 0; i < 24; i++) ts.push(await addTransfer(b, { expiresAt: Date.now() - 1000 - i, files: 2 }));
      const counts = new Map<string, number>();
      const [s1, s2] = await Promise.all([
        sweepOnce(b.db, countingStore(b.blobs, counts), { keepRecordsMs: KEEP, workerId: 'w1', batchSize: 5 }),
        sweepOnce(b.db2, countingStore(b.blobs2, counts), { keepRecordsMs: KEEP, workerId: 'w2', batchSize: 5 }),
      ]);
      expect(s1.errors).toEqual([]);
      expect(s2.errors).toEqual([]);
      expect(s1.expired + s2.expired).toBe(24);
      const keys = ts.flatMap((t) => t.keys);
      for (const k of keys) expect(counts.get(k), k).toBe(1);
      expect(await existing(b, keys)).toEqual([]);
      const expiredEntries = await listAudit(b.db, { action: 'expired', limit: 1000 });
      const ids = new Set(ts.map((t) => t.id));
      expect(expiredEntries.filter((e) => ids.has(e.transferId!)).length).toBe(24);
    });
  });
}
