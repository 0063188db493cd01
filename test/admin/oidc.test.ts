import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import Provider from 'oidc-provider';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSite } from '../../admin/site.js';
import { DAY_MS, listAudit, seedRetentionRules } from '../../storage/index.js';
import { makeEnv, type Env } from '../web/helpers.js';
import { cookiesOf, postForm } from './admin-login.js';

// Single sign-on for the admin UI (issue 16 item 7) against a real OpenID provider:
// node-oidc-provider, started here on loopback with a test client and test accounts, its
// development login and consent pages filled in as a browser would. Ferry speaks to it through
// openid-client: authorization code with PKCE, state and nonce checked.

const FERRY = 'http://127.0.0.1:8089';
const CALLBACK = `${FERRY}/admin/oidc/callback`;
const SECRET = 'oidc-test-client-secret-0123456789';
const ACCOUNTS: Record<string, { email: string; groups: string[] }> = {
  alice: { email: 'alice@corp.example', groups: ['ferry-admins', 'staff'] },
  helen: { email: 'helen@corp.example', groups: ['helpdesk'] },
  mallory: { email: 'mallory@corp.example', groups: ['sales'] },
  erin: { email: 'erin@corp.example', groups: [] },
};
const bounds = { defaultMs: 30 * DAY_MS, minMs: DAY_MS, maxMs: 90 * DAY_MS };
const HOUR = 3_600_000;

let idp: http.Server;
let issuer: string;
let env: Env;
let app: FastifyInstance;
let clock = Date.now();

