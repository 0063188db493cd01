import { unclaimed } from './admin-actions.js';
import { appendAudit } from './audit.js';
import type { BlobStore } from './blob-store.js';
import { deleteBlobsUnder } from './cleanup.js';
import type { Db } from './database.js';
import { getTransfer, listFiles } from './records.js';
import { listLinks, revokeLink } from './recipient-links.js';

// A transfer whose message never reached anyone (given up at queue.maxAge, returned or deleted
// by an admin, lost from storage): no link went out, so its files go now rather than at the
// end of their retention. A legal hold wins over this as over every automatic removal: a held
// transfer keeps its files and is only revoked (no link works; the sweeper removes the files
// once the hold is released). Either way the audit log says what happened and why.

export type RetireResult = 'removed' | 'kept_on_hold' | 'busy' | 'gone';

export async function retireUndeliveredTransfer(db: Db, blobs: BlobStore, transferId: string, actor: string, reason: string, now = Date.now()): Promise<RetireResult> {
  const claim = `undelivered:${actor}`.slice(0, 200);
  // The same claim the sweeper and deleteTransferNow take, so none of them works on the row at once,
  // and a hold placed a moment ago is seen (held = 0 in the same statement).
  const r = await db
    .updateTable('transfers')
    .set({ state: 'deleted', sweep_claim: claim, sweep_claimed_at: now })
    .where('id', '=', transferId)
    .where('held', '=', 0)
    .where(unclaimed(now))
    .executeTakeFirst();
  if (Number(r.numUpdatedRows) !== 1) {
    const t = await getTransfer(db, transferId);
    if (!t) return 'gone';
    if (!t.held) return 'busy';
    await db.transaction().execute(async (trx) => {
      const u = await trx.updateTable('transfers').set({ state: 'revoked' }).where('id', '=', transferId).where('state', 'in', ['live', 'pending']).executeTakeFirst();
      await appendAudit(trx as unknown as Db, {
        actor,
        action: 'revoked',
        transferId,
        at: now,
        detail: { reason, keptOnLegalHold: true, previousState: t.state, stateChanged: Number(u.numUpdatedRows) === 1 },
      });
    });
    return 'kept_on_hold';
  }
  const t = (await getTransfer(db, transferId))!;
  const files = await listFiles(db, transferId);
  if (t.purgedAt === null) {
    for (const f of files) await blobs.delete(f.blobKey);
    await deleteBlobsUnder(blobs, transferId);
  }
  // The record stays (state deleted, files gone) for retention.keepRecords, as after an admin's
  // delete, so the transfer can still be looked up and its history read.
  await db.transaction().execute(async (trx) => {
    await trx
      .updateTable('transfers')
      .set({ purged_at: t.purgedAt ?? now, sweep_claim: null, sweep_claimed_at: null })
      .where('id', '=', transferId)
      .where('sweep_claim', '=', claim)
      .execute();
    await appendAudit(trx as unknown as Db, {
      actor,
      action: 'removed',
      transferId,
      at: now,
      detail: { reason, files: files.length, bytes: t.totalBytes },
    });
  });
  return 'removed';
}

/**
 * A queue entry that ended delivered to nobody. With one copy of the message per recipient
 * (gateway/transaction.ts), other copies of the same transfer may have reached their
 * recipients (audited as link_issued, at end of DATA or by the queue runner) or may still be
 * queued: then the files stay for them, and only the links of this entry's recipients are
 * revoked. Otherwise no link ever went out and the whole transfer is retired as before.
 */
export async function retireUndeliveredEntry(
  db: Db,
  blobs: BlobStore,
  entry: { id: string; transferId: string; recipients: readonly { address: string }[] },
  actor: string,
  reason: string,
  now = Date.now(),
): Promise<RetireResult | 'links_revoked'> {
  const otherCopy = await db
    .selectFrom('queue_entries')
    .select('id')
    .where('transfer_id', '=', entry.transferId)
    .where('kind', '=', 'message')
    .where('id', '!=', entry.id)
    .executeTakeFirst();
  const issued = otherCopy
    ? undefined
    : await db.selectFrom('audit_log').select('id').where('transfer_id', '=', entry.transferId).where('action', '=', 'link_issued').executeTakeFirst();
  if (!otherCopy && !issued) return retireUndeliveredTransfer(db, blobs, entry.transferId, actor, reason, now);
  const never = new Set(entry.recipients.map((r) => r.address.toLowerCase()));
  for (const link of await listLinks(db, entry.transferId)) {
    if (link.recipient && link.revokedAt === null && never.has(link.recipient.toLowerCase())) await revokeLink(db, entry.transferId, link.id, actor);
  }
  return 'links_revoked';
}
