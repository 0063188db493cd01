import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY_MS, getTransfer, listAudit, seedRetentionRules } from '../../storage/index.js';
import { buildSite } from '../../admin/site.js';
import { addTransfer, makeEnv, PUBLIC_URL, type Env } from '../web/helpers.js';

// The admin UI without a browser: login, session cookie flags, CSRF on every form, validation
// messages, and pages that need no script. test/browser/admin.test.ts drives it in Chromium.

const TOKEN = 'ui-test-token-0123456789abcdefgh';
const bounds = { defaultMs: 30 * DAY_MS, minMs: DAY_MS, maxMs: 90 * DAY_MS };
let env: Env;
let app: FastifyInstance;

function cookiesOf(res: { headers: Record<string, unknown> }): Record<string, string> {
  const raw = res.headers['set-cookie'];
  const list = Array.isArray(raw) ? raw : raw ? [raw as string] : [];
  return Object.fromEntries(list.map((c: string) => c.split(';')[0]!.split('=') as [string, string]));
}

async function login(a = app, headers: Record<string, string> = {}, token = TOKEN): Promise<{ cookie: string; setCookie: string; csrf: string }> {
  // Over HTTPS (x-forwarded-proto behind a trusted proxy) the cookies carry the __Host- prefix.
  const prefix = headers['x-forwarded-proto'] === 'https' ? '__Host-' : '';
  const page = await a.inject({ url: '/admin/login', headers });
  const nonce = /name="_nonce" value="([^"]+)"/.exec(page.body)![1]!;
  const res = await a.inject({
    method: 'POST',
    url: '/admin/login',
    headers: { ...headers, cookie: `${prefix}ferry_admin_login=${cookiesOf(page)[`${prefix}ferry_admin_login`]}`, 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ token, _nonce: nonce }).toString(),
  });
  expect(res.statusCode).toBe(303);
  const setCookie = ([] as string[]).concat(res.headers['set-cookie'] as string | string[]).find((c) => c.startsWith(`${prefix}ferry_admin=`))!;
  const cookie = setCookie.split(';')[0]!;
  const dash = await a.inject({ url: '/admin', headers: { ...headers, cookie } });
  const csrf = /name="_csrf" value="([^"]+)"/.exec(dash.body)![1]!;
  return { cookie, setCookie, csrf };
}

const form = (cookie: string, fields: Record<string, string>) => ({
  method: 'POST' as const,
  headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
  payload: new URLSearchParams(fields).toString(),
});

beforeAll(async () => {
  env = await makeEnv();
  await seedRetentionRules(env.db, bounds);
  app = await buildSite({ publicUrl: PUBLIC_URL, db: env.db, blobs: env.blobs, rateLimit: false, admin: { token: TOKEN, retention: bounds } });
});
afterAll(async () => {
  await app?.close();
  await env?.close();
});

