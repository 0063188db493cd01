import fs from 'node:fs';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import nodemailer from 'nodemailer';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  claimDue,
  DAY_MS,
  enqueue,
  FsBlobStore,
  getQueueEntry,
  listAudit,
  newQueueId,
  openDatabase,
  queueBlobKey,
  seedRetentionRules,
  type Db,
  type QueueRecipient,
} from '../../storage/index.js';
import { buildSite } from '../../admin/site.js';
import { freePort, startFerry, tempDir, type TestFerry } from '../helpers/ferry.js';
import { pseudoRandom } from '../helpers/mail.js';
import { Upstream } from '../helpers/upstream.js';
import { addTransfer, makeEnv, PUBLIC_URL, type Env } from '../web/helpers.js';

// The delivery queue in the admin API and UI: listing with filters and pages, one entry's
// detail, retry now (one or all), delete silently or with a DSN, each audited. Entries are made
// with the storage functions the gateway uses (as test/worker/queue-runner.test.ts does); the last block
// queues a real message in a whole Ferry whose next hop is down and drives it through the API.

const ALICE = 'alice-token-0123456789abcdefghij';
const bounds = { defaultMs: 30 * DAY_MS, minMs: DAY_MS, maxMs: 90 * DAY_MS };
const MIN = 60_000;

let env: Env;
let app: FastifyInstance;

const auth = (token = ALICE) => ({ authorization: `Bearer ${token}` });
async function api(method: 'GET' | 'POST' | 'DELETE', url: string, token: string | null = ALICE) {
  const res = await app.inject({ method, url: `/admin/api${url}`, headers: token ? auth(token) : {} });
  return { status: res.statusCode, body: res.headers['content-type']?.toString().includes('json') ? res.json() : res.body, headers: res.headers };
}

const MESSAGE = Buffer.from('From: alice@example.com\r\nTo: bob@example.net\r\nSubject: queued\r\n\r\nhello\r\n');

async function queueMessage(opts: {
  sender?: string;
  to?: (string | QueueRecipient)[];
  createdAt?: number;
  nextAttemptAt?: number;
  attempts?: number;
  lastError?: string | null;
  transferId?: string | null;
  kind?: 'message' | 'dsn';
}): Promise<string> {
  const id = newQueueId();
  await env.blobs.put(queueBlobKey(id), Readable.from([MESSAGE]));
  const createdAt = opts.createdAt ?? Date.now() - 10 * MIN;
  await enqueue(env.db, {
    id,
    kind: opts.kind ?? 'message',
    transferId: opts.transferId ?? null,
    sender: opts.sender ?? 'alice@example.com',
    recipients: (opts.to ?? ['bob@example.net']).map((t) => (typeof t === 'string' ? { address: t, state: 'pending' as const } : t)),
    blobKey: queueBlobKey(id),
    size: MESSAGE.length,
    createdAt,
    nextAttemptAt: opts.nextAttemptAt ?? Date.now() + 30 * MIN,
    attempts: opts.attempts ?? 1,
    lastError: opts.lastError === undefined ? '421 4.3.2 next hop busy' : opts.lastError,
  });
  return id;
}

/** Leases the entry as a worker would while delivering it. */
async function leaseAsWorker(id: string): Promise<void> {
  await env.db.updateTable('queue_entries').set({ next_attempt_at: 0 }).where('id', '=', id).execute();
  const claimed = await claimDue(env.db, { owner: 'worker-test', now: Date.now(), leaseMs: 10 * MIN, limit: 100 });
  expect(claimed.map((e) => e.id)).toContain(id);
}

const blobExists = (id: string) => env.blobs.exists(queueBlobKey(id));

beforeAll(async () => {
  env = await makeEnv();
  await seedRetentionRules(env.db, bounds);
  app = await buildSite({ publicUrl: PUBLIC_URL, db: env.db, blobs: env.blobs, rateLimit: false, admin: { tokens: [`alice:${ALICE}`], retention: bounds } });
});
afterAll(async () => {
  await app?.close();
  await env?.close();
});
beforeEach(async () => {
  await env.db.deleteFrom('queue_entries').execute();
});

