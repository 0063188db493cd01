import iconv from 'iconv-lite';
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
  if (node.filename) return true;
  if (type.startsWith('text/') || type.startsWith('multipart/') || type.startsWith('message/')) return false;
  return true;
}

/** Header Ferry puts on each part it turned into a link, so later passes leave it alone. */
export const PLACEHOLDER_HEADER = 'X-Ferry-Offloaded-File';

/** The charset a text part is decoded with, or undefined if Ferry cannot safely rewrite it. */
export function usableCharset(node: Node): string | undefined {
  const cs = (node.charset || 'us-ascii').toString().toLowerCase().trim();
  // UTF-16/32 are not ASCII-compatible: an inserted ASCII notice would corrupt them.
  if (/^(utf-?(16|32)|ucs-?2|ucs-?4)/.test(cs)) return undefined;
  return iconv.encodingExists(cs) ? cs : undefined;
}

/** "plain" or "html" if this part is a message body the notice can go into. */
export function noticeTargetKind(node: Node): 'plain' | 'html' | undefined {
  if (node.multipart || node.disposition === 'attachment' || node.filename) return undefined;
  if (node.headers && node.headers.hasHeader(PLACEHOLDER_HEADER)) return undefined;
  const type = node.contentType || 'text/plain';
  if (type !== 'text/plain' && type !== 'text/html') return undefined;
  if (!usableCharset(node)) return undefined;
  const enc = (node.encoding || '7bit').toLowerCase();
  if (!['7bit', '8bit', 'binary', 'quoted-printable', 'base64'].includes(enc)) return undefined;
  return type === 'text/plain' ? 'plain' : 'html';
}
