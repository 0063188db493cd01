import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countTransfers } from '../../storage/index.js';
import { sweepOnce } from '../../worker/sweeper.js';
import { freePort, startFerry, type TestFerry } from '../helpers/ferry.js';
import { download, fileLinks, sha256 } from '../helpers/mail.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { Upstream } from '../helpers/upstream.js';
import { bucketContents, createBucket, createDatabase, dropBucket, dropDatabase, PG_MISSING, pgUrl, S3_MISSING, s3Env, s3Url, warnSkip } from './backends.js';

// The S3 server dies in the middle of an upload. Ferry must read the message to its end, answer
// 451 4.3.0 (try again later; nothing kept), refuse new mail with 452 4.3.1 and downloads with a
// 503 page while the server is down, and once it is back, the worker's sweep must leave no
// object, no incomplete multipart upload and no pending record.
//
// The radosgw killed here is one of this test's own (scripts/s3/rgw-extra-up.sh: a second
// gateway on the shared Ceph cluster, on a port of its own), so tests running in parallel keep
// their S3 server; the same script brings it back.

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const env = s3Env();
const pg = pgUrl();
const reason = !env ? S3_MISSING : !env.cephDir ? 'FERRY_TEST_CEPH_DIR not set: the S3 server is not a Ceph cluster of scripts/s3/ceph-rgw-up.sh, so its radosgw cannot be killed and restarted' : !pg ? PG_MISSING : '';
if (reason) warnSkip('killing the S3 server mid-upload', reason);

const MiB = 1024 * 1024;
const NAME = `kill${process.pid}`;

