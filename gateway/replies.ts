import { formatSize } from '../config/units.js';

// Every SMTP reply Ferry composes comes from this catalogue: the reply code, its RFC 3463
// enhanced status code, and a sentence a person (often the sender reading a bounce) understands.
// smtp-server derives enhanced codes from the reply code alone (552 would become 5.2.2,
// "mailbox full"), so replies carry their own code and FerryConnection sends them verbatim.

export interface Reply {
  code: number;
  enhanced: string;
  text: string;
}

/** An SMTP reply as an Error, the shape smtp-server's handler callbacks take. */
export class SmtpReplyError extends Error {
  readonly responseCode: number;
  readonly enhancedCode: string;
  readonly reply: Reply;
  constructor(reply: Reply, options?: { cause?: unknown }) {
    super(`${reply.enhanced} ${reply.text}`, options);
    this.name = 'SmtpReplyError';
    this.responseCode = reply.code;
    this.enhancedCode = reply.enhanced;
    this.reply = reply;
  }
}

const limitText = (limit: number) => `${formatSize(limit)} (${limit} bytes)`;

export const replies = {
  /** MAIL FROM with SIZE=n over the limit: nothing has been transferred yet. */
  declaredTooBig: (declared: number, limit: number): Reply => ({
    code: 552,
    enhanced: '5.3.4',
    text: `Message size ${formatSize(declared)} exceeds the limit of ${limitText(limit)}; it was not sent. Remove some attachments or share them another way, then send again.`,
  }),
  /** Undeclared size, read to the end, over the limit. */
  tooBig: (received: number, limit: number): Reply => ({
    code: 552,
    enhanced: '5.3.4',
    text: `Message size ${formatSize(received)} or more exceeds the limit of ${limitText(limit)}; it was not sent. Remove some attachments or share them another way, then send again.`,
  }),
  /** Far past the limit: protection against disk-fill, the connection is closed. */
  hardLimit: (limit: number): Reply => ({
    code: 421,
    enhanced: '4.3.4',
    text: `Message is far over the size limit of ${limitText(limit)}; closing the connection.`,
  }),
  relayDenied: (recipient: string): Reply => ({
    code: 550,
    enhanced: '5.7.1',
    text: `Relaying to <${recipient}> is not allowed from your address; send through your organisation's mail server or log in.`,
  }),
  storageUnavailable: (): Reply => ({
    code: 452,
    enhanced: '4.3.1',
    text: 'Attachment storage is temporarily unavailable; please try again later.',
  }),
  localError: (): Reply => ({
    code: 451,
    enhanced: '4.3.0',
    text: 'A local error occurred while processing the message; nothing was kept. Please try again later.',
  }),
  nextHopUnavailable: (detail: string): Reply => ({
    code: 451,
    enhanced: '4.4.1',
    text: `The next mail server could not be reached (${detail}); nothing was kept. Please try again later.`,
  }),
  malformed: (detail: string): Reply => ({
    code: 554,
    enhanced: '5.6.0',
    text: `The message structure could not be processed (${detail}); it was not sent. Please send it again from your mail program.`,
  }),
  tooManyRecipients: (max: number): Reply => ({
    code: 452,
    enhanced: '4.5.3',
    text: `Too many recipients; at most ${max} per message. Send the rest in another message.`,
  }),
  accepted: (queueId: string, offloaded: number): Reply => ({
    code: 250,
    enhanced: '2.0.0',
    text: `Ok: queued as ${queueId}${offloaded ? `, ${offloaded} attachment${offloaded === 1 ? '' : 's'} turned into download links` : ''}`,
  }),
  /** AUTH on a connection without TLS (RFC 4954: 538 5.7.11). */
  tooManyConnections: (): Reply => ({
    code: 421,
    enhanced: '4.7.0',
    text: 'Too many connections are open to this gateway; please try again in a moment.',
  }),
  authInTransaction: (): Reply => ({
    code: 503,
    enhanced: '5.5.1',
    text: 'AUTH is not allowed during a mail transaction; send RSET first (RFC 4954).',
  }),
  authNeedsTls: (): Reply => ({
    code: 538,
    enhanced: '5.7.11',
    text: 'Log in only over an encrypted connection: send STARTTLS first.',
  }),
  /** Wrong name or password (RFC 4954: 535 5.7.8). */
  authFailed: (): Reply => ({
    code: 535,
    enhanced: '5.7.8',
    text: 'The user name or password is not correct.',
  }),
  /** The client sent commands before the greeting (during smtp.greetingDelay): a spam-bot trait. */
  talkedTooSoon: (): Reply => ({
    code: 421,
    enhanced: '4.5.0',
    text: 'Commands were sent before the greeting; closing the connection.',
  }),
  /** The third wrong password on one connection: it is closed, to slow down password guessing. */
  authTooManyFailures: (): Reply => ({
    code: 421,
    enhanced: '4.7.0',
    text: 'Too many failed logins; closing the connection.',
  }),
  /** Users file unreadable or broken: a temporary failure on our side (RFC 4954: 454 4.7.0). */
  authUnavailable: (): Reply => ({
    code: 454,
    enhanced: '4.7.0',
    text: 'Logging in is temporarily unavailable; please try again later.',
  }),
  /** The next hop could not take it now: Ferry keeps the (small) message and retries it itself. */
  queued: (queueId: string, offloaded: number): Reply => ({
    code: 250,
    enhanced: '2.0.0',
    text: `Ok: queued as ${queueId}${offloaded ? `, ${offloaded} attachment${offloaded === 1 ? '' : 's'} turned into download links` : ''}; the next mail server is not available now, Ferry will retry delivery`,
  }),
  /** scan.onInfected: reject. Nothing of the message is kept. */
  malwareFound: (file: string, signature: string, count: number): Reply => ({
    code: 554,
    enhanced: '5.7.1',
    text: `The attachment "${replyText(file, 80)}" contains malware (${replyText(signature, 80)})${count > 1 ? ` and ${count - 1} more attachment${count > 2 ? 's are' : ' is'} infected` : ''}; the message was not sent. Check your computer for malware before sending again.`,
  }),
  /** scan.tooLarge: reject. */
  tooLargeToScan: (file: string): Reply => ({
    code: 552,
    enhanced: '5.3.4',
    text: `The attachment "${replyText(file, 80)}" is larger than the malware scanner can check; the message was not sent. Share the file another way.`,
  }),
  /** scan.onError: tempfail (scanner unreachable, too slow, or answering nonsense). */
  scanUnavailable: (): Reply => ({
    code: 451,
    enhanced: '4.7.0',
    text: 'The malware scanner is temporarily unavailable, so the attachments could not be checked; nothing was kept. Please try again later.',
  }),
  /** smtp.maxConnectionsPerAddress reached for the client's address (IPv6: its /64). */
  tooManyConnectionsFromAddress: (max: number): Reply => ({
    code: 421,
    enhanced: '4.7.0',
    text: `Too many connections from your address are open to this gateway (at most ${max}); please try again in a moment.`,
  }),
  /** The V8 heap is above smtp.heapLimit: new transactions wait until the ones in flight are done. */
  memoryShort: (): Reply => ({
    code: 451,
    enhanced: '4.3.0',
    text: 'The gateway is short of memory right now and takes no new messages; nothing was kept. Please try again in a few minutes.',
  }),
  shuttingDown: (): Reply => ({
    code: 421,
    enhanced: '4.3.2',
    text: 'The gateway is shutting down; please try again shortly.',
  }),
} as const;

