import { charsetName } from './charsets.js';
import libmime from 'libmime';
import type { MimeNode } from '@zone-eu/mailsplit';

// What a MIME part is, for Ferry's purposes. Shared by the offload pass and the notice pass so
// both agree on which parts are attachments and which are the message body.

type Node = MimeNode;

export type SignedPolicy = 'passthrough' | 'offload';

const SIGNED_CONTAINERS = new Set(['multipart/signed', 'multipart/encrypted']);
const PKCS7 = new Set(['application/pkcs7-mime', 'application/x-pkcs7-mime']);

function parent(node: Node): Node | undefined {
  return (node.parentNode || undefined) as Node | undefined;
}

/** True for a part inside a signed or encrypted structure, or that is itself PKCS#7: rewriting would break it. */
export function isProtected(node: Node): boolean {
  if (node.contentType && PKCS7.has(node.contentType)) return true;
  for (let p = parent(node); p; p = parent(p)) if (p.contentType && SIGNED_CONTAINERS.has(p.contentType)) return true;
  return false;
}

/** True for the whole-message forms that pass untouched by default. */
export function isProtectedRoot(node: Node): boolean {
  return !!node.contentType && (SIGNED_CONTAINERS.has(node.contentType) || PKCS7.has(node.contentType));
}

/** An attachment by disposition, by name, or a non-text leaf; never a container or the text body. */
export function isAttachmentCandidate(node: Node, signed: SignedPolicy): boolean {
  if (node.multipart) return false;
  if (signed === 'passthrough' && isProtected(node)) return false;
  const type = node.contentType || 'text/plain';
  if (node.disposition === 'attachment') return true;
  // The text/calendar of a meeting request sits in multipart/alternative beside the text and HTML
  // (Outlook, Exchange, Google Calendar): it is the invite itself, which calendar programs act on
  // in place (RFC 6047), so it stays a body even when it carries a name.
  if (type === 'text/calendar' && parent(node)?.multipart === 'alternative') return false;
  if (node.filename) return true;
  if (type.startsWith('text/') || type.startsWith('multipart/')) return false;
  // A forwarded message is a leaf here (the splitter never parses inside it): with or without a
  // Content-Disposition it is content the recipient opens, not body text, and it can carry
  // attachments of any size. Delivery reports (message/delivery-status, ...) are small and are
  // read as part of the report, so they stay.
  if (type.startsWith('message/')) return EMBEDDED_MESSAGES.has(type);
  return true;
}

const EMBEDDED_MESSAGES = new Set(['message/rfc822', 'message/global']);

/** True for a part that is a whole forwarded message. */
export function isEmbeddedMessage(node: Node): boolean {
  return EMBEDDED_MESSAGES.has(node.contentType || '');
}

// libmime's table gives the first extension listed for a type; these are the ones people expect.
const PREFERRED_EXTENSION: Record<string, string> = {
  'image/jpeg': 'jpg',
  'audio/mpeg': 'mp3',
  'application/ms-tnef': 'dat',
  'application/vnd.ms-tnef': 'dat',
  'message/global': 'eml',
};

/** A name for a part that came without one: "attachment-<n>.<extension of its type>". */
export function fallbackName(contentType: string, idx: number): string {
  const type = (contentType || 'application/octet-stream').toLowerCase();
  const ext = PREFERRED_EXTENSION[type] ?? libmime.detectExtension(type) ?? 'bin';
  return `attachment-${idx}.${ext}`;
}

/** Header Ferry puts on each part it turned into a link, so later passes leave it alone. */
export const PLACEHOLDER_HEADER = 'X-Ferry-Offloaded-File';

/** The charset a text part is decoded with, or undefined if Ferry cannot safely rewrite it. */
export function usableCharset(node: Node): string | undefined {
  if (!asciiCompatible(node)) return undefined;
  // Labels as Python and older mailers write them (iso2022_jp, cp936...) too: gateway/charsets.ts.
  return charsetName(charsetOf(node));
}

function charsetOf(node: Node): string {
  return (node.charset || 'us-ascii').toString().toLowerCase().trim();
}

/**
 * False for UTF-16/32: inserted ASCII bytes would corrupt them. Every other charset mail uses
 * is ASCII-compatible where markup is, ISO-2022-JP included (its ASCII characters are only
 * ever written in ASCII mode), even the ones iconv-lite cannot decode.
 */
function asciiCompatible(node: Node): boolean {
  return !/^(utf-?(16|32)|ucs-?2|ucs-?4)/.test(charsetOf(node));
}

/** "plain" or "html" if this part is a message body the notice can go into. */
export function noticeTargetKind(node: Node): 'plain' | 'html' | undefined {
  if (node.multipart || node.disposition === 'attachment' || node.filename) return undefined;
  if (node.headers && node.headers.hasHeader(PLACEHOLDER_HEADER)) return undefined;
  const type = node.contentType || 'text/plain';
  if (type !== 'text/plain' && type !== 'text/html') return undefined;
  // The HTML notice is pure ASCII and is never transcoded, so any ASCII-compatible charset takes
  // it (a Japanese ISO-2022-JP mail in multipart/related would otherwise get no notice at all);
  // the plain-text notice is written in the part's charset, which Ferry must know.
  if (type === 'text/html' ? !asciiCompatible(node) : !usableCharset(node)) return undefined;
  const enc = (node.encoding || '7bit').toLowerCase();
  if (!['7bit', '8bit', 'binary', 'quoted-printable', 'base64'].includes(enc)) return undefined;
  return type === 'text/plain' ? 'plain' : 'html';
}
