import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, redactConfig } from '../../config/index.js';
import { DAY_MS, recordDownload, seedRetentionRules } from '../../storage/index.js';
import { buildSite } from '../../admin/site.js';
import { addTransfer, makeEnv, PUBLIC_URL, type Env, type Fixture } from '../web/helpers.js';

const ALICE = 'alice-token-0123456789abcdefghij';
const BOB = 'bob-token-0123456789abcdefghijklm';
const bounds = { defaultMs: 30 * DAY_MS, minMs: DAY_MS, maxMs: 90 * DAY_MS };

let env: Env;
let app: FastifyInstance;
let t1: Fixture;
let t2: Fixture;
let t3: Fixture;
const day0 = Date.UTC(2026, 10, 1);

const auth = (token = ALICE) => ({ authorization: `Bearer ${token}` });
async function api(method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, body?: unknown, token: string | null = ALICE) {
  const res = await app.inject({ method, url: `/admin/api${url}`, headers: token ? auth(token) : {}, ...(body !== undefined ? { payload: body as object } : {}) });
  return { status: res.statusCode, body: res.headers['content-type']?.toString().includes('json') ? res.json() : res.body, headers: res.headers };
}

beforeAll(async () => {
  env = await makeEnv();
  await seedRetentionRules(env.db, bounds);
  app = await buildSite({ publicUrl: PUBLIC_URL, db: env.db, blobs: env.blobs, rateLimit: false, admin: { tokens: [`alice:${ALICE}`, BOB], retention: bounds } });
  const now = Date.now();
  t1 = await addTransfer(env, { files: [{ name: 'Quarterly report.pdf', data: Buffer.from('pdf') }], sender: 'carol@corp.example', createdAt: day0, expiresAt: now + 5 * DAY_MS });
  t2 = await addTransfer(env, { files: [{ name: 'holiday.jpg', data: Buffer.from('jpg') }, { name: 'notes.txt', data: Buffer.from('txt') }], sender: 'dave@corp.example', createdAt: day0 + DAY_MS, expiresAt: now + 5 * DAY_MS });
  t3 = await addTransfer(env, { files: [{ name: 'old.zip', data: Buffer.from('zip') }], sender: 'erin@other.example', createdAt: now - 2 * DAY_MS, expiresAt: now - 1000 });
  await recordDownload(env.db, { transferId: t1.transferId, fileIdx: 1, status: 200, bytesSent: 3, range: null, client: '192.0.2.7', userAgent: 'curl/8', counted: true, method: 'GET' });
});
afterAll(async () => {
  await app?.close();
  await env?.close();
});

