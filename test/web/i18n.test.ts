import { describe, expect, it } from 'vitest';
import { brandColors, contrast, DARK_BG, DARK_CARD, LIGHT_BG, LIGHT_CARD } from '../../web/brand.js';
import { buildCss } from '../../web/assets/ferry-css.js';
import { humanSize, humanTime, timeLeftParts } from '../../web/format.js';
import { LANGUAGES, MESSAGES, pickLanguage } from '../../web/i18n.js';

describe('language choice', () => {
  it('takes ?lang= first, then the best Accept-Language match, then English', () => {
    expect(pickLanguage('de', 'fr')).toBe('de');
    expect(pickLanguage('DE', undefined)).toBe('de');
    expect(pickLanguage('xx', 'fr-CA,fr;q=0.9')).toBe('fr');
    expect(pickLanguage(['de'], 'es')).toBe('es');
    expect(pickLanguage(undefined, 'nl-NL, de;q=0.7, en;q=0.8')).toBe('en');
    expect(pickLanguage(undefined, 'nl-NL, de-AT;q=0.9, en;q=0.8')).toBe('de');
    expect(pickLanguage(undefined, 'es;q=0, fr;q=0.1')).toBe('fr');
    expect(pickLanguage(undefined, '*')).toBe('en');
    expect(pickLanguage(undefined, 'ja')).toBe('en');
    expect(pickLanguage(undefined, ';;;,,q=abc')).toBe('en');
  });

  it('has every string in every language, and each differs from English', () => {
    for (const lang of LANGUAGES) {
      const m = MESSAGES[lang];
      expect(Object.keys(m).sort()).toEqual(Object.keys(MESSAGES.en).sort());
      if (lang !== 'en') {
        expect(m.notFoundTitle).not.toBe(MESSAGES.en.notFoundTitle);
        expect(m.download).not.toBe(MESSAGES.en.download);
        expect(m.limitTitle).not.toBe(MESSAGES.en.limitTitle);
      }
    }
  });
});

describe('formats', () => {
  it('writes sizes and times in the language of the page', () => {
    expect(humanSize(1_234_567, 'de-DE')).toBe('1,2 MB');
    expect(humanSize(1_234_567, 'en-GB')).toBe('1.2 MB');
    expect(humanSize(9_960_000)).toBe('10.0 MB');
    expect(humanTime(Date.UTC(2025, 10, 20, 9, 5), 'de-DE')).toBe('20. Nov. 2025, 09:05 UTC');
    expect(humanTime(Date.UTC(2025, 10, 20, 9, 5), 'fr-FR')).toBe('20 nov. 2025, 09:05 UTC');
  });

  it('says how long is left in whole units: days and hours to the nearest, minutes rounded down', () => {
    expect(timeLeftParts(6 * 86_400_000 + 3_600_000)).toEqual({ unit: 'day', n: 6 });
    // A fresh 7-day link shows its full period.
    expect(timeLeftParts(7 * 86_400_000 - 60_000)).toEqual({ unit: 'day', n: 7 });
    expect(timeLeftParts(6 * 86_400_000 + 13 * 3_600_000)).toEqual({ unit: 'day', n: 7 });
    // 1 day 23 hours is "47 hours", not "1 day".
    expect(timeLeftParts(47 * 3_600_000 + 60_000)).toEqual({ unit: 'hour', n: 47 });
    expect(timeLeftParts(5 * 3_600_000 - 60_000)).toEqual({ unit: 'hour', n: 5 });
    expect(timeLeftParts(90 * 60_000)).toEqual({ unit: 'minute', n: 90 });
    expect(timeLeftParts(90 * 60_000 - 1)).toEqual({ unit: 'minute', n: 89 });
    expect(timeLeftParts(30_000)).toBeUndefined();
    expect(MESSAGES.en.timeLeft('day', 6)).toBe('6 days left');
    expect(MESSAGES.en.timeLeft('hour', 1)).toBe('1 hour left');
    expect(MESSAGES.de.timeLeft('day', 1)).toBe('noch 1 Tag');
  });
});

describe('brand colours', () => {
  it('keep text readable (WCAG AA) whatever colour is configured', () => {
    for (const color of ['#0b57d0', '#ffcc00', '#fff', '#000000', '#e3000f', '#7fdbff', '#2ecc40', '#808080']) {
      const c = brandColors(color);
      expect(contrast(c.accent, LIGHT_BG), color).toBeGreaterThanOrEqual(4.5);
      expect(contrast(c.accent, LIGHT_CARD), color).toBeGreaterThanOrEqual(4.5);
      expect(contrast(c.onAccent, c.accent), color).toBeGreaterThanOrEqual(4.5);
      expect(contrast(c.accentDark, DARK_BG), color).toBeGreaterThanOrEqual(4.5);
      expect(contrast(c.accentDark, DARK_CARD), color).toBeGreaterThanOrEqual(4.5);
      expect(contrast(c.onAccentDark, c.accentDark), color).toBeGreaterThanOrEqual(4.5);
    }
    // A colour that is already fine is kept as it is.
    expect(brandColors('#0b57d0').accent).toBe('#0b57d0');
  });

  it('the stylesheet text colours meet AA on their backgrounds, light and dark', () => {
    const css = buildCss();
    const vars = (block: string) => Object.fromEntries([...block.matchAll(/--([a-z-]+): (#[0-9a-f]{3,6});/g)].map((m) => [m[1], m[2]]));
    const light = vars(css.slice(0, css.indexOf('@media')));
    const dark = vars(css.slice(css.indexOf('@media'), css.indexOf('* {')));
    for (const v of [light, dark]) {
      for (const fg of ['fg', 'muted', 'accent']) for (const bg of ['bg', 'card']) expect(contrast(v[fg]!, v[bg]!), `${fg} on ${bg}`).toBeGreaterThanOrEqual(4.5);
      expect(contrast(v['warn-fg']!, v['warn-bg']!)).toBeGreaterThanOrEqual(4.5);
    }
  });
});
