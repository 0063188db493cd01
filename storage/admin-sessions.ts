import { randomBytes } from 'node:crypto';
import type { Selectable } from 'kysely';
import type { Db } from './database.js';
import type { AdminSessionsTable } from './schema.js';

// Admin UI sessions, kept in the database so that every web process sees a logout or a
// revocation at once. Only the hash of the cookie's session id is stored (the admin side hashes
// it, admin/auth.ts); the public id is what the sessions list shows and revokes by. A session
// ends at logout, when revoked, after admin.session.idleTimeout without a request, and at
// admin.session.maxAge after login, whichever comes first.

export interface AdminSession {
  id: string;
  name: string;
  role: 'admin' | 'readonly';
  method: 'token' | 'oidc';
  tokenId: string | null;
  client: string | null;
  userAgent: string | null;
  createdAt: number;
  lastSeenAt: number;
  expiresAt: number;
}

export interface NewAdminSession {
  secretHash: string;
  name: string;
  role: 'admin' | 'readonly';
  method: 'token' | 'oidc';
  tokenId?: string | null;
  client?: string | null;
  userAgent?: string | null;
  now: number;
  maxAgeMs: number;
}

/** How often last_seen_at is written at most: not on every page view. */
const TOUCH_EVERY_MS = 60_000;
/** Ended and expired rows are removed this long after their end (the audit log keeps the logins and revocations). */
const KEEP_ENDED_MS = 24 * 3_600_000;

function toSession(r: Selectable<AdminSessionsTable>): AdminSession {
  return {
    id: r.id,
    name: r.name,
    role: r.role,
    method: r.method,
    tokenId: r.token_id,
    client: r.client,
    userAgent: r.user_agent,
    createdAt: Number(r.created_at),
    lastSeenAt: Number(r.last_seen_at),
    expiresAt: Number(r.expires_at),
  };
}

export async function createAdminSession(db: Db, s: NewAdminSession): Promise<AdminSession> {
  const id = randomBytes(8).toString('hex');
  await db
    .insertInto('admin_sessions')
    .values({
      id,
      secret_hash: s.secretHash,
      name: s.name.slice(0, 200),
      role: s.role,
      method: s.method,
      token_id: s.tokenId ?? null,
      client: s.client?.slice(0, 100) ?? null,
      user_agent: s.userAgent?.slice(0, 300) ?? null,
      created_at: s.now,
      last_seen_at: s.now,
      expires_at: s.now + s.maxAgeMs,
      ended_at: null,
      ended_by: null,
    })
    .execute();
  // Housekeeping at login: there are few logins, and no sweeper is needed for a small table.
  await db
    .deleteFrom('admin_sessions')
    .where((eb) => eb.or([eb('expires_at', '<', s.now - KEEP_ENDED_MS), eb('ended_at', '<', s.now - KEEP_ENDED_MS)]))
    .execute();
  return toSession((await db.selectFrom('admin_sessions').selectAll().where('id', '=', id).executeTakeFirstOrThrow()) as Selectable<AdminSessionsTable>);
}

const live = (idleMs: number, now: number) => (eb: any) =>
  eb.and([eb('ended_at', 'is', null), eb('expires_at', '>', now), eb('last_seen_at', '>', now - idleMs)]);

/** The live session with this secret hash; records the activity (at most once a minute). */
export async function useAdminSession(db: Db, secretHash: string, now: number, idleMs: number): Promise<AdminSession | undefined> {
  const r = await db.selectFrom('admin_sessions').selectAll().where('secret_hash', '=', secretHash).where(live(idleMs, now)).executeTakeFirst();
  if (!r) return undefined;
  const s = toSession(r as Selectable<AdminSessionsTable>);
  if (now - s.lastSeenAt >= TOUCH_EVERY_MS) {
    await db.updateTable('admin_sessions').set({ last_seen_at: now }).where('id', '=', s.id).execute();
    s.lastSeenAt = now;
  }
  return s;
}

/** Live sessions, most recently active first. */
export async function listAdminSessions(db: Db, now: number, idleMs: number): Promise<AdminSession[]> {
  const rows = await db.selectFrom('admin_sessions').selectAll().where(live(idleMs, now)).orderBy('last_seen_at', 'desc').limit(500).execute();
  return rows.map((r) => toSession(r as Selectable<AdminSessionsTable>));
}

/** Ends a live session (logout or revocation); the session as it was, or undefined when there was none. */
export async function endAdminSession(db: Db, by: { id: string } | { secretHash: string }, endedBy: string, now: number): Promise<AdminSession | undefined> {
  let q = db.selectFrom('admin_sessions').selectAll().where('ended_at', 'is', null);
  q = 'id' in by ? q.where('id', '=', by.id) : q.where('secret_hash', '=', by.secretHash);
  const r = await q.executeTakeFirst();
  if (!r) return undefined;
  const n = await db.updateTable('admin_sessions').set({ ended_at: now, ended_by: endedBy.slice(0, 200) }).where('id', '=', r.id).where('ended_at', 'is', null).executeTakeFirst();
  return Number(n.numUpdatedRows) > 0 ? toSession(r as Selectable<AdminSessionsTable>) : undefined;
}
