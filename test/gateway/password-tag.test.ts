import { describe, expect, it } from 'vitest';
import { takePasswordTag } from '../../gateway/password-tag.js';

// The subject tag that asks for a password-protected transfer (offload.passwordTag,
// docs/passwords.md): found in any case and anywhere, taken out of the subject so the
// recipients never see it, and never found inside another word.

describe('takePasswordTag', () => {
  it.each([
    ['[secure] Q3 figures', 'Q3 figures'],
    ['Q3 figures [secure]', 'Q3 figures'],
    ['Re: [SECURE] Q3 figures', 'Re: Q3 figures'],
    ['Q3 [Secure] figures', 'Q3 figures'],
    ['[secure]Q3 figures', 'Q3 figures'],
    ['a [secure] b [secure] c', 'a b c'],
    ['[secure]', ''],
    ['Verträge [SeCuRe] für Müller', 'Verträge für Müller'],
  ])('%j is tagged and becomes %j', (subject, rest) => {
    expect(takePasswordTag(subject, '[secure]')).toEqual({ subject: rest, tagged: true });
  });

  it.each(['Q3 figures', 'secure delivery of Q3', '[secure Q3]', '[ secure ]'])('%j is not tagged and stays as it was', (subject) => {
    expect(takePasswordTag(subject, '[secure]')).toEqual({ subject, tagged: false });
  });

  it('takes other tags, and a tag of letters only as a word of its own', () => {
    expect(takePasswordTag('Contract (pw) final', '(pw)')).toEqual({ subject: 'Contract final', tagged: true });
    expect(takePasswordTag('Contract ENCRYPT final', 'encrypt')).toEqual({ subject: 'Contract final', tagged: true });
    expect(takePasswordTag('Encrypted contract', 'encrypt')).toEqual({ subject: 'Encrypted contract', tagged: false });
    // Characters with a meaning in patterns are plain text in a tag.
    expect(takePasswordTag('a.b [x.*] c', '[x.*]')).toEqual({ subject: 'a.b c', tagged: true });
    expect(takePasswordTag('a.b [xyz] c', '[x.*]')).toEqual({ subject: 'a.b [xyz] c', tagged: false });
  });

  it('is off with an empty tag', () => {
    expect(takePasswordTag('[secure] Q3', '')).toEqual({ subject: '[secure] Q3', tagged: false });
    expect(takePasswordTag('[secure] Q3', '  ')).toEqual({ subject: '[secure] Q3', tagged: false });
  });
});
