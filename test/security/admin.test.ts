import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY_MS, enqueue, getQueueEntry, newQueueId, seedRetentionRules } from '../../storage/index.js';
import { buildSite } from '../../admin/site.js';
import { makeEnv, PUBLIC_URL, type Env } from '../web/helpers.js';

// The admin side, attacked from outside: every API route enumerated from the running app must
// refuse a request without the token; UI sessions must end with their token and their time;
// every state-changing form (logout and queue actions included) needs the CSRF token; the
// login never redirects where a parameter says; the public OpenAPI document names no secret.

const TOKEN = 'sec-admin-token-0123456789abcdefgh';
const OTHER = 'sec-other-token-0123456789abcdefgh';
const bounds = { defaultMs: 30 * DAY_MS, minMs: DAY_MS, maxMs: 90 * DAY_MS };
let env: Env;
let now = Date.now();
const clock = () => now;
let app: FastifyInstance;

const build = (token: string, extra: Record<string, unknown> = {}) =>
  buildSite({ publicUrl: PUBLIC_URL, db: env.db, blobs: env.blobs, rateLimit: false, now: clock, admin: { token, retention: bounds, ...extra } });

function cookieOf(res: { headers: Record<string, unknown> }, name: string): string | undefined {
  const list = ([] as string[]).concat((res.headers['set-cookie'] as string | string[] | undefined) ?? []);
  return list.find((c) => c.startsWith(`${name}=`))?.split(';')[0];
}

async function login(a: FastifyInstance, token = TOKEN, url = '/admin/login'): Promise<{ cookie: string; csrf: string; location: string }> {
  const page = await a.inject({ url: '/admin/login' });
  const nonce = /name="_nonce" value="([^"]+)"/.exec(page.body)![1]!;
  const res = await a.inject({
    method: 'POST',
    url,
    headers: { cookie: cookieOf(page, 'ferry_admin_login')!, 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ token, _nonce: nonce }).toString(),
  });
  expect(res.statusCode).toBe(303);
  const cookie = cookieOf(res, 'ferry_admin')!;
  const dash = await a.inject({ url: '/admin', headers: { cookie } });
  return { cookie, csrf: /name="_csrf" value="([^"]+)"/.exec(dash.body)![1]!, location: String(res.headers.location) };
}

