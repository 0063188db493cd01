import type { FileScan } from '../../storage/index.js';
import { html, type Html } from '../html.js';
import { MESSAGES, type Messages } from '../i18n.js';

// What the landing page says about a file's malware check, in plain words and in the page's
// language (web/i18n.ts, `scan`).

/** "2 Dec 2026" from a ClamAV version "ClamAV 1.4.6/27471/Wed Dec  2 09:25:02 2026", else from the scan time. */
export function signatureDate(s: FileScan, locale: string): string {
  const parts = s.version?.split('/') ?? [];
  const d = parts.length >= 3 ? new Date(parts.slice(2).join('/')) : new Date(NaN);
  const when = Number.isNaN(d.getTime()) ? (s.at ?? Date.now()) : d.getTime();
  return new Date(when).toLocaleDateString(locale, { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' });
}

/** The catalogue of a locale ("de-DE"); the landing page passes its t.locale. */
function messagesFor(locale: string | Messages): Messages {
  if (typeof locale !== 'string') return locale;
  return Object.values(MESSAGES).find((m) => m.locale === locale) ?? MESSAGES.en;
}

/** One sentence about the file's check; empty when scanning was off when it came in. */
export function verdictLine(s: FileScan | undefined, locale: string | Messages): Html {
  if (!s || !s.verdict) return html``;
  const t = messagesFor(locale);
  const w = t.scan;
  const engine = w.engine(s.engine);
  if (s.blocked) {
    if (s.blockedReason === 'deleted') return html`<p class="verdict blocked" data-verdict="deleted">${w.deleted}</p>`;
    if (s.blockedReason === 'rescan') return html`<p class="verdict blocked" data-verdict="blocked">${w.blockedRescan(engine)}</p>`;
    return html`<p class="verdict blocked" data-verdict="held">${w.held(engine)}</p>`;
  }
  if (s.releasedAt) return html`<p class="verdict" data-verdict="released">${w.released}</p>`;
  if (s.verdict === 'clean') return html`<p class="verdict" data-verdict="clean">${w.clean(engine, signatureDate(s, t.locale))}</p>`;
  if (s.verdict === 'too_large') return html`<p class="verdict warn" data-verdict="too_large">${w.tooLarge}</p>`;
  if (s.verdict === 'unscanned') return html`<p class="verdict warn" data-verdict="unscanned">${w.unscanned}</p>`;
  return html``;
}
