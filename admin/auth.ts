import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { sameSecret } from '../storage/index.js';

// Admin authentication. The API takes `Authorization: Bearer TOKEN`; the UI logs in with the
// same token (or through single sign-on, oidc.ts) and then carries a session cookie.
//
// Sessions are server-side (storage/admin-sessions.ts): the cookie holds a random session id,
// the database only its hash, so logging out or revoking a session in the UI ends it on every
// web process at once, and a copied cookie stops working. The CSRF token of a form is a MAC
// keyed with the session id, so it cannot be made without the cookie and differs per session.

/** What an admin may do: everything, or look without changing anything (admin.readonlyTokens, SSO readonly groups). */
export type AdminRole = 'admin' | 'readonly';

export interface AdminToken {
  /** For the audit log: the NAME of "NAME:TOKEN", or "token-" and the first hex of its hash. */
  name: string;
  /** Public id of the token (hash prefix), kept with the sessions it opened. */
  id: string;
  role: AdminRole;
  digest: Buffer;
}

/** Who a request is authenticated as: a token, or a session (which may come from SSO and have no token). */
export interface AdminIdentity {
  name: string;
  role: AdminRole;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest();

/**
 * admin.token and admin.tokens ("TOKEN" or "NAME:TOKEN") as full admins, admin.readonlyTokens
 * as read-only ones. A secret listed in both is taken once, as the full admin it was first
 * listed as, so a typo never silently widens or narrows a role twice.
 */
export function parseAdminTokens(token: string | undefined, tokens: readonly string[] = [], readonlyTokens: readonly string[] = []): AdminToken[] {
  const out: AdminToken[] = [];
  const add = (name: string | undefined, secret: string, role: AdminRole) => {
    const digest = sha256(secret);
    const id = digest.toString('hex').slice(0, 16);
    if (out.some((t) => t.id === id)) return;
    out.push({ name: name ?? `token-${id.slice(0, 8)}`, id, role, digest });
  };
  const addSpec = (t: string, role: AdminRole) => {
    const m = /^([A-Za-z0-9_.-]{1,40}):(\S{24,})$/.exec(t);
    if (m) add(m[1], m[2]!, role);
    else add(undefined, t, role);
  };
  if (token) add(undefined, token, 'admin');
  for (const t of tokens) addSpec(t, 'admin');
  for (const t of readonlyTokens) addSpec(t, 'readonly');
  return out;
}

/** Whether the admin side is on: a token of either role, or single sign-on (admin.oidc.issuer). */
export function adminEnabled(opts: { token?: string; tokens?: readonly string[]; readonlyTokens?: readonly string[]; oidc?: { issuer?: string } }): boolean {
  return parseAdminTokens(opts.token, opts.tokens, opts.readonlyTokens).length > 0 || !!opts.oidc?.issuer;
}

/**
 * The admin whose token this is, or undefined. Compares hashes in constant time against every
 * configured token (no early exit), so timing says nothing about which or how much matched.
 */
export function matchToken(tokens: readonly AdminToken[], candidate: string | undefined): AdminToken | undefined {
  const d = sha256(candidate ?? '');
  let found: AdminToken | undefined;
  for (const t of tokens) {
    if (timingSafeEqual(d, t.digest) && candidate) found ??= t;
  }
  return found;
}

export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1];
}

/** A new session id for the cookie: 256 random bits. */
export function newSessionId(): string {
  return randomBytes(32).toString('base64url');
}

/** What the database keeps of a session id: its SHA-256, so a leaked table opens no session. */
export function sessionIdHash(sessionId: string): string {
  return sha256(`ferry-admin-session:${sessionId}`).toString('hex');
}

/** Whether a cookie value has the shape of a session id (checked before any database lookup). */
export function looksLikeSessionId(value: string | undefined): value is string {
  return !!value && /^[A-Za-z0-9_-]{43}$/.test(value);
}

export function csrfToken(sessionId: string): string {
  return createHmac('sha256', sessionId).update('csrf').digest('base64url');
}

export function checkCsrf(sessionId: string, submitted: unknown): boolean {
  return typeof submitted === 'string' && sameSecret(csrfToken(sessionId), submitted);
}

/** The login form has no session yet: a random value in a cookie and in the form (double submit). */
export function newLoginNonce(): string {
  return randomBytes(18).toString('base64url');
}

export function checkLoginNonce(cookie: string | undefined, submitted: unknown): boolean {
  return !!cookie && typeof submitted === 'string' && sameSecret(cookie, submitted);
}
