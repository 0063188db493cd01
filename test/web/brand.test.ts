import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/index.js';
import { brandColors } from '../../web/brand.js';
import { buildWebApp } from '../../web/app.js';
import { LOGO_CSP, MAX_LOGO_BYTES } from '../../web/logo.js';
import { addTransfer, makeEnv, PUBLIC_URL, type Env, type Fixture } from './helpers.js';

// web.brand: the name, accent colour and logo an organisation puts on its download pages, with
// the logo served by Ferry itself (web.brand.logoFile) so pages still load nothing from elsewhere.

const LOGO_SVG = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 32"><style>rect{fill:#7a1f5c}</style><rect width="64" height="32" rx="6"/></svg>';

let env: Env;
let fx: Fixture;
let logoFile: string;

beforeAll(async () => {
  env = await makeEnv();
  fx = await addTransfer(env, { files: [{ name: 'a.pdf', data: Buffer.from('a') }] });
  logoFile = path.join(env.dir, 'logo.svg');
  fs.writeFileSync(logoFile, LOGO_SVG);
});

afterAll(async () => {
  await env.close();
});

describe('web.brand', () => {
  it('puts the name and accent colour on every page, and serves the logo file from Ferry itself', async () => {
    const app = await buildWebApp({ publicUrl: 'https://example.com/files/', db: env.db, blobs: env.blobs, brand: { name: 'Example Corp', color: '#7a1f5c', logoFile } });
    try {
      for (const url of [`/t/${fx.token}`, '/', '/t/unknown']) {
        const res = await app.inject(url);
        expect(res.body, url).toContain('<span class="brand">Example Corp</span>');
        expect(res.body, url).toMatch(/<title>[^<]* · Example Corp<\/title>/);
        // The logo is a path under the public URL's prefix, versioned by its content.
        const src = /<img class="logo" src="([^"]+)" alt="" height="32">/.exec(res.body)?.[1];
        expect(src, url).toMatch(/^\/files\/assets\/logo\.svg\?v=[\w-]{10}$/);
        // Nothing but Ferry's own origin (and data: URLs) for images.
        expect(res.headers['content-security-policy']).toContain("img-src 'self' data:;");
      }
      const page = (await app.inject(`/t/${fx.token}`)).body;
      const css = await app.inject(/<link rel="stylesheet" href="\/files([^"]+)">/.exec(page)![1]!);
      expect(css.body).toContain(`--accent: ${brandColors('#7a1f5c').accent};`);

      const logo = await app.inject('/assets/logo.svg');
      expect(logo.statusCode).toBe(200);
      expect(logo.headers['content-type']).toBe('image/svg+xml');
      expect(logo.body).toBe(LOGO_SVG);
      // An SVG opened on its own is a document: sandboxed, no script, nosniff.
      expect(logo.headers['content-security-policy']).toBe(LOGO_CSP);
      expect(LOGO_CSP).toContain('sandbox');
      expect(LOGO_CSP).not.toMatch(/script-src|unsafe-eval/);
      expect(logo.headers['x-content-type-options']).toBe('nosniff');
      expect(logo.headers['cache-control']).toBe('public, max-age=86400');
    } finally {
      await app.close();
    }
  });

  it('shows nothing and serves no logo path when there is no logo', async () => {
    const app = await buildWebApp({ publicUrl: PUBLIC_URL, db: env.db, blobs: env.blobs });
    const res = await app.inject(`/t/${fx.token}`);
    expect(res.body).not.toContain('<img');
    expect(res.body).toContain('<span class="brand">Ferry</span>');
    expect((await app.inject('/assets/logo.svg')).statusCode).toBe(404);
    await app.close();
  });

  it('refuses to start with a logo file that is missing, not an image or too large, naming the key', async () => {
    const start = (file: string) => buildWebApp({ publicUrl: PUBLIC_URL, db: env.db, blobs: env.blobs, brand: { logoFile: file } });
    await expect(start(path.join(env.dir, 'missing.png'))).rejects.toThrow(/^web\.brand\.logoFile: cannot read .*missing\.png/);
    const exe = path.join(env.dir, 'logo.exe');
    fs.writeFileSync(exe, 'MZ');
    await expect(start(exe)).rejects.toThrow(/^web\.brand\.logoFile: .*logo\.exe is not a \.png, \.jpg, \.gif, \.webp, \.avif or \.svg file/);
    const big = path.join(env.dir, 'big.png');
    fs.writeFileSync(big, Buffer.alloc(MAX_LOGO_BYTES + 1));
    await expect(start(big)).rejects.toThrow(/^web\.brand\.logoFile: .*big\.png has 524289 bytes/);
  });

  it('is configured under web.brand, with logoFile and logoUrl mutually exclusive', () => {
    const env = {};
    const c = loadConfig({ env, overrides: { web: { brand: { name: 'Example Corp', color: '#7a1f5c', logoFile: '/etc/ferry/logo.svg' } } } });
    expect(c.web.brand).toEqual({ name: 'Example Corp', color: '#7a1f5c', logoFile: '/etc/ferry/logo.svg' });
    expect(() => loadConfig({ env, overrides: { web: { brand: { logoFile: '/etc/ferry/logo.svg', logoUrl: 'https://example.com/logo.png' } } } })).toThrow(
      /web\.brand\.logoFile.*set web\.brand\.logoFile or web\.brand\.logoUrl, not both/,
    );
    expect(() => loadConfig({ env, overrides: { web: { brand: { color: 'blue' } } } })).toThrow(/web\.brand\.color.*expected a colour such as #0b57d0/);
  });
});
