import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addFile,
  countCountedDownloads,
  countTransfers,
  createTransfer,
  deleteTransferRecords,
  discardTransfer,
  findTransferByTokenHash,
  getFile,
  getTransfer,
  hashToken,
  listFiles,
  markLive,
  newId,
  newQueueId,
  newToken,
  openDatabase,
  FsBlobStore,
  recordDownload,
  type Db,
} from '../../storage/index.js';
import { sweepOnce } from '../../worker/sweeper.js';
import { tempDir } from '../helpers/ferry.js';
import { createDatabase, dropDatabase, PG_MISSING, pgUrl } from './backends.js';

// One suite for the records on both databases: the same Kysely code, the same migrations, the
// same answers on SQLite and PostgreSQL (sizes and times as exact numbers, not strings).

const pg = pgUrl();
if (!pg) console.warn(`[skip] records on PostgreSQL: ${PG_MISSING}`);

interface DbDriver {
  name: string;
  url(): Promise<string>;
  drop(url: string): Promise<void>;
}

const dir = tempDir('ferry-records-');
const drivers: DbDriver[] = [
  { name: 'sqlite', url: async () => `sqlite:${path.join(dir, `${newId()}.db`)}`, drop: async () => undefined },
  ...(pg ? [{ name: 'postgres', url: () => createDatabase(pg), drop: (u: string) => dropDatabase(pg, u) }] : []),
];
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe.each(drivers)('records on $name', (driver) => {
  let url: string;
  let db: Db;
  beforeAll(async () => {
    url = await driver.url();
    db = await openDatabase(url);
  });
  afterAll(async () => {
    await db?.destroy();
    await driver.drop(url);
  });

  async function transfer(opts: { createdAt?: number; subject?: string } = {}) {
    const token = newToken();
    const id = newId();
    await createTransfer(db, {
      id,
      tokenHash: hashToken(token),
      queueId: newQueueId(),
      sender: 'alice@example.com',
      recipients: ['bob@example.net', 'zoë@exämple.org'],
      subject: opts.subject ?? 'Quarterly figures — Q3 ✓',
      messageId: '<m1@example.com>',
      createdAt: opts.createdAt ?? Date.now(),
      expiresAt: Date.now() + 86_400_000,
    });
    return { id, token };
  }

  it('a transfer goes pending -> live with its files; sizes over 4 GiB and times come back as exact numbers', async () => {
    const { id, token } = await transfer();
    const size = 5 * 1024 ** 3 + 7;
    await addFile(db, { transferId: id, idx: 1, name: 'film.mkv', contentType: 'video/x-matroska', size, sha256: 'a'.repeat(64), blobKey: `${id}/1` });
    await addFile(db, { transferId: id, idx: 2, name: 'notes.txt', contentType: 'text/plain', size: 10, sha256: 'b'.repeat(64), blobKey: `${id}/2` });
    expect((await getTransfer(db, id))!.state).toBe('pending');
    await markLive(db, id);
    const t = (await findTransferByTokenHash(db, hashToken(token)))!;
    expect(t).toMatchObject({ id, state: 'live', recipients: ['bob@example.net', 'zoë@exämple.org'], subject: 'Quarterly figures — Q3 ✓' });
    expect(typeof t.createdAt).toBe('number');
    const f = (await getFile(db, id, 1))!;
    expect(f.size).toBe(size);
    expect(typeof f.size).toBe('number');
    expect((await listFiles(db, id)).map((x) => x.idx)).toEqual([1, 2]);
    expect(await getFile(db, id, 3)).toBeUndefined();
  });

  it('downloads are recorded and counted; deleting a transfer removes its files and downloads', async () => {
    const { id } = await transfer();
    await addFile(db, { transferId: id, idx: 1, name: 'a.bin', contentType: 'application/octet-stream', size: 3, sha256: 'c'.repeat(64), blobKey: `${id}/1` });
    await markLive(db, id);
    await recordDownload(db, { transferId: id, fileIdx: 1, status: 200, bytesSent: 3, range: null, client: '192.0.2.1', userAgent: 'curl/8', counted: true });
    await recordDownload(db, { transferId: id, fileIdx: 1, status: 206, bytesSent: 1, range: 'bytes=0-0', client: '192.0.2.1', userAgent: 'curl/8', counted: false });
    expect(await countCountedDownloads(db, id)).toBe(1);
    const before = await countTransfers(db);
    await deleteTransferRecords(db, id);
    expect(await getTransfer(db, id)).toBeUndefined();
    expect(await listFiles(db, id)).toEqual([]);
    expect(await countTransfers(db)).toBe(before - 1);
  });

  it('the sweep finds only pending transfers older than the limit and removes them with their blobs', async () => {
    const blobsDir = tempDir('ferry-records-blobs-');
    const blobs = new FsBlobStore(blobsDir);
    try {
      const old = await transfer({ createdAt: Date.now() - 2 * 3_600_000 });
      const fresh = await transfer();
      const live = await transfer({ createdAt: Date.now() - 2 * 3_600_000 });
      await markLive(db, live.id);
      const { Readable } = await import('node:stream');
      await blobs.put(`${old.id}/1`, Readable.from([Buffer.from('left by a crash')]));
      await addFile(db, { transferId: old.id, idx: 1, name: 'x', contentType: 'text/plain', size: 15, sha256: 'd'.repeat(64), blobKey: `${old.id}/1` });
      // The worker's sweeper (worker/sweeper.ts) is what removes them.
      const summary = await sweepOnce(db, blobs, { keepRecordsMs: 180 * 86_400_000, stalePendingMs: 3_600_000 });
      expect(summary.abandoned).toBeGreaterThanOrEqual(1);
      expect(await getTransfer(db, old.id)).toBeUndefined();
      expect(await blobs.exists(`${old.id}/1`)).toBe(false);
      expect(await getTransfer(db, fresh.id)).toBeDefined();
      expect((await getTransfer(db, live.id))?.state).toBe('live');
      await discardTransfer(db, blobs, fresh.id);
      expect(await getTransfer(db, fresh.id)).toBeUndefined();
    } finally {
      fs.rmSync(blobsDir, { recursive: true, force: true });
    }
  });

  it('opening an up-to-date database again runs no migration twice', async () => {
    const again = await openDatabase(url);
    try {
      const rows = await sql<{ name: string }>`select name from kysely_migration`.execute(again);
      const names = rows.rows.map((r) => r.name);
      expect(new Set(names).size).toBe(names.length);
      expect(names.length).toBeGreaterThan(0);
    } finally {
      await again.destroy();
    }
  });
});

