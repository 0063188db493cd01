import libmime from 'libmime';
import type { Logger } from 'pino';
import { newQueueId, queueOwnMail, type BlobStore, type Db } from '../../storage/index.js';
import type { Reply } from '../replies.js';

// Notices about held and blocked files, to the sender and to the admins in scan.notify. They go
// through the delivery queue like DSNs (null envelope sender, so a refusal cannot loop), and the
// worker sends them through the relay.

export interface ScanNoticeContext {
  db: Db;
  blobs: BlobStore;
  logger: Logger;
  hostname: string;
}

export interface HeldFile {
  name: string;
  signature: string;
}

export interface ScanNotice {
  /** 'quarantine': held at intake; 'rescan': blocked after a new check of a live file. */
  kind: 'quarantine' | 'rescan';
  sender: string;
  admins: string[];
  transferId: string;
  queueId?: string;
  subject?: string | null;
  files: HeldFile[];
  now?: number;
}

function message(from: string, to: string, subject: string, text: string, hostname: string, now: number): Buffer {
  const id = `<${newQueueId()}.scan@${hostname}>`;
  const head = [
    `From: Ferry <${from}>`,
    `To: <${to}>`,
    `Subject: ${libmime.encodeWords(subject, 'Q', 52)}`,
    `Date: ${new Date(now).toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: ${id}`,
    'Auto-Submitted: auto-generated',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
  ].join('\r\n');
  return Buffer.from(`${head}\r\n\r\n${text.replace(/\r?\n/g, '\r\n')}\r\n`, 'utf8');
}

/** Queues the notices; returns their queue ids. Failures are logged, never thrown: the message itself is already handled. */
export async function queueScanNotices(ctx: ScanNoticeContext, n: ScanNotice): Promise<string[]> {
  const now = n.now ?? Date.now();
  const list = n.files.map((f) => `* ${f.name} (found: ${f.signature})`).join('\n');
  const what = n.kind === 'quarantine' ? 'was found to contain malware when you sent it' : 'was found to contain malware in a new check with updated signatures';
  const one = n.files.length === 1;
  const senderText =
    `${one ? 'An attachment' : 'Attachments'} of your message${n.subject ? ` "${n.subject}"` : ''} ${one ? what : what.replace('was', 'were')}:\n\n${list}\n\n` +
    `${one ? 'It is' : 'They are'} held for review: recipients cannot download ${one ? 'it' : 'them'}, and the download page says so. ` +
    `The other files of the message can still be downloaded. Check your computer for malware; an administrator will release or delete the held ${one ? 'file' : 'files'}.\n`;
  const adminText =
    `${n.kind === 'quarantine' ? 'Held at intake' : 'Blocked after a rescan'}: transfer ${n.transferId}${n.queueId ? ` (queue id ${n.queueId})` : ''}, sender <${n.sender || 'none'}>.\n\n${list}\n\n` +
    `Release or delete: npx ferry scan release ${n.transferId} IDX | npx ferry scan delete ${n.transferId} IDX, or the admin UI (Quarantine).\n`;
  const subject = n.kind === 'quarantine' ? `Attachment held for review: ${n.files[0]?.name ?? ''}` : `Attachment blocked after a new malware check: ${n.files[0]?.name ?? ''}`;
  const from = `MAILER-DAEMON@${ctx.hostname}`;
  const out: string[] = [];
  const targets = [...(n.sender ? [{ to: n.sender, text: senderText }] : []), ...n.admins.map((a) => ({ to: a, text: adminText }))];
  for (const t of targets) {
    const bytes = message(from, t.to, subject, t.text, ctx.hostname, now);
    const id = newQueueId();
    try {
      await queueOwnMail(ctx, id, t.to, bytes, now);
      out.push(id);
    } catch (err) {
      ctx.logger.error({ err, to: t.to, transferId: n.transferId }, 'could not queue the malware notice');
    }
  }
  return out;
}

/** The reply to DATA says the message was taken: relayed (250), or queued for the retries (250 with a queue id). */
export function messageTaken(reply: Pick<Reply, 'code'>): boolean {
  return reply.code >= 200 && reply.code < 300;
}

/**
 * The quarantine notices of a message, queued once the reply to DATA is known. A message the
 * next hop refused whole was never delivered and its files are not kept: the sender already has
 * the refusal, and a "held for review" notice about it would be false. So nothing is queued then;
 * for a message relayed or queued for retries (either is a 250) the notices go as usual.
 */
export async function queueHeldNotices(ctx: ScanNoticeContext, n: Omit<ScanNotice, 'kind'>, reply: Pick<Reply, 'code'>): Promise<string[]> {
  if (!n.files.length || !messageTaken(reply)) return [];
  return queueScanNotices(ctx, { ...n, kind: 'quarantine' });
}
