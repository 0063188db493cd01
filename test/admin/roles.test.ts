import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY_MS, getTransfer, listAudit, listRules } from '../../storage/index.js';
import { addTransfer, type Env, type Fixture } from '../web/helpers.js';
import { startAdminSite } from './admin-site.js';
import { postForm, uiLogin } from './admin-login.js';

// The read-only role (issue 16 item 8): admin.readonlyTokens may search and view transfers,
// downloads, rules, the audit log and the queue, and nothing else. Table-driven over the
// OpenAPI document, so an endpoint added later is covered without touching this test: every
// mutating operation is refused (403, FERRY_ERR_READ_ONLY, audited) and every read allowed.

const ADMIN = 'admin-role-token-0123456789abcdefgh';
const HELP = 'helpdesk-role-token-0123456789abcdef';
const MUTATING = new Set(['post', 'put', 'patch', 'delete']);

let env: Env;
let app: FastifyInstance;
let t: Fixture;

beforeAll(async () => {
  ({ env, app } = await startAdminSite({ admin: ADMIN, readonly: HELP }));
  t = await addTransfer(env, { files: [{ name: 'plan.pdf', data: Buffer.from('pdf') }], sender: 'carol@corp.example', expiresAt: Date.now() + 5 * DAY_MS });
});
afterAll(async () => {
  await app?.close();
  await env?.close();
});

interface Operation {
  method: string;
  path: string;
  url: string;
}

