import crypto from 'node:crypto';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../config/index.js';
import { findTransferByTokenHash, hashToken, setState } from '../../storage/index.js';
import { startFerry, type TestFerry } from '../helpers/ferry.js';
import { dispositionName, fileLinks, sha256 } from '../helpers/mail.js';
import { Upstream } from '../helpers/upstream.js';
import { createBucket, dropBucket, S3_MISSING, s3Env, s3Url, warnSkip } from './backends.js';

// web.downloads: redirect. A file request passes Ferry's checks (token, expiry, revocation,
// limits) and then gets a 302 to a presigned URL of the S3 store, which sends the bytes with the
// same Content-Disposition and Content-Type as proxy mode, serves Range itself, and stops
// working when the URL expires.

const env = s3Env();
if (!env) warnSkip('redirect mode on S3', S3_MISSING);

describe('redirect mode needs an S3 store', () => {
  it('web.downloads = redirect with filesystem blobs is a configuration error that names the keys and the fix', () => {
    let err: unknown;
    try {
      loadConfig({ env: {}, overrides: { dataDir: '/tmp/x', web: { downloads: 'redirect' } } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/web\.downloads = "redirect" needs an S3 blob store, but storage\.blobs = "file:\/tmp\/x\/blobs"/);
    expect((err as Error).message).toMatch(/Set storage\.blobs to s3:\/\/BUCKET\?endpoint=\.\.\., or web\.downloads to proxy/);
  });
});

describe.skipIf(!env)('redirect mode on S3 (Ceph RGW)', () => {
  let bucket = '';
  let ferry: TestFerry;
  let upstream: Upstream;
  let link = '';
  const content = crypto.randomBytes(1_200_000);

  beforeAll(async () => {
    bucket = await createBucket(env!, 'ferry-redirect');
    upstream = await new Upstream().start();
    ferry = await startFerry({
      relay: { url: upstream.url },
      offload: { minAttachmentSize: 100_000 },
      web: { downloads: 'redirect', presignExpiry: '2s' },
      storage: { blobs: s3Url(env!, bucket), s3: { accessKeyId: env!.accessKeyId, secretAccessKey: env!.secretAccessKey } },
    });
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: ferry.smtpPort, secure: false, ignoreTLS: true });
    await t.sendMail({
      from: 'alice@example.com',
      to: 'bob@example.net',
      subject: 'redirect',
      text: 'x',
      attachments: [{ filename: 'Übersicht 2026.pdf', content, contentType: 'application/pdf' }],
    });
    [link] = await fileLinks(upstream.messages.at(-1)!.raw, ferry.publicUrl);
  });
  afterAll(async () => {
    await ferry?.stopAndClean();
    await upstream?.stop();
    if (bucket) await dropBucket(env!, bucket);
  });

  it('a file request gets a 302 to a presigned S3 URL that downloads the right bytes with the right name and type', async () => {
    const r = await fetch(link, { redirect: 'manual' });
    expect(r.status).toBe(302);
    expect(r.headers.get('cache-control')).toBe('private, no-store');
    expect(r.headers.get('referrer-policy')).toBe('no-referrer');
    const location = r.headers.get('location')!;
    expect(location.startsWith(`${env!.endpoint}/${bucket}/`)).toBe(true);
    expect(location).toMatch(/X-Amz-Signature=/);

    // What proxy mode would send: HEAD is always answered by Ferry itself, from the records.
    const head = await fetch(link, { method: 'HEAD' });
    const s3 = await fetch(location);
    expect(s3.status).toBe(200);
    expect(sha256(Buffer.from(await s3.arrayBuffer()))).toBe(sha256(content));
    expect(s3.headers.get('content-disposition')).toBe(head.headers.get('content-disposition'));
    expect(dispositionName(s3.headers.get('content-disposition'))).toBe('Übersicht 2026.pdf');
    expect(s3.headers.get('content-type')).toBe(head.headers.get('content-type'));
  });

  it('Range works through the redirect (the store answers it)', async () => {
    const r = await fetch(link, { headers: { range: 'bytes=1000-1999' } });
    expect(r.status).toBe(206);
    expect(r.headers.get('content-range')).toBe(`bytes 1000-1999/${content.length}`);
    expect(Buffer.from(await r.arrayBuffer()).equals(content.subarray(1000, 2000))).toBe(true);
  });

  it('the presigned URL stops working once it expires, and the next request to Ferry mints a fresh one', async () => {
    const location = (await fetch(link, { redirect: 'manual' })).headers.get('location')!;
    expect((await fetch(location)).status).toBe(200);
    await new Promise((res) => setTimeout(res, 3200));
    expect((await fetch(location)).status).toBe(403);
    const again = await fetch(link);
    expect(again.status).toBe(200);
    expect(sha256(Buffer.from(await again.arrayBuffer()))).toBe(sha256(content));
  });

  it('a revoked transfer gets no URL at all: the checks come first', async () => {
    const token = /\/t\/([A-Za-z0-9_-]{27})\//.exec(link)![1]!;
    const t = (await findTransferByTokenHash(ferry.storage.db, hashToken(token)))!;
    await setState(ferry.storage.db, t.id, 'revoked');
    const r = await fetch(link, { redirect: 'manual' });
    expect(r.status).toBe(410);
    expect(r.headers.get('location')).toBeNull();
  });
});
