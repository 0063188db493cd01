import crypto from 'node:crypto';
import { promisify } from 'node:util';
import { sql } from 'kysely';
import type { Db } from './database.js';
import { hashToken } from './tokens.js';

// Password-protected transfers (docs/passwords.md): the password Ferry makes up for a transfer,
// its slow hash, the count of wrong guesses per transfer and client address group with the
// lock they lead to, and the server side of the unlock cookie.
//
// The password is generated, never chosen by a person: 20 symbols of Crockford's base 32
// (100 bits), in groups of five. Typing is forgiving: case, spaces and dashes do not matter,
// and the letters people confuse with digits (O, I, L) count as those digits. The hash is
// scrypt in the same self-describing form as SMTP AUTH users (gateway/auth.ts):
//   $scrypt$ln=15,r=8,p=1$<salt, base64>$<key, base64>
// With 100 random bits no hash can be brute-forced; the slow hash is there so that a leaked
// database does not hand out passwords cheaply even so.

const scrypt = promisify(crypto.scrypt) as (password: string | Buffer, salt: Buffer, keylen: number, options: crypto.ScryptOptions) => Promise<Buffer>;

/** Crockford's base 32: digits and capitals without I, L, O and U. */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const SYMBOLS = 20;
const GROUP = 5;
const LOG_N = 15;
/** scrypt with N = 2^15 and r = 8 needs 32 MiB; node's default maxmem (32 MiB) is just too small. */
const SCRYPT_MAXMEM = 64 * 1024 * 1024;
const SCRYPT_RE = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;
/** Anything longer is not a Ferry password; refused before any hashing, so a huge body costs nothing. */
export const MAX_PASSWORD_LENGTH = 200;

/** A new transfer password such as "7KQ2M-XD9RT-4HBNW-PZ3CF": 100 random bits. */
export function newTransferPassword(): string {
  let s = '';
  for (let i = 0; i < SYMBOLS; i++) {
    if (i > 0 && i % GROUP === 0) s += '-';
    s += ALPHABET[crypto.randomInt(ALPHABET.length)];
  }
  return s;
}

/** What is hashed: the symbols only, upper case, confusable letters as the digits they look like. */
export function canonicalPassword(pw: string): string {
  return pw
    .normalize('NFKC')
    .toUpperCase()
    .replace(/[\s\u00ad\u2010-\u2015\u2212_-]+/g, '')
    .replace(/O/g, '0')
    .replace(/[IL]/g, '1');
}

