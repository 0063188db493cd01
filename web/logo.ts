import fs from 'node:fs';
import path from 'node:path';

// web.brand.logoFile: a logo that Ferry serves itself, from its own origin, so the pages keep
// loading nothing from anywhere else (web.brand.logoUrl, by contrast, points at another site,
// which then sees every recipient who opens a page). Read once at start-up: it is small, and a
// missing or wrong file should stop start-up with the key named rather than show a broken image.

export class BrandConfigError extends Error {
  readonly code = 'FERRY_ERR_CONFIG';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BrandConfigError';
  }
}

export interface Logo {
  body: Buffer;
  type: string;
  /** File extension used in the served path, e.g. "svg". */
  ext: string;
}

const TYPES: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  avif: 'image/avif',
  svg: 'image/svg+xml',
};

/** A logo is shown 32 px high; anything bigger than this is a mistake, not a logo. */
export const MAX_LOGO_BYTES = 512 * 1024;

export function loadLogo(file: string): Logo {
  const ext = path.extname(file).slice(1).toLowerCase();
  const type = TYPES[ext];
  if (!type) throw new BrandConfigError(`web.brand.logoFile: ${file} is not a .png, .jpg, .gif, .webp, .avif or .svg file`);
  let body: Buffer;
  try {
    body = fs.readFileSync(file);
  } catch (err) {
    throw new BrandConfigError(`web.brand.logoFile: cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (body.length === 0) throw new BrandConfigError(`web.brand.logoFile: ${file} is empty`);
  if (body.length > MAX_LOGO_BYTES) {
    throw new BrandConfigError(`web.brand.logoFile: ${file} has ${body.length} bytes; use an image of at most ${MAX_LOGO_BYTES} bytes (it is shown 32 px high)`);
  }
  return { body, type, ext: ext === 'jpeg' ? 'jpg' : ext };
}

/**
 * The logo's own CSP. An SVG opened on its own must not run script (it is a document then), and
 * its inline styles must still apply when it is drawn as an image.
 */
export const LOGO_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox; frame-ancestors 'none'";
