import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';

// Logging in to the admin UI over inject, as a browser would: the login form's nonce cookie,
// the session cookie, the CSRF token of the pages. Shared by the session and role tests.

export function cookiesOf(res: { headers: Record<string, unknown> }): Record<string, string> {
  const raw = res.headers['set-cookie'];
  const list = Array.isArray(raw) ? raw : raw ? [raw as string] : [];
  return Object.fromEntries(list.map((c: string) => c.split(';')[0]!.split('=') as [string, string]));
}

export async function uiLogin(app: FastifyInstance, token: string, headers: Record<string, string> = {}): Promise<{ cookie: string; csrf: string }> {
  const page = await app.inject({ url: '/admin/login', headers });
  const nonce = /name="_nonce" value="([^"]+)"/.exec(page.body)![1]!;
  const res = await app.inject({
    method: 'POST',
    url: '/admin/login',
    headers: { ...headers, cookie: `ferry_admin_login=${cookiesOf(page).ferry_admin_login}`, 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ token, _nonce: nonce }).toString(),
  });
  expect(res.statusCode).toBe(303);
  const cookie = `ferry_admin=${cookiesOf(res).ferry_admin}`;
  return { cookie, csrf: await csrfOf(app, cookie, headers) };
}

export async function csrfOf(app: FastifyInstance, cookie: string, headers: Record<string, string> = {}): Promise<string> {
  const dash = await app.inject({ url: '/admin', headers: { ...headers, cookie } });
  expect(dash.statusCode).toBe(200);
  return /name="_csrf" value="([^"]+)"/.exec(dash.body)![1]!;
}

export const postForm = (cookie: string, url: string, fields: Record<string, string>, headers: Record<string, string> = {}) => ({
  method: 'POST' as const,
  url,
  headers: { ...headers, cookie, 'content-type': 'application/x-www-form-urlencoded' },
  payload: new URLSearchParams(fields).toString(),
});
