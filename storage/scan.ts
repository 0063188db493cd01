import { appendAudit } from './audit.js';
import type { BlobStore } from './blob-store.js';
import type { Db } from './database.js';

// Malware-scan records of files (migration 0070_scan): the verdict each file got, and whether
// it is blocked. Blocked files keep their row (so the landing page can say why) but no URL
// returns their bytes: web/scan-block.ts checks the file's `blocked` flag (read with the file's row) before opening any blob.

export type ScanVerdict = 'clean' | 'infected' | 'unscanned' | 'too_large';
export type BlockReason = 'quarantine' | 'rescan' | 'deleted';

export interface FileScan {
  verdict: ScanVerdict | null;
  engine: string | null;
  version: string | null;
  signature: string | null;
  at: number | null;
  blocked: boolean;
  blockedReason: BlockReason | null;
  blockedAt: number | null;
  releasedAt: number | null;
  releasedBy: string | null;
}

export interface ScanRecord {
  verdict: ScanVerdict;
  engine: string;
  version: string | null;
  signature: string | null;
  at: number;
}

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

/** Records the verdict of the scan at intake; `block` for a quarantined file. */
export async function recordScan(db: Db, transferId: string, idx: number, r: ScanRecord, block?: { actor: string }): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx
      .updateTable('files')
      .set({
        scan_verdict: r.verdict,
        scan_engine: r.engine,
        scan_version: r.version,
        scan_signature: r.signature,
        scan_at: r.at,
        rescan_due: 0,
        ...(block ? { blocked: 1, blocked_reason: 'quarantine', blocked_at: r.at } : {}),
      })
      .where('transfer_id', '=', transferId)
      .where('idx', '=', idx)
      .execute();
    if (block) {
      await appendAudit(trx, { actor: block.actor, action: 'file_quarantined', transferId, detail: { idx, signature: r.signature, engine: r.engine, version: r.version } });
    }
  });
}

/** The scan record of every file of a transfer, by index. */
export async function fileScans(db: Db, transferId: string): Promise<Map<number, FileScan>> {
  const rows = await db
    .selectFrom('files')
    .select(['idx', 'scan_verdict', 'scan_engine', 'scan_version', 'scan_signature', 'scan_at', 'blocked', 'blocked_reason', 'blocked_at', 'released_at', 'released_by'])
    .where('transfer_id', '=', transferId)
    .execute();
  return new Map(
    rows.map((r) => [
      Number(r.idx),
      {
        verdict: (r.scan_verdict as ScanVerdict | null) ?? null,
        engine: r.scan_engine ?? null,
        version: r.scan_version ?? null,
        signature: r.scan_signature ?? null,
        at: num(r.scan_at),
        blocked: Number(r.blocked ?? 0) === 1,
        blockedReason: (r.blocked_reason as BlockReason | null) ?? null,
        blockedAt: num(r.blocked_at),
        releasedAt: num(r.released_at),
        releasedBy: r.released_by ?? null,
      },
    ]),
  );
}

/** A file a rescan must look at again. */
export interface RescanCandidate {
  transferId: string;
  idx: number;
  name: string;
  blobKey: string;
  size: number;
  sender: string;
}

/**
 * Files of live transfers whose last scan by `engine` used other signatures than `version` (or
 * that an admin asked to rescan), oldest first. Blocked and released files are left alone: the
 * first are not served anyway, the second an admin has looked at.
 */
export async function rescanCandidates(db: Db, engine: string, version: string, limit: number): Promise<RescanCandidate[]> {
  const rows = await db
    .selectFrom('files')
    .innerJoin('transfers', 'transfers.id', 'files.transfer_id')
    .select(['files.transfer_id', 'files.idx', 'files.name', 'files.blob_key', 'files.size', 'transfers.sender'])
    .where('transfers.state', '=', 'live')
    .where('transfers.purged_at', 'is', null)
    .where('files.blocked', '=', 0)
    .where('files.released_at', 'is', null)
    .where('files.scan_engine', '=', engine)
    .where((eb) => eb.or([eb('files.rescan_due', '=', 1), eb('files.scan_version', 'is', null), eb('files.scan_version', '!=', version)]))
    .orderBy('files.created_at')
    .orderBy('files.transfer_id')
    .orderBy('files.idx')
    .limit(limit)
    .execute();
  return rows.map((r) => ({ transferId: r.transfer_id, idx: Number(r.idx), name: r.name, blobKey: r.blob_key, size: Number(r.size), sender: r.sender }));
}

