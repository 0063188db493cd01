// The subject tag a sender writes to ask for a password-protected transfer (offload.passwordTag,
// default "[secure]"; docs/passwords.md). The tag is the sender's instruction to Ferry, not part
// of the message: it is taken out of the relayed and the stored subject.

/** Finds the tag (case-insensitive, e.g. "[secure]") in a decoded subject; returns the subject without it. */
export function takePasswordTag(subject: string, tag: string): { subject: string; tagged: boolean } {
  const t = tag.trim();
  if (!t) return { subject, tagged: false };
  const escaped = t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  // A tag that begins or ends with a letter or digit ("secure") must stand as a word of its own,
  // or "insecure" in a subject would ask for a password.
  const before = /^[\p{L}\p{N}_]/u.test(t) ? '(?<![\\p{L}\\p{N}_])' : '';
  const after = /[\p{L}\p{N}_]$/u.test(t) ? '(?![\\p{L}\\p{N}_])' : '';
  const re = new RegExp(`[ \\t]*${before}${escaped}${after}[ \\t]*`, 'giu');
  if (!re.test(subject)) return { subject, tagged: false };
  re.lastIndex = 0;
  // Where the tag stood between two words, one space stays; at either end, none.
  const out = subject.replace(re, ' ').replace(/^[ \t]+|[ \t]+$/g, '');
  return { subject: out, tagged: true };
}