describe('authentication', () => {
  it.each([
    ['no header', null],
    ['a wrong token', 'not-the-token-0123456789abcdef'],
    ['an empty bearer', ''],
  ])('answers 401 with %s, on every endpoint', async (_what, token) => {
    for (const [method, url] of [
      ['GET', '/transfers'],
      ['GET', `/transfers/${'a'.repeat(16)}`],
      ['POST', `/transfers/${'a'.repeat(16)}/revoke`],
      ['DELETE', `/transfers/${'a'.repeat(16)}`],
      ['GET', '/rules'],
      ['PUT', '/rules/default'],
      ['GET', '/stats'],
      ['GET', '/audit'],
      ['GET', '/audit/export'],
    ] as const) {
      const r = await api(method, url, undefined, token);
      expect(r.status, `${method} ${url}`).toBe(401);
      expect(r.headers['www-authenticate']).toBe('Bearer realm="ferry-admin"');
      expect((r.body as { error: { code: string } }).error.code).toBe('FERRY_ERR_UNAUTHORIZED');
    }
  });

  it('accepts every configured token; the audit log names the admin', async () => {
    expect((await api('GET', '/rules', undefined, BOB)).status).toBe(200);
    expect((await api('GET', '/rules', undefined, ALICE)).status).toBe(200);
  });

  it('serves the OpenAPI description without a token, covering every endpoint', async () => {
    const r = await api('GET', '/openapi.json', undefined, null);
    expect(r.status).toBe(200);
    const doc = r.body as { openapi: string; paths: Record<string, Record<string, unknown>> };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths).sort()).toEqual(
      ['/audit', '/audit/export', '/queue', '/queue/retry', '/queue/{id}', '/queue/{id}/retry', '/rules', '/rules/reapply', '/rules/{id}', '/stats', '/transfers', '/transfers/{id}', '/transfers/{id}/expiry', '/transfers/{id}/hold', '/transfers/{id}/recipients/revoke', '/transfers/{id}/release', '/transfers/{id}/revoke'].sort(),
    );
    const params = (doc.paths['/transfers']!.get as { parameters: { name: string }[] }).parameters.map((p) => p.name);
    expect(params).toEqual(expect.arrayContaining(['sender', 'recipient', 'file', 'from', 'to', 'state', 'limit', 'cursor']));
  });

  it('tokens are configuration secrets: check-config prints them masked; short ones are refused', () => {
    const c = loadConfig({ env: { FERRY_ADMIN_TOKENS: `alice:${ALICE},${BOB}` }, overrides: { admin: { token: ALICE } } });
    expect(c.admin.tokens).toEqual([`alice:${ALICE}`, BOB]);
    const shown = JSON.stringify(redactConfig(c));
    expect(shown).not.toContain(ALICE);
    expect(shown).not.toContain(BOB);
    expect(() => loadConfig({ env: {}, overrides: { admin: { token: 'short' } } })).toThrow(/admin\.token.*at least 24 characters/);
    // A named token whose secret is short is refused, not taken as one long unnamed token.
    expect(() => loadConfig({ env: { FERRY_ADMIN_TOKENS: 'alice:0123456789abcdefgh' }, overrides: {} })).toThrow(/admin\.tokens.*NAME:TOKEN/);
    expect(loadConfig({ env: { FERRY_ADMIN_TOKENS: 'alice:0123456789abcdefghijklmn' }, overrides: {} }).admin.tokens).toEqual(['alice:0123456789abcdefghijklmn']);
  });

  it('requests without any token are not failures: 20 of them from one address, then the right token works at once', async () => {
    const limited = await buildSite({ publicUrl: PUBLIC_URL, db: env.db, blobs: env.blobs, admin: { token: ALICE, retention: bounds } });
    try {
      for (let i = 0; i < 25; i++) {
        const r = await limited.inject({ url: '/admin/api/rules', headers: i % 2 ? {} : { authorization: 'Basic Zm9vOmJhcg==' } });
        expect(r.statusCode).toBe(401);
      }
      // Empty login forms are not wrong tokens either.
      for (let i = 0; i < 25; i++) {
        const page = await limited.inject({ url: '/admin/login' });
        const nonce = /name="_nonce" value="([^"]+)"/.exec(page.body)![1]!;
        const r = await limited.inject({ method: 'POST', url: '/admin/login', headers: { cookie: `ferry_admin_login=${nonce}`, 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams({ token: '', _nonce: nonce }).toString() });
        expect(r.statusCode).toBe(400);
      }
      expect((await limited.inject({ url: '/admin/api/rules', headers: auth(ALICE) })).statusCode).toBe(200);
      // And a wrong token is still counted from the first one on: nothing above used up the allowance.
      expect((await limited.inject({ url: '/admin/api/rules', headers: auth('wrong-0123456789abcdefghijklmn') })).statusCode).toBe(401);
    } finally {
      await limited.close();
    }
  });

  it('after 20 wrong tokens an address gets 429 for wrong ones, but the right token still gets in after the short delay, in the API and the UI', async () => {
    const limited = await buildSite({ publicUrl: PUBLIC_URL, db: env.db, blobs: env.blobs, admin: { token: ALICE, retention: bounds, authLimit: { delayMs: 200 } } });
    try {
      for (let i = 0; i < 20; i++) {
        expect((await limited.inject({ url: '/admin/api/rules', headers: auth(`wrong-${i}-0123456789abcdefghijkl`) })).statusCode).toBe(401);
      }
      const wrong = await limited.inject({ url: '/admin/api/rules', headers: auth('wrong-again-0123456789abcdefghij') });
      expect(wrong.statusCode).toBe(429);
      expect(Number(wrong.headers['retry-after'])).toBeGreaterThan(0);
      expect((wrong.json() as { error: { code: string } }).error.code).toBe('FERRY_ERR_RATE_LIMITED');
      const right = await limited.inject({ url: '/admin/api/rules', headers: auth(ALICE) });
      expect(right.statusCode).toBe(200);
      const other = await limited.inject({ url: '/admin/api/rules', headers: auth(ALICE), remoteAddress: '192.0.2.99' });
      expect(other.statusCode).toBe(200);
      const loginWith = async (token: string) => {
        const page = await limited.inject({ url: '/admin/login' });
        const nonce = /name="_nonce" value="([^"]+)"/.exec(page.body)![1]!;
        return limited.inject({
          method: 'POST',
          url: '/admin/login',
          headers: { cookie: `ferry_admin_login=${nonce}`, 'content-type': 'application/x-www-form-urlencoded' },
          payload: new URLSearchParams({ token, _nonce: nonce }).toString(),
        });
      };
      expect((await loginWith('wrong-login-0123456789abcdefghij')).statusCode).toBe(429);
      const ok = await loginWith(ALICE);
      expect(ok.statusCode).toBe(303);
      expect(ok.headers.location).toBe('/admin');
    } finally {
      await limited.close();
    }
  });

  it('is off entirely when no token is configured', async () => {
    const off = await buildSite({ publicUrl: PUBLIC_URL, db: env.db, blobs: env.blobs, rateLimit: false, admin: { retention: bounds } });
    try {
      expect((await off.inject({ url: '/admin/api/transfers', headers: auth() })).statusCode).toBe(404);
      expect((await off.inject({ url: '/admin/api/openapi.json' })).statusCode).toBe(404);
      expect((await off.inject({ url: '/admin' })).statusCode).toBe(404);
    } finally {
      await off.close();
    }
  });
});

