import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore, openDatabase, S3BlobStore, type Db } from '../../storage/index.js';
import { buildWebApp } from '../../web/app.js';
import { createBucket, createDatabase, dropBucket, dropDatabase, pgUrl, PG_MISSING, s3Env, S3_MISSING, warnSkip } from '../storage/backends.js';
import { addTransfer, downloads, httpRequest, PUBLIC_URL, sha256, waitFor, type Env } from '../web/helpers.js';

// Issue 15 item 3: with a download limit of 1, eight parallel GETs each received the whole file.
// A download that can complete is reserved in the database before its first byte, atomically,
// so at most `limit` ever start. Two web apps with their own database connections stand for two
// worker processes (or two nodes): the limit must hold across them, not only within one.

const BROWSER = 'Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0';
const PARALLEL = 50;

interface Site {
  env: Env;
  /** A second connection to the same database, as another process has. */
  db2: Db;
  apps: FastifyInstance[];
  bases: string[];
  close(): Promise<void>;
}

async function startSite(databaseUrl: string, dir: string, dropDb?: () => Promise<void>): Promise<Site> {
  const db = await openDatabase(databaseUrl);
  const db2 = await openDatabase(databaseUrl);
  const blobs = new FsBlobStore(`${dir}/blobs`);
  const apps: FastifyInstance[] = [];
  const bases: string[] = [];
  for (const d of [db, db2]) {
    const app = await buildWebApp({ publicUrl: PUBLIC_URL, db: d, blobs, rateLimit: false, maxDownloads: 1 });
    await app.listen({ port: 0, host: '127.0.0.1' });
    apps.push(app);
    bases.push(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`);
  }
  const env: Env = {
    dir,
    db,
    blobs,
    async close() {
      await db.destroy();
    },
  };
  return {
    env,
    db2,
    apps,
    bases,
    async close() {
      for (const app of apps) await app.close();
      await db2.destroy();
      await db.destroy();
      await dropDb?.();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A GET read to the end (or to the status page). */
function get(url: string, headers: Record<string, string> = {}) {
  return httpRequest(url, { headers: { 'user-agent': BROWSER, ...headers } });
}

function suite(name: string, open: () => Promise<Site | undefined>) {
  describe(name, () => {
    let site: Site | undefined;
    beforeAll(async () => {
      site = await open();
    });
    afterAll(async () => {
      await site?.close();
    });

    it(`${PARALLEL} parallel GETs of a file with a limit of 1: exactly one gets the file`, async ({ skip }) => {
      if (!site) return skip();
      const data = randomBytes(3 * 1024 * 1024);
      const fx = await addTransfer(site.env, { files: [{ name: 'report.bin', data }] });
      const results = await Promise.all(
        Array.from({ length: PARALLEL }, (_, i) => get(`${site!.bases[i % 2]}/t/${fx.token}/1/report.bin`)),
      );
      const ok = results.filter((r) => r.status === 200);
      expect(ok).toHaveLength(1);
      expect(sha256(ok[0]!.body)).toBe(fx.files[0]!.sha256);
      expect(results.filter((r) => r.status === 410)).toHaveLength(PARALLEL - 1);
      const rows = await waitFor(async () => {
        const r = await downloads(site!.env.db, fx.transferId);
        return r.length === 1 && r[0]!.counted === 1 ? r : undefined;
      }, 'the one counted download');
      expect(rows[0]).toMatchObject({ counted: 1, slot: 1, status: 200, bytes_sent: data.length });
      // And it stays used up.
      expect((await get(`${site.bases[1]}/t/${fx.token}/1/report.bin`)).status).toBe(410);
    });

    it(`${PARALLEL} parallel requests mixing the file, the zip and scanner agents: at most one complete copy`, async ({ skip }) => {
      if (!site) return skip();
      const fx = await addTransfer(site.env, {
        files: [
          { name: 'a.bin', data: randomBytes(512 * 1024) },
          { name: 'b.bin', data: randomBytes(512 * 1024) },
        ],
      });
      const t = fx.token;
      const urls = Array.from({ length: PARALLEL }, (_, i) => {
        const base = site!.bases[i % 2];
        return i % 3 === 0 ? `${base}/t/${t}/zip` : `${base}/t/${t}/1/a.bin`;
      });
      const results = await Promise.all(urls.map((u, i) => get(u, i % 5 === 0 ? { 'user-agent': 'Mozilla/5.0 Teams/1.7' } : {})));
      const copiesOfA = results.filter((r, i) => r.status === 200 && (urls[i]!.endsWith('/zip') || sha256(r.body) === fx.files[0]!.sha256));
      expect(copiesOfA).toHaveLength(1);
      expect(results.filter((r) => r.status === 410)).toHaveLength(PARALLEL - 1);
    });

    it('a download that breaks off gives its reservation back', async ({ skip }) => {
      if (!site) return skip();
      const fx = await addTransfer(site.env, { files: [{ name: 'big.bin', data: randomBytes(24 * 1024 * 1024) }] });
      const url = `${site.bases[0]}/t/${fx.token}/1/big.bin`;
      await new Promise<void>((resolve) => {
        const req = http.get(url, { agent: false, headers: { 'user-agent': BROWSER } }, (res) => {
          expect(res.statusCode).toBe(200);
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        });
        req.on('error', () => undefined);
      });
      await waitFor(async () => {
        const r = await downloads(site!.env.db, fx.transferId);
        return r.length === 1 && r[0]!.slot === 0 ? r : undefined;
      }, 'the released reservation');
      const again = await get(`${site.bases[1]}/t/${fx.token}/1/big.bin`);
      expect(again.status).toBe(200);
      expect(sha256(again.body)).toBe(fx.files[0]!.sha256);
    });
  });
}

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-limit-test-'));
}

suite('download limit on SQLite (two connections)', async () => {
  const dir = tmp();
  return startSite(`sqlite:${dir}/db.sqlite`, dir);
});

suite('download limit on PostgreSQL (two pools)', async () => {
  const base = pgUrl();
  if (!base) {
    warnSkip('download limit on PostgreSQL', PG_MISSING);
    return undefined;
  }
  const url = await createDatabase(base, 'ferry_limit');
  return startSite(url, tmp(), () => dropDatabase(base, url));
});

describe('download limit in redirect mode (S3 presigned URLs)', () => {
  const s3 = s3Env();
  if (!s3) warnSkip('download limit in redirect mode', S3_MISSING);
  let bucket = '';
  let dir = '';
  let env: Env | undefined;
  let app: FastifyInstance | undefined;
  let base = '';

  beforeAll(async () => {
    if (!s3) return;
    bucket = await createBucket(s3, 'ferry-limit');
    dir = tmp();
    const db = await openDatabase(`sqlite:${dir}/db.sqlite`);
    const blobs = new S3BlobStore({ bucket, endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey });
    env = { dir, db, blobs: blobs as unknown as FsBlobStore, close: () => db.destroy() };
    app = await buildWebApp({ publicUrl: PUBLIC_URL, db, blobs, rateLimit: false, maxDownloads: 1, downloads: { mode: 'redirect', presignExpirySeconds: 60 } });
    await app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await app?.close();
    await env?.db.destroy();
    if (s3 && bucket) await dropBucket(s3, bucket);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it(`${PARALLEL} parallel GETs with a limit of 1: exactly one presigned URL is handed out`, async ({ skip }) => {
    if (!env) return skip();
    const fx = await addTransfer(env, { files: [{ name: 'r.bin', data: randomBytes(100_000) }] });
    const results = await Promise.all(Array.from({ length: PARALLEL }, () => get(`${base}/t/${fx.token}/1/r.bin`)));
    expect(results.filter((r) => r.status === 302)).toHaveLength(1);
    expect(results.filter((r) => r.status === 410)).toHaveLength(PARALLEL - 1);
    const location = results.find((r) => r.status === 302)!.headers.location!;
    expect(sha256(Buffer.from(await (await fetch(location)).arrayBuffer()))).toBe(fx.files[0]!.sha256);
    await waitFor(async () => (await downloads(env!.db, fx.transferId)).some((r) => r.counted === 1 && r.status === 302) || undefined, 'the counted redirect');
  });
});
