import { Readable } from 'node:stream';
import MailComposer from 'nodemailer/lib/mail-composer';
import type { BlobStore } from './blob-store.js';
import type { Db } from './database.js';
import { enqueue, queueBlobKey } from './queue.js';
import { newQueueId } from './tokens.js';

// Mail that Ferry writes itself (receipts, download notices, lockout notices): composed with
// nodemailer's MailComposer, stored as a queue blob and queued like a DSN, so the queue runner
// delivers it through the same next hop and keeps it while that hop is down. The envelope
// sender is null and the entry's kind is 'dsn': a refusal is logged and dropped, never bounced,
// so a notice can never start a mail loop. The entry names no transfer on purpose: a notice
// that nobody took must not retire the transfer it talks about (worker/queue-runner.ts finish).

export interface SystemMail {
  to: string;
  from: string;
  subject: string;
  text: string;
  html?: string;
  /** Extra headers, e.g. Auto-Submitted (always set to auto-generated anyway). */
  headers?: Record<string, string>;
}

export interface SystemMailContext {
  db: Db;
  blobs: BlobStore;
  /** Ferry's host name, for the Message-ID. */
  hostname: string;
}

/**
 * Whether `address` is Ferry's own (senders.from, which may be "Name <address>"), compared
 * case-insensitively. Anyone can give that address as their envelope sender; mail about their
 * transfer (a receipt with the management link and password, a notice) must not go to it: it
 * would reach whatever mailbox Ferry's own address leads to, or come back to Ferry.
 */
export function isOwnAddress(address: string, from: string): boolean {
  const own = /<([^<>]+)>\s*$/.exec(from)?.[1] ?? from;
  return address.trim().toLowerCase() === own.trim().toLowerCase();
}

/** One line, so a subject built from user input cannot start a header of its own. */
function oneLine(s: string): string {
  return s.replace(/[\r\n]+\s*/g, ' ');
}

/** The exact bytes of a system mail (exported for tests and previews). */
export async function composeSystemMail(mail: SystemMail, opts: { id: string; hostname: string; now: number }): Promise<Buffer> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(mail.headers ?? {})) headers[k] = oneLine(v);
  // RFC 3834: autoresponders and vacation replies leave it alone.
  headers['Auto-Submitted'] = 'auto-generated';
  const composer = new MailComposer({
    from: mail.from,
    to: mail.to,
    subject: oneLine(mail.subject),
    text: mail.text,
    ...(mail.html !== undefined ? { html: mail.html } : {}),
    date: new Date(opts.now),
    messageId: `<${opts.id.toLowerCase()}.ferry@${opts.hostname}>`,
    headers,
    // Notices go to people, not robots: quoted-printable keeps the text readable in a raw view.
    textEncoding: 'quoted-printable',
  });
  return composer.compile().build();
}

/**
 * Composes, stores and queues a system mail (null envelope sender, never bounced, delivered by
 * the queue runner through the next hop; kept queued while the hop is down). Due at once.
 * Returns the queue id. Throws when the blob store or the database refuse it (callers decide
 * whether that matters; nothing is left behind).
 */
export async function queueSystemMail(ctx: SystemMailContext, mail: SystemMail, now = Date.now()): Promise<string> {
  const id = newQueueId();
  const bytes = await composeSystemMail(mail, { id, hostname: ctx.hostname, now });
  await queueOwnMail(ctx, id, mail.to, bytes, now);
  return id;
}

/**
 * Stores and queues a mail Ferry wrote itself (system mail, DSN, malware notice) under queue id
 * `id`: null envelope sender, so a refusal can never loop or bounce; no transfer, so a notice
 * nobody takes never retires the transfer it talks about; due at once. Throws when the blob
 * store or the database refuse it, leaving nothing behind.
 */
export async function queueOwnMail(ctx: { db: Db; blobs: BlobStore }, id: string, to: string, bytes: Buffer, now: number): Promise<void> {
  const blobKey = queueBlobKey(id);
  await ctx.blobs.put(blobKey, Readable.from([bytes]), { contentType: 'message/rfc822' });
  try {
    await enqueue(ctx.db, { id, kind: 'dsn', transferId: null, sender: '', recipients: [{ address: to, state: 'pending' }], blobKey, size: bytes.length, createdAt: now, nextAttemptAt: now });
  } catch (err) {
    await ctx.blobs.delete(blobKey).catch(() => undefined);
    throw err;
  }
}
