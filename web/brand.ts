// The look an organisation gives its download pages: a name, an optional logo and one accent
// colour. The colour comes from configuration, so nothing guarantees it is readable: from it we
// derive a button colour and a link colour that keep WCAG AA contrast (4.5:1) against the page
// in light and in dark mode, and a text colour for the buttons (white or near-black).

export interface Brand {
  /** Shown in the header, page titles and the footer. */
  name: string;
  /** https:// URL or /path of a logo image; the page CSP then allows that origin for images. */
  logoUrl?: string;
  /** #rgb or #rrggbb. */
  color: string;
}

export const DEFAULT_BRAND: Brand = { name: 'Ferry', color: '#0b57d0' };

type Rgb = [number, number, number];

export function parseHexColor(hex: string): Rgb | undefined {
  const m = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(hex.trim());
  if (!m) return undefined;
  const h = m[1]!.length === 3 ? [...m[1]!].map((c) => c + c).join('') : m[1]!;
  return [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16)) as Rgb;
}

function toHex(c: Rgb): string {
  return '#' + c.map((v) => Math.round(Math.min(255, Math.max(0, v))).toString(16).padStart(2, '0')).join('');
}

/** WCAG 2 relative luminance. */
function luminance([r, g, b]: Rgb): number {
  const lin = (v: number) => {
    const s = v / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

export function contrast(a: Rgb | string, b: Rgb | string): number {
  const ca = typeof a === 'string' ? parseHexColor(a)! : a;
  const cb = typeof b === 'string' ? parseHexColor(b)! : b;
  const [hi, lo] = [luminance(ca), luminance(cb)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

function mix(c: Rgb, toward: Rgb, t: number): Rgb {
  return c.map((v, i) => v + (toward[i]! - v) * t) as Rgb;
}

/** The colour closest to `c` (moving toward black or white) that reaches `ratio` against `bg`. */
function readableOn(c: Rgb, bg: Rgb, ratio: number): Rgb {
  if (contrast(c, bg) >= ratio) return c;
  const toward: Rgb = luminance(bg) > 0.5 ? [0, 0, 0] : [255, 255, 255];
  for (let t = 0.05; t <= 1; t += 0.05) {
    const m = mix(c, toward, t);
    if (contrast(m, bg) >= ratio) return m;
  }
  return toward;
}

// The page and card backgrounds of the stylesheet, light and dark.
export const LIGHT_BG = '#f5f6f8';
export const LIGHT_CARD = '#ffffff';
export const DARK_BG = '#121417';
export const DARK_CARD = '#1b1e23';

export interface BrandColors {
  /** Button background and link colour in light mode (AA against the light page and cards). */
  accent: string;
  /** Text on accent buttons. */
  onAccent: string;
  accentDark: string;
  onAccentDark: string;
}

export function brandColors(color: string): BrandColors {
  const base = parseHexColor(color) ?? parseHexColor(DEFAULT_BRAND.color)!;
  const light = parseHexColor(LIGHT_BG)!;
  const dark = parseHexColor(DARK_CARD)!;
  // Against the page background (the darker of the two light surfaces), links are on cards too.
  const accent = readableOn(readableOn(base, light, 4.5), parseHexColor(LIGHT_CARD)!, 4.5);
  const accentDark = readableOn(readableOn(base, dark, 4.5), parseHexColor(DARK_BG)!, 4.5);
  const onText = (bg: Rgb) => (contrast(bg, [255, 255, 255]) >= contrast(bg, [17, 20, 24]) ? '#ffffff' : '#111418');
  return { accent: toHex(accent), onAccent: onText(accent), accentDark: toHex(accentDark), onAccentDark: onText(accentDark) };
}
