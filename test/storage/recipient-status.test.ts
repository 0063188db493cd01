import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addFile,
  createTransfer,
  hashToken,
  markLive,
  newId,
  newLinkId,
  newQueueId,
  newToken,
  openDatabase,
  recipientStatus,
  revokeLink,
  type Db,
} from '../../storage/index.js';
import { tempDir } from '../helpers/ferry.js';
import { createDatabase, dropDatabase, PG_MISSING, pgUrl } from './backends.js';

// What the sender's management page, the admin API and UI and `ferry transfers show` say about
// each recipient: the same answers on SQLite and PostgreSQL.

const pg = pgUrl();
if (!pg) console.warn(`[skip] recipient status on PostgreSQL: ${PG_MISSING}`);

const dir = tempDir('ferry-recipient-status-');
const drivers = [
  { name: 'sqlite', url: async () => `sqlite:${path.join(dir, `${newId()}.db`)}`, drop: async (_u: string) => undefined },
  ...(pg ? [{ name: 'postgres', url: () => createDatabase(pg), drop: (u: string) => dropDatabase(pg, u) }] : []),
];
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const T0 = Date.UTC(2026, 11, 1, 9, 0, 0);

describe.each(drivers)('recipient status on $name', (driver) => {
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

  /** A live transfer of two files with one link per recipient ([] = the shared link only). */
  async function transfer(recipients: string[]) {
    const id = newId();
    const links = recipients.map((r) => ({ id: newLinkId(), recipient: r, tokenHash: hashToken(newToken()) }));
    await createTransfer(db, {
      id,
      tokenHash: hashToken(newToken()),
      queueId: newQueueId(),
      sender: 'alice@example.com',
      recipients: recipients.length ? recipients : ['list@example.net'],
      subject: 'Plans',
      messageId: null,
      createdAt: T0,
      expiresAt: T0 + 7 * 86_400_000,
      ...(links.length ? { links } : {}),
    });
    await addFile(db, { transferId: id, idx: 1, name: 'plan.pdf', contentType: 'application/pdf', size: 1000, sha256: 'a'.repeat(64), blobKey: `${id}/1` });
    await addFile(db, { transferId: id, idx: 2, name: 'budget.xlsx', contentType: 'application/octet-stream', size: 500, sha256: 'b'.repeat(64), blobKey: `${id}/2` });
    await markLive(db, id);
    return { id, link: Object.fromEntries(links.map((l) => [l.recipient, l.id])) as Record<string, string> };
  }

  /** A download log row as the web writes it at the end of a request (web/download-log.ts). */
  async function logged(transferId: string, linkId: string | null, fileIdx: number | null, at: number, r: { counted?: boolean; scanner?: boolean; method?: string | null; bytes?: number; status?: number; slot?: boolean }) {
    await db
      .insertInto('downloads')
      .values({
        transfer_id: transferId,
        link_id: linkId,
        file_idx: fileIdx,
        at,
        status: r.status ?? 200,
        bytes_sent: r.bytes ?? 0,
        range: null,
        client: '192.0.2.7',
        user_agent: r.scanner ? 'Mimecast URL Protect' : 'Mozilla/5.0',
        counted: r.counted ? 1 : 0,
        scanner: r.scanner ? 1 : 0,
        method: r.method === undefined ? 'GET' : r.method,
        slot: r.counted || r.slot ? 1 : 0,
      })
      .execute();
  }

  it('tells complete downloads from scanner fetches and partial ones, per recipient and per file', async () => {
    const { id, link } = await transfer(['bob@example.net', 'carol@example.org']);
    const bob = link['bob@example.net']!;
    // The scanner fetched the whole file first: not the recipient.
    await logged(id, bob, 1, T0 + 1_000, { scanner: true, bytes: 1000 });
    await logged(id, bob, 1, T0 + 2_000, { scanner: true, method: 'HEAD' });
    // A broken download, then the first complete one, then another.
    await logged(id, bob, 1, T0 + 3_000, { bytes: 400, status: 200 });
    await logged(id, bob, 1, T0 + 4_000, { counted: true, bytes: 1000 });
    await logged(id, bob, 1, T0 + 9_000, { counted: true, bytes: 1000 });
    // File 2: one range, a HEAD, and a download still running (its slot reserved, no byte yet).
    await logged(id, bob, 2, T0 + 5_000, { bytes: 100, status: 206 });
    await logged(id, bob, 2, T0 + 6_000, { method: 'HEAD' });
    await logged(id, bob, 2, T0 + 7_000, { slot: true });
    // Rows from before the method column existed were GETs.
    await logged(id, bob, 2, T0 + 8_000, { bytes: 50, method: null });

    const status = await recipientStatus(db, id);
    expect(status.map((s) => s.recipient)).toEqual(['bob@example.net', 'carol@example.org']);
    const b = status[0]!;
    expect(b.linkId).toBe(bob);
    expect(b.revokedAt).toBeNull();
    expect(b.files).toEqual([
      { idx: 1, name: 'plan.pdf', completeAt: T0 + 4_000, completeCount: 2, scannerFetches: 2, partialFetches: 1 },
      { idx: 2, name: 'budget.xlsx', completeAt: null, completeCount: 0, scannerFetches: 0, partialFetches: 2 },
    ]);
    // Nothing of Bob's shows for Carol.
    expect(status[1]!.files).toEqual([
      { idx: 1, name: 'plan.pdf', completeAt: null, completeCount: 0, scannerFetches: 0, partialFetches: 0 },
      { idx: 2, name: 'budget.xlsx', completeAt: null, completeCount: 0, scannerFetches: 0, partialFetches: 0 },
    ]);
  });

  it('a zip of the transfer counts for every file in it, and only for the link it came through', async () => {
    const { id, link } = await transfer(['bob@example.net', 'carol@example.org']);
    const carol = link['carol@example.org']!;
    await logged(id, carol, 2, T0 + 1_000, { counted: true, bytes: 500 });
    await logged(id, carol, null, T0 + 2_000, { counted: true, bytes: 1700 });
    await logged(id, carol, null, T0 + 3_000, { bytes: 10 });
    await logged(id, carol, null, T0 + 4_000, { scanner: true, bytes: 1700 });
    const [b, c] = await recipientStatus(db, id);
    expect(c!.files).toEqual([
      { idx: 1, name: 'plan.pdf', completeAt: T0 + 2_000, completeCount: 1, scannerFetches: 1, partialFetches: 1 },
      { idx: 2, name: 'budget.xlsx', completeAt: T0 + 1_000, completeCount: 2, scannerFetches: 1, partialFetches: 1 },
    ]);
    expect(b!.files.every((f) => f.completeAt === null && f.completeCount + f.scannerFetches + f.partialFetches === 0)).toBe(true);
  });

  it('shows revoked links with the time, and keeps their history', async () => {
    const { id, link } = await transfer(['bob@example.net', 'carol@example.org']);
    await logged(id, link['bob@example.net']!, 1, T0 + 1_000, { counted: true, bytes: 1000 });
    expect(await revokeLink(db, id, link['bob@example.net']!, 'admin:boss')).toBe(true);
    const [b, c] = await recipientStatus(db, id);
    expect(b!.revokedAt).toEqual(expect.any(Number));
    expect(b!.revokedAt!).toBeGreaterThan(T0);
    expect(b!.files[0]!.completeAt).toBe(T0 + 1_000);
    expect(c!.revokedAt).toBeNull();
  });

  it('a transfer with one shared link: downloads logged before links existed belong to it', async () => {
    const { id } = await transfer([]);
    await logged(id, null, 1, T0 + 1_000, { counted: true, bytes: 1000 });
    const shared = (await db.selectFrom('links').select('id').where('transfer_id', '=', id).executeTakeFirstOrThrow()).id;
    await logged(id, shared, 1, T0 + 2_000, { counted: true, bytes: 1000 });
    const status = await recipientStatus(db, id);
    expect(status).toHaveLength(1);
    expect(status[0]).toMatchObject({ linkId: shared, recipient: '', revokedAt: null });
    expect(status[0]!.files[0]).toMatchObject({ completeAt: T0 + 1_000, completeCount: 2 });
  });

  it('an unknown transfer has no recipients', async () => {
    expect(await recipientStatus(db, 'nosuchtransfer')).toEqual([]);
  });
});