/** [method, path] of every route, read from app.printRoutes() (the router's own tree). */
function routesOf(a: FastifyInstance): [string, string][] {
  const out: [string, string][] = [];
  const stack: { depth: number; path: string }[] = [];
  for (const line of a.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^([│ ]*)(?:[├└]── )?(\S+) \(([A-Z, ]+)\)$/.exec(line.replace(/\s+$/, ''));
    const bare = /^([│ ]*)(?:[├└]── )?(\S+)$/.exec(line.replace(/\s+$/, ''));
    const hit = m ?? bare;
    if (!hit) continue;
    const depth = line.indexOf(hit[2]!);
    while (stack.length && stack[stack.length - 1]!.depth >= depth) stack.pop();
    const path = (stack[stack.length - 1]?.path ?? '') + hit[2]!;
    stack.push({ depth, path });
    if (m) for (const method of m[3]!.split(', ')) out.push([method, path.replace(/^\/\//, '/')]);
  }
  return out;
}

beforeAll(async () => {
  env = await makeEnv();
  await seedRetentionRules(env.db, bounds);
  app = await build(TOKEN);
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  await env?.close();
});

describe('admin API: no route answers without the token', () => {
  it('every /admin/api route but the OpenAPI document answers 401 without a token or with a wrong one', async () => {
    const routes = routesOf(app).filter(([m, p]) => p.startsWith('/admin/api/') && m !== 'HEAD');
    // The enumeration found the API (a parser that finds nothing must not pass).
    expect(routes.length).toBeGreaterThan(15);
    expect(routes).toContainEqual(['DELETE', '/admin/api/queue/:id']);
    for (const [method, path] of routes) {
      const url = path.replace(':id', method === 'PUT' || path.includes('/rules/') ? 'default' : 'abc123');
      if (path === '/admin/api/openapi.json') continue;
      for (const authorization of [undefined, 'Bearer ', `Bearer ${TOKEN.slice(0, -1)}`, `Bearer ${TOKEN}x`, `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}`, TOKEN]) {
        const r = await app.inject({ method: method as 'GET', url, headers: { 'content-type': 'application/json', ...(authorization !== undefined ? { authorization } : {}) }, ...(method === 'GET' ? {} : { payload: '{}' }) });
        expect(r.statusCode, `${method} ${url} with ${authorization}`).toBe(401);
        expect(r.json().error.code).toBe('FERRY_ERR_UNAUTHORIZED');
      }
    }
  });

  it('the public OpenAPI document names no token, token id or stored value', async () => {
    const r = await app.inject({ url: '/admin/api/openapi.json' });
    expect(r.statusCode).toBe(200);
    const id = createHash('sha256').update(TOKEN).digest('hex').slice(0, 16);
    expect(r.body).not.toContain(TOKEN);
    expect(r.body).not.toContain(id);
    expect(r.body).not.toContain(env.dir);
  });

  it('API answers are never cached', async () => {
    const r = await app.inject({ url: '/admin/api/stats', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(r.statusCode).toBe(200);
    expect(r.headers['cache-control']).toMatch(/no-store/);
  });
});

describe('admin UI sessions', () => {
  it('a session ends when its token is replaced in the configuration, and after its lifetime', async () => {
    const { cookie } = await login(app);
    expect((await app.inject({ url: '/admin', headers: { cookie } })).statusCode).toBe(200);
    // Another web process, configured with a new token: the old session is not accepted.
    const rotated = await build(OTHER);
    try {
      const r = await rotated.inject({ url: '/admin', headers: { cookie } });
      expect(r.statusCode).toBe(303);
      expect(r.headers.location).toBe('/admin/login');
    } finally {
      await rotated.close();
    }
    // Past 12 hours the same cookie is refused too.
    const saved = now;
    now += 12 * 3_600_000 + 1000;
    try {
      expect((await app.inject({ url: '/admin', headers: { cookie } })).statusCode).toBe(303);
    } finally {
      now = saved;
    }
  });

  it('a session cookie with a made-up time or made with another token is refused', async () => {
    const { cookie } = await login(app);
    const [, value] = cookie.split('=');
    const parts = value!.split('.');
    const later = [...parts];
    later[2] = (Math.floor(now / 1000) + 3600 * 24 * 365).toString(36);
    expect((await app.inject({ url: '/admin', headers: { cookie: `ferry_admin=${later.join('.')}` } })).statusCode).toBe(303);
    const otherApp = await build(OTHER);
    try {
      const foreign = await login(otherApp, OTHER);
      // Same format, valid for the other token: not a session here.
      expect((await app.inject({ url: '/admin', headers: { cookie: foreign.cookie } })).statusCode).toBe(303);
    } finally {
      await otherApp.close();
    }
  });

  it('queue actions and logout need the CSRF token; nothing happens without it', async () => {
    const id = newQueueId();
    const at = Date.now() + 3_600_000;
    await enqueue(env.db, { id, kind: 'message', transferId: null, sender: 'a@example.org', recipients: [{ address: 'b@example.net', state: 'pending' }], blobKey: `q/${id.toLowerCase()}`, size: 1, createdAt: Date.now(), nextAttemptAt: at });
    const { cookie, csrf } = await login(app);
    const post = (url: string, fields: Record<string, string>) =>
      app.inject({ method: 'POST', url, headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams(fields).toString() });
    for (const [url, fields] of [
      [`/admin/queue/${id}/retry`, {}],
      ['/admin/queue/retry', {}],
      [`/admin/queue/${id}/delete`, { mode: 'silent', confirm: 'yes' }],
      ['/admin/logout', {}],
    ] as const) {
      expect((await post(url, fields)).statusCode, url).toBe(403);
      expect((await post(url, { ...fields, _csrf: `${csrf}x` })).statusCode, url).toBe(403);
    }
    expect((await getQueueEntry(env.db, id))!.nextAttemptAt).toBe(at);
    // The session survived the refused logout.
    expect((await app.inject({ url: '/admin', headers: { cookie } })).statusCode).toBe(200);
    // With the token, logout works and clears the cookie.
    const out = await post('/admin/logout', { _csrf: csrf });
    expect(out.statusCode).toBe(303);
    expect(cookieOf(out, 'ferry_admin')).toBe('ferry_admin=');
  });

  it('login goes to the dashboard whatever a next= or redirect= parameter says', async () => {
    for (const q of ['next=https://evil.example/', 'next=//evil.example', 'redirect=https://evil.example/', 'returnTo=/%5Cevil.example']) {
      const { location } = await login(app, TOKEN, `/admin/login?${q}`);
      expect(location).toBe('/admin');
    }
  });

  it('admin pages are not cached and run under a CSP without script', async () => {
    const { cookie } = await login(app);
    for (const url of ['/admin', '/admin/login', '/admin/transfers', '/admin/queue', '/admin/rules', '/admin/audit', '/admin/no-such-page']) {
      const r = await app.inject({ url, headers: { cookie } });
      expect(r.headers['cache-control'], url).toMatch(/no-store/);
      const csp = String(r.headers['content-security-policy']);
      expect(csp, url).toMatch(/default-src 'none'/);
      expect(csp, url).toMatch(/frame-ancestors 'none'/);
      expect(csp, url).not.toMatch(/script-src/);
    }
  });
});
