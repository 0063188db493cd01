import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileScans, listAudit, rescanBacklog, requestRescan } from '../../storage/index.js';
import { startFerry, type TestFerry } from '../helpers/ferry.js';
import { download, fileLinks, landingLinks, pseudoRandom, sha256 } from '../helpers/mail.js';
import { sendOne as send } from '../helpers/smtp-client.js';
import { Upstream } from '../helpers/upstream.js';
import { Clamd, clamdSkip, LATE, sigtoolSkip } from '../gateway/clamd-daemon.js';
import { createBucket, createDatabase, dropBucket, dropDatabase, pgUrl, s3Env, s3Url, warnSkip } from '../storage/backends.js';

// A file that was clean when it came in, then a signature update: clamd's daily database is
// replaced by one a version newer that also matches the file (written to its DatabaseDirectory)
// and clamd RELOADs. Nobody runs `ferry scan rescan`: the worker notices the new version on its
// own (scan.versionCheckInterval), reads the file back from the blob store, blocks it, and from
// that moment its landing page and every URL of it say "blocked after a new check", together.
// Run on the embedded defaults (filesystem + SQLite) and on S3 (Ceph RGW) + PostgreSQL.

const HEADER = 'From: alice@example.com\r\nTo: bob@example.net\r\nSubject: Rescan test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nHello Bob.\r\n';
const part = (name: string, c: Buffer) =>
  `--b1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="${name}"\r\nContent-Transfer-Encoding: base64\r\n\r\n${c.toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n`;

interface Backend {
  name: string;
  missing?: string;
  storage(): Promise<{ overrides: Record<string, unknown>; close(): Promise<void> }>;
}

const backends: Backend[] = [
  { name: 'filesystem + SQLite', storage: async () => ({ overrides: {}, close: async () => undefined }) },
  {
    name: 'S3 + PostgreSQL',
    missing: !s3Env() ? 'no S3 server (FERRY_TEST_S3_*)' : !pgUrl() ? 'no PostgreSQL (FERRY_TEST_POSTGRES_URL)' : undefined,
    async storage() {
      const env = s3Env()!;
      const bucket = await createBucket(env, 'ferry-rescan');
      const dbUrl = await createDatabase(pgUrl()!, 'ferry_rescan');
      return {
        overrides: { storage: { blobs: s3Url(env, bucket), database: dbUrl, s3: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey } } },
        async close() {
          await dropDatabase(pgUrl()!, dbUrl);
          await dropBucket(env, bucket);
        },
      };
    },
  },
];

const daemonSkip = clamdSkip || sigtoolSkip;

/** Polls until `probe` returns something, or fails after `ms`. */
async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

