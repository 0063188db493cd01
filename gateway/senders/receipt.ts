import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import { formatSize, formatUtc, groupDigits } from '../../config/units.js';
import { displayName, isOwnAddress, queueSystemMail, type BlobStore, type Db } from '../../storage/index.js';
import { htmlAscii } from '../notice.js';

// The sender's receipt: what left, to whom, until when, and the private management link (and
// the password of a protected transfer, which exists nowhere else in clear). Queued through
// storage/system-mail.ts once the message is accepted, so a next hop that is down only delays
// it. The receipt is the only place the management link and the password are written: neither
// is ever logged.

export interface ReceiptInput {
  transferId: string;
  queueId: string;
  sender: string;
  subject: string | null;
  files: { name: string; size: number; sha256: string }[];
  expiresAt: number;
  recipients: { address: string; perRecipientLink: boolean }[];
  manageUrl: string;
  password?: string;
}

export interface ReceiptContext {
  config: Config;
  db: Db;
  blobs: BlobStore;
  logger: Logger;
}

/** Whether a receipt is due: the retention rule's word first, then senders.receipts. */
export function receiptsWanted(config: Config, byRule: boolean | null): boolean {
  return byRule ?? config.senders.receipts === 'on';
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
const sizeText = (n: number) => (n < 1000 ? formatSize(n) : `${formatSize(n)} (${groupDigits(n)} bytes)`);
const linkKind = (r: { perRecipientLink: boolean }) => (r.perRecipientLink ? 'own link' : 'shared link');

const MANAGE_WHY = 'See who downloaded what, revoke one recipient or all, change the expiry, or send a copy again:';
const MANAGE_PRIVATE = 'This link is yours alone: whoever has it can manage the transfer. Do not forward this mail.';
const PASSWORD_WHY = 'The recipients need this password to download the files. It is not in their mail.';
const PASSWORD_PRIVATE = 'Keep it to yourself and pass it on another way, for example by phone or in a chat message, never in the same mail as the link.';

/**
 * The subject as the receipt shows it: one line, without the characters that hide or reorder
 * text. It is whatever the message said (decoded encoded-words may hold line breaks), and the
 * envelope sender the receipt goes to can be anyone's address: raw, a subject could draw a fake
 * "Manage this transfer" link or "Password" line into a mail that comes from Ferry.
 */
const subjectOf = (r: ReceiptInput): string => (r.subject ? displayName(r.subject, '') : '');

export function receiptSubject(r: ReceiptInput): string {
  const subject = subjectOf(r);
  const what = subject ? `"${subject}"` : 'your message';
  return `Sent: ${what}, ${plural(r.files.length, 'file')} available until ${formatUtc(r.expiresAt)}`;
}

export function receiptText(r: ReceiptInput): string {
  const lines: string[] = [
    `Ferry stored the large attachments of ${subjectOf(r) ? `your message "${subjectOf(r)}"` : 'your message'} and sent the recipients download links (queue id ${r.queueId}).`,
    '',
    `Files (${r.files.length}):`,
  ];
  for (const f of r.files) lines.push(`* ${displayName(f.name)}`, `  Size: ${sizeText(f.size)}`, `  SHA-256: ${f.sha256}`);
  lines.push('', `Available until: ${formatUtc(r.expiresAt)}`, '', `Recipients (${r.recipients.length}):`);
  for (const x of r.recipients) lines.push(`* ${x.address} (${linkKind(x)})`);
  lines.push('', 'Manage this transfer:', MANAGE_WHY, r.manageUrl, MANAGE_PRIVATE);
  if (r.password !== undefined) lines.push('', `Password: ${r.password}`, PASSWORD_WHY, PASSWORD_PRIVATE);
  lines.push('', `Transfer id: ${r.transferId}`, '');
  return lines.join('\n');
}

export function receiptHtml(r: ReceiptInput): string {
  const p = (s: string) => `<p style="margin:0 0 12px 0">${s}</p>`;
  const files = r.files
    .map(
      (f) =>
        `<tr><td style="padding:4px 8px;border-bottom:1px solid #d8dee6">${htmlAscii(displayName(f.name))}</td>` +
        `<td style="padding:4px 8px;border-bottom:1px solid #d8dee6;white-space:nowrap">${htmlAscii(sizeText(f.size))}</td>` +
        `<td style="padding:4px 8px;border-bottom:1px solid #d8dee6;font-family:monospace;font-size:12px;word-break:break-all">${htmlAscii(f.sha256)}</td></tr>`,
    )
    .join('');
  const recipients = r.recipients.map((x) => `<li>${htmlAscii(x.address)} <span style="color:#555">(${linkKind(x)})</span></li>`).join('');
  const intro = subjectOf(r) ? `your message &quot;${htmlAscii(subjectOf(r))}&quot;` : 'your message';
  return (
    `<div style="font-family:Arial,Helvetica,sans-serif;font-size:14px;color:#1f2933">` +
    p(`Ferry stored the large attachments of ${intro} and sent the recipients download links (queue id ${htmlAscii(r.queueId)}).`) +
    `<h2 style="font-size:16px;margin:16px 0 8px 0">Files (${r.files.length})</h2>` +
    `<table style="border-collapse:collapse;margin:0 0 12px 0"><thead><tr><th scope="col" style="text-align:left;padding:4px 8px">Name</th><th scope="col" style="text-align:left;padding:4px 8px">Size</th><th scope="col" style="text-align:left;padding:4px 8px">SHA-256</th></tr></thead><tbody>${files}</tbody></table>` +
    p(`Available until: <strong>${htmlAscii(formatUtc(r.expiresAt))}</strong>`) +
    `<h2 style="font-size:16px;margin:16px 0 8px 0">Recipients (${r.recipients.length})</h2>` +
    `<ul style="margin:0 0 12px 0;padding-left:20px">${recipients}</ul>` +
    `<h2 style="font-size:16px;margin:16px 0 8px 0">Manage this transfer</h2>` +
    p(MANAGE_WHY) +
    p(`<a href="${htmlAscii(r.manageUrl)}" style="display:inline-block;padding:6px 14px;border-radius:4px;background:#0b57d0;color:#ffffff;text-decoration:none">Manage the transfer</a> <span style="color:#555;font-size:12px">${htmlAscii(r.manageUrl)}</span>`) +
    p(`<strong>${MANAGE_PRIVATE}</strong>`) +
    (r.password !== undefined
      ? `<h2 style="font-size:16px;margin:16px 0 8px 0">Password</h2>` +
        p(`<code style="font-size:16px;padding:2px 6px;background:#f1f3f5;border:1px solid #d8dee6">${htmlAscii(r.password)}</code>`) +
        p(PASSWORD_WHY) +
        p(`<strong>${htmlAscii(PASSWORD_PRIVATE)}</strong>`)
      : '') +
    p(`<span style="color:#555;font-size:12px">Transfer id: ${htmlAscii(r.transferId)}</span>`) +
    `</div>`
  );
}

/** Queues the receipt when senders.receipts (or the rule) says so, or the transfer has a password, and the sender is not null; never throws. */
export async function queueReceipt(ctx: ReceiptContext, r: ReceiptInput & { receiptsByRule: boolean | null }): Promise<string | undefined> {
  // The null sender (bounces, other robots) has nobody to read a receipt; answering it could loop.
  if (!r.sender) return undefined;
  // Nor Ferry's own address (senders.from): anyone can write it as their envelope sender, and a
  // receipt to it would hand the management link and password to whatever mailbox Ferry's own
  // address reaches, or feed Ferry its own mail.
  if (isOwnAddress(r.sender, ctx.config.senders.from)) {
    ctx.logger.warn({ queueId: r.queueId, transferId: r.transferId }, `${r.queueId}: no receipt: the envelope sender is Ferry's own address (senders.from)`);
    return undefined;
  }
  // A password-protected transfer always gets its receipt: the password is in nothing else, so
  // with receipts off its recipients could never open the files.
  if (!r.password && !receiptsWanted(ctx.config, r.receiptsByRule)) return undefined;
  try {
    const id = await queueSystemMail(
      { db: ctx.db, blobs: ctx.blobs, hostname: ctx.config.smtp.hostname },
      { to: r.sender, from: ctx.config.senders.from, subject: receiptSubject(r), text: receiptText(r), html: receiptHtml(r) },
    );
    // Neither the management link nor the password: both are credentials.
    ctx.logger.info({ queueId: r.queueId, transferId: r.transferId, receipt: id, to: r.sender }, `${r.queueId}: receipt to the sender queued as ${id}`);
    return id;
  } catch (err) {
    // The message itself is accepted already; a missing receipt must not undo that.
    ctx.logger.error({ err, queueId: r.queueId, transferId: r.transferId }, `${r.queueId}: could not queue the receipt to the sender`);
    return undefined;
  }
}
