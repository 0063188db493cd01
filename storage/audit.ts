import { AUDIT_GENESIS_HASH, auditRowHash } from './audit-chain.js';
import type { Db } from './database.js';

// The audit log: an append-only record of admin actions and lifecycle events, with who and
// when. The table refuses UPDATE and DELETE (triggers in migration 0020_retention) and an
// INSERT that would replace an existing row (REPLACE, UPSERT: migration 0060_audit_chain), so
// nothing here edits or removes an entry; exports read it in pages so memory stays bounded.
//
// Hash chain: every row carries in prev_hash the SHA-256 of the previous row's canonical form
// (auditRowHash, which covers that row's own prev_hash), and the one-row table audit_chain
// holds the newest row's id and hash. verifyAuditChain walks it. The chain makes a change by
// someone with write access to the database file visible unless they recompute every later
// hash and the head as well; comparing the head hash with a copy kept elsewhere catches that
// too (docs/admin.md#audit-verify).

export type AuditAction =
  | 'stored'
  | 'link_issued'
  | 'downloaded'
  | 'revoked'
  | 'extended'
  | 'held'
  | 'released'
  | 'expired'
  | 'purged'
  | 'deleted'
  | 'rule_set'
  | 'rule_deleted'
  | 'rules_reapplied'
  | 'admin_login'
  | 'admin_logout'
  | 'admin_session_revoked'
  | 'admin_refused'
  | 'queue_retried'
  | 'queue_deleted'
  | 'queue_bounced'
  | 'queued'
  | 'given_up'
  | 'removed'
  | 'file_quarantined'
  | 'file_blocked'
  | 'file_released'
  | 'file_deleted'
  | 'link_revoked'
  | 'copy_resent'
  | 'password_locked';

export const AUDIT_ACTIONS: readonly AuditAction[] = [
  'stored',
  'link_issued',
  'downloaded',
  'revoked',
  'extended',
  'held',
  'released',
  'expired',
  'purged',
  'deleted',
  'rule_set',
  'rule_deleted',
  'rules_reapplied',
  'admin_login',
  'admin_logout',
  'admin_session_revoked',
  'admin_refused',
  'queue_retried',
  'queue_deleted',
  'queue_bounced',
  'queued',
  'given_up',
  'removed',
  'file_quarantined',
  'file_blocked',
  'file_released',
  'file_deleted',
  'link_revoked',
  'copy_resent',
  'password_locked',
];

export interface AuditEntry {
  id: number;
  at: number;
  actor: string;
  action: string;
  transferId: string | null;
  detail: Record<string, unknown> | null;
}

export interface NewAuditEntry {
  actor: string;
  action: AuditAction;
  transferId?: string | null;
  detail?: Record<string, unknown> | null;
  at?: number;
}

/**
 * Appends one entry. `db` may be a transaction, so the entry commits with the change it records.
 * The head row of audit_chain is written first: that takes the write lock (SQLite) or the row
 * lock (PostgreSQL) before the newest hash is read, so two writers never chain to the same row.
 */
export async function appendAudit(db: Db, e: NewAuditEntry): Promise<void> {
  if (db.isTransaction) return appendChained(db, e);
  await db.transaction().execute((trx) => appendChained(trx as unknown as Db, e));
}

async function appendChained(db: Db, e: NewAuditEntry): Promise<void> {
  await db
    .updateTable('audit_chain')
    .set((eb) => ({ last_id: eb.ref('last_id') }))
    .where('id', '=', 1)
    .execute();
  const head = await db.selectFrom('audit_chain').select(['last_hash']).where('id', '=', 1).executeTakeFirst();
  const row = {
    at: e.at ?? Date.now(),
    actor: e.actor.slice(0, 200),
    action: e.action,
    transfer_id: e.transferId ?? null,
    detail: e.detail ? JSON.stringify(e.detail) : null,
    prev_hash: head?.last_hash ?? AUDIT_GENESIS_HASH,
  };
  const inserted = await db.insertInto('audit_log').values(row).returning('id').executeTakeFirstOrThrow();
  const id = Number(inserted.id);
  await db
    .updateTable('audit_chain')
    .set({ last_id: id, last_hash: auditRowHash({ id, ...row }) })
    .where('id', '=', 1)
    .execute();
}

export interface AuditVerifyResult {
  ok: boolean;
  /** Rows checked. */
  rows: number;
  /** Id and hash of the newest row: keep a copy elsewhere to catch a recomputed chain. */
  lastId: number | null;
  headHash: string;
  /** The first row where the chain breaks, and why. */
  broken: { id: number | null; reason: string } | null;
}