export async function hashTransferPassword(pw: string): Promise<string> {
  const salt = crypto.randomBytes(16);
  const key = await scrypt(canonicalPassword(pw), salt, 32, { N: 2 ** LOG_N, r: 8, p: 1, maxmem: SCRYPT_MAXMEM });
  return `$scrypt$ln=${LOG_N},r=8,p=1$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** True when `pw` is the password `stored` was made from; the keys are compared in constant time. */
export async function verifyTransferPassword(pw: string, stored: string): Promise<boolean> {
  if (pw.length > MAX_PASSWORD_LENGTH) return false;
  const m = SCRYPT_RE.exec(stored);
  if (!m) return false;
  const [, ln, r, p, salt, key] = m;
  // Bounds on what a stored hash may ask for: a corrupt row must not make one check take seconds or gigabytes.
  // Ferry writes ln=15, r=8, p=1 (32 MiB); a little above is allowed for a later, stronger
  // setting, but not ln=20, r=16 (2 GiB per check, two at once), which any web request could trigger.
  if (Number(ln) < 10 || Number(ln) > 17 || Number(r) < 1 || Number(r) > 8 || Number(p) < 1 || Number(p) > 2) return false;
  const expected = Buffer.from(key!, 'base64');
  if (expected.length < 16) return false;
  const actual = await scrypt(canonicalPassword(pw), Buffer.from(salt!, 'base64'), expected.length, {
    N: 2 ** Number(ln),
    r: Number(r),
    p: Number(p),
    maxmem: 128 * Number(r) * 2 ** Number(ln) * Number(p) + SCRYPT_MAXMEM,
  });
  return crypto.timingSafeEqual(actual, expected);
}

/** The stored hash of a transfer's password; undefined when it has none. For the web's unlock check only. */
export async function transferPasswordHash(db: Db, transferId: string): Promise<string | undefined> {
  const r = await db.selectFrom('transfers').select('password_hash').where('id', '=', transferId).executeTakeFirst();
  return r?.password_hash ?? undefined;
}

// ---- wrong guesses and locks ----

/** The row that counts a transfer's wrong guesses from every address together. */
export const ALL_ADDRESSES = '*';

export interface FailureLimits {
  /** Wrong guesses from one address group before it is locked out (web.passwordMaxFailures). */
  maxFailures: number;
  /** Wrong guesses from all addresses together before everyone is locked out. */
  maxFailuresAll: number;
  /** How long a lock lasts (web.passwordLockout); also how long a wrong guess is remembered. */
  lockoutMs: number;
}

export interface LockState {
  /** When the lock that applies ends; undefined when none does. */
  lockedUntil?: number;
  /** Whose lock: the client's group, or everyone's (ALL_ADDRESSES). */
  scope?: 'group' | 'all';
}

/** Whether guesses from `group` are refused now, and until when. The later of the two locks wins. */
export async function passwordLock(db: Db, transferId: string, group: string, now: number): Promise<LockState> {
  const rows = await db
    .selectFrom('password_failures')
    .select(['client_group', 'locked_until'])
    .where('transfer_id', '=', transferId)
    .where('client_group', 'in', [group, ALL_ADDRESSES])
    .execute();
  let state: LockState = {};
  for (const r of rows) {
    const until = r.locked_until === null ? 0 : Number(r.locked_until);
    if (until > now && until > (state.lockedUntil ?? 0)) state = { lockedUntil: until, scope: r.client_group === ALL_ADDRESSES ? 'all' : 'group' };
  }
  return state;
}

export interface FailureResult extends LockState {
  /** Wrong guesses the group has left before its lock (0 once locked). */
  left: number;
  /** This guess started a lock; exactly one caller sees it per lock, whatever runs at the same time. */
  newlyLocked: boolean;
}

/**
 * Counts one wrong guess for the group and for the transfer as a whole; past a limit, locks.
 * The increments are single statements (an upsert), so guesses from several processes at once
 * are all counted, and the lock is taken by a conditional update that only one caller wins.
 * A count older than the lockout starts again from nothing; a lock resets its count, so after
 * it ends the group has its full allowance again.
 */
export async function recordPasswordFailure(db: Db, transferId: string, group: string, limits: FailureLimits, now: number): Promise<FailureResult> {
  const own = await countFailure(db, transferId, group, limits, now);
  const all = await countFailure(db, transferId, ALL_ADDRESSES, limits, now);
  const lockOwn = own >= limits.maxFailures ? await takeLock(db, transferId, group, limits, now) : false;
  const lockAll = all >= limits.maxFailuresAll ? await takeLock(db, transferId, ALL_ADDRESSES, limits, now) : false;
  const state = await passwordLock(db, transferId, group, now);
  return { ...state, left: state.lockedUntil ? 0 : Math.max(0, limits.maxFailures - own), newlyLocked: lockOwn || lockAll };
}

async function countFailure(db: Db, transferId: string, group: string, limits: FailureLimits, now: number): Promise<number> {
  const stale = now - limits.lockoutMs;
  await db
    .insertInto('password_failures')
    .values({ transfer_id: transferId, client_group: group, failures: 1, locked_until: null, updated_at: now })
    .onConflict((oc) =>
      oc.columns(['transfer_id', 'client_group']).doUpdateSet({
        failures: sql<number>`case when password_failures.updated_at < ${stale} then 1 else password_failures.failures + 1 end`,
        updated_at: now,
      }),
    )
    .execute();
  const r = await db
    .selectFrom('password_failures')
    .select('failures')
    .where('transfer_id', '=', transferId)
    .where('client_group', '=', group)
    .executeTakeFirst();
  return Number(r?.failures ?? 0);
}

async function takeLock(db: Db, transferId: string, group: string, limits: FailureLimits, now: number): Promise<boolean> {
  const r = await db
    .updateTable('password_failures')
    .set({ locked_until: now + limits.lockoutMs, failures: 0, updated_at: now })
    .where('transfer_id', '=', transferId)
    .where('client_group', '=', group)
    .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', now)]))
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** The right password from this group: its count of wrong guesses starts again. */
export async function clearPasswordFailures(db: Db, transferId: string, group: string): Promise<void> {
  await db.updateTable('password_failures').set({ failures: 0 }).where('transfer_id', '=', transferId).where('client_group', '=', group).execute();
}

/**
 * Whether the sender should hear about a lock now: at most once per lockout period per
 * transfer, however many groups a botnet locks. Remembered on the transfer's all-addresses row.
 */
export async function claimLockNotice(db: Db, transferId: string, limits: FailureLimits, now: number): Promise<boolean> {
  const r = await db
    .updateTable('password_failures')
    .set({ notified_at: now })
    .where('transfer_id', '=', transferId)
    .where('client_group', '=', ALL_ADDRESSES)
    .where((eb) => eb.or([eb('notified_at', 'is', null), eb('notified_at', '<=', now - limits.lockoutMs)]))
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

// ---- unlocks: the server side of the unlock cookie ----

/** Expired unlocks and forgotten counts are removed this long after they stopped mattering. */
const KEEP_MS = 24 * 3_600_000;

/** Stores an unlock for the cookie secret `secret` (only its hash is kept); returns when it ends. */
export async function createTransferUnlock(db: Db, transferId: string, secret: string, now: number, ttlMs: number): Promise<number> {
  const expiresAt = now + ttlMs;
  await db.insertInto('transfer_unlocks').values({ secret_hash: hashToken(secret), transfer_id: transferId, created_at: now, expires_at: expiresAt }).execute();
  // Housekeeping at unlock time, as admin sessions do at login: unlocks are rare, and no
  // sweeper is needed for two small tables.
  await db.deleteFrom('transfer_unlocks').where('expires_at', '<', now - KEEP_MS).execute();
  await db
    .deleteFrom('password_failures')
    .where('updated_at', '<', now - KEEP_MS)
    .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<', now)]))
    .execute();
  return expiresAt;
}

/** True when `secret` is a live unlock of this transfer (and of no other). */
export async function isTransferUnlocked(db: Db, transferId: string, secret: string, now: number): Promise<boolean> {
  const r = await db.selectFrom('transfer_unlocks').select(['transfer_id', 'expires_at']).where('secret_hash', '=', hashToken(secret)).executeTakeFirst();
  return !!r && r.transfer_id === transferId && Number(r.expires_at) > now;
}
