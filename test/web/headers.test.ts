import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlobStoreUnavailableError, newToken } from '../../storage/index.js';
import { buildWebApp } from '../../web/app.js';
import { addTransfer, downloads, makeEnv, PUBLIC_URL, SpyBlobStore, waitFor, type Env, type Fixture } from './helpers.js';

// The security headers, on every route and every status: pages, files, the zip, assets, errors.

const PAGE_CSP_RE = /^default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'$/;
const FILE_CSP = "sandbox; default-src 'none'; frame-ancestors 'none'";

// probe: /healthz and /readyz (routes/health.ts), plain text for load balancers.
type Kind = 'page' | 'file' | 'asset' | 'probe';
interface Case {
  name: string;
  method?: 'GET' | 'HEAD';
  url: string;
  headers?: Record<string, string>;
  status: number;
  kind: Kind;
}

function check(c: Case, h: Record<string, unknown>, opts: { hsts: boolean }) {
  const where = `${c.name}: ${c.method ?? 'GET'} ${c.url}`;
  expect(h['x-content-type-options'], where).toBe('nosniff');
  expect(h['referrer-policy'], where).toBe('no-referrer');
  expect(h['x-frame-options'], where).toBe('DENY');
  expect(h['cross-origin-resource-policy'], where).toBe('same-origin');
  const csp = h['content-security-policy'] as string;
  expect(csp, where).toContain("frame-ancestors 'none'");
  expect(csp, where).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
  if (c.kind === 'file') expect(csp, where).toBe(FILE_CSP);
  else expect(csp, where).toMatch(PAGE_CSP_RE);
  if (c.kind === 'asset') expect(h['cache-control'], where).toBe('public, max-age=86400');
  else if (c.kind === 'probe') expect(h['cache-control'], where).toMatch(/\bno-store\b/);
  else expect(h['cache-control'], where).toBe('private, no-store');
  if (c.kind === 'file' && c.status === 200) expect(h['content-disposition'], where).toMatch(/^attachment;/);
  if (c.kind === 'page') expect(h['content-type'], where).toBe('text/html; charset=utf-8');
  expect(h['strict-transport-security'], where).toBe(opts.hsts ? 'max-age=31536000' : undefined);
  // The body length is always stated exactly (HEAD: the length GET would have).
  if (c.status !== 304) expect(h['content-length'], where).toMatch(/^\d+$/);
}

let env: Env;
let fx: Fixture;
let expired: Fixture;
let revoked: Fixture;
let cases: Case[];
let failing: SpyBlobStore;

