import { appendAudit, deleteEntry, getQueueEntry, queueEntryStatus, retryNow, type QueueEntry } from '../storage/index.js';
import type { AdminContext } from './context.js';

// The admin's actions on the delivery queue, shared by the API, the UI and `ferry queue` (one
// audit path): retry now, delete silently, return to the sender with a failure notice. Each one is written to the audit log
// (queue_retried, queue_deleted, queue_bounced) with the queue id, and the transfer id when the
// queued message carries links, so the transfer's history shows it too.

export class QueueActionError extends Error {
  constructor(
    readonly kind: 'not_found' | 'conflict',
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'QueueActionError';
  }
}

const notFound = (id: string) => new QueueActionError('not_found', 'FERRY_ERR_QUEUE_NOT_FOUND', `no queue entry ${id} (delivered, returned or deleted already?)`);
const busy = (id: string) => new QueueActionError('conflict', 'FERRY_ERR_QUEUE_BUSY', `${id} is being delivered right now; look again in a minute`);

/** What the actions need: the CLI has no web context, only the storage and a clock. */
export type QueueActionContext = Pick<AdminContext, 'db' | 'blobs' | 'now'>;

const pendingOf = (e: QueueEntry) => e.recipients.filter((r) => r.state === 'pending').map((r) => r.address);

/** Makes one entry due now; a worker tries it within queue.pollInterval. */
export async function retryQueueEntry(ctx: QueueActionContext, id: string, actor: string): Promise<QueueEntry> {
  const entry = await getQueueEntry(ctx.db, id);
  if (!entry) throw notFound(id);
  // The worker holding it would overwrite the new schedule with the outcome of its attempt.
  const status = queueEntryStatus(entry, ctx.now());
  if (status === 'delivering') throw busy(id);
  // Retrying would not undo the admin's earlier choice: the worker returns it all the same.
  if (status === 'bouncing') throw new QueueActionError('conflict', 'FERRY_ERR_QUEUE_BOUNCING', `${id} is being returned to its sender; it cannot be retried`);
  if ((await retryNow(ctx.db, id, ctx.now())) === 0) throw notFound(id);
  await appendAudit(ctx.db, { actor, action: 'queue_retried', transferId: entry.transferId, detail: { queueId: id, sender: entry.sender, recipients: pendingOf(entry) }, at: ctx.now() });
  return (await getQueueEntry(ctx.db, id)) ?? entry;
}

/** Makes every entry due now; returns how many there were. */
export async function retryWholeQueue(ctx: QueueActionContext, actor: string): Promise<number> {
  const n = await retryNow(ctx.db, '*', ctx.now());
  await appendAudit(ctx.db, { actor, action: 'queue_retried', detail: { queueId: '*', entries: n }, at: ctx.now() });
  return n;
}

/**
 * Deletes an entry silently, or (bounce) marks it so the next worker pass returns it to its
 * sender with a failure DSN and removes it. A notice itself (null sender) is never bounced, as
 * RFC 3461 forbids, so that is refused rather than silently turned into a deletion.
 */
export async function deleteQueueEntry(ctx: QueueActionContext, id: string, bounce: boolean, actor: string): Promise<{ result: 'deleted' | 'bounce-scheduled'; entry: QueueEntry }> {
  const entry = await getQueueEntry(ctx.db, id);
  if (!entry) throw notFound(id);
  if (bounce && entry.sender === '') {
    throw new QueueActionError('conflict', 'FERRY_ERR_QUEUE_NULL_SENDER', `${id} has no sender (<>): it is a notice itself and cannot be returned; delete it silently instead`);
  }
  const r = await deleteEntry(ctx.db, ctx.blobs, id, { bounce, now: ctx.now(), actor });
  if (r === 'not-found') throw notFound(id);
  if (r === 'busy') throw busy(id);
  await appendAudit(ctx.db, {
    actor,
    action: r === 'deleted' ? 'queue_deleted' : 'queue_bounced',
    transferId: entry.transferId,
    detail: { queueId: id, sender: entry.sender, recipients: pendingOf(entry), attempts: entry.attempts, lastError: entry.lastError },
    at: ctx.now(),
  });
  return { result: r, entry };
}