beforeAll(async () => {
  let handler: http.RequestListener = (_q, s) => s.end();
  idp = http.createServer((q, s) => handler(q, s));
  await new Promise<void>((r) => idp.listen(0, '127.0.0.1', r));
  issuer = `http://127.0.0.1:${(idp.address() as AddressInfo).port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'ferry',
        client_secret: SECRET,
        redirect_uris: [CALLBACK],
        post_logout_redirect_uris: [`${FERRY}/admin/login`],
        response_types: ['code'],
        grant_types: ['authorization_code'],
      },
    ],
    async findAccount(_ctx: unknown, sub: string) {
      const a = ACCOUNTS[sub];
      if (!a) return undefined;
      return { accountId: sub, claims: async () => ({ sub, email: a.email, email_verified: true, groups: a.groups }) };
    },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['groups'] },
    // The groups go into the ID token, as Keycloak's and Entra's group mappers put them.
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
    cookies: { keys: ['oidc-test-cookie-key-0123456789'] },
    pkce: { required: () => true },
  });
  handler = provider.callback();
  env = await makeEnv();
  await seedRetentionRules(env.db, bounds);
  app = await buildSite({
    publicUrl: FERRY,
    db: env.db,
    blobs: env.blobs,
    rateLimit: false,
    now: () => clock,
    admin: {
      token: 'break-glass-token-0123456789abcdef',
      retention: bounds,
      sessionIdleMs: HOUR,
      sessionMaxAgeMs: 8 * HOUR,
      oidc: { issuer, clientId: 'ferry', clientSecret: SECRET, allowedEmails: ['erin@corp.example'], groupsClaim: 'groups', adminGroups: ['ferry-admins'], readonlyGroups: ['helpdesk'] },
    },
  });
});
afterAll(async () => {
  await app?.close();
  await env?.close();
  await new Promise((r) => idp?.close(r));
});

/** Starts a login at Ferry: the flow cookie and the provider's authorization URL. */
async function startLogin(): Promise<{ flowCookie: string; authUrl: URL }> {
  const r = await app.inject({ url: '/admin/oidc/login' });
  expect(r.statusCode).toBe(303);
  const flow = cookiesOf(r).ferry_admin_oidc!;
  expect(flow).toBeTruthy();
  const setCookie = ([] as string[]).concat(r.headers['set-cookie'] as string[]).find((c) => c.startsWith('ferry_admin_oidc='))!;
  // NB SameSite=Lax: the callback is a cross-site navigation from the provider.
  expect(setCookie).toMatch(/SameSite=Lax/);
  expect(setCookie).toMatch(/HttpOnly/);
  return { flowCookie: `ferry_admin_oidc=${flow}`, authUrl: new URL(r.headers.location as string) };
}

/** Goes through the provider's login and consent pages as `login`; returns the callback URL the provider sends the browser to. */
async function signInAtProvider(authUrl: URL, login: string): Promise<URL> {
  const jar = new Map<string, string>();
  const keep = (res: Response) => {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair!.indexOf('=');
      jar.set(pair!.slice(0, i), pair!.slice(i + 1));
    }
  };
  const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  let url = authUrl;
  for (let step = 0; step < 12; step++) {
    const res = await fetch(url, { redirect: 'manual', headers: { cookie: cookie() } });
    keep(res);
    if (res.status >= 300 && res.status < 400) {
      url = new URL(res.headers.get('location')!, url);
      if (url.href.startsWith(CALLBACK)) return url;
      continue;
    }
    const page = await res.text();
    const action = /<form[^>]*action="([^"]+)"/.exec(page)?.[1];
    if (!action) throw new Error(`provider page without a form (${res.status}): ${page.slice(0, 300)}`);
    const fields: Record<string, string> = page.includes('name="login"') ? { prompt: 'login', login, password: 'any' } : { prompt: 'consent' };
    const post = await fetch(new URL(action, url), { method: 'POST', redirect: 'manual', headers: { cookie: cookie(), 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields) });
    keep(post);
    url = new URL(post.headers.get('location')!, url);
    if (url.href.startsWith(CALLBACK)) return url;
  }
  throw new Error('no redirect back to Ferry');
}

const callback = (url: URL, flowCookie: string) => app.inject({ url: url.pathname + url.search, headers: { cookie: flowCookie } });
const sessionOf = (res: { headers: Record<string, unknown> }) => `ferry_admin=${cookiesOf(res).ferry_admin}`;

describe('single sign-on with OpenID Connect', () => {
  it('the login page offers single sign-on beside the token form', async () => {
    const r = await app.inject({ url: '/admin/login' });
    expect(r.body).toContain('href="/admin/oidc/login"');
    expect(r.body).toContain('name="token"');
  });

  it('sends the browser to the provider with PKCE (S256), state and nonce', async () => {
    const { authUrl } = await startLogin();
    expect(authUrl.origin).toBe(issuer);
    const q = authUrl.searchParams;
    expect(q.get('response_type')).toBe('code');
    expect(q.get('client_id')).toBe('ferry');
    expect(q.get('redirect_uri')).toBe(CALLBACK);
    expect(q.get('code_challenge_method')).toBe('S256');
    expect(q.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q.get('state')).toBeTruthy();
    expect(q.get('nonce')).toBeTruthy();
  });

  it('logs in a member of an admin group as a full admin (audited), and a helpdesk member read-only', async () => {
    let { flowCookie, authUrl } = await startLogin();
    let r = await callback(await signInAtProvider(authUrl, 'alice'), flowCookie);
    expect(r.statusCode).toBe(303);
    expect(r.headers.location).toBe('/admin');
    const dash = await app.inject({ url: '/admin', headers: { cookie: sessionOf(r) } });
    expect(dash.statusCode).toBe(200);
    expect(dash.body).toContain('sso:alice@corp.example');
    expect(dash.body).not.toContain('(read-only)');
    const login = (await listAudit(env.db, { action: 'admin_login' }))[0]!;
    expect(login.actor).toBe('admin:sso:alice@corp.example');
    expect(login.detail).toMatchObject({ method: 'oidc', role: 'admin' });

    ({ flowCookie, authUrl } = await startLogin());
    r = await callback(await signInAtProvider(authUrl, 'helen'), flowCookie);
    expect(r.statusCode).toBe(303);
    const page = await app.inject({ url: '/admin/rules', headers: { cookie: sessionOf(r) } });
    expect(page.body).toContain('sso:helen@corp.example (read-only)');
    expect(page.body).not.toContain('action="/admin/rules/reapply"');

    // An address on admin.oidc.allowedEmails gets in without a group.
    ({ flowCookie, authUrl } = await startLogin());
    r = await callback(await signInAtProvider(authUrl, 'erin'), flowCookie);
    expect(r.statusCode).toBe(303);
  });

  it('refuses a user in no allowed group, with a page that says why', async () => {
    const { flowCookie, authUrl } = await startLogin();
    const r = await callback(await signInAtProvider(authUrl, 'mallory'), flowCookie);
    expect(r.statusCode).toBe(403);
    expect(r.body).toContain('mallory@corp.example is not allowed into the admin UI');
    expect(cookiesOf(r).ferry_admin).toBeUndefined();
  });

  it('refuses a tampered state, a tampered nonce, and a callback without the flow cookie', async () => {
    let { flowCookie, authUrl } = await startLogin();
    let cb = await signInAtProvider(authUrl, 'alice');
    const tampered = new URL(cb);
    tampered.searchParams.set('state', 'attacker-chosen-state');
    let r = await callback(tampered, flowCookie);
    expect(r.statusCode).toBe(403);
    expect(r.body).toContain('did not check out');
    expect(cookiesOf(r).ferry_admin).toBeUndefined();

    // The nonce: the ID token carries the one Ferry sent; a flow cookie with another one is refused.
    ({ flowCookie, authUrl } = await startLogin());
    cb = await signInAtProvider(authUrl, 'alice');
    const flow = JSON.parse(Buffer.from(flowCookie.split('=')[1]!, 'base64url').toString());
    const otherNonce = `ferry_admin_oidc=${Buffer.from(JSON.stringify({ ...flow, nonce: 'another-nonce-value' })).toString('base64url')}`;
    r = await callback(cb, otherNonce);
    expect(r.statusCode).toBe(403);
    expect(cookiesOf(r).ferry_admin).toBeUndefined();

    ({ flowCookie, authUrl } = await startLogin());
    cb = await signInAtProvider(authUrl, 'alice');
    r = await app.inject({ url: cb.pathname + cb.search });
    expect(r.statusCode).toBe(403);
    expect(r.body).toContain('Start it again');
  });

  it('an SSO session expires like any other: after admin.session.idleTimeout', async () => {
    const { flowCookie, authUrl } = await startLogin();
    const r = await callback(await signInAtProvider(authUrl, 'alice'), flowCookie);
    const cookie = sessionOf(r);
    expect((await app.inject({ url: '/admin', headers: { cookie } })).statusCode).toBe(200);
    clock += HOUR + 60_000;
    const later = await app.inject({ url: '/admin', headers: { cookie } });
    expect(later.statusCode).toBe(303);
    expect(later.headers.location).toBe('/admin/login');
  });

  it('logout ends the Ferry session and sends the browser to the provider to end its session too', async () => {
    const { flowCookie, authUrl } = await startLogin();
    const r = await callback(await signInAtProvider(authUrl, 'alice'), flowCookie);
    const cookie = sessionOf(r);
    const dash = await app.inject({ url: '/admin', headers: { cookie } });
    const csrf = /name="_csrf" value="([^"]+)"/.exec(dash.body)![1]!;
    const out = await app.inject(postForm(cookie, '/admin/logout', { _csrf: csrf }));
    expect(out.statusCode).toBe(303);
    const to = new URL(out.headers.location as string);
    expect(to.origin).toBe(issuer);
    expect(to.searchParams.get('client_id')).toBe('ferry');
    expect(to.searchParams.get('post_logout_redirect_uri')).toBe(`${FERRY}/admin/login`);
    // The provider accepts it: its logout confirmation page, not an error.
    const idpPage = await fetch(to, { redirect: 'manual' });
    expect(idpPage.status).toBe(200);
    expect((await app.inject({ url: '/admin', headers: { cookie } })).statusCode).toBe(303);
  });

  it('refuses a plain-http issuer that is not on loopback', async () => {
    await expect(
      buildSite({ publicUrl: FERRY, db: env.db, blobs: env.blobs, rateLimit: false, admin: { retention: bounds, oidc: { issuer: 'http://login.example.com/realms/x', clientId: 'ferry', allowedEmails: ['a@b.example'] } } }),
    ).rejects.toThrow(/admin\.oidc\.issuer.*https/);
  });
});