async function operations(): Promise<Operation[]> {
  const doc = (await app.inject({ url: '/admin/api/openapi.json' })).json() as { paths: Record<string, Record<string, unknown>> };
  const out: Operation[] = [];
  for (const [p, ops] of Object.entries(doc.paths)) {
    for (const method of Object.keys(ops)) {
      if (!['get', 'head', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
      // Real ids where the path has one, so a read answers 200 and a change would really change something.
      const url = p.replace('{id}', p.startsWith('/rules') ? 'recipient_domain:partner.example' : p.startsWith('/queue') ? '0123456789ABCDEF' : t.transferId);
      out.push({ method, path: p, url });
    }
  }
  return out;
}

const call = (op: Operation, token: string) =>
  app.inject({ method: op.method.toUpperCase() as 'GET', url: `/admin/api${op.url}${op.path === '/audit/export' ? '?format=csv' : ''}`, headers: { authorization: `Bearer ${token}` }, ...(MUTATING.has(op.method) ? { payload: { days: 10, reason: 'x', addDays: 1 } } : {}) });

describe('read-only role in the API, over every operation of the OpenAPI document', () => {
  it('the document has both kinds of operation', async () => {
    const ops = await operations();
    expect(ops.filter((o) => MUTATING.has(o.method)).length).toBeGreaterThanOrEqual(10);
    expect(ops.filter((o) => !MUTATING.has(o.method)).length).toBeGreaterThanOrEqual(7);
  });

  it('refuses every mutating operation with 403 FERRY_ERR_READ_ONLY, changes nothing, and audits each refusal', async () => {
    const ops = (await operations()).filter((o) => MUTATING.has(o.method));
    const before = (await listAudit(env.db, { action: 'admin_refused', limit: 1000 })).length;
    const rulesBefore = await listRules(env.db);
    for (const op of ops) {
      const r = await call(op, HELP);
      expect(r.statusCode, `${op.method} ${op.path}`).toBe(403);
      expect((r.json() as { error: { code: string } }).error.code, `${op.method} ${op.path}`).toBe('FERRY_ERR_READ_ONLY');
    }
    const refused = await listAudit(env.db, { action: 'admin_refused', limit: 1000 });
    expect(refused.length - before).toBe(ops.length);
    expect(refused[0]!.actor).toBe('admin:helpdesk');
    expect(refused.map((e) => e.detail?.request)).toEqual(expect.arrayContaining(ops.map((o) => `${o.method.toUpperCase()} /admin/api${o.path.replace(/\{id\}/g, ':id')}`)));
    const after = await getTransfer(env.db, t.transferId);
    expect(after!.state).toBe('live');
    expect(after!.held).toBe(false);
    expect(await listRules(env.db)).toEqual(rulesBefore);
  });

  it('allows every read', async () => {
    for (const op of (await operations()).filter((o) => !MUTATING.has(o.method))) {
      const r = await call(op, HELP);
      // A queue id that is not queued answers 404 after authorisation; nothing answers 401 or 403.
      expect([200, 404], `${op.method} ${op.path}`).toContain(r.statusCode);
      if (r.statusCode === 404) expect(op.path).toBe('/queue/{id}');
    }
  });

  it('a full admin token may still change things', async () => {
    const r = await app.inject({ method: 'POST', url: `/admin/api/transfers/${t.transferId}/hold`, headers: { authorization: `Bearer ${ADMIN}` }, payload: { reason: 'case 7' } });
    expect(r.statusCode).toBe(200);
    const rel = await app.inject({ method: 'POST', url: `/admin/api/transfers/${t.transferId}/release`, headers: { authorization: `Bearer ${ADMIN}` }, payload: {} });
    expect(rel.statusCode).toBe(200);
  });
});

describe('read-only role in the UI', () => {
  it('shows no button that changes something, refuses the POST all the same (audited), and may log out', async () => {
    const { cookie, csrf } = await uiLogin(app, HELP);
    const pages = ['/admin', `/admin/transfers/${t.transferId}`, '/admin/transfers', '/admin/rules', '/admin/queue', '/admin/audit', '/admin/sessions'];
    for (const url of pages) {
      const r = await app.inject({ url, headers: { cookie } });
      expect(r.statusCode, url).toBe(200);
      // The only POST form on a read-only page is the logout.
      const actions = [...r.body.matchAll(/<form[^>]*method="post"[^>]*action="([^"]+)"/g)].map((m) => m[1]);
      expect(actions, url).toEqual(['/admin/logout']);
      expect(r.body).toContain('helpdesk (read-only)');
    }
    const before = (await listAudit(env.db, { action: 'admin_refused', limit: 1000 })).length;
    for (const [url, fields] of [
      [`/admin/transfers/${t.transferId}/revoke`, {}],
      [`/admin/transfers/${t.transferId}/delete`, { confirm: 'yes' }],
      [`/admin/transfers/${t.transferId}/hold`, {}],
      [`/admin/transfers/${t.transferId}/revoke-recipient`, { link: t.transferId }],
      ['/admin/rules', { kind: 'sender', match: 'x@example.com', days: '5' }],
      ['/admin/rules/delete', { id: 'default' }],
      ['/admin/rules/reapply', {}],
      ['/admin/queue/retry', {}],
      ['/admin/queue/0123456789ABCDEF/delete', { mode: 'silent', confirm: 'yes' }],
      ['/admin/sessions/0123456789abcdef/revoke', {}],
    ] as const) {
      const r = await app.inject(postForm(cookie, url, { ...fields, _csrf: csrf }));
      expect(r.statusCode, url).toBe(403);
      expect(r.body).toContain('read-only role');
    }
    expect((await app.inject({ url: '/admin/queue/0123456789ABCDEF/delete?mode=silent', headers: { cookie } })).statusCode).toBe(403);
    expect((await listAudit(env.db, { action: 'admin_refused', limit: 1000 })).length - before).toBe(11);
    expect((await getTransfer(env.db, t.transferId))!.state).toBe('live');
    const out = await app.inject(postForm(cookie, '/admin/logout', { _csrf: csrf }));
    expect(out.statusCode).toBe(303);
    expect((await app.inject({ url: '/admin', headers: { cookie } })).statusCode).toBe(303);
  });

  it('a full admin sees the forms', async () => {
    const { cookie } = await uiLogin(app, ADMIN);
    const r = await app.inject({ url: `/admin/transfers/${t.transferId}`, headers: { cookie } });
    expect(r.body).toContain(`action="/admin/transfers/${t.transferId}/revoke"`);
    expect(r.body).toContain('boss');
    expect(r.body).not.toContain('(read-only)');
  });
});

describe('configuration of roles, sessions and single sign-on', () => {
  it('reads admin.readonlyTokens, admin.session and admin.oidc from the environment, masks the secrets, and says what is missing', async () => {
    const { loadConfig, redactConfig } = await import('../../config/index.js');
    const c = loadConfig({
      env: {
        FERRY_ADMIN_READONLY_TOKENS: `helpdesk:${HELP}`,
        FERRY_ADMIN_SESSION_IDLE_TIMEOUT: '30m',
        FERRY_ADMIN_OIDC_ISSUER: 'https://login.example.com/realms/staff',
        FERRY_ADMIN_OIDC_CLIENT_ID: 'ferry-admin',
        FERRY_ADMIN_OIDC_CLIENT_SECRET: 'oidc-secret-value-0123456789',
        FERRY_ADMIN_OIDC_GROUPS_CLAIM: 'groups',
        FERRY_ADMIN_OIDC_READONLY_GROUPS: 'helpdesk,support',
      },
      overrides: {},
    });
    expect(c.admin.readonlyTokens).toEqual([`helpdesk:${HELP}`]);
    expect(c.admin.session).toEqual({ idleTimeout: 30 * 60_000, maxAge: 12 * 3_600_000 });
    expect(c.admin.oidc.readonlyGroups).toEqual(['helpdesk', 'support']);
    const shown = JSON.stringify(redactConfig(c));
    expect(shown).not.toContain(HELP);
    expect(shown).not.toContain('oidc-secret-value');
    expect(() => loadConfig({ env: { FERRY_ADMIN_OIDC_ISSUER: 'https://login.example.com/x', FERRY_ADMIN_OIDC_CLIENT_ID: 'f' }, overrides: {} })).toThrow(/admin\.oidc.*allowedEmails/);
    expect(() => loadConfig({ env: { FERRY_ADMIN_READONLY_TOKENS: 'helpdesk:short' }, overrides: {} })).toThrow(/admin\.readonlyTokens.*NAME:TOKEN/);
  });

  it('the API shows file names as the landing page does', async () => {
    const odd = await addTransfer(env, { files: [{ name: 'invoice\u202Efdp.exe\u0000\r\n', data: Buffer.from('x') }] });
    const r = await app.inject({ url: `/admin/api/transfers/${odd.transferId}`, headers: { authorization: `Bearer ${HELP}` } });
    expect((r.json() as { files: { name: string }[] }).files[0]!.name).toBe('invoicefdp.exe');
  });
});
