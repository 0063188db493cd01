import { appendAudit } from './audit.js';
import type { BlobStore } from './blob-store.js';
import { deleteRecipientCopies, removeEmptyTransferDir } from './cleanup.js';
import type { Db } from './database.js';
import { getTransfer, listFiles, type Transfer } from './records.js';
import { DAY_MS, formatPeriod, loadPolicy, type RetentionBounds } from './retention.js';

// What an admin can do to one transfer: revoke, change the expiry, hold, release, delete now.
// Shared by the admin API, the admin UI and `ferry transfers`. Each change is one conditional
// UPDATE, so it cannot race the sweeper (see worker/sweeper.ts), and each is recorded in the
// audit log in the same transaction.

export type AdminActionErrorKind = 'not_found' | 'conflict' | 'out_of_bounds';

export class AdminActionError extends Error {
  readonly code: string;
  constructor(
    readonly kind: AdminActionErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'AdminActionError';
    this.code = kind === 'not_found' ? 'FERRY_ERR_TRANSFER_NOT_FOUND' : kind === 'conflict' ? 'FERRY_ERR_TRANSFER_STATE' : 'FERRY_ERR_OUT_OF_BOUNDS';
  }
}

const LEASE_MS = 10 * 60_000;

async function must(db: Db, id: string): Promise<Transfer> {
  const t = await getTransfer(db, id);
  if (!t) throw new AdminActionError('not_found', `no transfer ${id}`);
  return t;
}

/** No sweeper works on the row now (a live claim means its files may be going right now). */
export const unclaimed = (now: number) => (eb: any) => eb.or([eb('sweep_claim', 'is', null), eb('sweep_claimed_at', '<', now - LEASE_MS)]);

/** "1 to 90 days"; "1 hour to 90 days" when a bound is not whole days (never "0 days"). */
function span(min: number, max: number): string {
  return min % DAY_MS === 0 && max % DAY_MS === 0 ? `${min / DAY_MS} to ${max / DAY_MS} days` : `${formatPeriod(min)} to ${formatPeriod(max)}`;
}

/** Links stop at once (the web answers 410); the files go at the next sweep unless held. */
export async function revokeTransfer(db: Db, id: string, actor: string, reason?: string, now = Date.now()): Promise<Transfer> {
  const t = await must(db, id);
  await db.transaction().execute(async (trx) => {
    const r = await trx.updateTable('transfers').set({ state: 'revoked' }).where('id', '=', id).where('state', '=', 'live').executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) throw new AdminActionError('conflict', `transfer ${id} is ${t.state}; only a live transfer can be revoked`);
    await appendAudit(trx as unknown as Db, { actor, action: 'revoked', transferId: id, at: now, detail: reason ? { reason } : null });
  });
  return must(db, id);
}

/**
 * Sets a new expiry (extend or shorten). The resulting retention period, counted from the
 * transfer's creation, must lie within the minimum and maximum in force.
 */
export async function setTransferExpiry(db: Db, id: string, expiresAt: number, actor: string, bounds: RetentionBounds, now = Date.now()): Promise<Transfer> {
  const t = await must(db, id);
  const policy = await loadPolicy(db, bounds);
  const period = expiresAt - t.createdAt;
  if (!Number.isFinite(expiresAt) || period < policy.minMs || period > policy.maxMs) {
    throw new AdminActionError(
      'out_of_bounds',
      `the new expiry must lie between ${new Date(t.createdAt + policy.minMs).toISOString()} and ${new Date(t.createdAt + policy.maxMs).toISOString()} (${span(policy.minMs, policy.maxMs)} after the transfer was created)`,
    );
  }
  await db.transaction().execute(async (trx) => {
    const r = await trx
      .updateTable('transfers')
      .set({ expires_at: expiresAt, retention_rule: 'admin' })
      .where('id', '=', id)
      .where('state', '=', 'live')
      .where('purged_at', 'is', null)
      .where(unclaimed(now))
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) {
      throw new AdminActionError('conflict', t.state !== 'live' || t.purgedAt ? `transfer ${id} is ${t.state}; only a live transfer's expiry can change` : `transfer ${id} is being swept right now; try again in a moment`);
    }
    await appendAudit(trx as unknown as Db, {
      actor,
      action: 'extended',
      transferId: id,
      at: now,
      detail: { from: new Date(t.expiresAt).toISOString(), to: new Date(expiresAt).toISOString(), rule: t.retentionRule },
    });
  });
  return must(db, id);
}