/** How many files rescanCandidates() would return without a limit (the rescan backlog). */
export async function rescanBacklog(db: Db, engine: string, version: string): Promise<number> {
  const r = await db
    .selectFrom('files')
    .innerJoin('transfers', 'transfers.id', 'files.transfer_id')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('transfers.state', '=', 'live')
    .where('transfers.purged_at', 'is', null)
    .where('files.blocked', '=', 0)
    .where('files.released_at', 'is', null)
    .where('files.scan_engine', '=', engine)
    .where((eb) => eb.or([eb('files.rescan_due', '=', 1), eb('files.scan_version', 'is', null), eb('files.scan_version', '!=', version)]))
    .executeTakeFirst();
  return Number(r?.n ?? 0);
}

/** Marks every scanned file of live transfers for a rescan (`ferry scan rescan`); returns how many. */
export async function requestRescan(db: Db): Promise<number> {
  const live = db.selectFrom('transfers').select('id').where('state', '=', 'live');
  const r = await db.updateTable('files').set({ rescan_due: 1 }).where('blocked', '=', 0).where('scan_engine', 'is not', null).where('transfer_id', 'in', live).executeTakeFirst();
  return Number(r.numUpdatedRows);
}

/**
 * The verdict of a rescan. Infected: the file is blocked at once (only if still unblocked and not
 * released meanwhile) and audited; returns whether this call blocked it.
 */
export async function recordRescan(db: Db, c: { transferId: string; idx: number }, r: ScanRecord): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    if (r.verdict !== 'infected') {
      await trx
        .updateTable('files')
        .set({ scan_verdict: r.verdict, scan_engine: r.engine, scan_version: r.version, scan_signature: r.signature, scan_at: r.at, rescan_due: 0 })
        .where('transfer_id', '=', c.transferId)
        .where('idx', '=', c.idx)
        .where('blocked', '=', 0)
        .execute();
      return false;
    }
    const u = await trx
      .updateTable('files')
      .set({
        scan_verdict: 'infected',
        scan_engine: r.engine,
        scan_version: r.version,
        scan_signature: r.signature,
        scan_at: r.at,
        rescan_due: 0,
        blocked: 1,
        blocked_reason: 'rescan',
        blocked_at: r.at,
      })
      .where('transfer_id', '=', c.transferId)
      .where('idx', '=', c.idx)
      .where('blocked', '=', 0)
      .where('released_at', 'is', null)
      .executeTakeFirst();
    const blocked = Number(u.numUpdatedRows) === 1;
    if (blocked) {
      await appendAudit(trx, { actor: 'system:rescan', action: 'file_blocked', transferId: c.transferId, detail: { idx: c.idx, signature: r.signature, engine: r.engine, version: r.version } });
    }
    return blocked;
  });
}

export interface QuarantinedFile {
  transferId: string;
  idx: number;
  name: string;
  size: number;
  sender: string;
  signature: string | null;
  engine: string | null;
  version: string | null;
  reason: BlockReason;
  blockedAt: number;
}