describe('admin API: queue', () => {
  it('answers 401 without a token or with a wrong one, on every queue endpoint, and changes nothing', async () => {
    const id = await queueMessage({});
    for (const token of [null, 'wrong-token-0123456789abcdefghijk']) {
      for (const [method, url] of [
        ['GET', '/queue'],
        ['GET', `/queue/${id}`],
        ['POST', `/queue/${id}/retry`],
        ['POST', '/queue/retry'],
        ['DELETE', `/queue/${id}?bounce=false`],
      ] as const) {
        const r = await api(method, url, token);
        expect(r.status, `${method} ${url}`).toBe(401);
        expect(r.headers['www-authenticate']).toBe('Bearer realm="ferry-admin"');
        expect((r.body as { error: { code: string } }).error.code).toBe('FERRY_ERR_UNAUTHORIZED');
      }
    }
    expect(await getQueueEntry(env.db, id)).toMatchObject({ attempts: 1, cancel: null });
    expect(await blobExists(id)).toBe(true);
  });

  it('describes the queue endpoints in the OpenAPI document, generated from the same schemas', async () => {
    const doc = (await api('GET', '/openapi.json', null)).body as { paths: Record<string, Record<string, { parameters?: { name: string; required?: boolean }[] }>>; components: { schemas: Record<string, unknown> } };
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/queue', '/queue/retry', '/queue/{id}', '/queue/{id}/retry']));
    expect(doc.paths['/queue']!.get!.parameters!.map((p) => p.name)).toEqual(expect.arrayContaining(['state', 'kind', 'sender', 'recipient', 'limit', 'cursor']));
    expect(doc.paths['/queue/{id}']!.delete!.parameters).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'bounce', required: true })]));
    expect(doc.components.schemas).toHaveProperty('QueueEntry');
  });

  it('lists entries oldest first with recipients, attempts, schedule and last error; pages with a cursor', async () => {
    const now = Date.now();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await queueMessage({ createdAt: now - (10 - i) * MIN, to: [`r${i}@example.net`], attempts: i + 1 }));
    const first = await api('GET', '/queue?limit=2');
    expect(first.status).toBe(200);
    const page1 = first.body as { items: { id: string; recipients: { address: string; state: string }[]; attempts: number; lastError: string; state: string; ageSeconds: number }[]; total: number; nextCursor: string };
    expect(page1.total).toBe(5);
    expect(page1.items.map((e) => e.id)).toEqual(ids.slice(0, 2));
    expect(page1.items[0]).toMatchObject({ recipients: [{ address: 'r0@example.net', state: 'pending' }], attempts: 1, lastError: '421 4.3.2 next hop busy', state: 'deferred' });
    expect(page1.items[0]!.ageSeconds).toBeGreaterThanOrEqual(600);
    const seen = [...page1.items.map((e) => e.id)];
    let cursor: string | null = page1.nextCursor;
    while (cursor) {
      const r = await api('GET', `/queue?limit=2&cursor=${encodeURIComponent(cursor)}`);
      expect(r.status).toBe(200);
      const b = r.body as { items: { id: string }[]; nextCursor: string | null; total: number };
      expect(b.total).toBe(5);
      seen.push(...b.items.map((e) => e.id));
      cursor = b.nextCursor;
    }
    expect(seen).toEqual(ids);
  });

  it('filters by state, recipient and sender (case-insensitive parts)', async () => {
    const now = Date.now();
    const deferred = await queueMessage({ to: ['Bob@Partner.example'], sender: 'carol@corp.example' });
    const due = await queueMessage({ to: ['dave@other.example'], nextAttemptAt: now - MIN });
    const ids = (r: { body: unknown }) => (r.body as { items: { id: string }[] }).items.map((e) => e.id);
    expect(ids(await api('GET', '/queue?state=deferred'))).toEqual([deferred]);
    expect(ids(await api('GET', '/queue?state=due'))).toEqual([due]);
    expect(ids(await api('GET', '/queue?recipient=bob@partner'))).toEqual([deferred]);
    expect(ids(await api('GET', '/queue?sender=CAROL'))).toEqual([deferred]);
    // LIKE wildcards in the filter are literal characters.
    expect(ids(await api('GET', '/queue?recipient=%25'))).toEqual([]);
    await leaseAsWorker(due);
    expect(ids(await api('GET', '/queue?state=delivering'))).toEqual([due]);
    expect((await api('GET', '/queue?state=delivering')).body).toMatchObject({ total: 1 });
  });

  it('answers 400 naming the field for bad list input, a bad cursor or a bad id', async () => {
    for (const [url, field] of [
      ['/queue?state=stuck', 'state'],
      ['/queue?limit=0', 'limit'],
      ['/queue?limit=201', 'limit'],
      ['/queue?kind=letter', 'kind'],
      ['/queue?colour=blue', ''],
    ] as const) {
      const r = await api('GET', url);
      expect(r.status, url).toBe(400);
      const e = (r.body as { error: { code: string; message: string } }).error;
      expect(e.code).toBe('FERRY_ERR_BAD_INPUT');
      if (field) expect(e.message, url).toMatch(new RegExp(`^${field}: `));
    }
    const cur = await api('GET', '/queue?cursor=bm90LWEtY3Vyc29y');
    expect(cur.status).toBe(400);
    expect((cur.body as { error: { code: string } }).error.code).toBe('FERRY_ERR_BAD_CURSOR');
    for (const [method, url] of [
      ['GET', '/queue/not_an-id'],
      ['POST', `/queue/${'A'.repeat(65)}/retry`],
      ['DELETE', '/queue/x.y?bounce=true'],
    ] as const) {
      const r = await api(method, url);
      expect(r.status, url).toBe(400);
      expect((r.body as { error: { message: string } }).error.message).toMatch(/^id: expected a queue id/);
    }
  });

  it('shows one entry: envelope, each recipient\'s state and last reply, attempts, next attempt, last error, linked transfer', async () => {
    const t = await addTransfer(env, { files: [{ name: 'plan.pdf', data: Buffer.from('pdf') }], sender: 'alice@example.com' });
    const next = Date.now() + 20 * MIN;
    const id = await queueMessage({
      transferId: t.transferId,
      to: [
        { address: 'bob@example.net', state: 'delivered', code: 250, response: '250 2.0.0 OK upstream' },
        { address: 'carol@example.org', state: 'failed', code: 550, response: '550 5.1.1 No such user carol' },
        { address: 'dave@example.org', state: 'pending', code: 451, response: '451 4.2.0 Try dave later', notify: ['FAILURE', 'DELAY'] },
      ],
      attempts: 3,
      nextAttemptAt: next,
      lastError: '451 4.2.0 Try dave later',
    });
    const r = await api('GET', `/queue/${id}`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      id,
      kind: 'message',
      state: 'deferred',
      sender: 'alice@example.com',
      recipients: [
        { address: 'bob@example.net', state: 'delivered', code: 250 },
        { address: 'carol@example.org', state: 'failed', code: 550, response: '550 5.1.1 No such user carol' },
        { address: 'dave@example.org', state: 'pending', code: 451, notify: ['FAILURE', 'DELAY'] },
      ],
      attempts: 3,
      nextAttemptAt: new Date(next).toISOString(),
      lastError: '451 4.2.0 Try dave later',
      transferId: t.transferId,
      bounceRequested: false,
      transfer: { id: t.transferId, fileCount: 1, state: 'live' },
    });
    const none = await api('GET', '/queue/0123456789ABCDEF');
    expect(none.status).toBe(404);
    expect((none.body as { error: { code: string } }).error.code).toBe('FERRY_ERR_QUEUE_NOT_FOUND');
  });

  it('retry now makes one entry due and is audited; 404 for an unknown entry; 409 while a worker delivers it', async () => {
    const t = await addTransfer(env, { files: [{ name: 'r.txt', data: Buffer.from('r') }] });
    const id = await queueMessage({ transferId: t.transferId, nextAttemptAt: Date.now() + 3 * 3_600_000 });
    const before = Date.now();
    const r = await api('POST', `/queue/${id}/retry`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ retried: 1, entry: { id, state: 'due' } });
    const e = await getQueueEntry(env.db, id);
    expect(e!.nextAttemptAt).toBeGreaterThanOrEqual(before);
    expect(e!.nextAttemptAt).toBeLessThanOrEqual(Date.now());
    const [audit] = await listAudit(env.db, { action: 'queue_retried', limit: 1 });
    expect(audit).toMatchObject({ actor: 'admin:alice', transferId: t.transferId, detail: { queueId: id, sender: 'alice@example.com', recipients: ['bob@example.net'] } });

    expect((await api('POST', '/queue/0123456789ABCDEF/retry')).status).toBe(404);
    await leaseAsWorker(id);
    const busy = await api('POST', `/queue/${id}/retry`);
    expect(busy.status).toBe(409);
    expect((busy.body as { error: { code: string; message: string } }).error).toMatchObject({ code: 'FERRY_ERR_QUEUE_BUSY', message: expect.stringContaining('being delivered right now') });
  });

  it('retry all makes every entry due, answers how many, and is audited once', async () => {
    const later = Date.now() + DAY_MS;
    const a = await queueMessage({ nextAttemptAt: later });
    const b = await queueMessage({ nextAttemptAt: later });
    const r = await api('POST', '/queue/retry');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ retried: 2 });
    for (const id of [a, b]) expect((await getQueueEntry(env.db, id))!.nextAttemptAt).toBeLessThanOrEqual(Date.now());
    const [audit] = await listAudit(env.db, { action: 'queue_retried', limit: 1 });
    expect(audit).toMatchObject({ actor: 'admin:alice', detail: { queueId: '*', entries: 2 } });
  });

  it('delete needs an explicit bounce=true|false; silently removes the record and the stored copy; audited', async () => {
    const id = await queueMessage({ to: ['bob@example.net', 'erin@example.net'] });
    for (const url of [`/queue/${id}`, `/queue/${id}?bounce=yes`]) {
      const r = await api('DELETE', url);
      expect(r.status, url).toBe(400);
      expect((r.body as { error: { message: string } }).error.message).toMatch(/^bounce: expected true .* or false/);
    }
    expect(await getQueueEntry(env.db, id)).toBeDefined();
    const r = await api('DELETE', `/queue/${id}?bounce=false`);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ id, result: 'deleted' });
    expect(await getQueueEntry(env.db, id)).toBeUndefined();
    expect(await blobExists(id)).toBe(false);
    const [audit] = await listAudit(env.db, { action: 'queue_deleted', limit: 1 });
    expect(audit).toMatchObject({ actor: 'admin:alice', detail: { queueId: id, recipients: ['bob@example.net', 'erin@example.net'] } });
    const again = await api('DELETE', `/queue/${id}?bounce=false`);
    expect(again.status).toBe(404);
    expect((again.body as { error: { code: string } }).error.code).toBe('FERRY_ERR_QUEUE_NOT_FOUND');
  });

  it('delete with bounce=true marks the entry for a failure DSN at the next worker pass; audited', async () => {
    const id = await queueMessage({ nextAttemptAt: Date.now() + DAY_MS });
    const r = await api('DELETE', `/queue/${id}?bounce=true`);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ id, result: 'bounce-scheduled' });
    const e = await getQueueEntry(env.db, id);
    expect(e).toMatchObject({ cancel: 'bounce' });
    expect(e!.nextAttemptAt).toBeLessThanOrEqual(Date.now());
    expect(await blobExists(id)).toBe(true); // the worker needs the original headers for the DSN
    expect((await api('GET', `/queue/${id}`)).body).toMatchObject({ state: 'bouncing', bounceRequested: true });
    const [audit] = await listAudit(env.db, { action: 'queue_bounced', limit: 1 });
    expect(audit).toMatchObject({ actor: 'admin:alice', detail: { queueId: id, sender: 'alice@example.com' } });
    const retry = await api('POST', `/queue/${id}/retry`);
    expect(retry.status).toBe(409);
    expect((retry.body as { error: { code: string } }).error.code).toBe('FERRY_ERR_QUEUE_BOUNCING');
  });

  it('delete answers 409 while a worker delivers the entry, and for a bounce of a notice with a null sender', async () => {
    const id = await queueMessage({});
    await leaseAsWorker(id);
    const busy = await api('DELETE', `/queue/${id}?bounce=false`);
    expect(busy.status).toBe(409);
    expect((busy.body as { error: { code: string } }).error.code).toBe('FERRY_ERR_QUEUE_BUSY');
    expect(await getQueueEntry(env.db, id)).toBeDefined();
    expect(await blobExists(id)).toBe(true);

    const dsn = await queueMessage({ sender: '', kind: 'dsn', to: ['alice@example.com'] });
    const refused = await api('DELETE', `/queue/${dsn}?bounce=true`);
    expect(refused.status).toBe(409);
    expect((refused.body as { error: { code: string } }).error.code).toBe('FERRY_ERR_QUEUE_NULL_SENDER');
    expect(await getQueueEntry(env.db, dsn)).toMatchObject({ cancel: null });
    expect((await api('DELETE', `/queue/${dsn}?bounce=false`)).status).toBe(200);
  });
});

