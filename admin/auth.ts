import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

// Admin authentication. The API takes `Authorization: Bearer TOKEN`; the UI logs in with the
// same token and then carries a session cookie.
//
// Sessions are stateless: the cookie is "v1.TOKENID.ISSUED.NONCE.MAC", the MAC keyed with the admin
// token itself. So every web process accepts a session another one issued (no shared session
// store), and replacing a token in the configuration ends every session made with it. The CSRF
// token of a form is another MAC of the session cookie, so it cannot be made without the
// cookie's secret and is different for every session.

export interface AdminToken {
  /** For the audit log: the NAME of "NAME:TOKEN", or "token-" and the first hex of its hash. */
  name: string;
  /** Public id of the token (hash prefix), used in session cookies. */
  id: string;
  secret: string;
  digest: Buffer;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest();

/** admin.token and admin.tokens ("TOKEN" or "NAME:TOKEN") as a list. */
export function parseAdminTokens(token: string | undefined, tokens: readonly string[] = []): AdminToken[] {
  const out: AdminToken[] = [];
  const add = (name: string | undefined, secret: string) => {
    const digest = sha256(secret);
    const id = digest.toString('hex').slice(0, 16);
    if (out.some((t) => t.id === id)) return;
    out.push({ name: name ?? `token-${id.slice(0, 8)}`, id, secret, digest });
  };
  if (token) add(undefined, token);
  for (const t of tokens) {
    const m = /^([A-Za-z0-9_.-]{1,40}):(\S{24,})$/.exec(t);
    if (m) add(m[1], m[2]!);
    else add(undefined, t);
  }
  return out;
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

const mac = (key: string, data: string) => createHmac('sha256', key).update(data).digest('base64url');

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function issueSession(t: AdminToken, now: number): string {
  const issued = Math.floor(now / 1000).toString(36);
  // A random part, so two logins never share a session value (nor a CSRF token).
  const nonce = randomBytes(9).toString('base64url');
  return `v1.${t.id}.${issued}.${nonce}.${mac(t.secret, `session:${t.id}:${issued}:${nonce}`)}`;
}

/** The admin of a valid, unexpired session cookie. */
export function verifySession(tokens: readonly AdminToken[], cookie: string | undefined, now: number, ttlMs: number): AdminToken | undefined {
  const m = /^v1\.([0-9a-f]{16})\.([0-9a-z]{1,10})\.([A-Za-z0-9_-]{12})\.([A-Za-z0-9_-]{43})$/.exec(cookie ?? '');
  if (!m) return undefined;
  const t = tokens.find((x) => x.id === m[1]);
  if (!t) return undefined;
  if (!safeEqual(mac(t.secret, `session:${t.id}:${m[2]}:${m[3]}`), m[4]!)) return undefined;
  const issuedMs = parseInt(m[2]!, 36) * 1000;
  if (issuedMs > now + 60_000 || now - issuedMs > ttlMs) return undefined;
  return t;
}

export function csrfToken(t: AdminToken, session: string): string {
  return mac(t.secret, `csrf:${session}`);
}

export function checkCsrf(t: AdminToken, session: string, submitted: unknown): boolean {
  return typeof submitted === 'string' && safeEqual(csrfToken(t, session), submitted);
}

/** The login form has no session yet: a random value in a cookie and in the form (double submit). */
export function newLoginNonce(): string {
  return randomBytes(18).toString('base64url');
}

export function checkLoginNonce(cookie: string | undefined, submitted: unknown): boolean {
  return !!cookie && typeof submitted === 'string' && safeEqual(cookie, submitted);
}