for (const backend of backends) {
  if (daemonSkip) warnSkip(`rescan (${backend.name})`, daemonSkip);
  else if (backend.missing) warnSkip(`rescan (${backend.name})`, backend.missing);
  describe.skipIf(!!daemonSkip || !!backend.missing)(`rescan after a signature update (${backend.name})`, () => {
    let clamd: Clamd;
    let upstream: Upstream;
    let ferry: TestFerry;
    let store: { close(): Promise<void> };

    beforeAll(async () => {
      clamd = await Clamd.start({ versioned: true });
      upstream = await new Upstream().start();
      const s = await backend.storage();
      store = s;
      // The worker's own rescan loop, asking for the version every second (default 10 minutes).
      ferry = await startFerry({
        ...s.overrides,
        relay: { url: upstream.url },
        offload: { minAttachmentSize: 50_000 },
        scan: { engine: 'clamd', clamd: clamd.address, versionCheckInterval: '1s', rescanPerMinute: 600, notify: ['security@example.com'] },
      });
    }, 90_000);
    afterAll(async () => {
      await ferry?.stopAndClean();
      await upstream?.stop();
      await clamd?.stop();
      await store?.close();
    });

    it('the worker sees the new signature version by itself and blocks the live file: landing page and URLs change together, audited, sender and admins told', async () => {
      const later = Buffer.concat([pseudoRandom(150_000, 'r1'), LATE, pseudoRandom(10_000, 'r2')]);
      const clean = pseudoRandom(120_000, 'r3');
      expect(await send(ferry.smtpPort, `${HEADER}${part('report.bin', later)}${part('photo.bin', clean)}--b1--\r\n`)).toMatch(/^250 /);
      const relayed = upstream.messages.find((m) => m.raw.toString('latin1').includes('Subject: Rescan test'))!;
      const [landing] = await landingLinks(relayed.raw, ferry.publicUrl);
      const links = await fileLinks(relayed.raw, ferry.publicUrl);
      expect(links).toHaveLength(2);
      expect(sha256((await download(links[0]!)).body)).toBe(sha256(later));

      const db = ferry.storage.db;
      const transfer = await db.selectFrom('transfers').select('id').executeTakeFirstOrThrow();
      const before = await clamd.version();
      expect(before).toMatch(/^ClamAV [\d.]+\/1\//);
      expect((await fileScans(db, transfer.id)).get(1)).toMatchObject({ verdict: 'clean', version: before, blocked: false });

      // The signature update. From here on the test only watches.
      await clamd.addLateSignature();
      const after = await clamd.version();
      expect(after).toMatch(/^ClamAV [\d.]+\/2\//);

      // Landing page and file URL, read one right after the other until the block shows: the
      // block is one update of the file's row, so once either shows it, both do.
      const fileUrl = links[0]!;
      const seen = await waitFor('the block to show', async () => {
        const page = await (await fetch(landing!)).text();
        const file = await download(fileUrl);
        const pageBlocked = page.includes('Blocked after a new check');
        if (!pageBlocked && file.status === 200) return undefined;
        return { pageBlocked, file, page2: await (await fetch(landing!)).text() };
      });
      // Whichever showed first, the other shows it at the next read.
      expect(seen.pageBlocked || seen.page2.includes('Blocked after a new check')).toBe(true);
      const file = seen.file.status === 403 ? seen.file : await download(fileUrl);
      expect(file.status).toBe(403);
      expect(file.body.toString()).toContain('Blocked after a new check');
      expect(file.body.includes(LATE)).toBe(false);
      for (const url of [`${landing}/1/x`, `${landing}/1/report.bin`]) {
        const r = await download(url);
        expect(r.status).toBe(403);
        expect(r.body.includes(LATE)).toBe(false);
      }
      expect(sha256((await download(links[1]!)).body)).toBe(sha256(clean));
      const zip = await download(`${landing}/zip`);
      expect(zip.status).toBe(200);
      expect(zip.body.includes(LATE)).toBe(false);

      const scans = await fileScans(db, transfer.id);
      expect(scans.get(1)).toMatchObject({ verdict: 'infected', blocked: true, blockedReason: 'rescan', version: after });
      expect(scans.get(1)!.signature).toMatch(/^Ferry-Test-Late/);
      // The clean file was rescanned with the new signatures too, and stays live.
      await waitFor('the clean file to carry the new version', async () => ((await fileScans(db, transfer.id)).get(2)!.version === after ? true : undefined));
      expect((await fileScans(db, transfer.id)).get(2)).toMatchObject({ verdict: 'clean', blocked: false });
      expect(await rescanBacklog(db, 'clamav', after)).toBe(0);

      const audit = await listAudit(db, { transferId: transfer.id });
      expect(audit.filter((e) => e.action === 'file_blocked')).toEqual([expect.objectContaining({ actor: 'system:rescan', detail: expect.objectContaining({ idx: 1, version: after }) })]);

      const notices = await waitFor('the notices', async () => {
        const n = upstream.messages.filter((m) => m.raw.toString('latin1').includes('Subject: Attachment blocked after a new malware check: report.bin'));
        return n.length >= 2 ? n : undefined;
      }, 30_000);
      expect(notices.flatMap((m) => m.to).sort()).toEqual(['alice@example.com', 'security@example.com']);

      // `ferry scan rescan` (an admin's request, same signatures): only the live unblocked file is
      // due, and the worker's loop takes it without a version change.
      const scannedAt = (await fileScans(db, transfer.id)).get(2)!.at!;
      await new Promise((r) => setTimeout(r, 5));
      expect(await requestRescan(db)).toBe(1);
      await waitFor('the requested rescan', async () => ((await fileScans(db, transfer.id)).get(2)!.at! > scannedAt ? true : undefined), 30_000);
      expect(await rescanBacklog(db, 'clamav', after)).toBe(0);
      expect((await fileScans(db, transfer.id)).get(2)).toMatchObject({ verdict: 'clean', blocked: false });
      expect((await fileScans(db, transfer.id)).get(1)).toMatchObject({ blocked: true, blockedReason: 'rescan' });
    }, 180_000);
  });
}
