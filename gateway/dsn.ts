import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';

// Delivery status notifications (RFC 3464): what Ferry sends the envelope sender when it gives
// up on recipients (Action: failed) or warns that a message is delayed (Action: delayed).
// A multipart/report; report-type=delivery-status with three parts: a sentence a person reads,
// the machine-readable message/delivery-status, and the original message's header block as
// text/rfc822-headers (never the body or attachments, whatever RET asked for: the body may be
// large and the attachments' links must not travel back to anyone else).
// Hand-written rather than with nodemailer's MailComposer: it cannot build a multipart/report
// with a message/delivery-status part whose body must not be re-encoded.

export interface DsnRecipient {
  address: string;
  /** ORCPT as the client gave it, decoded ("rfc822;bob@example.net"). */
  orcpt?: string;
  /** RFC 3463 status, e.g. 5.1.1. */
  status: string;
  /** The next hop's reply, e.g. "550 5.1.1 <bob@example.net>: Recipient address rejected". */
  diagnostic?: string;
}

export interface DsnInput {
  kind: 'failure' | 'delay';
  /** Ferry's host name (Reporting-MTA, From). */
  reportingMta: string;
  /** The next hop, for Remote-MTA, when it answered. */
  remoteMta?: string;
  /** Who gets the DSN: the original envelope sender. */
  to: string;
  queueId: string;
  envid?: string | null;
  arrivalDate: number;
  lastAttemptDate?: number;
  /** Delay notices: when Ferry will give up. */
  willRetryUntil?: number;
  recipients: DsnRecipient[];
  /** The original header block (bytes up to and including the blank line). */
  originalHeaders: Buffer;
  /** Why Ferry gave up, in words (e.g. "it was deleted from the queue by an administrator"). */
  reason?: string;
  now: number;
}

/** The DSN as bytes with CRLF line ends, ready to queue. Small: headers are capped by readHeaderBlock. */
export function buildDsn(d: DsnInput): Buffer {
  const boundary = `ferry-dsn-${randomBytes(12).toString('hex')}`;
  const failed = d.kind === 'failure';
  const subject = failed ? 'Undelivered Mail Returned to Sender' : 'Delayed Mail (still being retried)';
  const origSubject = headerValue(d.originalHeaders, 'subject');
  const origMessageId = headerValue(d.originalHeaders, 'message-id');
  const lines: string[] = [
    `From: Mail Delivery System <MAILER-DAEMON@${clean(d.reportingMta)}>`,
    `To: <${clean(d.to)}>`,
    `Subject: ${subject}`,
    `Date: ${rfc2822(d.now)}`,
    `Message-ID: <${d.queueId}.${randomBytes(6).toString('hex')}@${clean(d.reportingMta)}>`,
    ...(origMessageId && /^<[^<>\s]+>$/.test(origMessageId) ? [`In-Reply-To: ${origMessageId}`, `References: ${origMessageId}`] : []),
    // RFC 3834: an automatic reply; well-behaved programs do not answer it.
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
    '',
    'This is a MIME-encapsulated message.',
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    ...humanText(d, origSubject),
    '',
    `--${boundary}`,
    'Content-Type: message/delivery-status',
    '',
    `Reporting-MTA: dns; ${clean(d.reportingMta)}`,
    `X-Ferry-Queue-ID: ${d.queueId}`,
    ...(d.envid ? [`Original-Envelope-Id: ${clean(d.envid)}`] : []),
    `Arrival-Date: ${rfc2822(d.arrivalDate)}`,
  ];
  for (const r of d.recipients) {
    lines.push('');
    if (r.orcpt) lines.push(`Original-Recipient: ${clean(r.orcpt)}`);
    lines.push(`Final-Recipient: rfc822; ${clean(r.address)}`);
    lines.push(`Action: ${failed ? 'failed' : 'delayed'}`);
    lines.push(`Status: ${r.status}`);
    if (d.remoteMta && r.diagnostic) lines.push(`Remote-MTA: dns; ${clean(d.remoteMta)}`);
    if (r.diagnostic) lines.push(`Diagnostic-Code: smtp; ${clean(r.diagnostic).slice(0, 900)}`);
    if (d.lastAttemptDate) lines.push(`Last-Attempt-Date: ${rfc2822(d.lastAttemptDate)}`);
    if (!failed && d.willRetryUntil) lines.push(`Will-Retry-Until: ${rfc2822(d.willRetryUntil)}`);
  }
  const headers = d.originalHeaders.toString('latin1').replace(/\r?\n/g, '\r\n').replace(/(\r\n)+$/, '');
  const eightBit = /[\x80-\xff]/.test(headers);
  const head = Buffer.from(
    [
      ...lines,
      '',
      `--${boundary}`,
      'Content-Type: text/rfc822-headers',
      ...(eightBit ? ['Content-Transfer-Encoding: 8bit'] : []),
      '',
      '',
    ].join('\r\n'),
    'utf8',
  );
  // The header block keeps its own bytes (latin1 round-trips them exactly).
  return Buffer.concat([head, Buffer.from(`${headers}\r\n\r\n--${boundary}--\r\n`, 'latin1')]);
}

