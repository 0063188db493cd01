import crypto from 'node:crypto';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countTransfers } from '../../storage/index.js';
import { sweepOnce } from '../../worker/sweeper.js';
import { startFerry, type TestFerry } from '../helpers/ferry.js';
import { download, fileLinks, sha256 } from '../helpers/mail.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { Upstream } from '../helpers/upstream.js';
import { bucketContents, createBucket, createDatabase, dropBucket, dropDatabase, PG_MISSING, pgUrl, S3_MISSING, s3Env, s3Url, warnSkip } from './backends.js';
import { TcpProxy } from './tcp-proxy.js';

// Storage trouble on the scale-out pair, told to clients correctly: PostgreSQL unreachable or
// S3 hung at MAIL FROM -> 452 4.3.1; the database lost mid-DATA -> 451 4.3.0 after the data and
// nothing left once the sweep ran; downloads while either is down -> a 503 page within seconds.
// The servers sit behind loopback proxies this test cuts and stalls, so the real servers other
// test files use are never disturbed. (test/s3-kill.test.ts kills a real radosgw.)

const env = s3Env();
const pg = pgUrl();
const reason = !env ? S3_MISSING : !pg ? PG_MISSING : '';
if (reason) warnSkip('storage trouble on S3 + PostgreSQL', reason);

const MiB = 1024 * 1024;

