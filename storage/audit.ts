import type { Db } from './database.js';
import type { AuditLogTable } from './schema.js';

// The audit log: an append-only record of admin actions and lifecycle events, with who and
// when. The table refuses UPDATE and DELETE (triggers in migration 0020_retention), so nothing
// here edits or removes an entry; exports read it in pages so memory stays bounded.

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
  | 'queue_retried'
  | 'queue_deleted'
  | 'queue_bounced';

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
  'queue_retried',
  'queue_deleted',
  'queue_bounced',
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

/** Appends one entry. `db` may be a transaction, so the entry commits with the change it records. */
export async function appendAudit(db: Db, e: NewAuditEntry): Promise<void> {
  await db
    .insertInto('audit_log')
    .values({
      at: e.at ?? Date.now(),
      actor: e.actor.slice(0, 200),
      action: e.action,
      transfer_id: e.transferId ?? null,
      detail: e.detail ? JSON.stringify(e.detail) : null,
    })
    .execute();
}

function toEntry(r: AuditLogTable & { id: number }): AuditEntry {
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
  return rows.map((r) => toEntry(r as AuditLogTable & { id: number }));
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
    for (const r of rows) yield toEntry(r as AuditLogTable & { id: number });
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
