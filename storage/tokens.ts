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

// Queue ids are drawn from a pool of random bytes filled 512 ids at a time: each randomBytes()
// call is a system call (7-8 us here), one per message was 2.5 % of a small message's CPU.
// Only for ids that are shown, never for secrets: a token draws its own bytes, so no token shares
// a pool with a value a client sees.
const QUEUE_ID_BYTES = 8;
let idPool = Buffer.alloc(0);
let idPoolAt = 0;

/** A short id shown to SMTP clients and in logs, like a Postfix queue id. */
export function newQueueId(): string {
  if (idPoolAt + QUEUE_ID_BYTES > idPool.length) {
    idPool = randomBytes(QUEUE_ID_BYTES * 512);
    idPoolAt = 0;
  }
  idPoolAt += QUEUE_ID_BYTES;
  return idPool.toString('hex', idPoolAt - QUEUE_ID_BYTES, idPoolAt).toUpperCase();
}

export function newBlobKey(transferId: string, index: number): string {
  return `t/${transferId}/${index}-${newId(8)}`;
}
