import crypto from 'node:crypto';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countTransfers } from '../../storage/index.js';
import { listFiles, startFerry, type TestFerry } from '../helpers/ferry.js';
import { download, fileLinks, parse, sha256 } from '../helpers/mail.js';
import { Upstream } from '../helpers/upstream.js';
import { bucketContents, createBucket, createDatabase, dropBucket, dropDatabase, PG_MISSING, pgUrl, S3_MISSING, s3Env, s3Url, warnSkip } from './backends.js';

// The core path end to end on both storage pairs: a real SMTP client (nodemailer) sends through
// Ferry, Ferry offloads the attachments and relays to a real upstream SMTP server, and the links
// in the relayed message download the exact bytes that were attached.

const env = s3Env();
const pg = pgUrl();
const reason = !env ? S3_MISSING : !pg ? PG_MISSING : '';
if (reason) warnSkip('core path on S3 + PostgreSQL', reason);

interface Pair {
  name: string;
  storage(): Promise<Record<string, unknown>>;
  objects(ferry: TestFerry): Promise<{ keys: string[]; uploads: unknown[] }>;
  teardown(): Promise<void>;
}

let bucket = '';
let database = '';
const pairs: Pair[] = [
  {
    name: 'file + sqlite',
    async storage() {
      return {};
    },
    async objects(ferry) {
      return { keys: listFiles(path.join(ferry.dir, 'blobs')), uploads: [] };
    },
    async teardown() {},
  },
];
if (!reason) {
  pairs.push({
    name: 's3 (Ceph RGW) + postgres',
    async storage() {
      bucket = await createBucket(env!, 'ferry-core');
      database = await createDatabase(pg!);
      return {
        blobs: s3Url(env!, bucket, 'mail'),
        database,
        // Small parts, so that the 7 MB attachment really goes up as a multipart upload.
        s3: { accessKeyId: env!.accessKeyId, secretAccessKey: env!.secretAccessKey, partSize: '5MiB' },
      };
    },
    async objects() {
      return bucketContents(env!, bucket);
    },
    async teardown() {
      if (bucket) await dropBucket(env!, bucket);
      if (database) await dropDatabase(pg!, database);
    },
  });
}

describe.each(pairs)('core path on $name', (pair) => {
  let ferry: TestFerry;
  let upstream: Upstream;
  beforeAll(async () => {
    upstream = await new Upstream().start();
    ferry = await startFerry({ relay: { url: upstream.url }, offload: { minAttachmentSize: 100_000 }, storage: await pair.storage() });
  });
  afterAll(async () => {
    await ferry?.stopAndClean();
    await upstream?.stop();
    await pair.teardown();
  });

  it('sends through Ferry, relays upstream, and every link downloads the attached bytes (SHA-256 equal)', async () => {
    const big = crypto.randomBytes(7_000_000);
    const medium = crypto.randomBytes(400_000);
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: ferry.smtpPort, secure: false, ignoreTLS: true });
    const info = await t.sendMail({
      from: 'alice@example.com',
      to: ['bob@example.net'],
      subject: 'Drawings',
      text: 'The drawings are attached.\n',
      attachments: [
        { filename: 'drawings.pdf', content: big, contentType: 'application/pdf' },
        { filename: 'site plan.png', content: medium, contentType: 'image/png' },
      ],
    });
    expect(info.response).toMatch(/^250 2\.0\.0 /);

    const raw = upstream.messages.at(-1)!.raw;
    expect(raw.length).toBeLessThan(100_000);
    const mail = await parse(raw);
    expect(mail.text).toContain('The drawings are attached.');
    const links = await fileLinks(raw, ferry.publicUrl);
    expect(links).toHaveLength(2);
    const got = await Promise.all(links.map((l) => download(l)));
    expect(got.map((g) => g.status)).toEqual([200, 200]);
    expect(got.map((g) => sha256(g.body))).toEqual([sha256(big), sha256(medium)]);

    // The blobs are in the store the configuration names, and nothing else is.
    const objects = await pair.objects(ferry);
    // The two attachments, and the copy relayed to the recipient (kept for the sender's "send again").
    expect(objects.keys.filter((k) => !/\/copy-[^/]+$/.test(k))).toHaveLength(2);
    expect(objects.keys.filter((k) => /\/copy-[^/]+$/.test(k))).toHaveLength(1);
    expect(objects.uploads).toEqual([]);
    expect(await countTransfers(ferry.storage.db)).toBe(1);
  });
});
