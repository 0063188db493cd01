import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OutboxRelay } from '../../gateway/relay.js';
import { Spool } from '../../gateway/spool.js';
import { FsBlobStore, openDatabase } from '../../storage/index.js';
import { tempDir } from '../helpers/ferry.js';

// Stored attachments, queued messages and the spooled copies of messages are other people's
// mail: other accounts on the host must not be able to read them, whatever umask Ferry was
// started with (a typical 022 would make them world-readable).

let oldUmask: number;
const dirs: string[] = [];
beforeAll(() => {
  oldUmask = process.umask(0o022);
});
afterAll(() => {
  process.umask(oldUmask);
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const mode = (p: string) => fs.statSync(p).mode & 0o777;

describe('data files are private to Ferry\'s user', () => {
  it('the filesystem blob store writes files 0600 in directories 0700', async () => {
    const d = tempDir('ferry-sec-modes-');
    dirs.push(d);
    const store = new FsBlobStore(path.join(d, 'blobs'));
    await store.check();
    await store.put('t/abc123/1-xyz', Readable.from([Buffer.from('confidential attachment')]));
    expect(mode(path.join(d, 'blobs'))).toBe(0o700);
    expect(mode(path.join(d, 'blobs', 't'))).toBe(0o700);
    expect(mode(path.join(d, 'blobs', 't', 'abc123'))).toBe(0o700);
    expect(mode(path.join(d, 'blobs', 't', 'abc123', '1-xyz'))).toBe(0o600);
  });

  it('the SMTP spool directory is 0700 and its files 0600', async () => {
    const d = tempDir('ferry-sec-modes-');
    dirs.push(d);
    const spool = await Spool.open(path.join(d, 'spool'), 'ABCDEF');
    const w = spool.writer('raw');
    await new Promise<void>((resolve, reject) => w.end('Subject: secret\r\n\r\nbody\r\n', () => resolve()).once('error', reject));
    expect(mode(path.join(d, 'spool'))).toBe(0o700);
    expect(mode(spool.path('raw'))).toBe(0o600);
  });
});

describe('records and the outbox are not world-readable', () => {
  it('a new SQLite database (and its WAL) is 0600', async () => {
    const d = tempDir('ferry-sec-modes-');
    dirs.push(d);
    const db = await openDatabase(`sqlite:${path.join(d, 'data', 'ferry.db')}`);
    try {
      expect(mode(path.join(d, 'data', 'ferry.db'))).toBe(0o600);
      expect(mode(path.join(d, 'data')) & 0o007).toBe(0);
      if (fs.existsSync(path.join(d, 'data', 'ferry.db-wal'))) expect(mode(path.join(d, 'data', 'ferry.db-wal'))).toBe(0o600);
    } finally {
      await db.destroy();
    }
  });

  it('outbox messages (they carry working download links) are readable by Ferry\'s user and group only', async () => {
    const d = tempDir('ferry-sec-modes-');
    dirs.push(d);
    const outbox = new OutboxRelay(path.join(d, 'outbox'));
    await outbox.send({ from: 'a@example.org', to: ['b@example.net'], size: 5 }, () => Readable.from([Buffer.from('hello')]), 'ABC123');
    expect(mode(path.join(d, 'outbox')) & 0o007).toBe(0);
    expect(mode(path.join(d, 'outbox', 'ABC123.eml'))).toBe(0o640);
    expect(mode(path.join(d, 'outbox', 'ABC123.json'))).toBe(0o640);
  });
});
