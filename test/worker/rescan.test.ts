import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { ClamdScanner } from '../../gateway/scan/index.js';
import { fileScans, listAudit, rescanBacklog, requestRescan } from '../../storage/index.js';
import { rescanOnce } from '../../worker/rescan.js';
import { startFerry, type TestFerry } from '../helpers/ferry.js';
import { download, fileLinks, landingLinks, pseudoRandom, sha256 } from '../helpers/mail.js';
import { sendOne as send } from '../helpers/smtp-client.js';
import { Upstream } from '../helpers/upstream.js';
import { Clamd, clamdSkip, LATE } from '../gateway/clamd-daemon.js';
import { createBucket, createDatabase, dropBucket, dropDatabase, pgUrl, s3Env, s3Url, warnSkip } from '../storage/backends.js';

// A file that was clean when it came in, and a signature added to clamd later (written to its
// database directory, then RELOAD): the rescan reads the file back from the blob store, blocks
// it, and from that moment its landing page and every URL of it say "blocked after a new check".
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

for (const backend of backends) {
  if (clamdSkip) warnSkip(`rescan (${backend.name})`, clamdSkip);
  else if (backend.missing) warnSkip(`rescan (${backend.name})`, backend.missing);
  describe.skipIf(!!clamdSkip || !!backend.missing)(`rescan after a signature update (${backend.name})`, () => {
    let clamd: Clamd;
    let upstream: Upstream;
    let ferry: TestFerry;
    let store: { close(): Promise<void> };

    beforeAll(async () => {
      clamd = await Clamd.start();
      upstream = await new Upstream().start();
      const s = await backend.storage();
      store = s;
      // rescanPerMinute 0: the worker's own loop stays out of the way; the test runs the passes.
      ferry = await startFerry({
        ...s.overrides,
        smtp: { memorySpoolLimit: 0 },
        relay: { url: upstream.url },
        offload: { minAttachmentSize: 50_000 },
        scan: { engine: 'clamd', clamd: clamd.address, rescanPerMinute: 0, notify: ['security@example.com'] },
      });
    }, 90_000);
    afterAll(async () => {
      await ferry?.stopAndClean();
      await upstream?.stop();
      await clamd?.stop();
      await store?.close();
    });

    it('blocks a live file at once, changes its landing page and URLs, audits it and tells the sender and admins', async () => {
      const later = Buffer.concat([pseudoRandom(150_000, 'r1'), LATE, pseudoRandom(10_000, 'r2')]);
      const clean = pseudoRandom(120_000, 'r3');
      expect(await send(ferry.smtpPort, `${HEADER}${part('report.bin', later)}${part('photo.bin', clean)}--b1--\r\n`)).toMatch(/^250 /);
      const relayed = upstream.messages.find((m) => m.raw.toString('latin1').includes('Subject: Rescan test'))!;
      const [landing] = await landingLinks(relayed.raw, ferry.publicUrl);
      const links = await fileLinks(relayed.raw, ferry.publicUrl);
      expect(links).toHaveLength(2);
      expect((await download(links[0]!)).status).toBe(200);

      const db = ferry.storage.db;
      const scanner = new ClamdScanner({ address: clamd.address, timeoutMs: 30_000 });
      const ctx = { db, blobs: ferry.storage.blobs, scanner, logger: pino({ level: 'silent' }), hostname: 'ferry.test', notify: ['security@example.com'] };
      // Nothing is due while the signatures are those of the intake scan.
      expect((await rescanOnce(ctx, 10)).scanned).toBe(0);

      await clamd.addLateSignature();
      // With only local databases clamd's VERSION stays the same after RELOAD (the version part
      // comes from daily.cvd), so the test asks for a rescan as `ferry scan rescan` does; a file
      // recorded with other signatures is due by itself (checked just below).
      const transfer = await db.selectFrom('transfers').select('id').executeTakeFirstOrThrow();
      expect(await rescanBacklog(db, 'clamav', 'ClamAV 9.9.9/99999/other')).toBe(2);
      expect(await requestRescan(db)).toBe(2);
      const pass = await rescanOnce(ctx, 10);
      expect(pass).toMatchObject({ scanned: 2, blocked: 1, errors: 0, backlog: 0 });

      const scans = await fileScans(db, transfer.id);
      expect(scans.get(1)).toMatchObject({ verdict: 'infected', blocked: true, blockedReason: 'rescan' });
      expect(scans.get(1)!.signature).toMatch(/^Ferry-Test-Late/);
      expect(scans.get(2)).toMatchObject({ verdict: 'clean', blocked: false });

      const page = await (await fetch(landing!)).text();
      expect(page).toContain('Blocked after a new check');
      for (const url of [links[0]!, `${landing}/1/x`]) {
        const r = await download(url);
        expect(r.status).toBe(403);
        expect(r.body.toString()).toContain('Blocked after a new check');
        expect(r.body.includes(LATE)).toBe(false);
      }
      expect(sha256((await download(links[1]!)).body)).toBe(sha256(clean));
      const zip = await download(`${landing}/zip`);
      expect(zip.body.includes(LATE)).toBe(false);

      const audit = await listAudit(db, { transferId: transfer.id });
      expect(audit.some((e) => e.action === 'file_blocked' && e.actor === 'system:rescan')).toBe(true);

      const deadline = Date.now() + 30_000;
      let notices: typeof upstream.messages = [];
      while (Date.now() < deadline) {
        notices = upstream.messages.filter((m) => m.raw.toString('latin1').includes('Subject: Attachment blocked after a new malware check: report.bin'));
        if (notices.length >= 2) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(notices.flatMap((m) => m.to).sort()).toEqual(['alice@example.com', 'security@example.com']);
    }, 120_000);
  });
}