/** Walks the chain oldest first, a page at a time, and names the first row that does not fit. */
export async function verifyAuditChain(db: Db, pageSize = 1000): Promise<AuditVerifyResult> {
  let expected = AUDIT_GENESIS_HASH;
  let lastId: number | null = null;
  let rows = 0;
  let afterId = 0;
  for (;;) {
    const page = await db.selectFrom('audit_log').selectAll().where('id', '>', afterId).orderBy('id', 'asc').limit(pageSize).execute();
    for (const r of page) {
      const id = Number(r.id);
      if (r.prev_hash !== expected) {
        const reason =
          lastId === null
            ? `entry #${id} is the first entry but does not start the chain: entries before it were removed, or it was changed`
            : `entry #${id} does not carry the hash of entry #${lastId}: entry #${lastId} was changed, an entry between them was removed, or #${id} was inserted or changed`;
        return { ok: false, rows, lastId, headHash: expected, broken: { id, reason } };
      }
      expected = auditRowHash({ ...r, id, prev_hash: r.prev_hash });
      lastId = id;
      rows++;
    }
    if (page.length < pageSize) break;
    afterId = Number(page[page.length - 1]!.id);
  }
  const head = await db.selectFrom('audit_chain').select(['last_id', 'last_hash']).where('id', '=', 1).executeTakeFirst();
  const headId = head ? Number(head.last_id) : 0;
  if (!head || headId !== (lastId ?? 0) || head.last_hash !== expected) {
    const reason = !head
      ? 'the chain head (table audit_chain) is missing'
      : headId > (lastId ?? 0)
        ? `the chain head names entry #${headId}, but the log ends at ${lastId === null ? 'no entry' : `#${lastId}`}: the newest entries were removed`
        : `the chain head does not match the newest entry ${lastId === null ? '' : `#${lastId}`}: entries were added or changed outside Ferry`;
    return { ok: false, rows, lastId, headHash: expected, broken: { id: lastId, reason } };
  }
  return { ok: true, rows, lastId, headHash: expected, broken: null };
}

function toEntry(r: { id: number; at: number; actor: string; action: string; transfer_id: string | null; detail: string | null }): AuditEntry {
  let detail: Record<string, unknown> | null = null;
  if (r.detail) {
    try {
      detail = JSON.parse(r.detail) as Record<string, unknown>;
    } catch {
      detail = { raw: r.detail };
    }
  }
  return { id: Number(r.id), at: Number(r.at), actor: r.actor, action: r.action, transferId: r.transfer_id, detail };
}

export interface AuditQuery {
  transferId?: string;
  action?: string;
  actor?: string;
  since?: number;
  until?: number;
  /** Entries with an id below this (newest first paging). */
  beforeId?: number;
  limit?: number;
}

/** Newest first. */
export async function listAudit(db: Db, q: AuditQuery = {}): Promise<AuditEntry[]> {
  let query = db.selectFrom('audit_log').selectAll();
  if (q.transferId) query = query.where('transfer_id', '=', q.transferId);
  if (q.action) query = query.where('action', '=', q.action);
  if (q.actor) query = query.where('actor', '=', q.actor);
  if (q.since !== undefined) query = query.where('at', '>=', q.since);
  if (q.until !== undefined) query = query.where('at', '<', q.until);
  if (q.beforeId !== undefined) query = query.where('id', '<', q.beforeId);
  const rows = await query
    .orderBy('id', 'desc')
    .limit(Math.min(Math.max(q.limit ?? 100, 1), 1000))
    .execute();
  return rows.map((r) => toEntry({ ...r, id: Number(r.id) }));
}

/** Every matching entry, oldest first, read a page at a time (for exports of any size). */
export async function* iterateAudit(db: Db, q: Omit<AuditQuery, 'beforeId' | 'limit'> = {}, pageSize = 500): AsyncGenerator<AuditEntry> {
  let afterId = 0;
  for (;;) {
    let query = db.selectFrom('audit_log').selectAll().where('id', '>', afterId);
    if (q.transferId) query = query.where('transfer_id', '=', q.transferId);
    if (q.action) query = query.where('action', '=', q.action);
    if (q.actor) query = query.where('actor', '=', q.actor);
    if (q.since !== undefined) query = query.where('at', '>=', q.since);
    if (q.until !== undefined) query = query.where('at', '<', q.until);
    const rows = await query.orderBy('id', 'asc').limit(pageSize).execute();
    for (const r of rows) yield toEntry({ ...r, id: Number(r.id) });
    if (rows.length < pageSize) return;
    afterId = Number(rows[rows.length - 1]!.id);
  }
}

export const AUDIT_CSV_HEADER = 'id,time,actor,action,transfer_id,detail\r\n';

/** One CSV line (RFC 4180). Cells that a spreadsheet would run as a formula are prefixed with '. */
export function auditCsvLine(e: AuditEntry): string {
  const cell = (v: string) => {
    let s = v;
    if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [String(e.id), new Date(e.at).toISOString(), e.actor, e.action, e.transferId ?? '', e.detail ? JSON.stringify(e.detail) : ''].map(cell).join(',') + '\r\n';
}

export function auditJsonLine(e: AuditEntry): string {
  return JSON.stringify({ id: e.id, at: new Date(e.at).toISOString(), actor: e.actor, action: e.action, transferId: e.transferId, detail: e.detail }) + '\n';
}