describe.skipIf(!pg)('migrations on PostgreSQL when several processes start at once', () => {
  let url = '';
  afterAll(async () => {
    if (url) await dropDatabase(pg!, url);
  });

  it('three processes migrating one empty database all start, and every migration ran exactly once', async () => {
    url = await createDatabase(pg!);
    const root = path.resolve(import.meta.dirname, '..', '..');
    const script = `
      import { openDatabase } from './storage/database.ts';
      const db = await openDatabase(process.argv[1]);
      await db.destroy();
      console.log('ok');
    `;
    const run = () =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, url], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d));
        child.stderr.on('data', (d: Buffer) => (out += d));
        child.on('close', (code) => resolve({ code, out }));
      });
    const results = await Promise.all([run(), run(), run()]);
    for (const r of results) {
      expect(r.out).toMatch(/^ok$/m);
      expect(r.code).toBe(0);
    }
    const db = await openDatabase(url);
    try {
      const rows = await sql<{ name: string }>`select name from kysely_migration`.execute(db);
      const names = rows.rows.map((r) => r.name);
      expect(new Set(names).size).toBe(names.length);
      expect(names).toContain('0001_transfers_files_downloads');
      await expect(countTransfers(db)).resolves.toBe(0);
    } finally {
      await db.destroy();
    }
  });
});
