import { appendAudit } from './audit.js';
import type { Db } from './database.js';
import { getTransfer } from './records.js';

// Audit entries for a transfer whose message goes through the delivery queue. `link_issued`
// means a link really left: the next hop took the message for those recipients. A message
// that is only queued gets `queued`; the queue runner writes `link_issued` when it delivers,
// and `given_up` / `removed` when it does not (worker/queue-runner.ts, storage/undelivered.ts).

/** Only the addresses of recipients in `state`. */
const addresses = (rs: readonly { address: string; state: string }[], state: string) => rs.filter((r) => r.state === state).map((r) => r.address);

/**
 * pending -> live for a message stored in the queue (in the caller's transaction, with the queue
 * entry): `stored`, `queued` for the recipients still waiting, and `link_issued` only for those
 * the next hop already took.
 */
export async function markLiveQueued(db: Db, transferId: string, q: { queueId: string; recipients: readonly { address: string; state: string }[] }): Promise<void> {
  const r = await db.updateTable('transfers').set({ state: 'live' }).where('id', '=', transferId).where('state', '=', 'pending').executeTakeFirst();
  if (Number(r.numUpdatedRows) !== 1) return;
  const t = await getTransfer(db, transferId);
  if (!t) return;
  await appendAudit(db, { actor: 'gateway', action: 'stored', transferId, detail: { files: t.fileCount, bytes: t.totalBytes, sender: t.sender } });
  const delivered = addresses(q.recipients, 'delivered');
  if (delivered.length) await auditLinkIssued(db, transferId, 'gateway', delivered, q.queueId);
  await appendAudit(db, { actor: 'gateway', action: 'queued', transferId, detail: { queueId: q.queueId, recipients: addresses(q.recipients, 'pending') } });
}

/** The next hop took the message with the transfer's link for these recipients. */
export async function auditLinkIssued(db: Db, transferId: string, actor: string, recipients: string[], queueId: string, now = Date.now()): Promise<void> {
  const t = await getTransfer(db, transferId);
  await appendAudit(db, {
    actor,
    action: 'link_issued',
    transferId,
    at: now,
    detail: { recipients, queueId, expiresAt: t ? new Date(t.expiresAt).toISOString() : null, rule: t?.retentionRule ?? null, maxDownloads: t?.maxDownloads ?? null },
  });
}
