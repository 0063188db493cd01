import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../config/index.js';
import { parseS3Url } from '../../config/s3-url.js';

// The configuration of the scale-out backends: s3:// and postgres:// URLs, their settings,
// web.downloads, errors that name the key and the fix, and secrets that never show.

const ROOT = path.resolve(import.meta.dirname, '../..');

function fails(overrides: Record<string, unknown>, env: Record<string, string> = {}): string {
  try {
    loadConfig({ env, overrides });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a configuration error');
}

describe('storage.blobs = s3://...', () => {
  it('takes bucket, prefix, endpoint, region and path style from the URL, and the rest from storage.s3 with safe defaults', () => {
    const c = loadConfig({
      env: {},
      overrides: { storage: { blobs: 's3://ferry-files/prod?endpoint=https://s3.example.com:9000&region=eu-central-1&forcePathStyle=true', s3: { partSize: '16MiB', maxConcurrentUploads: 4 } } },
    });
    expect(c.storage.blobs).toMatch(/^s3:\/\/ferry-files\/prod\?/);
    expect(parseS3Url(c.storage.blobs)).toEqual({ bucket: 'ferry-files', prefix: 'prod/', endpoint: 'https://s3.example.com:9000', region: 'eu-central-1', forcePathStyle: true });
    expect(c.storage.s3).toMatchObject({ partSize: 16 * 1024 * 1024, queueSize: 2, maxConcurrentUploads: 4, maxAttempts: 3, checksums: 'WHEN_REQUIRED', requestTimeout: 30_000, connectTimeout: 5_000 });
    expect(c.web.downloads).toBe('proxy');
  });

  it.each([
    ['s3://Bad_Bucket?endpoint=http://x', /storage\.blobs = "s3:\/\/Bad_Bucket\?endpoint=http:\/\/x" is not allowed .*bucket name "bad_bucket" is not valid/i],
    ['s3://files?endpoint=http://x&acl=public', /unknown parameter "acl" in the s3:\/\/ URL \(known: endpoint, region, forcePathStyle, publicEndpoint; credentials and limits go under storage\.s3\)/],
    ['s3://files?endpoint=s3.example.com', /endpoint must be http\(s\):\/\/HOST\[:PORT\] without a path/],
    ['s3://files?forcePathStyle=yes', /forcePathStyle must be true or false/],
    ['minio://files', /expected file:DIRECTORY or s3:\/\/BUCKET/],
  ])('%s is refused with a message that names the key and the fix', (url, re) => {
    expect(fails({ storage: { blobs: url } })).toMatch(re);
  });

  it('credentials in the URL are refused, and the secret is not repeated in the message', () => {
    const msg = fails({ storage: { blobs: 's3://AKIAEXAMPLE:topsecretvalue@files?endpoint=http://x' } });
    expect(msg).toMatch(/credentials do not belong in the s3:\/\/ URL .*storage\.s3\.accessKeyId and storage\.s3\.secretAccessKey, or the AWS_ACCESS_KEY_ID/);
    expect(msg).not.toContain('topsecretvalue');
  });

  it('an access key without its secret is refused', () => {
    expect(fails({ storage: { s3: { accessKeyId: 'AKIAEXAMPLE' } } })).toMatch(/storage\.s3\.accessKeyId .*set both storage\.s3\.accessKeyId and storage\.s3\.secretAccessKey, or neither/);
  });

  it('limits outside what S3 allows are refused', () => {
    expect(fails({ storage: { s3: { partSize: '1MB' } } })).toMatch(/storage\.s3\.partSize = "1MB" is not allowed .*from 5MiB to 5GiB/);
    expect(fails({ storage: { s3: { checksums: 'CRC32' } } })).toMatch(/storage\.s3\.checksums .*WHEN_REQUIRED/);
  });

  it('a bad secret is named but never shown', () => {
    const msg = fails({}, { FERRY_STORAGE_S3_SECRET_ACCESS_KEY: '' });
    expect(msg).toMatch(/^storage\.s3\.secretAccessKey = "\*\*\*" is not allowed \(set in FERRY_STORAGE_S3_SECRET_ACCESS_KEY\)/);
  });
});

describe('storage.database = postgres://...', () => {
  it('is accepted, with pool settings under storage.postgres', () => {
    const c = loadConfig({ env: { FERRY_STORAGE_DATABASE: 'postgres://ferry:s3cr%40t@db.example.com:5432/ferry' }, overrides: { storage: { postgres: { maxConnections: 20 } } } });
    expect(c.storage.database).toBe('postgres://ferry:s3cr%40t@db.example.com:5432/ferry');
    expect(c.storage.postgres).toEqual({ maxConnections: 20, connectTimeout: 5000, statementTimeout: 30000 });
  });

  it('a malformed URL is refused without showing its password', () => {
    const msg = fails({}, { FERRY_STORAGE_DATABASE: 'postgres://ferry:hunter2@' });
    expect(msg).toMatch(/^storage\.database = "postgres:\/\/ferry:\*\*\*@" is not allowed \(set in FERRY_STORAGE_DATABASE\): expected sqlite:FILE or postgres:\/\/USER:PASSWORD@HOST:PORT\/DATABASE/);
    expect(msg).not.toContain('hunter2');
    expect(fails({ storage: { database: 'mysql://x/y' } })).toMatch(/expected sqlite:FILE or postgres:/);
  });
});

describe('web.downloads', () => {
  it('redirect with an S3 store, and a presign expiry within what S3 allows', () => {
    const c = loadConfig({ env: {}, overrides: { storage: { blobs: 's3://files?endpoint=http://127.0.0.1:7480' }, web: { downloads: 'redirect', presignExpiry: '10m' } } });
    expect(c.web.downloads).toBe('redirect');
    expect(c.web.presignExpiry).toBe(600_000);
    expect(fails({ web: { downloads: 'cdn' } })).toMatch(/web\.downloads = "cdn" is not allowed .*expected proxy or redirect/);
    expect(fails({ storage: { blobs: 's3://files' }, web: { downloads: 'redirect', presignExpiry: '8d' } })).toMatch(/web\.presignExpiry .*from 1s to 7d/);
  });
});

describe('ferry check-config', () => {
  it('prints the effective configuration with every secret masked', async () => {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', `import('./cli/main.ts').then((m) => m.main(['check-config']))`],
      {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH,
          NODE_NO_WARNINGS: '1',
          FERRY_STORAGE_BLOBS: 's3://files/ferry?endpoint=http://127.0.0.1:7480',
          FERRY_STORAGE_DATABASE: 'postgres://ferry:dbpassword42@127.0.0.1:5432/ferry',
          FERRY_STORAGE_S3_ACCESS_KEY_ID: 'AKIAEXAMPLE',
          FERRY_STORAGE_S3_SECRET_ACCESS_KEY: 'verysecretkeyvalue',
          FERRY_STORAGE_S3_SESSION_TOKEN: 'sessiontokenvalue',
          FERRY_RELAY_URL: 'smtps://relay:relaypassword@smtp.example.com:465',
        },
      },
    );
    expect(stderr).toMatch(/configuration .* is valid/);
    const printed = JSON.parse(stdout) as { storage: Record<string, any>; relay: { url: string } };
    expect(printed.storage.s3.accessKeyId).toBe('AKIAEXAMPLE');
    expect(printed.storage.s3.secretAccessKey).toBe('***');
    expect(printed.storage.s3.sessionToken).toBe('***');
    expect(printed.storage.database).toBe('postgres://ferry:***@127.0.0.1:5432/ferry');
    expect(printed.relay.url).toBe('smtps://relay:***@smtp.example.com:465');
    for (const secret of ['dbpassword42', 'verysecretkeyvalue', 'sessiontokenvalue', 'relaypassword']) expect(stdout).not.toContain(secret);
  });
});
