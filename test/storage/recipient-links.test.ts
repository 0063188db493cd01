import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addFile,
  createTransfer,
  deleteTransferNow,
  discardTransfer,
  downloadUse,
  finishDownloads,
  findLinkByTokenHash,
  FsBlobStore,
  getTransfer,
  hashToken,
  listLinks,
  manageUrl,
  markLive,
  newId,
  newLinkId,
  newQueueId,
  newToken,
  openDatabase,
  postgresKysely,
  reserveDownload,
  revokeLink,
  setCopyBlobKey,
  type Db,
  type DownloadStart,
} from '../../storage/index.js';
import { migrationProvider } from '../../storage/migrations.js';
import type { Database } from '../../storage/schema.js';
import { tempDir } from '../helpers/ferry.js';
import { createDatabase, dropDatabase, PG_MISSING, pgUrl } from './backends.js';

// Per-recipient links (issue 17): a transfer is reached through its links only, each link has
// the full download allowance, revoking one shuts out only its recipient, and the copies kept
// for "send again" go with the files. The same answers on SQLite and PostgreSQL.

const pg = pgUrl();
if (!pg) console.warn(`[skip] recipient links on PostgreSQL: ${PG_MISSING}`);

const dir = tempDir('ferry-recipient-links-');
const drivers = [
  {
    name: 'sqlite',
    url: async () => `sqlite:${path.join(dir, `${newId()}.db`)}`,
    drop: async (_u: string) => undefined,
    raw: (u: string) => new Kysely<Database>({ dialect: new SqliteDialect({ database: new SQLite(u.slice('sqlite:'.length)) }) }),
  },
  ...(pg
    ? [{ name: 'postgres', url: () => createDatabase(pg), drop: (u: string) => dropDatabase(pg, u), raw: (u: string) => postgresKysely(u).db }]
    : []),
];
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe.each(drivers)('recipient links on $name', (driver) => {
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

  /** A live transfer of two 10-byte files; `recipients` get a link each, none = the shared link. */
  async function transfer(recipients: string[] = [], opts: { manageTokenHash?: string } = {}) {
    const id = newId();
    const token = newToken();
    const links = recipients.map((r) => ({ id: newLinkId(), recipient: r, token: newToken() }));
    await createTransfer(db, {
      id,
      tokenHash: hashToken(token),
      queueId: newQueueId(),
      sender: 'alice@example.com',
      recipients: recipients.length ? recipients : ['list@example.net'],
      subject: 'Plans',
      messageId: null,
      createdAt: Date.now(),
      expiresAt: Date.now() + 86_400_000,
      ...(opts.manageTokenHash !== undefined && { manageTokenHash: opts.manageTokenHash }),
      ...(links.length && { links: links.map((l) => ({ id: l.id, recipient: l.recipient, tokenHash: hashToken(l.token) })) }),
    });
    for (const idx of [1, 2]) {
      await addFile(db, { transferId: id, idx, name: `f${idx}.bin`, contentType: 'application/octet-stream', size: 10, sha256: 'a'.repeat(64), blobKey: `t/${id}/${idx}-x` });
    }
    await markLive(db, id);
    return { id, token, links };
  }

  function start(transferId: string, linkId: string, fileIdx: number | null): DownloadStart {
    return { transferId, linkId, fileIdx, status: 200, range: null, client: '192.0.2.1', userAgent: 'curl/8', scanner: false, method: 'GET' };
  }

  it('a transfer created without links gets one shared link whose token is the transfer token', async () => {
    const { id, token } = await transfer();
    const links = await listLinks(db, id);
    expect(links).toHaveLength(1);
    expect(links[0]).toMatchObject({ transferId: id, recipient: '', tokenHash: hashToken(token), revokedAt: null, revokedBy: null, copyBlobKey: null });
    const found = (await findLinkByTokenHash(db, hashToken(token)))!;
    expect(found.link.id).toBe(links[0]!.id);
    expect(found.transfer).toMatchObject({ id, state: 'live', sender: 'alice@example.com', fileCount: 2, totalBytes: 20 });
    expect(typeof found.link.createdAt).toBe('number');
  });

  it('per-recipient links replace the shared one: each token finds its own link, the transfer token none', async () => {
    const { id, token, links } = await transfer(['bob@example.net', 'carol@example.org']);
    expect((await listLinks(db, id)).map((l) => l.recipient).sort()).toEqual(['bob@example.net', 'carol@example.org']);
    for (const l of links) {
      const found = (await findLinkByTokenHash(db, hashToken(l.token)))!;
      expect(found.link).toMatchObject({ id: l.id, recipient: l.recipient, transferId: id });
      expect(found.transfer.id).toBe(id);
    }
    expect(await findLinkByTokenHash(db, hashToken(token))).toBeUndefined();
    expect(await findLinkByTokenHash(db, hashToken(newToken()))).toBeUndefined();
  });

  it('the transfer and its links commit together: a link that cannot be stored leaves no transfer behind', async () => {
    const taken = await transfer(['bob@example.net']);
    const id = newId();
    await expect(
      createTransfer(db, {
        id,
        tokenHash: hashToken(newToken()),
        queueId: newQueueId(),
        sender: 'alice@example.com',
        recipients: ['dave@example.net'],
        subject: null,
        messageId: null,
        createdAt: Date.now(),
        expiresAt: Date.now() + 86_400_000,
        // Same token hash as an existing link: the unique index refuses it.
        links: [{ id: newLinkId(), recipient: 'dave@example.net', tokenHash: hashToken(taken.links[0]!.token) }],
      }),
    ).rejects.toThrow();
    expect(await getTransfer(db, id)).toBeUndefined();
  });

  it('keeps the management token hash, one transfer per hash, and builds the management URL', async () => {
    const manage = hashToken(newToken());
    const { id } = await transfer([], { manageTokenHash: manage });
    expect((await getTransfer(db, id))!.manageTokenHash).toBe(manage);
    expect((await getTransfer(db, (await transfer()).id))!.manageTokenHash).toBeNull();
    await expect(transfer([], { manageTokenHash: manage })).rejects.toThrow();
    expect(manageUrl('https://files.example.test/', 'TOKEN')).toBe('https://files.example.test/m/TOKEN');
  });

  it('revoking one link marks only it, is audited with the actor, and happens once', async () => {
    const { id, links } = await transfer(['bob@example.net', 'carol@example.org']);
    const [bob, carol] = links;
    expect(await revokeLink(db, id, bob!.id, 'sender:alice@example.com')).toBe(true);
    expect(await revokeLink(db, id, bob!.id, 'sender:alice@example.com')).toBe(false);
    expect(await revokeLink(db, id, 'no-such-link', 'sender:alice@example.com')).toBe(false);
    const other = await transfer(['erin@example.net']);
    // A link id of another transfer is refused: the management page of one transfer cannot touch another's.
    expect(await revokeLink(db, other.id, carol!.id, 'sender:mallory@example.com')).toBe(false);
    const byId = new Map((await listLinks(db, id)).map((l) => [l.id, l]));
    expect(byId.get(bob!.id)!.revokedAt).toEqual(expect.any(Number));
    expect(byId.get(bob!.id)!.revokedBy).toBe('sender:alice@example.com');
    expect(byId.get(carol!.id)!.revokedAt).toBeNull();
    expect((await getTransfer(db, id))!.state).toBe('live');
    const audit = await db.selectFrom('audit_log').selectAll().where('transfer_id', '=', id).where('action', '=', 'link_revoked').execute();
    expect(audit).toHaveLength(1);
    expect(audit[0]!.actor).toBe('sender:alice@example.com');
    expect(JSON.parse(audit[0]!.detail!)).toEqual({ link: bob!.id, recipient: 'bob@example.net' });
  });

  it('a download limit counts per link: each recipient has the whole allowance, and a zip takes a slot of every file of its link', async () => {
    const { id, links } = await transfer(['bob@example.net', 'carol@example.org', 'dave@example.net']);
    const [bob, carol, dave] = links.map((l) => l.id) as [string, string, string];
    const b1 = await reserveDownload(db, start(id, bob, 1), 1);
    expect(b1).toEqual(expect.any(Number));
    expect(await reserveDownload(db, start(id, bob, 1), 1)).toBeUndefined();
    expect(await reserveDownload(db, start(id, carol, 1), 1)).toEqual(expect.any(Number));
    // Bob's zip is refused (his file 1 is used up); Dave's takes file 1 and file 2 of his link.
    expect(await reserveDownload(db, start(id, bob, null), 1)).toBeUndefined();
    expect(await reserveDownload(db, start(id, dave, null), 1)).toEqual(expect.any(Number));
    expect(await reserveDownload(db, start(id, dave, 2), 1)).toBeUndefined();
    expect(await reserveDownload(db, start(id, bob, 2), 1)).toEqual(expect.any(Number));

    const counted = await finishDownloads(db, [{ ...start(id, bob, 1), reservation: b1, bytesSent: 10, whole: true, fileSize: 10 }]);
    expect(counted).toEqual([true]);
    const rows = await db.selectFrom('downloads').select(['id', 'link_id', 'file_idx', 'counted', 'slot']).where('transfer_id', '=', id).orderBy('id').execute();
    expect(rows.find((r) => r.id === b1)).toMatchObject({ link_id: bob, file_idx: 1, counted: 1, slot: 1 });
    expect(new Set(rows.map((r) => r.link_id))).toEqual(new Set([bob, carol, dave]));

    const bobUse = await downloadUse(db, id, bob);
    expect([bobUse.used(1), bobUse.used(2)]).toEqual([1, 1]);
    const daveUse = await downloadUse(db, id, dave);
    expect([daveUse.used(1), daveUse.used(2)]).toEqual([1, 1]);
    const carolUse = await downloadUse(db, id, carol);
    expect([carolUse.used(1), carolUse.used(2)]).toEqual([1, 0]);
    // Without a link, the whole transfer's use, as before links existed.
    expect((await downloadUse(db, id)).used(1)).toBe(3);
  });

  it('ranges add up per link: the same client through two links never makes one counted download', async () => {
    const { id, links } = await transfer(['bob@example.net', 'carol@example.org']);
    const [bob, carol] = links.map((l) => l.id) as [string, string];
    const half = (linkId: string, range: string) => ({ ...start(id, linkId, 1), range, status: 206, bytesSent: 5, whole: false, fileSize: 10 });
    expect(await finishDownloads(db, [half(bob, 'bytes=0-4')])).toEqual([false]);
    expect(await finishDownloads(db, [half(carol, 'bytes=5-9')])).toEqual([false]);
    expect(await finishDownloads(db, [half(bob, 'bytes=5-9')])).toEqual([true]);
    expect((await downloadUse(db, id, bob)).used(1)).toBe(1);
    expect((await downloadUse(db, id, carol)).used(1)).toBe(0);
  });

  it("the recipients' stored copies are deleted with the files (admin delete, and discarding a transfer)", async () => {
    const blobsDir = tempDir('ferry-recipient-links-blobs-');
    const blobs = new FsBlobStore(blobsDir);
    try {
      for (const how of ['delete now', 'discard'] as const) {
        const { id, links } = await transfer(['bob@example.net', 'carol@example.org']);
        const keys = links.map((l) => `t/${id}/copy-${l.id}`);
        for (const [i, l] of links.entries()) {
          await blobs.put(keys[i]!, Readable.from([Buffer.from(`copy for ${l.recipient}`)]));
          await setCopyBlobKey(db, l.id, keys[i]!);
        }
        expect((await listLinks(db, id)).map((l) => l.copyBlobKey).sort()).toEqual([...keys].sort());
        if (how === 'delete now') await deleteTransferNow(db, blobs, id, 'admin:root');
        else await discardTransfer(db, blobs, id);
        for (const k of keys) expect(await blobs.exists(k), `${how}: ${k}`).toBe(false);
        if (how === 'discard') expect(await listLinks(db, id)).toEqual([]);
      }
    } finally {
      fs.rmSync(blobsDir, { recursive: true, force: true });
    }
  });

  it('migrating an existing database gives every transfer its shared link, and its downloads keep counting for it', async () => {
    const oldUrl = await driver.url();
    const raw = driver.raw(oldUrl);
    const id = newId();
    const token = newToken();
    try {
      const { error } = await new Migrator({ db: raw, provider: migrationProvider }).migrateTo('0070_scan');
      expect(error).toBeUndefined();
      const now = Date.now();
      await raw
        .insertInto('transfers')
        .values({ id, token_hash: hashToken(token), state: 'live', queue_id: 'Q1', sender: 'a@example.com', recipients: '["b@example.net"]', subject: null, message_id: null, created_at: now, expires_at: now + 86_400_000, file_count: 1, total_bytes: 10 })
        .execute();
      await raw.insertInto('files').values({ transfer_id: id, idx: 1, name: 'a', content_type: 'text/plain', size: 10, sha256: 'a'.repeat(64), blob_key: 'k', created_at: now }).execute();
      await raw.insertInto('downloads').values({ transfer_id: id, file_idx: 1, at: now, status: 200, bytes_sent: 10, range: null, client: null, user_agent: null, counted: 1, scanner: 0, method: 'GET', slot: 1 }).execute();
    } finally {
      await raw.destroy();
    }
    const migrated = await openDatabase(oldUrl);
    try {
      const found = (await findLinkByTokenHash(migrated, hashToken(token)))!;
      expect(found.link).toMatchObject({ transferId: id, recipient: '', revokedAt: null });
      expect(found.transfer).toMatchObject({ id, state: 'live', manageTokenHash: null });
      expect((await downloadUse(migrated, id, found.link.id)).used(1)).toBe(1);
      expect(await reserveDownload(migrated, start(id, found.link.id, 1), 1)).toBeUndefined();
    } finally {
      await migrated.destroy();
      await driver.drop(oldUrl);
    }
  });
});