describe.skipIf(!!reason)('the S3 server (radosgw) is killed mid-upload', () => {
  let port = 0;
  let endpoint = '';
  let pidFile = '';
  let bucket = '';
  let database = '';
  let ferry: TestFerry;
  let upstream: Upstream;
  let earlierLink = '';
  const earlier = crypto.randomBytes(300_000);

  async function rgwUp(): Promise<void> {
    const { stdout } = await run('bash', [path.join(ROOT, 'scripts/s3/rgw-extra-up.sh'), env!.cephDir!, NAME, String(port)], { timeout: 30_000 });
    endpoint = /FERRY_TEST_S3_EXTRA_ENDPOINT=(\S+)/.exec(stdout)![1]!;
    pidFile = /FERRY_TEST_S3_EXTRA_PIDFILE=(\S+)/.exec(stdout)![1]!;
  }
  function rgwPid(): number | undefined {
    try {
      return Number(fs.readFileSync(pidFile, 'utf8').trim()) || undefined;
    } catch {
      return undefined;
    }
  }
  function rgwKill(signal: NodeJS.Signals): void {
    const pid = rgwPid();
    // Only the radosgw this test started (its own name on the command line), never anything else.
    if (pid && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`client.rgw.${NAME}`)) process.kill(pid, signal);
  }

  beforeAll(async () => {
    port = await freePort();
    await rgwUp();
    bucket = await createBucket(env!, 'ferry-kill');
    database = await createDatabase(pg!);
    upstream = await new Upstream().start();
    ferry = await startFerry({
      relay: { url: upstream.url },
      offload: { minAttachmentSize: 100_000 },
      storage: {
        blobs: s3Url({ ...env!, endpoint }, bucket),
        database,
        s3: { accessKeyId: env!.accessKeyId, secretAccessKey: env!.secretAccessKey, partSize: '5MiB', requestTimeout: '3s', maxAttempts: 2 },
      },
    });
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: ferry.smtpPort, secure: false, ignoreTLS: true });
    await t.sendMail({ from: 'alice@example.com', to: 'bob@example.net', subject: 'before', text: 'x', attachments: [{ filename: 'before.bin', content: earlier }] });
    [earlierLink] = await fileLinks(upstream.messages.at(-1)!.raw, ferry.publicUrl);
  });
  afterAll(async () => {
    await ferry?.stopAndClean();
    await upstream?.stop();
    try {
      rgwKill('SIGTERM');
    } catch {
      /* already gone */
    }
    if (bucket) await dropBucket(env!, bucket);
    if (database) await dropDatabase(pg!, database);
  });

  it('the client gets 451 4.3.0 after its data; while the server is down MAIL FROM gets 452 4.3.1 and a download a 503 page; once it is back the sweep leaves nothing', async () => {
    const c = await RawSmtp.connect(ferry.smtpPort);
    await c.cmd('EHLO client.test');
    expect(await c.cmd('MAIL FROM:<alice@example.com>')).toMatch(/^250/);
    expect(await c.cmd('RCPT TO:<bob@example.net>')).toMatch(/^250/);

    let killedAt = 0;
    let sentAfterKill = 0;
    // A 40 MiB attachment, base64 in 76-character lines; the server dies once an upload is under way.
    async function* message(): AsyncIterable<Buffer> {
      yield Buffer.from(
        'From: alice@example.com\r\nTo: bob@example.net\r\nSubject: big\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n' +
          '--b1\r\nContent-Type: text/plain\r\n\r\nHere it is.\r\n--b1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="big.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n',
      );
      const chunk = 57 * 1024 * 16; // whole 57-byte groups: 76-character lines
      for (let sent = 0; sent < 40 * MiB; sent += chunk) {
        const b64 = crypto.randomBytes(chunk).toString('base64').replace(/.{76}/g, '$&\r\n');
        yield Buffer.from(b64.endsWith('\r\n') ? b64 : `${b64}\r\n`);
        if (!killedAt && sent > 12 * MiB) {
          // Wait until a multipart upload really is under way on the server, then kill it.
          for (let i = 0; i < 100 && (await bucketContents(env!, bucket)).uploads.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
          expect((await bucketContents(env!, bucket)).uploads.length).toBeGreaterThan(0);
          rgwKill('SIGKILL');
          killedAt = Date.now();
        } else if (killedAt) sentAfterKill += chunk;
      }
      yield Buffer.from('--b1--\r\n');
    }
    const reply = await c.data(message());
    c.close();
    expect(killedAt).toBeGreaterThan(0);
    expect(sentAfterKill).toBeGreaterThan(10 * MiB); // the rest of the data was read, not refused
    expect(reply).toMatch(/^451 4\.3\.0 /);
    expect(upstream.messages).toHaveLength(1); // only the message from before

    // The store is still down: a new message is refused before its data, with 452 4.3.1.
    await new Promise((r) => setTimeout(r, Math.max(0, killedAt + 2500 - Date.now()))); // past the health-check cache
    const c2 = await RawSmtp.connect(ferry.smtpPort);
    await c2.cmd('EHLO client.test');
    expect(await c2.cmd('MAIL FROM:<alice@example.com>')).toMatch(/^452 4\.3\.1 /);
    c2.close();

    // A download while the store is down: a 503 page, quickly, not a hang.
    const t0 = Date.now();
    const down = await download(earlierLink);
    expect(down.status).toBe(503);
    expect(down.headers.get('content-type')).toMatch(/^text\/html/);
    expect(down.headers.get('content-disposition')).toBeNull();
    expect(Date.now() - t0).toBeLessThan(5000);

    // The server comes back (the same script that started it).
    await rgwUp();
    const left = await bucketContents(env!, bucket);
    expect(left.uploads.length).toBeGreaterThan(0); // what the dead server kept
    // The worker's sweep (the one `ferry worker` runs), with the age limit at zero instead of an
    // hour. (Whether the failed message's pending record is still there depends on how far its
    // cleanup got while the server was down; either way the sweep must leave none.)
    const swept = await sweepOnce(ferry.storage.db, ferry.storage.blobs, { keepRecordsMs: 365 * 86_400_000, stalePendingMs: 0, now: Date.now() + 1000 });
    expect(swept.errors).toEqual([]);
    expect(swept.uploadsAborted).toBeGreaterThan(0);
    const after = await bucketContents(env!, bucket);
    expect(after.uploads).toEqual([]);
    // Only the earlier message's file, and the copy relayed to its recipient (kept for "send again").
    expect(after.keys.filter((k) => !/\/copy-[^/]+$/.test(k))).toHaveLength(1);
    expect(after.keys.filter((k) => /\/copy-[^/]+$/.test(k))).toHaveLength(1);
    expect(await countTransfers(ferry.storage.db)).toBe(1);

    // And everything works again.
    expect(sha256((await download(earlierLink)).body)).toBe(sha256(earlier));
    const c3 = await RawSmtp.connect(ferry.smtpPort);
    await c3.cmd('EHLO client.test');
    expect(await c3.cmd('MAIL FROM:<alice@example.com>')).toMatch(/^250/);
    c3.close();
  });
});