// ---- the UI ----

function cookiesOf(res: { headers: Record<string, unknown> }): Record<string, string> {
  const raw = res.headers['set-cookie'];
  const list = Array.isArray(raw) ? raw : raw ? [raw as string] : [];
  return Object.fromEntries(list.map((c: string) => c.split(';')[0]!.split('=') as [string, string]));
}

async function login(): Promise<{ cookie: string; csrf: string }> {
  const page = await app.inject({ url: '/admin/login' });
  const nonce = /name="_nonce" value="([^"]+)"/.exec(page.body)![1]!;
  const res = await app.inject({
    method: 'POST',
    url: '/admin/login',
    headers: { cookie: `ferry_admin_login=${cookiesOf(page).ferry_admin_login}`, 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ token: ALICE, _nonce: nonce }).toString(),
  });
  expect(res.statusCode).toBe(303);
  const cookie = `ferry_admin=${cookiesOf(res).ferry_admin}`;
  const dash = await app.inject({ url: '/admin', headers: { cookie } });
  const csrf = /name="_csrf" value="([^"]+)"/.exec(dash.body)![1]!;
  return { cookie, csrf };
}

const form = (cookie: string, url: string, fields: Record<string, string>) => ({
  method: 'POST' as const,
  url,
  headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
  payload: new URLSearchParams(fields).toString(),
});