describe('transfers: search and detail', () => {
  it.each([
    ['?file=quarterly', () => [t1.transferId]],
    ['?file=NOTES', () => [t2.transferId]],
    ['?sender=corp.example', () => [t2.transferId, t1.transferId]],
    ['?recipient=bob@example.net&sender=erin', () => [t3.transferId]],
    [`?from=2026-11-02&to=2026-11-03`, () => [t2.transferId]],
    // A bare 'to' date includes that whole day.
    [`?from=2026-11-02&to=2026-11-02`, () => [t2.transferId]],
    [`?to=2026-11-01`, () => [t1.transferId]],
    ['?state=expired', () => [t3.transferId]],
    ['?file=%25', () => []],
  ])('GET /transfers%s', async (qs, expected) => {
    const r = await api('GET', `/transfers${qs}`);
    expect(r.status).toBe(200);
    const ids = (r.body as { items: { id: string }[] }).items.map((i) => i.id).filter((id) => [t1.transferId, t2.transferId, t3.transferId].includes(id));
    expect(ids).toEqual(expected());
  });

  it('paginates with limit and cursor, newest first, without overlap', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r = await api('GET', `/transfers?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      expect(r.status).toBe(200);
      const b = r.body as { items: { id: string; createdAt: string }[]; nextCursor: string | null };
      expect(b.items.length).toBeLessThanOrEqual(1);
      seen.push(...b.items.map((i) => i.id));
      cursor = b.nextCursor;
      pages++;
    } while (cursor && pages < 10);
    expect(seen).toEqual([t3.transferId, t2.transferId, t1.transferId]);
  });

  it.each([
    ['?state=gone', /state: expected one of/],
    ['?limit=0', /limit: expected 1 to 200/],
    ['?limit=500', /limit: expected 1 to 200/],
    ['?from=yesterday', /from: expected a date/],
    ['?cursor=bm9wZQ', /cursor/],
    ['?colour=red', /colour|Unrecognized/i],
  ])('GET /transfers%s answers 400 naming the problem', async (qs, message) => {
    const r = await api('GET', `/transfers${qs}`);
    expect(r.status).toBe(400);
    expect((r.body as { error: { message: string } }).error.message).toMatch(message);
  });

  it('shows a transfer with its files, download log and history', async () => {
    const r = await api('GET', `/transfers/${t1.transferId}`);
    expect(r.status).toBe(200);
    const b = r.body as Record<string, any>;
    expect(b).toMatchObject({ id: t1.transferId, state: 'live', sender: 'carol@corp.example', fileCount: 1, countedDownloads: 1 });
    expect(b.files).toEqual([expect.objectContaining({ idx: 1, name: 'Quarterly report.pdf', size: 3 })]);
    expect(b.downloads[0]).toMatchObject({ fileIdx: 1, status: 200, client: '192.0.2.7', counted: true });
    expect(b.audit.map((e: { action: string }) => e.action)).toEqual(expect.arrayContaining(['downloaded', 'stored', 'link_issued']));
  });

  it('answers 404 for an unknown transfer and 400 for a malformed id', async () => {
    expect((await api('GET', `/transfers/${'z'.repeat(16)}`)).status).toBe(404);
    expect((await api('GET', '/transfers/NOT..valid')).status).toBe(400);
  });
});

describe('transfers: actions', () => {
  it('revoke stops the links at once (410) and is audited with the admin name', async () => {
    const t = await addTransfer(env, { files: [{ name: 'a.txt', data: Buffer.from('a') }] });
    expect((await app.inject({ url: `/t/${t.token}` })).statusCode).toBe(200);
    const r = await api('POST', `/transfers/${t.transferId}/revoke`, { reason: 'sent to the wrong person' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ state: 'revoked' });
    expect((await app.inject({ url: `/t/${t.token}` })).statusCode).toBe(410);
    expect((await app.inject({ url: `/t/${t.token}/1/a.txt` })).statusCode).toBe(410);
    expect((await api('POST', `/transfers/${t.transferId}/revoke`)).status).toBe(409);
    const audit = (await api('GET', `/audit?transferId=${t.transferId}&action=revoked`)).body as { items: { actor: string; detail: unknown }[] };
    expect(audit.items[0]).toMatchObject({ actor: 'admin:alice', detail: { reason: 'sent to the wrong person' } });
    expect((await api('POST', `/transfers/${t.transferId}/revoke`, { reason: 5 })).status).toBe(400);
  });

  it('extends and shortens within the minimum and maximum', async () => {
    const created = Date.now() - DAY_MS;
    const t = await addTransfer(env, { files: [{ name: 'b.txt', data: Buffer.from('b') }], createdAt: created, expiresAt: created + 10 * DAY_MS });
    let r = await api('POST', `/transfers/${t.transferId}/expiry`, { addDays: 5 });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ expiresAt: new Date(created + 15 * DAY_MS).toISOString(), retentionRule: 'admin' });
    r = await api('POST', `/transfers/${t.transferId}/expiry`, { expiresAt: new Date(created + 3 * DAY_MS).toISOString() });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ expiresAt: new Date(created + 3 * DAY_MS).toISOString() });
    r = await api('POST', `/transfers/${t.transferId}/expiry`, { addDays: 200 });
    expect(r.status).toBe(400);
    expect((r.body as { error: { message: string } }).error.message).toMatch(/between .* \(1 to 90 days after the transfer was created\)/);
    expect((await api('POST', `/transfers/${t.transferId}/expiry`, { expiresAt: new Date(created + 3600_000).toISOString() })).status).toBe(400);
    expect((await api('POST', `/transfers/${t.transferId}/expiry`, {})).status).toBe(400);
    expect((await api('POST', `/transfers/${t.transferId}/expiry`, { addDays: 1, expiresAt: '2026-12-01' })).status).toBe(400);
    expect((await api('POST', `/transfers/${t.transferId}/expiry`, { addDays: 'ten' })).status).toBe(400);
    const audit = (await api('GET', `/audit?transferId=${t.transferId}&action=extended`)).body as { items: unknown[] };
    expect(audit.items).toHaveLength(2);
  });

  it('hold blocks delete; release allows it; delete removes the files and the links answer 404', async () => {
    const t = await addTransfer(env, { files: [{ name: 'c.txt', data: Buffer.from('c') }] });
    let r = await api('POST', `/transfers/${t.transferId}/hold`, { reason: 'case 42' });
    expect(r.body).toMatchObject({ held: true, holdReason: 'case 42', heldBy: 'admin:alice' });
    r = await api('DELETE', `/transfers/${t.transferId}`);
    expect(r.status).toBe(409);
    expect((r.body as { error: { message: string } }).error.message).toMatch(/legal hold/);
    expect(await env.blobs.exists(t.files[0]!.blobKey)).toBe(true);
    r = await api('POST', `/transfers/${t.transferId}/release`);
    expect(r.body).toMatchObject({ held: false });
    r = await api('DELETE', `/transfers/${t.transferId}`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ state: 'deleted' });
    expect(await env.blobs.exists(t.files[0]!.blobKey)).toBe(false);
    expect((await app.inject({ url: `/t/${t.token}` })).statusCode).toBe(404);
    expect((await api('DELETE', `/transfers/${'q'.repeat(16)}`)).status).toBe(404);
  });
});

describe('rules', () => {
  it('lists, creates, changes and deletes rules; bad input is 400 with the field', async () => {
    let r = await api('GET', '/rules');
    expect((r.body as { items: { id: string }[] }).items.map((i) => i.id)).toEqual(['default', 'minimum', 'maximum']);
    r = await api('PUT', '/rules/recipient_domain:Partner.Example', { days: 7, downloadLimit: 3 });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ id: 'recipient_domain:partner.example', days: 7, downloadLimit: 3, source: 'admin', updatedBy: 'admin:alice' });
    r = await api('PUT', '/rules/recipient_domain:partner.example', { days: 14, downloadLimit: null });
    expect(r.body).toMatchObject({ days: 14, downloadLimit: null });
    for (const [url, body, msg] of [
      ['/rules/recipient_domain:partner.example', { days: -1 }, /days: expected more than 0/],
      ['/rules/recipient_domain:partner.example', { days: 400 }, /between the minimum/],
      ['/rules/recipient_domain:partner.example', { days: 5, downloadLimit: 0 }, /downloadLimit/],
      ['/rules/recipient_domain:partner.example', { days: '5' }, /days: expected a number/],
      ['/rules/sender:not-an-address', { days: 5 }, /not a mail address/],
      ['/rules/colour:red', { days: 5 }, /id: expected default/],
      ['/rules/default', { days: 200 }, /must lie between/],
    ] as const) {
      const e = await api('PUT', url, body);
      expect(e.status, url).toBe(400);
      expect((e.body as { error: { message: string } }).error.message).toMatch(msg);
    }
    expect((await api('DELETE', '/rules/recipient_domain:partner.example')).status).toBe(200);
    expect((await api('DELETE', '/rules/recipient_domain:partner.example')).status).toBe(404);
    expect((await api('DELETE', '/rules/default')).status).toBe(400);
  });

  it('reapply changes live transfers only when asked', async () => {
    const created = Date.now() - DAY_MS;
    const t = await addTransfer(env, { files: [{ name: 'd.txt', data: Buffer.from('d') }], sender: 'zed@reapply.example', createdAt: created, expiresAt: created + 30 * DAY_MS });
    await api('PUT', '/rules/sender_domain:reapply.example', { days: 4 });
    expect((await api('GET', `/transfers/${t.transferId}`)).body).toMatchObject({ expiresAt: new Date(created + 30 * DAY_MS).toISOString() });
    const r = await api('PUT', '/rules/sender_domain:reapply.example', { days: 5, reapply: true });
    expect((r.body as { reappliedTransfers: number }).reappliedTransfers).toBeGreaterThanOrEqual(1);
    expect((await api('GET', `/transfers/${t.transferId}`)).body).toMatchObject({ expiresAt: new Date(created + 5 * DAY_MS).toISOString(), retentionRule: 'sender_domain:reapply.example' });
    expect((await api('POST', '/rules/reapply')).status).toBe(200);
  });
});

describe('stats and audit', () => {
  it('stats: live transfers, stored bytes and per-day series', async () => {
    const r = await api('GET', '/stats?days=7');
    expect(r.status).toBe(200);
    const s = r.body as { liveTransfers: number; storedBytes: number; downloadsPerDay: { day: string; value: number }[]; bytesOffloadedPerDay: unknown[]; transfersPerDay: unknown[] };
    expect(s.liveTransfers).toBeGreaterThanOrEqual(2);
    expect(s.storedBytes).toBeGreaterThan(0);
    expect(s.downloadsPerDay).toHaveLength(7);
    expect(s.downloadsPerDay.at(-1)).toEqual({ day: new Date().toISOString().slice(0, 10), value: 1 });
    expect(s.bytesOffloadedPerDay).toHaveLength(7);
    expect((await api('GET', '/stats?days=0')).status).toBe(400);
  });

  it('audit: newest first, paginated, exportable as CSV and JSON lines', async () => {
    const first = (await api('GET', '/audit?limit=2')).body as { items: { id: number }[]; nextBefore: number };
    expect(first.items).toHaveLength(2);
    expect(first.items[0]!.id).toBeGreaterThan(first.items[1]!.id);
    const second = (await api('GET', `/audit?limit=2&before=${first.nextBefore}`)).body as { items: { id: number }[] };
    expect(second.items[0]!.id).toBeLessThan(first.items[1]!.id);
    const csv = await app.inject({ url: '/admin/api/audit/export?format=csv&action=revoked', headers: auth() });
    expect(csv.statusCode).toBe(200);
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    expect(csv.headers['content-disposition']).toMatch(/attachment; filename="ferry-audit-.*\.csv"/);
    const lines = csv.body.trim().split('\r\n');
    expect(lines[0]).toBe('id,time,actor,action,transfer_id,detail');
    expect(lines[1]).toMatch(/^\d+,\d{4}-.*,admin:alice,revoked,/);
    const jsonl = await app.inject({ url: '/admin/api/audit/export?format=jsonl', headers: auth() });
    const entries = jsonl.body.trim().split('\n').map((l) => JSON.parse(l) as { id: number; action: string });
    expect(entries.length).toBeGreaterThan(5);
    expect(entries[0]!.id).toBeLessThan(entries.at(-1)!.id);
    expect(entries.map((e) => e.action)).toEqual(expect.arrayContaining(['stored', 'link_issued', 'downloaded', 'revoked', 'extended', 'held', 'released', 'deleted', 'rule_set', 'rule_deleted']));
    expect((await app.inject({ url: '/admin/api/audit/export?format=xml', headers: auth() })).statusCode).toBe(400);
  });

  it('unknown endpoints answer a JSON 404', async () => {
    const r = await api('GET', '/nope');
    expect(r.status).toBe(404);
    expect((r.body as { error: { code: string } }).error.code).toBe('FERRY_ERR_NOT_FOUND');
  });
});

describe('wired into the web role', () => {
  it('`ferry web` with admin.token serves the API with the configuration\'s rules', async () => {
    const { startRoles } = await import('../../cli/start.js');
    const { freePort, tempDir } = await import('../helpers/ferry.js');
    const pino = (await import('pino')).default;
    const fs = await import('node:fs');
    const dir = tempDir();
    const port = await freePort();
    const config = loadConfig({
      env: {},
      overrides: {
        dataDir: dir,
        web: { host: '127.0.0.1', port, publicUrl: `http://127.0.0.1:${port}` },
        admin: { token: ALICE },
        retention: { default: '20d', rules: [{ senderDomain: 'corp.example', days: 10 }] },
        log: { level: 'silent' },
      },
    });
    const node = await startRoles(config, pino({ level: 'silent' }), ['web']);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/admin/api/rules`, { headers: auth() });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { items: { id: string; days: number }[] };
      expect(body.items.map((r) => [r.id, r.days])).toEqual([
        ['default', 20],
        ['minimum', 1],
        ['maximum', 365],
        ['sender_domain:corp.example', 10],
      ]);
      expect((await fetch(`http://127.0.0.1:${port}/admin/api/rules`)).status).toBe(401);
    } finally {
      await node.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
