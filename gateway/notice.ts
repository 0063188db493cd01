import { formatSize, formatUtc } from '../config/units.js';
import { displayName } from '../storage/filenames.js';

// The words the recipient reads: the notice at the top of the message body and the short text
// that stands in place of each offloaded part. The mail links only to the landing page: mail
// security scanners (Safe Links, Proofpoint, Mimecast) fetch every link in a message, and a
// page view never counts as a download, so they cannot use up a download limit. File names are untrusted; they are cleaned by
// displayName() and, in HTML, escaped and written as ASCII with numeric references so the same
// bytes fit any ASCII-compatible charset without transcoding.

export interface NoticeFile {
  name: string;
  size: number;
  sha256: string;
}

export interface NoticeInput {
  files: NoticeFile[];
  landingUrl: string;
  expiresAt: number;
}

const RULE = '-'.repeat(60);

/** "1 attachment was sent as a download link", "3 attachments were sent as download links". */
function sentAs(count: number): string {
  return count === 1 ? '1 attachment was sent as a download link' : `${count} attachments were sent as download links`;
}

/** The plain-text notice, lines joined with CRLF, ending with a blank line. */
export function noticeText(n: NoticeInput): string {
  const count = n.files.length;
  const lines = [
    RULE,
    `${sentAs(count)}, available until ${formatUtc(n.expiresAt)}:`,
    '',
  ];
  for (const f of n.files) lines.push(`* ${displayName(f.name)} (${formatSize(f.size)})`);
  lines.push('', `Download: ${n.landingUrl}`, RULE, '', '');
  return lines.join('\r\n');
}

/** Escapes for HTML text and attributes, writing every non-ASCII character as a numeric reference. */
export function htmlAscii(s: string): string {
  let out = '';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '&') out += '&amp;';
    else if (ch === '<') out += '&lt;';
    else if (ch === '>') out += '&gt;';
    else if (ch === '"') out += '&quot;';
    else if (ch === "'") out += '&#39;';
    else if (cp < 0x20 || cp > 0x7e) out += `&#x${cp.toString(16).toUpperCase()};`;
    else out += ch;
  }
  return out;
}

/** The HTML notice: ASCII only, inline styles (mail clients drop style sheets). */
export function noticeHtml(n: NoticeInput): string {
  const count = n.files.length;
  const items = n.files
    .map(
      (f) =>
        `<li style="margin:4px 0">${htmlAscii(displayName(f.name))} <span style="color:#555">(${htmlAscii(formatSize(f.size))})</span></li>`,
    )
    .join('');
  return (
    `<div style="border:1px solid #c9d3e0;border-radius:6px;padding:12px 16px;margin:0 0 16px 0;font-family:Arial,Helvetica,sans-serif;font-size:14px;color:#1f2933;background:#f5f8fc">` +
    `<p style="margin:0 0 8px 0">${sentAs(count)}, available until ${htmlAscii(formatUtc(n.expiresAt))}:</p>` +
    `<ul style="margin:0 0 8px 0;padding-left:20px">${items}</ul>` +
    `<p style="margin:0"><a href="${htmlAscii(n.landingUrl)}" style="display:inline-block;padding:6px 14px;border-radius:4px;background:#0b57d0;color:#ffffff;text-decoration:none">Download</a> <span style="color:#555;font-size:12px">${htmlAscii(n.landingUrl)}</span></p>` +
    `</div>\r\n`
  );
}

/** The text that replaces an offloaded part, in place. */
export function placeholderText(f: NoticeFile, landingUrl: string, expiresAt: number): string {
  return [
    `The attachment "${displayName(f.name)}" (${formatSize(f.size)}) was sent as a download link:`,
    landingUrl,
    `Available until ${formatUtc(expiresAt)}.`,
    `SHA-256: ${f.sha256}`,
    '',
  ].join('\r\n');
}

/** RFC 3676: lines starting with a space, ">" or "From " are space-stuffed in format=flowed text. */
export function stuffFlowed(text: string): string {
  return text
    .split('\r\n')
    .map((l) => (/^( |>|From )/.test(l) ? ` ${l}` : l))
    .join('\r\n');
}