describe.skipIf(!!reason)('storage trouble on S3 + PostgreSQL', () => {
  let bucket = '';
  let database = '';
  let s3Proxy: TcpProxy;
  let pgProxy: TcpProxy;
  let ferry: TestFerry;
  let upstream: Upstream;
  let link = '';
  const file = crypto.randomBytes(300_000);

  beforeAll(async () => {
    bucket = await createBucket(env!, 'ferry-trouble');
    database = await createDatabase(pg!);
    s3Proxy = await TcpProxy.forUrl(env!.endpoint).start();
    pgProxy = await TcpProxy.forUrl(database).start();
    upstream = await new Upstream().start();
    ferry = await startFerry({
      relay: { url: upstream.url },
      offload: { minAttachmentSize: 100_000 },
      storage: {
        blobs: s3Url({ ...env!, endpoint: s3Proxy.rewrite(env!.endpoint) }, bucket),
        database: pgProxy.rewrite(database),
        s3: { accessKeyId: env!.accessKeyId, secretAccessKey: env!.secretAccessKey, partSize: '5MiB', requestTimeout: '2s', maxAttempts: 2 },
        postgres: { connectTimeout: '2s' },
      },
    });
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: ferry.smtpPort, secure: false, ignoreTLS: true });
    await t.sendMail({ from: 'alice@example.com', to: 'bob@example.net', subject: 'before', text: 'x', attachments: [{ filename: 'before.bin', content: file }] });
    [link] = await fileLinks(upstream.messages.at(-1)!.raw, ferry.publicUrl);
  });
  afterAll(async () => {
    await ferry?.stopAndClean();
    await upstream?.stop();
    await s3Proxy?.stop();
    await pgProxy?.stop();
    if (bucket) await dropBucket(env!, bucket);
    if (database) await dropDatabase(pg!, database);
  });

  async function mailFrom(): Promise<string> {
    const c = await RawSmtp.connect(ferry.smtpPort);
    try {
      await c.cmd('EHLO client.test');
      return await c.cmd('MAIL FROM:<alice@example.com>');
    } finally {
      c.close();
    }
  }

  async function timedDownload(url: string) {
    const t0 = Date.now();
    const r = await download(url);
    return { ...r, ms: Date.now() - t0 };
  }

  it('PostgreSQL unreachable: MAIL FROM gets 452 4.3.1, pages and downloads a 503 page within seconds; then all is well again', async () => {
    await new Promise((r) => setTimeout(r, 1100)); // past the gateway's storage-check cache (1 s)
    pgProxy.cut();
    try {
      expect(await mailFrom()).toMatch(/^452 4\.3\.1 /);
      const page = await timedDownload(link.replace(/\/\d+\/[^/]+$/, ''));
      expect(page.status).toBe(503);
      const f = await timedDownload(link);
      expect(f.status).toBe(503);
      expect(f.headers.get('content-type')).toMatch(/^text\/html/);
      expect(f.ms).toBeLessThan(5000);
    } finally {
      pgProxy.heal();
    }
    expect(await mailFrom()).toMatch(/^250 /);
    expect(sha256((await download(link)).body)).toBe(sha256(file));
  });

  it('S3 hung (connections open, no answer): MAIL FROM gets 452 4.3.1 and a download a 503 page, each within seconds', async () => {
    await new Promise((r) => setTimeout(r, 2200)); // past the store's health-check cache
    s3Proxy.stall();
    try {
      let t0 = Date.now();
      expect(await mailFrom()).toMatch(/^452 4\.3\.1 /);
      expect(Date.now() - t0).toBeLessThan(6000);
      t0 = Date.now();
      const f = await download(link);
      expect(f.status).toBe(503);
      expect(f.headers.get('retry-after')).toBeTruthy();
      expect(Date.now() - t0).toBeLessThan(6000);
    } finally {
      s3Proxy.heal();
    }
    await new Promise((r) => setTimeout(r, 100));
    expect(await mailFrom()).toMatch(/^250 /);
  });

  it('the database lost mid-DATA: 451 4.3.0 after the data; once it is back the sweep leaves no blob, no upload and no pending record', async () => {
    const c = await RawSmtp.connect(ferry.smtpPort);
    await c.cmd('EHLO client.test');
    expect(await c.cmd('MAIL FROM:<alice@example.com>')).toMatch(/^250/);
    expect(await c.cmd('RCPT TO:<bob@example.net>')).toMatch(/^250/);
    let cutAt = 0;
    async function* message(): AsyncIterable<Buffer> {
      yield Buffer.from(
        'From: alice@example.com\r\nTo: bob@example.net\r\nSubject: big\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n' +
          '--b1\r\nContent-Type: text/plain\r\n\r\nHere it is.\r\n--b1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="big.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n',
      );
      const chunk = 57 * 1024 * 16;
      for (let sent = 0; sent < 16 * MiB; sent += chunk) {
        const b64 = crypto.randomBytes(chunk).toString('base64').replace(/.{76}/g, '$&\r\n');
        yield Buffer.from(b64.endsWith('\r\n') ? b64 : `${b64}\r\n`);
        if (!cutAt && sent > 8 * MiB) {
          // The transfer record exists once the upload runs: now the database goes away.
          for (let i = 0; i < 100 && (await bucketContents(env!, bucket)).uploads.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
          pgProxy.cut();
          cutAt = Date.now();
        }
      }
      yield Buffer.from('--b1--\r\n');
    }
    let reply: string;
    try {
      reply = await c.data(message());
    } finally {
      c.close();
      pgProxy.heal();
    }
    expect(cutAt).toBeGreaterThan(0);
    expect(reply).toMatch(/^451 4\.3\.0 /);
    expect(upstream.messages).toHaveLength(1);

    // The worker's sweep (age limit zero instead of an hour) removes what the failed cleanup could not.
    const swept = await sweepOnce(ferry.storage.db, ferry.storage.blobs, { keepRecordsMs: 365 * 86_400_000, stalePendingMs: 0, now: Date.now() + 1000 });
    expect(swept.errors).toEqual([]);
    const left = await bucketContents(env!, bucket);
    expect(left.uploads).toEqual([]);
    // The earlier message's file and its recipient's copy only.
    expect(left.keys.filter((k) => !/\/copy-[^/]+$/.test(k))).toHaveLength(1);
    expect(await countTransfers(ferry.storage.db)).toBe(1);
    expect(sha256((await download(link)).body)).toBe(sha256(file));
  });
});
