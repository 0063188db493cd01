import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ALL_ADDRESSES,
  canonicalPassword,
  claimLockNotice,
  clearPasswordFailures,
  createTransfer,
  createTransferUnlock,
  DAY_MS,
  decideRetention,
  getTransfer,
  hashToken,
  hashTransferPassword,
  isTransferUnlocked,
  listRules,
  MAX_PASSWORD_LENGTH,
  newId,
  newQueueId,
  newToken,
  newTransferPassword,
  openDatabase,
  passwordLock,
  recordPasswordFailure,
  searchTransfers,
  seedRetentionRules,
  setRule,
  transferPasswordHash,
  verifyTransferPassword,
  type Db,
  type FailureLimits,
} from '../../storage/index.js';
import { tempDir } from '../helpers/ferry.js';
import { createDatabase, dropDatabase, PG_MISSING, pgUrl } from './backends.js';

// The storage side of password-protected transfers (storage/transfer-passwords.ts): the
// generated password, its scrypt hash, wrong-guess counting and locks, unlock records, and the
// retention rule switch that asks for a password. Counting and locks run on SQLite and
// PostgreSQL alike, with guesses arriving at the same time.

const pg = pgUrl();
if (!pg) console.warn(`[skip] transfer passwords on PostgreSQL: ${PG_MISSING}`);

describe('the transfer password', () => {
  it('is 20 symbols of Crockford base 32 in groups of five (100 bits), different every time', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const pw = newTransferPassword();
      expect(pw).toMatch(/^[0-9A-HJKMNP-TV-Z]{5}(-[0-9A-HJKMNP-TV-Z]{5}){3}$/);
      seen.add(pw);
    }
    expect(seen.size).toBe(500);
    // Every symbol of the alphabet turns up (a generator stuck on part of it would have fewer bits).
    const symbols = new Set([...seen].join('').replace(/-/g, ''));
    expect(symbols.size).toBe(32);
  });

  it('is hashed with scrypt in a self-describing form, salted, and verified', async () => {
    const pw = newTransferPassword();
    const a = await hashTransferPassword(pw);
    const b = await hashTransferPassword(pw);
    expect(a).toMatch(/^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/);
    expect(a).not.toBe(b);
    expect(a).not.toContain(pw);
    expect(await verifyTransferPassword(pw, a)).toBe(true);
    expect(await verifyTransferPassword(pw, b)).toBe(true);
    const other = newTransferPassword();
    expect(await verifyTransferPassword(other, a)).toBe(false);
    expect(await verifyTransferPassword(pw.slice(0, -1), a)).toBe(false);
    expect(await verifyTransferPassword('', a)).toBe(false);
  });

  it('forgives case, spaces, dashes and the letters that look like digits', async () => {
    const pw = '0K1L0-ABCDE-FGHJK-MNPQR';
    const hash = await hashTransferPassword(pw);
    for (const typed of ['0k1l0-abcde-fghjk-mnpqr', '0K1L0ABCDEFGHJKMNPQR', ' 0K1L0 ABCDE FGHJK MNPQR ', 'OKILO-ABCDE-FGHJK-MNPQR', 'oK1lO–ABCDE—FGHJK‐MNPQR']) {
      expect(await verifyTransferPassword(typed, hash), typed).toBe(true);
    }
    expect(canonicalPassword('okilo-abcde')).toBe('0K110ABCDE');
    expect(await verifyTransferPassword('0K1L0-ABCDE-FGHJK-MNPQS', hash)).toBe(false);
  });

  it('refuses malformed and hostile stored hashes and overlong input without working on them', async () => {
    const hash = await hashTransferPassword('ABCDE-FGHJK-MNPQR-STVWX');
    expect(await verifyTransferPassword('ABCDE-FGHJK-MNPQR-STVWX', 'not a hash')).toBe(false);
    expect(await verifyTransferPassword('ABCDE-FGHJK-MNPQR-STVWX', hash.replace('ln=15', 'ln=30'))).toBe(false);
    expect(await verifyTransferPassword('ABCDE-FGHJK-MNPQR-STVWX', hash.replace('r=8', 'r=99'))).toBe(false);
    const started = Date.now();
    expect(await verifyTransferPassword('A'.repeat(MAX_PASSWORD_LENGTH + 1), hash)).toBe(false);
    expect(Date.now() - started).toBeLessThan(20);
  });
});

interface DbDriver {
  name: string;
  url(): Promise<string>;
  drop(url: string): Promise<void>;
}

const dir = tempDir('ferry-passwords-');
const drivers: DbDriver[] = [
  { name: 'sqlite', url: async () => `sqlite:${path.join(dir, `${newId()}.db`)}`, drop: async () => undefined },
  ...(pg ? [{ name: 'postgres', url: () => createDatabase(pg), drop: (u: string) => dropDatabase(pg, u) }] : []),
];
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const LIMITS: FailureLimits = { maxFailures: 3, maxFailuresAll: 5, lockoutMs: 60_000 };
const T0 = Date.UTC(2026, 11, 1, 12, 0);

