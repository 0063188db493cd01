import { Transform } from 'node:stream';
import { revokeTransfer, unclaimed, AdminActionError } from './admin-actions.js';
import { appendAudit, listAudit } from './audit.js';
import { BlobNotFoundError, type BlobStore } from './blob-store.js';
import type { Db } from './database.js';
import { enqueue, queueBlobKey } from './queue.js';
import { listLinks, revokeLink, type RecipientLink } from './recipient-links.js';
import { toTransfer, type Transfer } from './records.js';
import { getRule, loadPolicy, MATCH_KINDS, parseRuleId, type RetentionBounds } from './retention.js';
import { hashToken, isTokenShaped, newQueueId, tokenMatches } from './tokens.js';

// What the sender can do to their own transfer from the private management page (/m/<token>,
// web/routes/manage.ts): revoke everything, revoke one recipient's link, move the expiry within
// what the retention rules allow, and send one recipient's copy again. The manage token is the
// only credential, so every action is recorded in the audit log as `sender:<address>`: the
// envelope sender the receipt went to, which is who holds the token.
//
// The sender acts only while the transfer is live and not past its expiry: an expired or revoked
// transfer stays that way (only an admin can bring files back, and only while they exist).

export type SenderActionErrorKind = 'not_live' | 'not_found' | 'out_of_bounds' | 'link_revoked' | 'no_copy' | 'too_soon' | 'busy';

export class SenderActionError extends Error {
  readonly code = 'FERRY_ERR_SENDER_ACTION';
  constructor(
    readonly kind: SenderActionErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'SenderActionError';
  }
}

/** Compared against when a look-up finds nothing; no token hashes to it. */
const NO_TOKEN_HASH = '0'.repeat(64);

/**
 * The transfer whose manage token this is, in any state; undefined for anything else. Like the
 * download tokens (web/plugins/transfer-context.ts): every token, well-formed or not, is hashed
 * and looked up, and the hash found is confirmed in constant time (against a hash no token has on
 * a miss), so a guess costs the same whether it was well-formed, unknown or real.
 */
export async function findTransferByManageToken(db: Db, token: string): Promise<Transfer | undefined> {
  const shaped = isTokenShaped(token);
  const row = await db.selectFrom('transfers').selectAll().where('manage_token_hash', '=', hashToken(token)).executeTakeFirst();
  const transfer = row ? toTransfer(row) : undefined;
  const matches = tokenMatches(token, transfer?.manageTokenHash ?? NO_TOKEN_HASH);
  return shaped && transfer && matches ? transfer : undefined;
}

/** The audit actor of the sender's actions. */
export function senderActor(t: Transfer): string {
  return `sender:${t.sender}`;
}

/** Whether the sender may still change anything: live, files present, not past its expiry. */
export function senderCanAct(t: Transfer, now: number): boolean {
  return t.state === 'live' && t.purgedAt === null && t.expiresAt > now;
}

function mustAct(t: Transfer, now: number): void {
  if (!senderCanAct(t, now)) throw new SenderActionError('not_live', `transfer ${t.id} is ${t.state === 'live' ? 'expired' : t.state}; the sender can no longer change it`);
}

/**
 * The expiries the sender may choose, in ms since the epoch (both inclusive), and what sets the
 * upper end:
 * - earliest: the transfer's creation plus retention.minimum, and never now or earlier (to end
 *   the links now, the sender revokes them);
 * - latest, 'rule': the period of the matching retention rule (sender, sender domain or
 *   recipient domain) that chose the expiry, brought within [minimum, maximum]: a rule that keeps
 *   a partner's files 3 days is the admin's decision, and the sender can shorten it, not outgrow it;
 * - latest, 'maximum': retention.maximum when the default chose the expiry (or the rule no longer exists);
 * - latest, 'admin': the current expiry when an admin set it by hand: the sender can only shorten it.
 * Periods count from the transfer's creation, as for admins (setTransferExpiry). Undefined when
 * nothing can be chosen (the window is empty).
 */
export interface SenderExpiryBounds {
  earliest: number;
  latest: number;
  cap: 'rule' | 'maximum' | 'admin';
}

