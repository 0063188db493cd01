import type { SMTPServerSession } from 'smtp-server';

// Ferry's trace field (RFC 5321 section 4.4), put in front of every message it relays or
// queues, rewritten or not. It is only ever prepended: every byte after it is the message as
// the rewrite left it, so DKIM signatures made before Ferry (which never cover Received)
// stay valid on an untouched message.

export interface ReceivedInput {
  /** The EHLO/HELO name the client gave. */
  helo: string | false | undefined;
  remoteAddress: string;
  /** The client's name from reverse DNS, when it was looked up (smtp-server gives "[ip]" otherwise). */
  reverseName?: string;
  /** Ferry's own name (smtp.hostname). */
  by: string;
  /** RFC 3848 protocol: ESMTP, ESMTPS, ESMTPA, ESMTPSA (or SMTP... after HELO). */
  protocol: string;
  queueId: string;
  recipients: string[];
  date: Date;
}

/** The session's part of the trace: what smtp-server knows about the client. */
export function receivedFromSession(session: SMTPServerSession): Pick<ReceivedInput, 'helo' | 'remoteAddress' | 'reverseName' | 'protocol'> {
  const s = session as SMTPServerSession & { hostNameAppearsAs?: string | false; clientHostname?: string; transmissionType?: string };
  const reverse = s.clientHostname && !s.clientHostname.startsWith('[') ? s.clientHostname : undefined;
  return {
    helo: s.hostNameAppearsAs,
    remoteAddress: s.remoteAddress,
    reverseName: reverse,
    protocol: s.transmissionType || 'ESMTP',
  };
}

/**
 * The whole field, folded, ending in CRLF:
 *   Received: from client.example (mx.client.example [192.0.2.1])
 *           by ferry.example (Ferry) with ESMTPS id 561A7684CDA2573E
 *           for <bob@example.net>; Wed, 02 Dec 2026 06:11:39 +0000
 */
export function receivedField(r: ReceivedInput): Buffer {
  const helo = clean(r.helo || '') || 'unknown';
  const addr = r.remoteAddress.includes(':') ? `IPv6:${r.remoteAddress.replace(/^::ffff:(?=\d+\.)/i, '')}` : r.remoteAddress;
  // NB an IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d; the trace names the IPv4 address.
  const literal = /^IPv6:\d+\.\d+\.\d+\.\d+$/.test(addr) ? addr.slice(5) : addr;
  const reverse = r.reverseName ? `${clean(r.reverseName)} ` : '';
  const lines = [
    `Received: from ${helo} (${reverse}[${literal}])`,
    `\tby ${clean(r.by) || 'localhost'} (Ferry) with ${clean(r.protocol) || 'ESMTP'} id ${clean(r.queueId)}`,
  ];
  // Only with exactly one recipient: naming one of several would leak Bcc recipients to the others.
  const date = rfc5322Date(r.date);
  if (r.recipients.length === 1) {
    lines.push(`\tfor <${cleanAddress(r.recipients[0]!)}>; ${date}`);
  } else {
    lines[1] += ';';
    lines.push(`\t${date}`);
  }
  return Buffer.from(lines.join('\r\n') + '\r\n', 'utf8');
}

/** RFC 5322 section 3.3 date-time in UTC: "Wed, 02 Dec 2026 06:11:39 +0000". */
export function rfc5322Date(d: Date): string {
  // toUTCString() gives the RFC 5322 layout with the obsolete zone "GMT"; receivers prefer the numeric form.
  return d.toUTCString().replace(/GMT$/, '+0000');
}

/** Client-supplied text goes into a header: no CR, LF, controls, comment delimiters or spaces. */
function clean(s: string): string {
  return s.replace(/[^\x21-\x7e\u0080-\uffff]|[()\\]/g, '').slice(0, 255);
}

function cleanAddress(s: string): string {
  return s.replace(/[\x00-\x20\x7f<>\\]/g, '').slice(0, 320);
}