describe.each(drivers)('password state on $name', (driver) => {
  let url: string;
  let db: Db;
  beforeAll(async () => {
    url = await driver.url();
    db = await openDatabase(url);
  });
  afterAll(async () => {
    await db?.destroy();
    await driver.drop(url);
  });

  async function transfer(passwordHash: string | null): Promise<string> {
    const id = newId();
    await createTransfer(db, {
      id,
      tokenHash: hashToken(newToken()),
      queueId: newQueueId(),
      sender: 'alice@example.org',
      recipients: ['bob@example.net'],
      subject: 'Contract',
      messageId: null,
      createdAt: T0,
      expiresAt: T0 + 7 * DAY_MS,
      passwordHash,
    });
    return id;
  }

  it('keeps the hash in storage: the transfer says only that it is protected', async () => {
    const hash = await hashTransferPassword(newTransferPassword());
    const protectedId = await transfer(hash);
    const openId = await transfer(null);
    const t = (await getTransfer(db, protectedId))!;
    expect(t.passwordProtected).toBe(true);
    expect((await getTransfer(db, openId))!.passwordProtected).toBe(false);
    // Whatever shows a transfer (admin API, CLI, pages) gets it from these objects.
    expect(JSON.stringify(t)).not.toContain('scrypt');
    const page = await searchTransfers(db, { sender: 'alice@example.org' });
    expect(JSON.stringify(page)).not.toContain('scrypt');
    expect(await transferPasswordHash(db, protectedId)).toBe(hash);
    expect(await transferPasswordHash(db, openId)).toBeUndefined();
  });

  it('counts wrong guesses per address group and locks the group at the limit, once', async () => {
    const id = await transfer('x');
    const a = await recordPasswordFailure(db, id, '192.0.2.1', LIMITS, T0);
    expect(a).toMatchObject({ left: 2, newlyLocked: false });
    expect(a.lockedUntil).toBeUndefined();
    const b = await recordPasswordFailure(db, id, '192.0.2.1', LIMITS, T0 + 1);
    expect(b).toMatchObject({ left: 1, newlyLocked: false });
    const c = await recordPasswordFailure(db, id, '192.0.2.1', LIMITS, T0 + 2);
    expect(c).toMatchObject({ left: 0, newlyLocked: true, lockedUntil: T0 + 2 + LIMITS.lockoutMs, scope: 'group' });
    expect(await passwordLock(db, id, '192.0.2.1', T0 + 3)).toEqual({ lockedUntil: T0 + 2 + LIMITS.lockoutMs, scope: 'group' });
    // Another network is not locked out by this one.
    expect(await passwordLock(db, id, '198.51.100.7', T0 + 3)).toEqual({});
    // The lock ends on time, and the group has its whole allowance again.
    expect(await passwordLock(db, id, '192.0.2.1', T0 + 2 + LIMITS.lockoutMs)).toEqual({});
    const d = await recordPasswordFailure(db, id, '192.0.2.1', LIMITS, T0 + 2 + LIMITS.lockoutMs + 1);
    expect(d).toMatchObject({ left: 2, newlyLocked: false });
  });

  it('forgets old wrong guesses after the lockout period, and the right password clears the count', async () => {
    const id = await transfer('x');
    await recordPasswordFailure(db, id, '192.0.2.2', LIMITS, T0);
    await recordPasswordFailure(db, id, '192.0.2.2', LIMITS, T0 + 1);
    const late = await recordPasswordFailure(db, id, '192.0.2.2', LIMITS, T0 + 1 + LIMITS.lockoutMs + 1);
    expect(late).toMatchObject({ left: 2, newlyLocked: false });
    await recordPasswordFailure(db, id, '192.0.2.2', LIMITS, T0 + LIMITS.lockoutMs + 10);
    await clearPasswordFailures(db, id, '192.0.2.2');
    expect(await recordPasswordFailure(db, id, '192.0.2.2', LIMITS, T0 + LIMITS.lockoutMs + 20)).toMatchObject({ left: 2 });
  });

  it('locks everyone once all networks together reach the higher bound', async () => {
    const id = await transfer('x');
    for (let i = 1; i <= 4; i++) expect((await recordPasswordFailure(db, id, `203.0.113.${i}`, LIMITS, T0)).lockedUntil).toBeUndefined();
    const fifth = await recordPasswordFailure(db, id, '203.0.113.5', LIMITS, T0);
    expect(fifth).toMatchObject({ newlyLocked: true, scope: 'all', lockedUntil: T0 + LIMITS.lockoutMs });
    expect(await passwordLock(db, id, '2001:db8::/64', T0 + 1)).toEqual({ lockedUntil: T0 + LIMITS.lockoutMs, scope: 'all' });
  });

  it('takes a lock exactly once when guesses arrive at the same time', async () => {
    const id = await transfer('x');
    const results = await Promise.all(Array.from({ length: 12 }, () => recordPasswordFailure(db, id, '192.0.2.9', { ...LIMITS, maxFailuresAll: 100 }, T0)));
    expect(results.filter((r) => r.newlyLocked)).toHaveLength(1);
    expect(results.at(-1)!.lockedUntil).toBe(T0 + LIMITS.lockoutMs);
    const row = await db.selectFrom('password_failures').selectAll().where('transfer_id', '=', id).where('client_group', '=', ALL_ADDRESSES).executeTakeFirstOrThrow();
    expect(Number(row.failures)).toBe(12);
  });

  it('lets one notice through per lockout period', async () => {
    const id = await transfer('x');
    await recordPasswordFailure(db, id, '192.0.2.3', LIMITS, T0);
    const claims = await Promise.all(Array.from({ length: 5 }, () => claimLockNotice(db, id, LIMITS, T0)));
    expect(claims.filter(Boolean)).toHaveLength(1);
    expect(await claimLockNotice(db, id, LIMITS, T0 + LIMITS.lockoutMs - 1)).toBe(false);
    expect(await claimLockNotice(db, id, LIMITS, T0 + LIMITS.lockoutMs)).toBe(true);
  });

  it('stores unlocks by the hash of their secret, for one transfer and a limited time', async () => {
    const a = await transfer('x');
    const b = await transfer('x');
    const secret = newToken();
    const until = await createTransferUnlock(db, a, secret, T0, 3_600_000);
    expect(until).toBe(T0 + 3_600_000);
    const row = await db.selectFrom('transfer_unlocks').selectAll().where('transfer_id', '=', a).executeTakeFirstOrThrow();
    expect(row.secret_hash).toBe(hashToken(secret));
    expect(JSON.stringify(row)).not.toContain(secret);
    expect(await isTransferUnlocked(db, a, secret, T0 + 1)).toBe(true);
    expect(await isTransferUnlocked(db, b, secret, T0 + 1)).toBe(false);
    expect(await isTransferUnlocked(db, a, newToken(), T0 + 1)).toBe(false);
    expect(await isTransferUnlocked(db, a, secret, T0 + 3_600_000)).toBe(false);
  });
});