/** Legal hold: the sweeper leaves the transfer (files and records) alone until it is released. */
export async function holdTransfer(db: Db, id: string, actor: string, reason: string | undefined, now = Date.now()): Promise<Transfer> {
  const t = await must(db, id);
  if (t.held) return t;
  await db.transaction().execute(async (trx) => {
    const r = await trx
      .updateTable('transfers')
      .set({ held: 1, held_at: now, held_by: actor, hold_reason: reason ?? null })
      .where('id', '=', id)
      .where('held', '=', 0)
      .where(unclaimed(now))
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) throw new AdminActionError('conflict', `transfer ${id} is being swept right now; try again in a moment`);
    await appendAudit(trx as unknown as Db, {
      actor,
      action: 'held',
      transferId: id,
      at: now,
      detail: { reason: reason ?? null, filesPresent: t.purgedAt === null },
    });
  });
  return must(db, id);
}

export async function releaseTransfer(db: Db, id: string, actor: string, now = Date.now()): Promise<Transfer> {
  const t = await must(db, id);
  if (!t.held) return t;
  await db.transaction().execute(async (trx) => {
    await trx.updateTable('transfers').set({ held: 0, held_at: null, held_by: null, hold_reason: null }).where('id', '=', id).execute();
    await appendAudit(trx as unknown as Db, { actor, action: 'released', transferId: id, at: now, detail: { heldSince: t.heldAt ? new Date(t.heldAt).toISOString() : null, heldBy: t.heldBy } });
  });
  return must(db, id);
}

/**
 * Deletes the files now and marks the transfer deleted (its links answer 404 from this moment).
 * The record stays for retention.keepRecords like any other. Refused while on hold.
 */
export async function deleteTransferNow(db: Db, blobs: BlobStore, id: string, actor: string, now = Date.now()): Promise<Transfer> {
  const t = await must(db, id);
  if (t.held) throw new AdminActionError('conflict', `transfer ${id} is on legal hold; release it first`);
  if (t.state === 'pending') throw new AdminActionError('conflict', `transfer ${id} is still being received`);
  const claimName = `delete:${actor}`;
  const r = await db
    .updateTable('transfers')
    .set({ state: 'deleted', sweep_claim: claimName, sweep_claimed_at: now })
    .where('id', '=', id)
    .where('held', '=', 0)
    .where('state', '!=', 'pending')
    .where(unclaimed(now))
    .executeTakeFirst();
  if (Number(r.numUpdatedRows) !== 1) throw new AdminActionError('conflict', `transfer ${id} is being swept or held; try again in a moment`);
  const files = await listFiles(db, id);
  if (t.purgedAt === null) {
    // If the store fails half-way, the row stays "deleted" with its files not yet all gone:
    // the claim lapses and the sweeper finishes the job.
    for (const f of files) await blobs.delete(f.blobKey);
    await deleteRecipientCopies(db, blobs, id);
    await removeEmptyTransferDir(blobs, id);
  }
  await db.transaction().execute(async (trx) => {
    await trx
      .updateTable('transfers')
      .set({ purged_at: t.purgedAt ?? now, sweep_claim: null, sweep_claimed_at: null })
      .where('id', '=', id)
      .where('sweep_claim', '=', claimName)
      .execute();
    await appendAudit(trx as unknown as Db, {
      actor,
      action: 'deleted',
      transferId: id,
      at: now,
      detail: { previousState: t.state, files: files.length, bytes: t.totalBytes, filesAlreadyGone: t.purgedAt !== null },
    });
  });
  return must(db, id);
}