describe('admin UI: queue page', () => {
  it('sends visitors without a session to the login page', async () => {
    const id = await queueMessage({});
    for (const url of ['/admin/queue', `/admin/queue/${id}`, `/admin/queue/${id}/delete?mode=silent`]) {
      const r = await app.inject({ url });
      expect(r.statusCode, url).toBe(303);
      expect(r.headers.location).toBe('/admin/login');
    }
  });

  it('the dashboard shows the queue size and the oldest entry\'s age; the navigation links the Queue page', async () => {
    await queueMessage({ createdAt: Date.now() - 3 * 3_600_000 - 5 * MIN });
    await queueMessage({});
    const { cookie } = await login();
    const r = await app.inject({ url: '/admin', headers: { cookie } });
    expect(r.body).toMatch(/<nav class="admin"[^>]*>.*<a href="\/admin\/queue">Queue<\/a>/s);
    expect(r.body).toMatch(/id="dash-queue-size"><a href="\/admin\/queue">2<\/a>/);
    expect(r.body).toMatch(/id="dash-queue-oldest">3 h 5 min</);
    expect(r.body).not.toMatch(/<script|style="/);
  });

  it('lists entries with sender, recipients and their state, attempts, age, next attempt and last error, all escaped', async () => {
    const id = await queueMessage({
      sender: '"<b>x</b>"@evil.example',
      to: [
        { address: 'ok@example.net', state: 'delivered', code: 250 },
        { address: '"<img src=x onerror=alert(1)>"@example.net', state: 'pending' },
      ],
      attempts: 4,
      lastError: '451 <script>alert(2)</script>',
    });
    const { cookie } = await login();
    const r = await app.inject({ url: '/admin/queue', headers: { cookie } });
    expect(r.statusCode).toBe(200);
    expect(r.body).toContain('<a href="/admin/queue" aria-current="page">Queue</a>');
    expect(r.body).toContain(`<a href="/admin/queue/${id}">${id}</a>`);
    expect(r.body).not.toMatch(/<img src=x|<script>|<b>x<\/b>/);
    expect(r.body.replaceAll('<wbr>', '')).toContain('&quot;&lt;img src=x onerror=alert(1)&gt;&quot;@example.net <span class="badge r-pending">pending</span>');
    expect(r.body.replaceAll('<wbr>', '')).toContain('ok@example.net <span class="badge r-delivered">delivered</span>');
    expect(r.body).toContain('451 &lt;script&gt;alert(2)&lt;/script&gt;');
    expect(r.body).toMatch(/<td data-label="Attempts" class="num">4<\/td><td data-label="Age" class="nowrap">10 min<\/td>/);
    expect(r.body).toMatch(/\(in 29 min\)|\(in 30 min\)/);
    const detail = await app.inject({ url: `/admin/queue/${id}`, headers: { cookie } });
    expect(detail.statusCode).toBe(200);
    expect(detail.body).not.toMatch(/<img src=x|<script>/);
    expect(detail.body).toContain(`action="/admin/queue/${id}/retry"`);
    expect(detail.body).toMatch(new RegExp(`<form class="stack" method="post" action="/admin/queue/${id}/retry"><input type="hidden" name="_csrf" value="[^"]+">`));
    expect(detail.body).toContain('name="mode" value="bounce"');
    expect(detail.body).toContain('name="mode" value="silent"');
    expect((await app.inject({ url: '/admin/queue/0123456789ABCDEF', headers: { cookie } })).statusCode).toBe(404);
  });

  it('filters and pages without JavaScript; bad filters get a message', async () => {
    const now = Date.now();
    const a = await queueMessage({ createdAt: now - 3 * MIN, to: ['page@example.net'] });
    const b = await queueMessage({ createdAt: now - 2 * MIN, to: ['page@example.net'] });
    await queueMessage({ createdAt: now - MIN, to: ['other@example.net'] });
    const { cookie } = await login();
    const first = await app.inject({ url: '/admin/queue?recipient=page@&limit=1', headers: { cookie } });
    expect(first.statusCode).toBe(200);
    expect(first.body).toContain(`/admin/queue/${a}"`);
    expect(first.body).not.toContain(`/admin/queue/${b}"`);
    expect(first.body).toContain('2 matching entries');
    const next = /<a href="([^"]+)" rel="next">/.exec(first.body)![1]!.replace(/&amp;/g, '&');
    expect(next).toMatch(/^\/admin\/queue\?recipient=page%40&limit=1&cursor=/);
    const second = await app.inject({ url: next, headers: { cookie } });
    expect(second.body).toContain(`/admin/queue/${b}"`);
    expect(second.body).not.toContain('rel="next"');
    const bad = await app.inject({ url: '/admin/queue?state=stuck', headers: { cookie } });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toMatch(/role="alert">state: expected one of due, deferred, delivering, bouncing/);
  });

  it('refuses every queue form post without the CSRF token, and changes nothing', async () => {
    const later = Date.now() + DAY_MS;
    const id = await queueMessage({ nextAttemptAt: later });
    const { cookie } = await login();
    for (const [url, fields] of [
      [`/admin/queue/${id}/retry`, {}],
      ['/admin/queue/retry', {}],
      [`/admin/queue/${id}/delete`, { mode: 'silent', confirm: 'yes' }],
      [`/admin/queue/${id}/delete`, { mode: 'bounce', confirm: 'yes' }],
    ] as const) {
      const none = await app.inject(form(cookie, url, fields));
      expect(none.statusCode, url).toBe(403);
      expect(none.body).toContain('no valid CSRF token');
      const forged = await app.inject(form(cookie, url, { ...fields, _csrf: 'A'.repeat(43) }));
      expect(forged.statusCode, url).toBe(403);
    }
    expect(await getQueueEntry(env.db, id)).toMatchObject({ nextAttemptAt: later, cancel: null });
    expect(await blobExists(id)).toBe(true);
  });

  it('retry now and retry all: post, redirect, flash; audited under the admin\'s name', async () => {
    const later = Date.now() + DAY_MS;
    const id = await queueMessage({ nextAttemptAt: later });
    const other = await queueMessage({ nextAttemptAt: later });
    const { cookie, csrf } = await login();
    let r = await app.inject(form(cookie, `/admin/queue/${id}/retry`, { _csrf: csrf }));
    expect(r.statusCode).toBe(303);
    expect(r.headers.location).toBe(`/admin/queue/${id}?done=retried`);
    expect((await getQueueEntry(env.db, id))!.nextAttemptAt).toBeLessThanOrEqual(Date.now());
    expect((await getQueueEntry(env.db, other))!.nextAttemptAt).toBe(later);
    const page = await app.inject({ url: r.headers.location as string, headers: { cookie } });
    expect(page.body).toContain('Due now: a worker tries it');
    r = await app.inject(form(cookie, '/admin/queue/retry', { _csrf: csrf }));
    expect(r.statusCode).toBe(303);
    expect(r.headers.location).toBe('/admin/queue?done=retried-all');
    expect((await getQueueEntry(env.db, other))!.nextAttemptAt).toBeLessThanOrEqual(Date.now());
    const audit = await listAudit(env.db, { action: 'queue_retried', limit: 2 });
    expect(audit.map((e) => [e.actor, e.detail?.queueId])).toEqual([
      ['admin:alice', '*'],
      ['admin:alice', id],
    ]);
  });

  it('delete goes through a confirmation step: silently, or back to the sender with a DSN', async () => {
    const silent = await queueMessage({ to: ['gone@example.net'] });
    const bounced = await queueMessage({ to: ['back@example.net'] });
    const { cookie, csrf } = await login();

    // The detail page's delete form is a GET to the confirmation page, which changes nothing.
    const confirm = await app.inject({ url: `/admin/queue/${silent}/delete?mode=silent`, headers: { cookie } });
    expect(confirm.statusCode).toBe(200);
    expect(confirm.body).toContain('gone@example.net will not get it, and no one is told');
    expect(confirm.body).toMatch(new RegExp(`<form class="stack" method="post" action="/admin/queue/${silent}/delete"><input type="hidden" name="_csrf" value="[^"]+"><input type="hidden" name="mode" value="silent"><input type="hidden" name="confirm" value="yes">`));
    expect(await getQueueEntry(env.db, silent)).toBeDefined();
    expect((await app.inject({ url: `/admin/queue/${silent}/delete?mode=maybe`, headers: { cookie } })).statusCode).toBe(400);

    // A post that skipped the confirmation is refused.
    let r = await app.inject(form(cookie, `/admin/queue/${silent}/delete`, { _csrf: csrf, mode: 'silent' }));
    expect(r.statusCode).toBe(400);
    expect(r.body).toContain('Confirm the delete');
    expect(await getQueueEntry(env.db, silent)).toBeDefined();

    r = await app.inject(form(cookie, `/admin/queue/${silent}/delete`, { _csrf: csrf, mode: 'silent', confirm: 'yes' }));
    expect(r.statusCode).toBe(303);
    expect(r.headers.location).toBe('/admin/queue?done=deleted');
    expect(await getQueueEntry(env.db, silent)).toBeUndefined();
    expect(await blobExists(silent)).toBe(false);

    const confirmBounce = await app.inject({ url: `/admin/queue/${bounced}/delete?mode=bounce`, headers: { cookie } });
    expect(confirmBounce.body).toContain('alice@example.com will get a failure notice naming back@example.net');
    r = await app.inject(form(cookie, `/admin/queue/${bounced}/delete`, { _csrf: csrf, mode: 'bounce', confirm: 'yes' }));
    expect(r.statusCode).toBe(303);
    expect(r.headers.location).toBe(`/admin/queue/${bounced}?done=bounced`);
    expect(await getQueueEntry(env.db, bounced)).toMatchObject({ cancel: 'bounce' });
    const page = await app.inject({ url: r.headers.location as string, headers: { cookie } });
    expect(page.body).toContain('Marked for return');
    expect(page.body).toContain('being returned');
    expect(page.body).not.toContain(`action="/admin/queue/${bounced}/retry"`);

    expect((await listAudit(env.db, { limit: 2 })).map((e) => [e.action, e.detail?.queueId])).toEqual([
      ['queue_bounced', bounced],
      ['queue_deleted', silent],
    ]);
    const gone = await app.inject(form(cookie, `/admin/queue/${silent}/delete`, { _csrf: csrf, mode: 'silent', confirm: 'yes' }));
    expect(gone.statusCode).toBe(404);
  });

  it('while a worker delivers an entry its page offers no actions and a delete post gets 409', async () => {
    const id = await queueMessage({});
    await leaseAsWorker(id);
    const { cookie, csrf } = await login();
    const page = await app.inject({ url: `/admin/queue/${id}`, headers: { cookie } });
    expect(page.body).toContain('A worker is delivering this entry right now');
    expect(page.body).not.toContain(`action="/admin/queue/${id}/retry"`);
    const r = await app.inject(form(cookie, `/admin/queue/${id}/delete`, { _csrf: csrf, mode: 'silent', confirm: 'yes' }));
    expect(r.statusCode).toBe(409);
    expect(r.body).toMatch(/role="alert">[0-9A-F]{16} is being delivered right now/);
    expect(await blobExists(id)).toBe(true);
  });
});