beforeAll(async () => {
  env = await makeEnv();
  fx = await addTransfer(env, {
    files: [
      { name: 'a.txt', contentType: 'text/plain', data: Buffer.from('hello world') },
      { name: 'b.bin', data: Buffer.from('bytes') },
    ],
  });
  expired = await addTransfer(env, { expiresAt: Date.now() - 1000, files: [{ name: 'a', data: Buffer.from('a') }] });
  revoked = await addTransfer(env, { state: 'revoked', files: [{ name: 'a', data: Buffer.from('a') }] });
  const sha = fx.files[0]!.sha256;
  cases = [
    { name: 'home', url: '/', status: 200, kind: 'page' },
    { name: 'liveness', url: '/healthz', status: 200, kind: 'probe' },
    { name: 'readiness', url: '/readyz', status: 200, kind: 'probe' },
    { name: 'css', url: '/assets/ferry.css', status: 200, kind: 'asset' },
    { name: 'js', url: '/assets/ferry.js', status: 200, kind: 'asset' },
    { name: 'icon', url: '/assets/icon.svg', status: 200, kind: 'asset' },
    { name: 'favicon', url: '/favicon.ico', status: 200, kind: 'asset' },
    { name: 'landing', url: `/t/${fx.token}`, status: 200, kind: 'page' },
    { name: 'landing HEAD', method: 'HEAD', url: `/t/${fx.token}`, status: 200, kind: 'page' },
    { name: 'landing de', url: `/t/${fx.token}?lang=de`, status: 200, kind: 'page' },
    { name: 'file', url: `/t/${fx.token}/1/a.txt`, status: 200, kind: 'file' },
    { name: 'file HEAD', method: 'HEAD', url: `/t/${fx.token}/1/a.txt`, status: 200, kind: 'file' },
    { name: 'file range', url: `/t/${fx.token}/1/a.txt`, headers: { range: 'bytes=0-3' }, status: 206, kind: 'file' },
    { name: 'file 304', url: `/t/${fx.token}/1/a.txt`, headers: { 'if-none-match': `"${sha}"` }, status: 304, kind: 'file' },
    { name: 'file 412', url: `/t/${fx.token}/1/a.txt`, headers: { 'if-match': '"nope"' }, status: 412, kind: 'file' },
    { name: 'file 416', url: `/t/${fx.token}/1/a.txt`, headers: { range: 'bytes=100-' }, status: 416, kind: 'file' },
    { name: 'zip', url: `/t/${fx.token}/zip`, status: 200, kind: 'file' },
    { name: 'zip HEAD', method: 'HEAD', url: `/t/${fx.token}/zip`, status: 200, kind: 'file' },
    { name: 'unknown token', url: `/t/${newToken()}`, status: 404, kind: 'page' },
    { name: 'malformed token', url: '/t/nope/1/x', status: 404, kind: 'page' },
    { name: 'no such file', url: `/t/${fx.token}/9/x`, status: 404, kind: 'page' },
    { name: 'bad encoding', url: '/t/%E0%A4%A', status: 404, kind: 'page' },
    { name: 'unknown path', url: '/nope', status: 404, kind: 'page' },
    { name: 'expired', url: `/t/${expired.token}`, status: 410, kind: 'page' },
    { name: 'expired file', url: `/t/${expired.token}/1/a`, status: 410, kind: 'page' },
    { name: 'revoked zip', url: `/t/${revoked.token}/zip`, status: 410, kind: 'page' },
  ];
  failing = new SpyBlobStore(env.blobs);
  failing.failWith = new BlobStoreUnavailableError('down');
});

afterAll(async () => {
  await env.close();
});

async function runCases(app: FastifyInstance, opts: { hsts: boolean; headers?: Record<string, string> }) {
  for (const c of cases) {
    const res = await app.inject({ method: c.method ?? 'GET', url: c.url, headers: { ...opts.headers, ...c.headers } });
    expect(res.statusCode, `${c.name} ${c.url}`).toBe(c.status);
    check(c, res.headers, opts);
  }
}

describe('security headers over HTTP', () => {
  it('are on every route and status', async () => {
    const app = await buildWebApp({ publicUrl: PUBLIC_URL, db: env.db, blobs: env.blobs, rateLimit: false });
    await runCases(app, { hsts: false });
    // A claimed https from a proxy nobody trusts changes nothing.
    await runCases(app, { hsts: false, headers: { 'x-forwarded-proto': 'https' } });
    await app.close();
  });

  it('include HSTS behind a trusted TLS proxy, which also supplies the client address', async () => {
    const app = await buildWebApp({ publicUrl: PUBLIC_URL, db: env.db, blobs: env.blobs, rateLimit: false, trustProxy: true });
    await runCases(app, { hsts: true, headers: { 'x-forwarded-proto': 'https', 'x-forwarded-for': '198.51.100.9' } });
    await runCases(app, { hsts: false, headers: { 'x-forwarded-proto': 'http' } });
    await app.close();
    const rows = await waitFor(async () => {
      const r = await downloads(env.db, fx.transferId);
      return r.some((x) => x.client === '198.51.100.9') ? r : undefined;
    }, 'a record with the forwarded client address');
    // The zip request went through the proxy too.
    expect(rows.some((r) => r.client === '198.51.100.9' && r.file_idx === null)).toBe(true);
  });

  it('are on the 503, 500 and 429 pages too', async () => {
    const app = await buildWebApp({ publicUrl: PUBLIC_URL, db: env.db, blobs: failing, rateLimit: { max: 1000, missMax: 1 } });
    const down = await app.inject(`/t/${fx.token}/1/a.txt`);
    expect(down.statusCode).toBe(503);
    check({ name: '503', url: '', status: 503, kind: 'page' }, down.headers, { hsts: false });
    expect(down.headers['retry-after']).toBe('60');
    const zipDown = await app.inject(`/t/${fx.token}/zip`);
    expect(zipDown.statusCode).toBe(503);
    check({ name: 'zip 503', url: '', status: 503, kind: 'page' }, zipDown.headers, { hsts: false });
    await app.inject(`/t/${newToken()}`);
    const limited = await app.inject(`/t/${newToken()}`);
    expect(limited.statusCode).toBe(429);
    check({ name: '429', url: '', status: 429, kind: 'page' }, limited.headers, { hsts: false });
    await app.close();

    const broken = new SpyBlobStore(env.blobs);
    broken.failWith = new TypeError('x is undefined');
    const app2 = await buildWebApp({ publicUrl: PUBLIC_URL, db: env.db, blobs: broken, rateLimit: false });
    const err = await app2.inject(`/t/${fx.token}/1/a.txt`);
    expect(err.statusCode).toBe(500);
    check({ name: '500', url: '', status: 500, kind: 'page' }, err.headers, { hsts: false });
    await app2.close();
  });

  it('allow the configured logo origin for images, and nothing else', async () => {
    const app = await buildWebApp({ publicUrl: PUBLIC_URL, db: env.db, blobs: env.blobs, brand: { name: 'Example Corp', logoUrl: 'https://www.example.com/img/logo.png' } });
    const res = await app.inject(`/t/${fx.token}`);
    expect(res.headers['content-security-policy']).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https://www.example.com; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    );
    expect(res.body).toContain('<img class="logo" src="https://www.example.com/img/logo.png" alt="" height="32"><span class="brand">Example Corp</span>');
    // The file responses keep their sandbox.
    expect((await app.inject(`/t/${fx.token}/1/a.txt`)).headers['content-security-policy']).toBe(FILE_CSP);
    await app.close();
  });
});

