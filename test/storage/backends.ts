import crypto from 'node:crypto';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  AbortMultipartUploadCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import pg from 'pg';

// The real S3 server (Ceph RGW) and PostgreSQL the storage tests run against. .ci/run starts
// them with scripts/s3/ceph-rgw-up.sh and scripts/postgres/pg-up.sh and exports their addresses;
// a developer does the same (see docs/deploy-scale.md). Without them those suites skip and say
// why. Every test file gets its own bucket and its own database, so files running in parallel
// never see each other's data.

export interface S3Env {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** The Ceph directory of ceph-rgw-up.sh, when the server is that script's (kill tests need it). */
  cephDir?: string;
}

export function s3Env(): S3Env | undefined {
  const e = process.env;
  if (!e.FERRY_TEST_S3_ENDPOINT || !e.FERRY_TEST_S3_ACCESS_KEY || !e.FERRY_TEST_S3_SECRET_KEY) return undefined;
  return {
    endpoint: e.FERRY_TEST_S3_ENDPOINT,
    accessKeyId: e.FERRY_TEST_S3_ACCESS_KEY,
    secretAccessKey: e.FERRY_TEST_S3_SECRET_KEY,
    ...(e.FERRY_TEST_CEPH_DIR && { cephDir: e.FERRY_TEST_CEPH_DIR }),
  };
}

export const S3_MISSING =
  'FERRY_TEST_S3_ENDPOINT/_ACCESS_KEY/_SECRET_KEY not set: no S3 server (start one with `eval "$(bash scripts/s3/ceph-rgw-up.sh /tmp/ferry-ceph)"`, as .ci/run does)';
export const PG_MISSING = 'FERRY_TEST_POSTGRES_URL not set: no PostgreSQL (start one with `eval "$(bash scripts/postgres/pg-up.sh /tmp/ferry-pg)"`, as .ci/run does)';

export function pgUrl(): string | undefined {
  return process.env.FERRY_TEST_POSTGRES_URL || undefined;
}

/** Prints why a suite is skipped, so a skip is never silent. */
export function warnSkip(suite: string, reason: string): void {
  console.warn(`[skip] ${suite}: ${reason}`);
}

export function s3Admin(env: S3Env): S3Client {
  return new S3Client({
    endpoint: env.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${crypto.randomBytes(3).toString('hex')}`;
}

/** A fresh bucket for one test file. */
export async function createBucket(env: S3Env, prefix = 'ferry-test'): Promise<string> {
  const bucket = uniqueName(prefix);
  const s3 = s3Admin(env);
  try {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    s3.destroy();
  }
  return bucket;
}

/** Every object key and every incomplete multipart upload in the bucket. */
export async function bucketContents(env: S3Env, bucket: string): Promise<{ keys: string[]; uploads: { key: string; uploadId: string }[] }> {
  const s3 = s3Admin(env);
  try {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const r = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ...(token && { ContinuationToken: token }) }));
      for (const o of r.Contents ?? []) keys.push(o.Key!);
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    const r = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    const uploads = (r.Uploads ?? []).map((u) => ({ key: u.Key!, uploadId: u.UploadId! }));
    return { keys, uploads };
  } finally {
    s3.destroy();
  }
}

/** Empties and removes a bucket (best effort: a test's cleanup must not hide its result). */
export async function dropBucket(env: S3Env, bucket: string): Promise<void> {
  const s3 = s3Admin(env);
  try {
    const { keys, uploads } = await bucketContents(env, bucket);
    for (const Key of keys) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key }));
    for (const u of uploads) await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.key, UploadId: u.uploadId }));
    await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
  } catch (err) {
    console.warn(`could not remove test bucket ${bucket}: ${(err as Error).name}`);
  } finally {
    s3.destroy();
  }
}

/** The s3:// URL Ferry's configuration takes for a test bucket. */
export function s3Url(env: S3Env, bucket: string, prefix = ''): string {
  return `s3://${bucket}${prefix ? `/${prefix}` : ''}?endpoint=${encodeURIComponent(env.endpoint)}&region=us-east-1&forcePathStyle=true`;
}

/** A fresh, empty database on the test server; returns its URL. */
export async function createDatabase(baseUrl: string, prefix = 'ferry_t'): Promise<string> {
  const name = uniqueName(prefix).replace(/-/g, '_');
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const u = new URL(baseUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

export async function dropDatabase(baseUrl: string, url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  const admin = new pg.Client({ connectionString: baseUrl });
  try {
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } catch (err) {
    console.warn(`could not drop test database ${name}: ${(err as Error).message}`);
  } finally {
    await admin.end().catch(() => undefined);
  }
}
