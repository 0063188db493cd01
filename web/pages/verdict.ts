import type { FileScan } from '../../storage/index.js';
import { html, type Html } from '../html.js';

// What the landing page says about a file's malware check, in plain words. English only for
// now (the i18n catalogue in web/i18n.ts is another module's; these strings move there later).

const ENGINES: Record<string, string> = { clamav: 'ClamAV', icap: 'the organisation’s ICAP scanner' };

/** "2 Dec 2026" from a ClamAV version "ClamAV 1.4.6/27471/Wed Dec  2 09:25:02 2026", else from the scan time. */
export function signatureDate(s: FileScan, locale: string): string {
  const parts = s.version?.split('/') ?? [];
  const d = parts.length >= 3 ? new Date(parts.slice(2).join('/')) : new Date(NaN);
  const when = Number.isNaN(d.getTime()) ? (s.at ?? Date.now()) : d.getTime();
  return new Date(when).toLocaleDateString(locale, { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' });
}

/** One sentence about the file's check; empty when scanning was off when it came in. */
export function verdictLine(s: FileScan | undefined, locale: string): Html {
  if (!s || !s.verdict) return html``;
  const engine = ENGINES[s.engine ?? ''] ?? 'a malware scanner';
  if (s.blocked) {
    if (s.blockedReason === 'deleted') return html`<p class="verdict blocked" data-verdict="deleted">This file contained malware and was deleted by an administrator.</p>`;
    if (s.blockedReason === 'rescan') return html`<p class="verdict blocked" data-verdict="blocked">Blocked after a new check: ${engine} found malware in this file with newer signatures. It can no longer be downloaded.</p>`;
    return html`<p class="verdict blocked" data-verdict="held">Held for review: ${engine} found malware in this file. It cannot be downloaded until an administrator has checked it.</p>`;
  }
  if (s.releasedAt) return html`<p class="verdict" data-verdict="released">Released by an administrator after a malware finding; download it only if you trust the sender.</p>`;
  if (s.verdict === 'clean') return html`<p class="verdict" data-verdict="clean">Checked for malware by ${engine}, signatures of ${signatureDate(s, locale)}.</p>`;
  if (s.verdict === 'too_large') return html`<p class="verdict warn" data-verdict="too_large">Not checked for malware: the file is too large for the scanner.</p>`;
  if (s.verdict === 'unscanned') return html`<p class="verdict warn" data-verdict="unscanned">Not checked for malware: the scanner was unavailable when the file was sent.</p>`;
  return html``;
}