describe.each(drivers)('rules that require a password on $name', (driver) => {
  let url: string;
  let db: Db;
  const bounds = { defaultMs: 30 * DAY_MS, minMs: DAY_MS, maxMs: 365 * DAY_MS };
  beforeAll(async () => {
    url = await driver.url();
    db = await openDatabase(url);
    await seedRetentionRules(db, {
      ...bounds,
      rules: [
        { recipientDomain: 'partner.example', days: 7, requirePassword: true },
        { senderDomain: 'corp.example', days: 14, receipts: false },
        { sender: 'ceo@corp.example', days: 60, receipts: true },
        { recipientDomain: 'quiet.example', days: 5, receipts: false },
      ],
    });
  });
  afterAll(async () => {
    await db?.destroy();
    await driver.drop(url);
  });

  const decide = (sender: string, recipients: string[]) => decideRetention(db, { sender, recipients, at: T0 }, bounds);

  it('asks for a password when any rule that matches the message says so', async () => {
    expect((await decide('bob@corp.example', ['x@partner.example'])).requirePassword).toBe(true);
    expect((await decide('bob@corp.example', ['x@sub.partner.example'])).requirePassword).toBe(true);
    // One recipient at the partner is enough, whoever else is in Cc.
    expect((await decide('bob@corp.example', ['y@else.example', 'x@partner.example'])).requirePassword).toBe(true);
    // A more specific rule for the sender (60 days) decides the expiry, not the password.
    const ceo = await decide('ceo@corp.example', ['x@partner.example']);
    expect(ceo).toMatchObject({ ruleId: 'sender:ceo@corp.example', requirePassword: true });
    expect((await decide('bob@corp.example', ['y@else.example'])).requirePassword).toBe(false);
  });

  it('takes receipts from the most specific rule that says anything, else null', async () => {
    expect((await decide('ceo@corp.example', ['y@quiet.example'])).receipts).toBe(true);
    expect((await decide('bob@corp.example', ['y@else.example'])).receipts).toBe(false);
    expect((await decide('bob@other.example', ['y@quiet.example'])).receipts).toBe(false);
    expect((await decide('bob@other.example', ['y@else.example'])).receipts).toBeNull();
  });

  it('keeps the switches through the rules table: listing, and a change at run time that does not name them', async () => {
    const rules = await listRules(db);
    expect(rules.find((r) => r.id === 'recipient_domain:partner.example')).toMatchObject({ requirePassword: true, receipts: null });
    expect(rules.find((r) => r.id === 'sender_domain:corp.example')).toMatchObject({ requirePassword: false, receipts: false });
    const changed = await setRule(db, { kind: 'recipient_domain', match: 'partner.example', periodMs: 10 * DAY_MS }, 'admin:test', bounds, T0);
    expect(changed).toMatchObject({ periodMs: 10 * DAY_MS, requirePassword: true });
    const off = await setRule(db, { kind: 'recipient_domain', match: 'partner.example', periodMs: 10 * DAY_MS, requirePassword: false }, 'admin:test', bounds, T0);
    expect(off.requirePassword).toBe(false);
    expect((await decide('bob@corp.example', ['x@partner.example'])).requirePassword).toBe(false);
  });
});