describe('admin UI', () => {
  it('sends visitors without a session to the login page', async () => {
    for (const url of ['/admin', '/admin/transfers', '/admin/rules', '/admin/audit']) {
      const r = await app.inject({ url });
      expect(r.statusCode, url).toBe(303);
      expect(r.headers.location).toBe('/admin/login');
    }
  });

  it('refuses a wrong token and a login post without the form nonce', async () => {
    const page = await app.inject({ url: '/admin/login' });
    const nonce = /name="_nonce" value="([^"]+)"/.exec(page.body)![1]!;
    const wrong = await app.inject({
      ...form(`ferry_admin_login=${nonce}`, { token: 'wrong-token-0123456789abcdefghijk', _nonce: nonce }),
      url: '/admin/login',
    });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.body).toContain('That is not an admin token.');
    expect(cookiesOf(wrong).ferry_admin).toBeUndefined();
    const noNonce = await app.inject({ ...form('', { token: TOKEN }), url: '/admin/login' });
    expect(noNonce.statusCode).toBe(403);
  });

  it('logs in with a session cookie that is HttpOnly, SameSite=Strict, path /admin, Secure only over TLS', async () => {
    const { setCookie } = await login();
    expect(setCookie).toMatch(/; HttpOnly/);
    expect(setCookie).toMatch(/; SameSite=Strict/);
    expect(setCookie).toMatch(/; Path=\/admin/);
    expect(setCookie).not.toMatch(/; Secure/);
    const behindProxy = await buildSite({ publicUrl: PUBLIC_URL, db: env.db, blobs: env.blobs, rateLimit: false, trustProxy: true, admin: { token: TOKEN, retention: bounds } });
    try {
      const tls = await login(behindProxy, { 'x-forwarded-proto': 'https' });
      // __Host-: Secure, Path=/, no Domain, so no other host or path can set or shadow it.
      expect(tls.setCookie).toMatch(/^__Host-ferry_admin=/);
      expect(tls.setCookie).toMatch(/; Secure/);
      expect(tls.setCookie).toMatch(/; Path=\/(;|$)/);
      expect(tls.setCookie).not.toMatch(/; Domain=/i);
      // The unprefixed name is not read over HTTPS: a cookie some other path or subdomain set cannot stand in.
      const plain = tls.cookie.replace(/^__Host-/, '');
      expect((await behindProxy.inject({ url: '/admin', headers: { 'x-forwarded-proto': 'https', cookie: plain } })).statusCode).toBe(303);
      expect((await behindProxy.inject({ url: '/admin', headers: { 'x-forwarded-proto': 'https', cookie: tls.cookie } })).statusCode).toBe(200);
    } finally {
      await behindProxy.close();
    }
    const audit = await listAudit(env.db, { action: 'admin_login' });
    expect(audit[0]!.actor).toMatch(/^admin:token-[0-9a-f]{8}$/);
  });

  it('a forged or tampered session cookie is not a session', async () => {
    const { cookie } = await login();
    const tampered = cookie.slice(0, -2) + (cookie.endsWith('AA') ? 'BB' : 'AA');
    expect((await app.inject({ url: '/admin', headers: { cookie: tampered } })).statusCode).toBe(303);
  });

  it('renders the dashboard with three SVG charts, no script and a CSP that allows only same-origin forms', async () => {
    const { cookie } = await login();
    const r = await app.inject({ url: '/admin', headers: { cookie } });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-security-policy']).toContain("form-action 'self'");
    expect(r.headers['content-security-policy']).not.toContain('unsafe-inline');
    expect(r.body.match(/<svg /g)).toHaveLength(3);
    expect(r.body).not.toMatch(/<script|style="/);
    expect(r.body).toContain('href="/assets/ferry.css');
  });

  it('refuses every form post without the CSRF token, and with another session\'s token', async () => {
    const t = await addTransfer(env, { files: [{ name: 'x.txt', data: Buffer.from('x') }] });
    const { cookie, csrf } = await login();
    const other = await login();
    for (const [url, fields] of [
      [`/admin/transfers/${t.transferId}/revoke`, {}],
      [`/admin/transfers/${t.transferId}/hold`, { reason: 'x' }],
      [`/admin/transfers/${t.transferId}/delete`, { confirm: 'yes' }],
      ['/admin/rules', { kind: 'recipient_domain', match: 'a.example', days: '3' }],
      ['/admin/rules/reapply', {}],
      ['/admin/logout', {}],
    ] as const) {
      const none = await app.inject({ ...form(cookie, fields), url });
      expect(none.statusCode, url).toBe(403);
      expect(other.csrf).not.toBe(csrf);
      const wrong = await app.inject({ ...form(cookie, { ...fields, _csrf: other.csrf }), url });
      expect(wrong.statusCode, url).toBe(403);
    }
    expect(await getTransfer(env.db, t.transferId)).toMatchObject({ state: 'live', held: false });
  });

  it('revokes, holds and extends through forms (post, redirect, get)', async () => {
    const created = Date.now() - DAY_MS;
    const t = await addTransfer(env, { files: [{ name: 'y.txt', data: Buffer.from('y') }], createdAt: created, expiresAt: created + 10 * DAY_MS });
    const { cookie, csrf } = await login();
    let r = await app.inject({ ...form(cookie, { _csrf: csrf, addDays: '2' }), url: `/admin/transfers/${t.transferId}/extend` });
    expect(r.statusCode).toBe(303);
    expect(r.headers.location).toBe(`/admin/transfers/${t.transferId}?done=extended`);
    expect((await getTransfer(env.db, t.transferId))!.expiresAt).toBe(created + 12 * DAY_MS);
    r = await app.inject({ ...form(cookie, { _csrf: csrf, addDays: '500' }), url: `/admin/transfers/${t.transferId}/extend` });
    expect(r.statusCode).toBe(400);
    expect(r.body).toMatch(/role="alert">the new expiry must lie between/);
    r = await app.inject({ ...form(cookie, { _csrf: csrf, reason: 'audit 7' }), url: `/admin/transfers/${t.transferId}/hold` });
    expect(r.statusCode).toBe(303);
    r = await app.inject({ ...form(cookie, { _csrf: csrf }), url: `/admin/transfers/${t.transferId}/revoke` });
    expect(r.statusCode).toBe(303);
    const page = await app.inject({ url: r.headers.location as string, headers: { cookie } });
    expect(page.body).toContain('Revoked: its links answer 410');
    expect(page.body).toContain('audit 7');
    expect((await app.inject({ url: `/t/${t.token}` })).statusCode).toBe(410);
  });

  it('the rules editor shows validation messages and keeps what was typed', async () => {
    const { cookie, csrf } = await login();
    let r = await app.inject({ ...form(cookie, { _csrf: csrf, id: '', kind: 'recipient_domain', match: 'not a domain', days: '3' }), url: '/admin/rules' });
    expect(r.statusCode).toBe(400);
    expect(r.body).toMatch(/role="alert" id="rule-error">&quot;not a domain&quot; is not a domain/);
    expect(r.body).toContain('value="not a domain"');
    r = await app.inject({ ...form(cookie, { _csrf: csrf, id: '', kind: 'recipient_domain', match: 'partner.example', days: '300' }), url: '/admin/rules' });
    expect(r.statusCode).toBe(400);
    expect(r.body).toContain('days must lie between the minimum (1 day) and the maximum (90 days)');
    r = await app.inject({ ...form(cookie, { _csrf: csrf, id: 'default', days: '' }), url: '/admin/rules' });
    expect(r.statusCode).toBe(400);
    expect(r.body).toContain('Enter the number of days');
    r = await app.inject({ ...form(cookie, { _csrf: csrf, id: '', kind: 'recipient_domain', match: 'partner.example', days: '3', downloadLimit: '2' }), url: '/admin/rules' });
    expect(r.statusCode).toBe(303);
    const page = await app.inject({ url: '/admin/rules?done=rule-saved', headers: { cookie } });
    expect(page.body).toContain('recipient_domain:partner.example');
    expect(page.body).toContain('Rule saved.');
  });

  it('searches and pages through transfers without JavaScript', async () => {
    await addTransfer(env, { files: [{ name: 'page-a.txt', data: Buffer.from('a') }], createdAt: Date.now() - 3000 });
    await addTransfer(env, { files: [{ name: 'page-b.txt', data: Buffer.from('b') }], createdAt: Date.now() - 2000 });
    const { cookie } = await login();
    const first = await app.inject({ url: '/admin/transfers?file=page-&limit=1', headers: { cookie } });
    expect(first.statusCode).toBe(200);
    expect(first.body.match(/<tr><td data-label="Created" class="nowrap"><a href/g)).toHaveLength(1);
    const next = /<a href="([^"]+)" rel="next">/.exec(first.body)![1]!.replace(/&amp;/g, '&');
    expect(next).toMatch(/^\/admin\/transfers\?file=page-&limit=1&cursor=/);
    const second = await app.inject({ url: next, headers: { cookie } });
    expect(second.body.match(/<tr><td data-label="Created" class="nowrap"><a href/g)).toHaveLength(1);
    const id = (body: string) => /href="\/admin\/transfers\/([a-z0-9]+)"/.exec(body)![1];
    expect(id(second.body)).not.toBe(id(first.body));
    expect(second.body).not.toContain('rel="next"');
    const bad = await app.inject({ url: '/admin/transfers?from=not-a-date', headers: { cookie } });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('from: expected a date');
  });

  it('exports the audit log from the UI session', async () => {
    const { cookie } = await login();
    const r = await app.inject({ url: '/admin/audit/export?format=csv', headers: { cookie } });
    expect(r.statusCode).toBe(200);
    expect(r.body.split('\r\n')[0]).toBe('id,time,actor,action,transfer_id,detail');
    expect(r.body).toContain('admin_login');
  });

  it('escapes what senders control', async () => {
    const t = await addTransfer(env, { files: [{ name: '<img src=x onerror=alert(1)>.txt', data: Buffer.from('z') }], sender: '"<b>"@evil.example' });
    const { cookie } = await login();
    const r = await app.inject({ url: `/admin/transfers/${t.transferId}`, headers: { cookie } });
    expect(r.body).not.toContain('<img src=x');
    expect(r.body).toContain('&lt;img src=x onerror=alert(1)&gt;.txt');
  });
});
