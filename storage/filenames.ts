// File names come from the sender's message and are untrusted: they may carry control
// characters, bidi overrides (U+202E makes "invoice<RLO>fdp.exe" look like "invoiceexe.pdf"),
// path separators or thousands of characters. These functions are the one place that cleans
// them for display, for URLs and for archives; nothing ever uses a name in a file-system path.

// Every control character (Cc: C0 incl. NUL, CR, LF; DEL; C1), every invisible format character
// (Cf: bidi overrides such as RLO U+202E, the deprecated U+206A-U+206F, ZWJ/ZWNJ, soft hyphen,
// BOM, tag characters...), line and paragraph separators (Zl, Zp), lone surrogates (Cs, which
// UTF-8 cannot carry), and the Hangul fillers, letters that are drawn as nothing. By category
// rather than by list, so a character added to Cf in a later Unicode version is covered too.
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\u115f\u1160\u3164\uffa0]/gu;
const MAX_DISPLAY = 200;
/** Stored names (files.name) are capped at this many bytes of UTF-8, extension kept. */
export const MAX_STORED_NAME_BYTES = 255;

/** The name as shown to people: unsafe characters removed, length capped (keeping the extension). */
export function displayName(raw: string | undefined | null, fallback = 'attachment'): string {
  let name = cleanName(raw);
  if (!name) return fallback;
  const chars = [...name];
  if (chars.length > MAX_DISPLAY) {
    const dot = name.lastIndexOf('.');
    const ext = dot > 0 && name.length - dot <= 12 ? name.slice(dot) : '';
    name = chars.slice(0, MAX_DISPLAY - [...ext].length - 1).join('') + '\u2026' + ext;
  }
  return name;
}

/** The name without the characters that hide or reorder text, whitespace folded; '' stays ''. */
function cleanName(raw: string | undefined | null): string {
  return (raw ?? '').normalize('NFC').replace(UNSAFE, '').replace(/\s+/g, ' ').trim();
}

/**
 * The name as the records keep it (files.name): cleaned as for display, and at most
 * MAX_STORED_NAME_BYTES bytes of UTF-8, cut on a character boundary with the extension kept, so
 * a sender cannot fill the database or the admin pages with megabyte names. '' (no name) stays ''.
 */
export function storedName(raw: string | undefined | null): string {
  const name = cleanName(raw);
  if (Buffer.byteLength(name, 'utf8') <= MAX_STORED_NAME_BYTES) return name;
  const dot = name.lastIndexOf('.');
  const ext = dot > 0 && name.length - dot <= 16 ? name.slice(dot) : '';
  const budget = MAX_STORED_NAME_BYTES - Buffer.byteLength(ext, 'utf8') - Buffer.byteLength('\u2026', 'utf8');
  let used = 0;
  let head = '';
  for (const ch of name.slice(0, name.length - ext.length)) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (used + n > budget) break;
    used += n;
    head += ch;
  }
  return `${head.trimEnd()}\u2026${ext}`;
}

/** No "..", no leading or trailing dots or spaces: one plain file name wherever it lands. */
function tidy(name: string): string {
  return name
    .replace(/\.{2,}/g, '.')
    .replace(/^[.\s]+/, '')
    .replace(/[.\s]+$/, '');
}

/**
 * The name a file is saved under (download, zip entry): the last path component of the display
 * name (either separator), with no ".." and no leading dot.
 */
export function savedName(raw: string | undefined | null): string {
  return tidy(lastComponent(displayName(raw))) || 'attachment';
}

/**
 * The last component of a name that is a path, with either separator, as browsers save such
 * names: "C:\Users\x\Desktop\f.pdf" and "..\..\f.pdf" are "f.pdf" (Outlook and some
 * scanners send the full Windows path). A trailing separator ("dir/") leaves the component before it.
 */
function lastComponent(name: string): string {
  return name.split(/[/\\]/).map((p) => p.trim()).filter(Boolean).at(-1) ?? '';
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