export async function senderExpiryBounds(db: Db, t: Transfer, fallback: RetentionBounds, now: number): Promise<SenderExpiryBounds | undefined> {
  const policy = await loadPolicy(db, fallback);
  const earliest = Math.max(t.createdAt + policy.minMs, now + 1);
  let latest = t.createdAt + policy.maxMs;
  let cap: SenderExpiryBounds['cap'] = 'maximum';
  if (t.retentionRule === 'admin') {
    latest = t.expiresAt;
    cap = 'admin';
  } else if (t.retentionRule) {
    let rule;
    try {
      const { kind } = parseRuleId(t.retentionRule);
      if ((MATCH_KINDS as readonly string[]).includes(kind)) rule = await getRule(db, t.retentionRule);
    } catch {
      rule = undefined;
    }
    if (rule) {
      latest = t.createdAt + Math.min(Math.max(rule.periodMs, policy.minMs), policy.maxMs);
      cap = 'rule';
    }
  }
  return latest >= earliest ? { earliest, latest, cap } : undefined;
}


/**
 * Moves the expiry (longer or shorter) within senderExpiryBounds. Unlike an admin's change, the
 * transfer keeps the rule that chose its expiry, so the bounds stay what they were.
 */
export async function setExpiryBySender(db: Db, t: Transfer, expiresAt: number, fallback: RetentionBounds, now = Date.now()): Promise<Transfer> {
  mustAct(t, now);
  const bounds = await senderExpiryBounds(db, t, fallback, now);
  if (!bounds || !Number.isFinite(expiresAt) || expiresAt < bounds.earliest || expiresAt > bounds.latest) {
    throw new SenderActionError(
      'out_of_bounds',
      bounds ? `the new expiry must lie between ${new Date(bounds.earliest).toISOString()} and ${new Date(bounds.latest).toISOString()}` : `the expiry of transfer ${t.id} cannot be changed`,
    );
  }
  await db.transaction().execute(async (trx) => {
    const r = await trx
      .updateTable('transfers')
      .set({ expires_at: expiresAt })
      .where('id', '=', t.id)
      .where('state', '=', 'live')
      .where('purged_at', 'is', null)
      .where('expires_at', '>', now)
      // No sweeper works on the row now (the same lease admin-actions.ts respects).
      .where(unclaimed(now))
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) throw new SenderActionError('busy', `transfer ${t.id} changed meanwhile or is being swept; try again`);
    await appendAudit(trx as unknown as Db, {
      actor: senderActor(t),
      action: 'extended',
      transferId: t.id,
      at: now,
      detail: { from: new Date(t.expiresAt).toISOString(), to: new Date(expiresAt).toISOString(), rule: t.retentionRule, by: 'sender' },
    });
  });
  return { ...t, expiresAt };
}

/** Every link stops at once (the web answers 410); the files go at the next sweep unless held. */
export async function revokeAllBySender(db: Db, t: Transfer, now = Date.now()): Promise<void> {
  mustAct(t, now);
  try {
    await revokeTransfer(db, t.id, senderActor(t), 'revoked by the sender on the management page', now);
  } catch (err) {
    if (err instanceof AdminActionError) throw new SenderActionError(err.kind === 'not_found' ? 'not_found' : 'not_live', err.message);
    throw err;
  }
}

async function linkOf(db: Db, t: Transfer, linkId: string): Promise<RecipientLink> {
  const link = (await listLinks(db, t.id)).find((l) => l.id === linkId);
  if (!link) throw new SenderActionError('not_found', `transfer ${t.id} has no link ${linkId}`);
  return link;
}

/** One recipient's link stops at once; the others keep working. */
export async function revokeLinkBySender(db: Db, t: Transfer, linkId: string, now = Date.now()): Promise<RecipientLink> {
  mustAct(t, now);
  const link = await linkOf(db, t, linkId);
  if (link.revokedAt !== null) throw new SenderActionError('link_revoked', `link ${linkId} is already revoked`);
  if (!(await revokeLink(db, t.id, linkId, senderActor(t)))) throw new SenderActionError('link_revoked', `link ${linkId} is already revoked`);
  return link;
}

