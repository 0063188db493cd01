import { createHash } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import { LOGO_CSP, type Logo } from '../logo.js';

export const STYLESHEET_PATH = '/assets/ferry.css';
export const SCRIPT_PATH = '/assets/ferry.js';
export const ICON_PATH = '/assets/icon.svg';
/** web.brand.logoFile, served as /assets/logo.<ext>. */
export const logoPath = (logo: Logo) => `/assets/logo.${logo.ext}`;

export interface AssetRoutesOptions {
  css: string;
  js: string;
  icon: string;
  logo?: Logo;
}

/** The favicon: a rounded square in the brand colour with a download arrow. */
export function iconSvg(background: string, foreground: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" fill="${background}"/><path d="M16 7v13m0 0-5.5-5.5M16 20l5.5-5.5M9 25h14" fill="none" stroke="${foreground}" stroke-width="3" stroke-linecap="round" stroke-linejoin="round"/></svg>`;
}

/** A short content hash, put in the asset URLs so a changed brand colour or new release is fetched at once. */
export function assetVersion(content: string | Buffer): string {
  return createHash('sha256').update(content).digest('base64url').slice(0, 10);
}

export const assetRoutes: FastifyPluginAsync<AssetRoutesOptions> = async (app, { css, js, icon, logo }) => {
  // The assets hold nothing private. Pages link them with ?v=<hash>, so they can be cached for a
  // day without a stale copy outliving a change.
  const cache = 'public, max-age=86400';
  app.get(STYLESHEET_PATH, async (_request, reply) => reply.type('text/css; charset=utf-8').header('cache-control', cache).send(css));
  app.get(SCRIPT_PATH, async (_request, reply) => reply.type('text/javascript; charset=utf-8').header('cache-control', cache).send(js));
  app.get(ICON_PATH, async (_request, reply) => reply.type('image/svg+xml').header('cache-control', cache).send(icon));
  // Browsers ask for /favicon.ico when a page (or a download) has no icon link; answer with the same icon.
  app.get('/favicon.ico', async (_request, reply) => reply.type('image/svg+xml').header('cache-control', cache).send(icon));
  if (logo) {
    app.get(logoPath(logo), async (_request, reply) =>
      reply.type(logo.type).header('cache-control', cache).header('content-security-policy', LOGO_CSP).send(logo.body),
    );
  }
};