/** A name or signature inside a reply line: printable ASCII only (an SMTP reply is one line of ASCII), capped. */
function replyText(s: string, max: number): string {
  const clean = s.replace(/[^\x20-\x7e]/g, '?').replace(/"/g, "'");
  return clean.length > max ? `${clean.slice(0, max - 3)}...` : clean;
}

const ENHANCED_RE = /^([245])\.(\d{1,3})\.(\d{1,3})$/;

/** A reply passed back from the next hop: its code and text, with an enhanced code (its own when it sent one). */
export function nextHopReply(code: number, response: string): Reply {
  // nodemailer's err.response is the whole last line, e.g. "550 5.1.1 <x@y>: Recipient address rejected".
  let text = response.replace(/^\d{3}[ -]?/, '').trim();
  let enhanced = '';
  const first = text.split(' ', 1)[0] ?? '';
  if (ENHANCED_RE.test(first) && first[0] === String(code)[0]) {
    enhanced = first;
    text = text.slice(first.length).trim();
  } else {
    enhanced = code >= 500 ? '5.0.0' : code >= 400 ? '4.0.0' : '2.0.0';
  }
  return { code, enhanced, text: `Next hop said: ${text || 'no reason given'}` };
}

/** True if `text` starts with an enhanced status code of the same class as `code`. */
export function carriesEnhancedCode(code: number, text: string): boolean {
  const first = text.split(' ', 1)[0] ?? '';
  const m = ENHANCED_RE.exec(first);
  return !!m && m[1] === String(code)[0];
}