const HAVE_OPENSSL = spawnSync('openssl', ['version']).status === 0;
if (!HAVE_OPENSSL) console.warn('SKIPPED HTTPS tests: openssl not found (it makes the test certificate); install Debian openssl (test/web/DEBIAN_PACKAGES)');

describe.skipIf(!HAVE_OPENSSL)('HTTPS served directly (web.tls)', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(env.dir, 'tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${dir}/key.pem`, '-out', `${dir}/cert.pem`, '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  });

  function get(port: number, url: string, method = 'GET', headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer; proto: string }> {
    return new Promise((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port, path: url, method, ca: fs.readFileSync(`${dir}/cert.pem`), agent: false, headers: { 'user-agent': 'Mozilla/5.0 tls-test', ...headers } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), proto: (res.socket as unknown as { getProtocol(): string }).getProtocol() }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  for (const form of ['paths', 'PEM text'] as const) {
    it(`serves every route over TLS with HSTS (certificate given as ${form})`, async () => {
      const tls = form === 'paths' ? { cert: `${dir}/cert.pem`, key: `${dir}/key.pem` } : { cert: fs.readFileSync(`${dir}/cert.pem`, 'utf8'), key: fs.readFileSync(`${dir}/key.pem`, 'utf8') };
      const app = await buildWebApp({ publicUrl: 'https://127.0.0.1', db: env.db, blobs: env.blobs, tls, rateLimit: false });
      await app.listen({ port: 0, host: '127.0.0.1' });
      const port = (app.server.address() as AddressInfo).port;
      try {
        for (const c of cases) {
          const res = await get(port, c.url, c.method, c.headers);
          expect(res.proto).toMatch(/^TLSv1\.[23]$/);
          expect(res.status, c.name).toBe(c.status);
          check(c, res.headers, { hsts: true });
        }
        const file = await get(port, `/t/${fx.token}/1/a.txt`);
        expect(file.body.toString()).toBe('hello world');
      } finally {
        await app.close();
      }
    });
  }

  it('refuses to start with a certificate path that cannot be read, naming the key', async () => {
    await expect(buildWebApp({ publicUrl: PUBLIC_URL, db: env.db, blobs: env.blobs, tls: { cert: `${dir}/missing.pem`, key: `${dir}/key.pem` } })).rejects.toThrow(
      /web\.tls\.cert: cannot read .*missing\.pem/,
    );
  });
});