/** One copy per recipient per this long: the page must not turn Ferry into a way to flood someone. */
export const RESEND_COOLDOWN_MS = 10 * 60_000;

/** Whether "send again" can work for this link at all (it has a recipient, a stored copy, and is not revoked). */
export function canResend(link: RecipientLink): boolean {
  return link.recipient !== '' && link.copyBlobKey !== null && link.revokedAt === null;
}

/**
 * Queues the exact message this recipient was sent, again, for that recipient only: a new queue
 * entry whose blob is a copy of the stored one (streamed, never held in memory), delivered by the
 * queue runner through the next hop like any queued message; a refusal goes back to the sender
 * as a DSN. The entry names no transfer: a copy that cannot be delivered must not make the queue
 * runner retire a transfer whose links already reached the other recipients
 * (worker/queue-runner.ts removes the transfer of an entry delivered to nobody). The audit
 * entry ties it to the transfer. Returns the new queue id.
 */
export async function resendCopy(db: Db, blobs: BlobStore, t: Transfer, linkId: string, now = Date.now()): Promise<string> {
  mustAct(t, now);
  const link = await linkOf(db, t, linkId);
  if (link.revokedAt !== null) throw new SenderActionError('link_revoked', `link ${linkId} is revoked; its copy would carry a dead link`);
  if (link.recipient === '' || link.copyBlobKey === null) throw new SenderActionError('no_copy', `link ${linkId} has no stored copy for one recipient`);
  const recent = await listAudit(db, { transferId: t.id, action: 'copy_resent', since: now - RESEND_COOLDOWN_MS, limit: 1000 });
  if (recent.some((e) => e.detail?.link === linkId)) throw new SenderActionError('too_soon', `link ${linkId} was sent again less than ${RESEND_COOLDOWN_MS / 60_000} minutes ago`);

  const id = newQueueId();
  const blobKey = queueBlobKey(id);
  let size = 0;
  try {
    const source = await blobs.openRead(link.copyBlobKey);
    const counter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        size += chunk.length;
        done(null, chunk);
      },
    });
    // A read error reaches put(), which then leaves nothing under the key.
    source.on('error', (err) => counter.destroy(err));
    try {
      await blobs.put(blobKey, source.pipe(counter));
    } finally {
      source.destroy();
    }
  } catch (err) {
    if (err instanceof BlobNotFoundError) throw new SenderActionError('no_copy', `the stored copy of link ${linkId} is gone`);
    throw err;
  }
  try {
    await db.transaction().execute(async (trx) => {
      // The look-up above is only a shortcut: parallel POSTs all pass it. The authoritative check
      // runs here, after a write to the link row, which makes the others wait for this one to
      // commit (a row lock in PostgreSQL, the write lock in SQLite) and then see its audit entry,
      // so one copy per cooldown is sent however many requests arrive at once. The same write
      // notices a link revoked meanwhile.
      const held = await trx
        .updateTable('links')
        .set({ copy_blob_key: link.copyBlobKey })
        .where('id', '=', linkId)
        .where('transfer_id', '=', t.id)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      if (Number(held.numUpdatedRows) !== 1) throw new SenderActionError('link_revoked', `link ${linkId} was revoked meanwhile`);
      const again = await listAudit(trx as unknown as Db, { transferId: t.id, action: 'copy_resent', since: now - RESEND_COOLDOWN_MS, limit: 1000 });
      if (again.some((e) => e.detail?.link === linkId)) throw new SenderActionError('too_soon', `link ${linkId} was sent again less than ${RESEND_COOLDOWN_MS / 60_000} minutes ago`);
      await enqueue(trx as unknown as Db, {
        id,
        kind: 'message',
        transferId: null,
        sender: t.sender,
        recipients: [{ address: link.recipient, state: 'pending' }],
        blobKey,
        size,
        createdAt: now,
        nextAttemptAt: now,
      });
      await appendAudit(trx as unknown as Db, { actor: senderActor(t), action: 'copy_resent', transferId: t.id, at: now, detail: { link: linkId, recipient: link.recipient, queueId: id } });
    });
  } catch (err) {
    await blobs.delete(blobKey).catch(() => undefined);
    throw err;
  }
  return id;
}
