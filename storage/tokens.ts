import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

// Link tokens: 160 random bits, base64url. Only the SHA-256 of a token is stored, so a leaked
// database does not leak working links.

const TOKEN_BYTES = 20;
const TOKEN_RE = /^[A-Za-z0-9_-]{27}$/;

export function newToken(): string {
  return randomBytes(TOKEN_BYTES).toString('base64url');
}

/** Cheap shape check before any database work; anything else is certainly not a token. */
export function isTokenShaped(token: string): boolean {
  return TOKEN_RE.test(token);
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Constant-time check that `token` hashes to `storedHash`. */
export function tokenMatches(token: string, storedHash: string): boolean {
  const a = Buffer.from(hashToken(token), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Constant-time equality of two secrets given as strings (form tokens, cookie values). */
export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Random ids for records and blob keys: lowercase, URL- and path-safe. */
export function newId(bytes = 12): string {
  return randomBytes(bytes).toString('base64url').toLowerCase().replace(/[^a-z0-9]/g, '0');
}

// Ids that are shown (queue ids, SMTP session ids) are drawn from a pool of random bytes
// filled 4 KiB at a time: each randomBytes() call is a system call (7-8 us here), and one per
// message and one per connection were 2.5 % and 1.7 % of a small message's CPU. Never for
// secrets: a token draws its own bytes, so no token shares a pool with a value a client sees.
let idPool = Buffer.alloc(0);
let idPoolAt = 0;

/** `n` random bytes for an id that is shown (never for a secret). */
export function shownIdBytes(n: number): Buffer {
  if (idPoolAt + n > idPool.length) {
    idPool = randomBytes(Math.max(4096, n));
    idPoolAt = 0;
  }
  idPoolAt += n;
  return idPool.subarray(idPoolAt - n, idPoolAt);
}

/** A short id shown to SMTP clients and in logs, like a Postfix queue id. */
export function newQueueId(): string {
  return shownIdBytes(8).toString('hex').toUpperCase();
}

export function newBlobKey(transferId: string, index: number): string {
  return `t/${transferId}/${index}-${newId(8)}`;
}
