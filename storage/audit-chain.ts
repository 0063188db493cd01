import { createHash } from 'node:crypto';

// The audit log's hash chain: each row carries the hash of the row before it, so a row changed or
// removed by someone with file access breaks the chain at that row (`ferry audit verify`).
// Apart from audit.ts so that the migration that chains existing rows can use it too.

/** prev_hash of the first row of the chain. */
export const AUDIT_GENESIS_HASH = '0'.repeat(64);

/** The fields of a stored row that the chain covers. */
export interface AuditChainRow {
  id: number | string;
  at: number | string;
  actor: string;
  action: string;
  transfer_id: string | null;
  detail: string | null;
  prev_hash: string | null;
}

/**
 * SHA-256 (hex) of a row's canonical form: a JSON array of its fields in a fixed order, numbers
 * as numbers (PostgreSQL returns bigint as text), the detail as the exact stored text.
 */
export function auditRowHash(r: AuditChainRow): string {
  const canonical = JSON.stringify([Number(r.id), Number(r.at), r.actor, r.action, r.transfer_id ?? null, r.detail ?? null, r.prev_hash ?? null]);
  return createHash('sha256').update(canonical, 'utf8').digest('hex');
}
