// File names come from the sender's message and are untrusted: they may carry control
// characters, bidi overrides (U+202E makes "invoice<RLO>fdp.exe" look like "invoiceexe.pdf"),
// path separators or thousands of characters. These functions are the one place that cleans
// them for display, for URLs and for archives; nothing ever uses a name in a file-system path.

// C0, DEL, C1, and the Unicode format characters that reorder or hide text.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/g;
const MAX_DISPLAY = 200;

/** The name as shown to people: unsafe characters removed, length capped (keeping the extension). */
export function displayName(raw: string | undefined | null, fallback = 'attachment'): string {
  let name = (raw ?? '').normalize('NFC').replace(UNSAFE, '').replace(/\s+/g, ' ').trim();
  if (!name) return fallback;
  const chars = [...name];
  if (chars.length > MAX_DISPLAY) {
    const dot = name.lastIndexOf('.');
    const ext = dot > 0 && name.length - dot <= 12 ? name.slice(dot) : '';
    name = chars.slice(0, MAX_DISPLAY - [...ext].length - 1).join('') + '\u2026' + ext;
  }
  return name;
}

/** No "..", no leading or trailing dots or spaces: one plain file name wherever it lands. */
function tidy(name: string): string {
  return name
    .replace(/\.{2,}/g, '.')
    .replace(/^[.\s]+/, '')
    .replace(/[.\s]+$/, '');
}

/**
 * The name a file is saved under (download, zip entry): the display name with no path
 * separators, no ".." and no leading dot.
 */
export function savedName(raw: string | undefined | null): string {
  return tidy(displayName(raw).replace(/[/\\]/g, '_')) || 'attachment';
}

/** The name as a single URL path segment (cosmetic: files are chosen by index), percent-encoded. */
export function urlSegment(raw: string | undefined | null): string {
  return encodeURIComponent(savedName(raw));
}

/** An ASCII-only form of the saved name for places that cannot carry Unicode (Content-Disposition fallback). */
export function asciiName(raw: string | undefined | null): string {
  // NFKD can turn characters such as U+2024 into dots, so the dot rules run again on its output.
  const name = tidy(
    savedName(raw)
      .normalize('NFKD')
      .replace(/[\u0300-\u036f]/g, '')
      .replace(/[^\x20-\x7e]/g, '_')
      .replace(/["\\/%]/g, '_'),
  );
  return name || 'attachment';
}