function humanText(d: DsnInput, origSubject: string | undefined): string[] {
  const who = d.recipients.map((r) => `  <${clean(r.address)}>${r.diagnostic ? `: ${clean(r.diagnostic).slice(0, 300)}` : ''}`);
  const about = origSubject && /^[\x20-\x7e]*$/.test(origSubject) ? ` (subject "${origSubject.slice(0, 200)}")` : '';
  if (d.kind === 'failure') {
    return [
      `This is the mail system at ${clean(d.reportingMta)}.`,
      '',
      `Your message${about}, queued as ${d.queueId}, could not be delivered to the recipient${d.recipients.length === 1 ? '' : 's'} below${d.reason ? ` because ${d.reason}` : ''}.`,
      'It will not be retried. The message headers are attached; the body and attachments are not.',
      '',
      ...who,
    ];
  }
  return [
    `This is the mail system at ${clean(d.reportingMta)}.`,
    '',
    `Your message${about}, queued as ${d.queueId}, has not yet been delivered to the recipient${d.recipients.length === 1 ? '' : 's'} below.`,
    `Ferry keeps trying${d.willRetryUntil ? ` until ${rfc2822(d.willRetryUntil)}` : ''}; you do not need to send it again.`,
    '',
    ...who,
  ];
}

/** Control characters and line breaks out: every value here ends up on one header-like line. */
function clean(s: string): string {
  return s.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
}

function rfc2822(ms: number): string {
  // toUTCString gives "Thu, 26 Nov 2026 12:00:00 GMT"; RFC 5322 prefers a numeric zone.
  return new Date(ms).toUTCString().replace(/GMT$/, '+0000');
}

/** First value of `name` in a raw header block (unfolded), or undefined. */
export function headerValue(block: Buffer, name: string): string | undefined {
  const text = block.toString('latin1').replace(/\r?\n[ \t]+/g, ' ');
  const re = new RegExp(`^${name}:[ \\t]*(.*)$`, 'im');
  const m = re.exec(text);
  return m ? m[1]!.trim() : undefined;
}

const MAX_HEADER_BLOCK = 64 * 1024;

/**
 * Reads a message's header block (up to and including the blank line) from its start, at most
 * 64 KiB: a DSN never carries more. The stream is destroyed once the block is read.
 */
export async function readHeaderBlock(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of stream) {
      const b = chunk as Buffer;
      chunks.push(b);
      total += b.length;
      const all = Buffer.concat(chunks);
      const end = findBlankLine(all);
      if (end >= 0) return all.subarray(0, end);
      if (total >= MAX_HEADER_BLOCK) return cutAtLine(all.subarray(0, MAX_HEADER_BLOCK));
      chunks.length = 0;
      chunks.push(all);
    }
    return Buffer.concat(chunks);
  } finally {
    stream.destroy();
  }
}

function findBlankLine(b: Buffer): number {
  const crlf = b.indexOf('\r\n\r\n');
  if (crlf >= 0) return crlf + 4;
  const lf = b.indexOf('\n\n');
  return lf >= 0 ? lf + 2 : -1;
}

function cutAtLine(b: Buffer): Buffer {
  const i = b.lastIndexOf('\n');
  return i > 0 ? b.subarray(0, i + 1) : b;
}

/** RFC 3463 status for a reply: its own enhanced code when it carries one of the right class. */
export function statusFor(code: number | undefined, response: string | undefined, fallback: string): string {
  const m = /^\d{3}[ -]([245])\.(\d{1,3})\.(\d{1,3})\b/.exec(response ?? '');
  if (m && code && String(code)[0] === m[1]) return `${m[1]}.${m[2]}.${m[3]}`;
  if (code && code >= 500) return '5.0.0';
  return fallback;
}

/** Whether a recipient's NOTIFY asks for this kind of notice (no NOTIFY: failures and delays). */
export function wantsNotice(notify: string[] | undefined, kind: 'failure' | 'delay'): boolean {
  if (!notify || notify.length === 0) return true;
  return notify.includes(kind === 'failure' ? 'FAILURE' : 'DELAY');
}