// ---- a real queued message ----

describe('a whole Ferry whose next hop is down', () => {
  const TOKEN = 'e2e-admin-token-0123456789abcdef';
  let ferry: TestFerry | undefined;
  let upstream: Upstream | undefined;
  afterAll(async () => {
    await ferry?.stopAndClean();
    await upstream?.stop();
  });

  it('the queued message shows in the API with its transfer; retry now delivers it once the next hop is back', async () => {
    const port = await freePort(); // nothing listens here yet
    ferry = await startFerry({
      relay: { url: `smtp://127.0.0.1:${port}`, attemptTimeout: '5s' },
      offload: { minAttachmentSize: 50_000 },
      // A long schedule: only "retry now" makes the worker try again within this test.
      queue: { retrySchedule: ['1h'], pollInterval: '100ms', leaseTimeout: '30s' },
      admin: { token: TOKEN },
    });
    const info = await nodemailer
      .createTransport({ host: '127.0.0.1', port: ferry.smtpPort, secure: false, ignoreTLS: true })
      .sendMail({ from: 'alice@example.com', to: ['bob@example.net'], subject: 'Queued', text: 'hello', attachments: [{ filename: 'big.bin', content: pseudoRandom(120_000, 'admin-queue') }] });
    const queueId = /queued as ([0-9A-F]{16})/.exec(info.response)![1]!;
    const call = (method: string, path: string) => fetch(`${ferry!.publicUrl}/admin/api${path}`, { method, headers: { authorization: `Bearer ${TOKEN}` } });

    const list = (await (await call('GET', '/queue')).json()) as { items: { id: string; state: string; transferId: string; recipients: { address: string; state: string }[]; lastError: string }[]; total: number };
    expect(list.total).toBe(1);
    expect(list.items[0]).toMatchObject({ id: queueId, state: 'deferred', recipients: [{ address: 'bob@example.net', state: 'pending' }] });
    expect(list.items[0]!.lastError).toBeTruthy();
    const detail = (await (await call('GET', `/queue/${queueId}`)).json()) as { transfer: { id: string; fileCount: number; state: string } };
    expect(detail.transfer).toMatchObject({ id: list.items[0]!.transferId, fileCount: 1, state: 'live' });

    upstream = await new Upstream().start(port); // the next hop is back
    expect((await call('POST', `/queue/${queueId}/retry`)).status).toBe(200);
    await expect.poll(() => upstream!.messages.length, { timeout: 20_000, interval: 50 }).toBe(1);
    await expect.poll(async () => (await call('GET', `/queue/${queueId}`)).status, { timeout: 20_000, interval: 50 }).toBe(404);
    expect(upstream.messages[0]!.to).toEqual(['bob@example.net']);
    const audit = await listAudit(ferry.storage.db, { action: 'queue_retried' });
    expect(audit[0]).toMatchObject({ actor: expect.stringMatching(/^admin:token-[0-9a-f]{8}$/), detail: { queueId } });
  });
});