/** Files held (quarantined at intake or blocked by a rescan) and not deleted, newest first. */
export async function listQuarantined(db: Db, limit = 200): Promise<QuarantinedFile[]> {
  const rows = await db
    .selectFrom('files')
    .innerJoin('transfers', 'transfers.id', 'files.transfer_id')
    .select(['files.transfer_id', 'files.idx', 'files.name', 'files.size', 'transfers.sender', 'files.scan_signature', 'files.scan_engine', 'files.scan_version', 'files.blocked_reason', 'files.blocked_at'])
    .where('files.blocked', '=', 1)
    .where('files.blocked_reason', 'in', ['quarantine', 'rescan'])
    .orderBy('files.blocked_at', 'desc')
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    transferId: r.transfer_id,
    idx: Number(r.idx),
    name: r.name,
    size: Number(r.size),
    sender: r.sender,
    signature: r.scan_signature ?? null,
    engine: r.scan_engine ?? null,
    version: r.scan_version ?? null,
    reason: r.blocked_reason as BlockReason,
    blockedAt: Number(r.blocked_at ?? 0),
  }));
}

/** An admin releases a held file: it is served again. False when it was not held. */
export async function releaseFile(db: Db, transferId: string, idx: number, actor: string, now = Date.now()): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const u = await trx
      .updateTable('files')
      .set({ blocked: 0, released_at: now, released_by: actor.slice(0, 200) })
      .where('transfer_id', '=', transferId)
      .where('idx', '=', idx)
      .where('blocked', '=', 1)
      .where('blocked_reason', 'in', ['quarantine', 'rescan'])
      .executeTakeFirst();
    if (Number(u.numUpdatedRows) !== 1) return false;
    await appendAudit(trx, { actor, action: 'file_released', transferId, detail: { idx }, at: now });
    return true;
  });
}

/** An admin deletes a held file: its bytes are removed, the row stays (blocked, "deleted"). False when it was not held. */
export async function deleteHeldFile(db: Db, blobs: BlobStore, transferId: string, idx: number, actor: string, now = Date.now()): Promise<boolean> {
  const row = await db.selectFrom('files').select(['blob_key']).where('transfer_id', '=', transferId).where('idx', '=', idx).where('blocked', '=', 1).where('blocked_reason', 'in', ['quarantine', 'rescan']).executeTakeFirst();
  if (!row) return false;
  // The row says "deleted" before the bytes go, so no request can open a half-deleted blob.
  const ok = await db.transaction().execute(async (trx) => {
    const u = await trx
      .updateTable('files')
      .set({ blocked_reason: 'deleted', blocked_at: now })
      .where('transfer_id', '=', transferId)
      .where('idx', '=', idx)
      .where('blocked', '=', 1)
      .executeTakeFirst();
    if (Number(u.numUpdatedRows) !== 1) return false;
    await appendAudit(trx, { actor, action: 'file_deleted', transferId, detail: { idx }, at: now });
    return true;
  });
  if (ok) await blobs.delete(row.blob_key);
  return ok;
}

/** A file's malware check as the admin API shows it; null when the file was never scanned (scan.engine off). */
export function fileScanJson(s: FileScan | undefined) {
  if (!s || (s.verdict === null && !s.blocked)) return null;
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return { verdict: s.verdict, engine: s.engine, signatureVersion: s.version, signature: s.signature, at: iso(s.at), blocked: s.blocked, blockedReason: s.blockedReason, blockedAt: iso(s.blockedAt), releasedAt: iso(s.releasedAt), releasedBy: s.releasedBy };
}

/** The same in a few words for the admin pages and the CLI ("clean (clamav)", "held: Eicar-Signature"). */
export function fileScanWords(s: FileScan | undefined): string {
  if (!s || (s.verdict === null && !s.blocked)) return 'not scanned (scanning off)';
  if (s.blocked) {
    const why = s.blockedReason === 'rescan' ? 'blocked after a rescan' : s.blockedReason === 'deleted' ? 'deleted by an admin' : 'held for review';
    return s.signature ? `${why}: ${s.signature}` : why;
  }
  if (s.verdict === 'clean') return `clean${s.engine ? ` (${s.engine})` : ''}`;
  if (s.verdict === 'too_large') return 'not scanned: too large';
  if (s.verdict === 'unscanned') return 'not scanned: scanner failed';
  if (s.verdict === 'infected') return `infected${s.signature ? `: ${s.signature}` : ''}${s.releasedBy ? ` (released by ${s.releasedBy})` : ''}`;
  return String(s.verdict);
}
