import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { newQueueId, queueOwnMail, type BlobStore, type Db, type QueueRecipient } from '../storage/index.js';
import { buildDsn, readHeaderBlock, statusFor, wantsNotice, type DsnInput } from './dsn.js';
import { RelayError, type Relay, type RelayResult } from './relay.js';

// One delivery attempt of one message to the next hop, recipient by recipient, shared by the
// gateway (the attempt at end of DATA) and the queue runner (retries). Recipients are sent in
// groups of equal DSN parameters, because nodemailer's client takes NOTIFY and ORCPT once per
// transaction; most messages have no DSN parameters and go in one transaction.

export interface DeliveryInput {
  /** Names the message (the outbox's file name); later groups get "-2", "-3". */
  id: string;
  sender: string;
  recipients: QueueRecipient[];
  dsnRet?: 'FULL' | 'HDRS' | null;
  dsnEnvid?: string | null;
  size: number;
  /** A fresh stream of the message for each transaction. */
  open: () => Readable;
  /** Do not start another transaction after this time (the rest stays pending). */
  deadline?: number;
  /** Called after each transaction with the recipients' states so far (the runner saves them). */
  onProgress?: (recipients: QueueRecipient[]) => Promise<void>;
}

export interface DeliveryOutcome {
  /** Every recipient with its new state: delivered, failed (permanent refusal) or pending. */
  recipients: QueueRecipient[];
  /** Recipients refused permanently in this attempt. */
  newlyFailed: QueueRecipient[];
  /** Summary of what went wrong for the pending ones, for logs and the queue listing. */
  lastError: string | null;
  /** The last reply (for logs). */
  response: string;
}

export async function deliver(relay: Relay, d: DeliveryInput): Promise<DeliveryOutcome> {
  const recipients = d.recipients.map((r) => ({ ...r }));
  const newlyFailed: QueueRecipient[] = [];
  let lastError: string | null = null;
  let response = '';
  const groups = new Map<string, QueueRecipient[]>();
  for (const r of recipients) {
    if (r.state !== 'pending') continue;
    const key = JSON.stringify([r.notify ?? null, r.orcpt ?? null]);
    const g = groups.get(key) ?? [];
    g.push(r);
    groups.set(key, g);
  }
  let n = 0;
  for (const group of groups.values()) {
    if (n > 0 && d.deadline && Date.now() >= d.deadline) break;
    const id = n === 0 ? d.id : `${d.id}-${n + 1}`;
    n++;
    const to = group.map((r) => r.address);
    const first = group[0]!;
    let res: RelayResult | undefined;
    try {
      res = await relay.send(
        {
          from: d.sender,
          to,
          size: d.size,
          dsn: { ret: d.dsnRet ?? undefined, envid: d.dsnEnvid ?? undefined, notify: first.notify, orcpt: first.orcpt },
        },
        d.open,
        id,
      );
    } catch (err) {
      const e = err instanceof RelayError ? err : new RelayError((err as Error).message, false, undefined, undefined, { cause: err });
      if (e.rejected.length) {
        for (const r of group) {
          const ref = e.rejected.find((x) => x.recipient.toLowerCase() === r.address.toLowerCase());
          settle(r, ref?.code ?? e.responseCode, ref?.response ?? e.response ?? e.message);
        }
      } else {
        for (const r of group) settle(r, e.responseCode, e.response ?? e.message);
      }
      response = e.response ?? e.message;
      if (!e.permanent) lastError = e.message;
      await d.onProgress?.(recipients);
      // No SMTP reply at all (unreachable, timeout): the other groups would fare no better.
      if (e.responseCode === undefined) break;
      continue;
    }
    response = res.response;
    const accepted = new Set(res.accepted.map((a) => a.toLowerCase()));
    for (const r of group) {
      if (accepted.has(r.address.toLowerCase())) {
        r.state = 'delivered';
        r.code = 250;
        r.response = res.response;
        continue;
      }
      const ref = res.rejected.find((x) => x.recipient.toLowerCase() === r.address.toLowerCase());
      settle(r, ref?.code, ref?.response ?? 'refused');
      if (r.state === 'pending') lastError = `${r.address}: ${r.response}`;
    }
    await d.onProgress?.(recipients);
  }
  return { recipients, newlyFailed, lastError, response };

  function settle(r: QueueRecipient, code: number | undefined, text: string): void {
    r.code = code;
    r.response = text;
    if (code !== undefined && code >= 500) {
      r.state = 'failed';
      newlyFailed.push(r);
    } else {
      r.state = 'pending';
    }
  }
}

export interface DsnContext {
  db: Db;
  blobs: BlobStore;
  logger: Logger;
  /** Ferry's host name. */
  hostname: string;
  /** The next hop (Remote-MTA). */
  remoteMta?: string;
}

export interface NoticeRequest {
  kind: 'failure' | 'delay';
  queueId: string;
  sender: string;
  envid?: string | null;
  arrivalDate: number;
  /** The recipients concerned; those whose NOTIFY excludes this kind are left out here. */
  recipients: QueueRecipient[];
  /** The original message, to copy its header block. */
  openOriginal: () => Promise<Readable>;
  reason?: string;
  willRetryUntil?: number;
  /** Status for recipients that have no reply of their own (gave up after temporary failures). */
  fallbackStatus: string;
  now: number;
}

/**
 * Writes a DSN to the sender and queues it (due at once; the worker sends it through the same
 * relay). Never for the null sender: a bounce of a bounce would loop. Returns the DSN's queue
 * id, or undefined when none was due.
 */
export async function queueNotice(ctx: DsnContext, n: NoticeRequest): Promise<string | undefined> {
  if (!n.sender) return undefined;
  const concerned = n.recipients.filter((r) => wantsNotice(r.notify, n.kind));
  if (concerned.length === 0) return undefined;
  const headers = await readHeaderBlock(await n.openOriginal()).catch((err: Error) => {
    ctx.logger.warn({ err, queueId: n.queueId }, 'could not read the original headers for a DSN');
    return Buffer.from('');
  });
  const input: DsnInput = {
    kind: n.kind,
    reportingMta: ctx.hostname,
    remoteMta: ctx.remoteMta,
    to: n.sender,
    queueId: n.queueId,
    envid: n.envid,
    arrivalDate: n.arrivalDate,
    lastAttemptDate: n.now,
    willRetryUntil: n.willRetryUntil,
    recipients: concerned.map((r) => ({
      address: r.address,
      orcpt: r.orcpt,
      status: statusFor(r.code, r.response, n.fallbackStatus),
      diagnostic: r.code ? r.response : undefined,
    })),
    originalHeaders: headers,
    reason: n.reason,
    now: n.now,
  };
  const bytes = buildDsn(input);
  const id = newQueueId();
  await queueOwnMail(ctx, id, n.sender, bytes, n.now);
  ctx.logger.info({ queueId: n.queueId, dsn: id, kind: n.kind, to: n.sender, recipients: concerned.map((r) => r.address) }, `${n.queueId}: ${n.kind} notice queued as ${id}`);
  return id;
}