// ---- the same queries on PostgreSQL (keyset pages, filters, LIKE escaping, leases) ----

const pgUrl = process.env.FERRY_TEST_POSTGRES_URL;
if (!pgUrl) console.warn('admin queue tests on PostgreSQL skipped: set FERRY_TEST_POSTGRES_URL, e.g. eval "$(bash scripts/postgres/pg-up.sh /tmp/ferry-pg)"');

describe.skipIf(!pgUrl)('admin API: queue on PostgreSQL', () => {
  const dbName = `ferry_admin_queue_${process.pid}_${Date.now().toString(36)}`;
  const dir = tempDir('ferry-admin-queue-pg-');
  let db: Db;
  let blobs: FsBlobStore;
  let pgApp: FastifyInstance;
  const pgAdmin = async (q: string) => {
    const c = new pg.Client({ connectionString: pgUrl });
    await c.connect();
    try {
      await c.query(q);
    } finally {
      await c.end();
    }
  };
  beforeAll(async () => {
    // A database of its own: other test files use the shared one at the same time.
    await pgAdmin(`CREATE DATABASE "${dbName}"`);
    const u = new URL(pgUrl!);
    u.pathname = `/${dbName}`;
    db = await openDatabase(u.toString());
    blobs = new FsBlobStore(`${dir}/blobs`);
    pgApp = await buildSite({ publicUrl: PUBLIC_URL, db, blobs, rateLimit: false, admin: { tokens: [`alice:${ALICE}`], retention: bounds } });
  });
  afterAll(async () => {
    await pgApp?.close();
    await db?.destroy();
    if (pgUrl) await pgAdmin(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`).catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('lists, filters, pages, retries and deletes, with 409 for a leased entry', async () => {
    const call = async (method: 'GET' | 'POST' | 'DELETE', url: string) => {
      const r = await pgApp.inject({ method, url: `/admin/api${url}`, headers: auth() });
      return { status: r.statusCode, body: r.json() as any };
    };
    const now = Date.now();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const id = newQueueId();
      await blobs.put(queueBlobKey(id), Readable.from([MESSAGE]));
      await enqueue(db, {
        id,
        kind: 'message',
        transferId: null,
        sender: `s${i}@corp.example`,
        recipients: [{ address: i === 4 ? 'x_y@partner.example' : `r${i}@partner.example`, state: 'pending' }],
        blobKey: queueBlobKey(id),
        size: MESSAGE.length,
        createdAt: now - (10 - i) * MIN,
        nextAttemptAt: i === 0 ? now - MIN : now + 30 * MIN,
        attempts: 1,
      });
      ids.push(id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const r = await call('GET', `/queue?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(r.status).toBe(200);
      expect(r.body.total).toBe(5);
      seen.push(...r.body.items.map((e: { id: string }) => e.id));
      cursor = r.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(ids);
    expect((await call('GET', '/queue?state=due')).body.items.map((e: { id: string }) => e.id)).toEqual([ids[0]]);
    expect((await call('GET', '/queue?state=deferred')).body.total).toBe(4);
    expect((await call('GET', '/queue?recipient=X_Y@')).body.items.map((e: { id: string }) => e.id)).toEqual([ids[4]]);
    expect((await call('GET', '/queue?recipient=r_@')).body.total).toBe(0); // _ is not a wildcard
    expect((await call('POST', `/queue/${ids[1]}/retry`)).status).toBe(200);
    expect((await call('POST', '/queue/retry')).body).toEqual({ retried: 5 });
    const claimed = await claimDue(db, { owner: 'w', now: Date.now(), leaseMs: 10 * MIN, limit: 1 });
    expect(claimed).toHaveLength(1);
    expect((await call('DELETE', `/queue/${claimed[0]!.id}?bounce=false`)).status).toBe(409);
    expect((await call('GET', '/queue?state=delivering')).body.total).toBe(1);
    expect((await call('DELETE', `/queue/${ids[3]}?bounce=true`)).body.result).toBe('bounce-scheduled');
    expect((await call('GET', '/queue?state=bouncing')).body.items.map((e: { id: string }) => e.id)).toEqual([ids[3]]);
    expect((await call('DELETE', `/queue/${ids[4]}?bounce=false`)).body.result).toBe('deleted');
    expect((await call('GET', `/queue/${ids[4]}`)).status).toBe(404);
    expect((await listAudit(db, { limit: 10 })).map((e) => e.action)).toEqual(['queue_deleted', 'queue_bounced', 'queue_retried', 'queue_retried']);
  });
});
