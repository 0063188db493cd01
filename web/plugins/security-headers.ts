import type { FastifyReply, FastifyRequest } from 'fastify';
import { globalPlugin } from './global.js';

// Headers every response carries, pages and files alike. A route that needs a different value
// (the file route's sandbox CSP, the assets' Cache-Control) sets it itself; these are only
// filled in where missing.

/**
 * Pages: the same-origin stylesheet and script, nothing inline, nothing from elsewhere (except
 * the configured logo's origin for images), and never inside a frame.
 */
export function pageCsp(logoUrl?: string): string {
  let img = "'self' data:";
  if (logoUrl && /^https:\/\//i.test(logoUrl)) img += ` ${new URL(logoUrl).origin}`;
  return `default-src 'none'; script-src 'self'; style-src 'self'; img-src ${img}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;
}

export const PAGE_CSP = pageCsp();

/** One year; not includeSubDomains or preload: other hosts of the domain are not Ferry's to decide. */
export const HSTS = 'max-age=31536000';

const ALWAYS: Record<string, string> = {
  // The token is in the path: a Referer would hand working links to any site a page links to.
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  // Other sites may not embed Ferry's responses (as images, scripts...) nor keep a handle on its windows.
  'cross-origin-resource-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
  // Links and files must not end up in search engines, even if a link leaks onto the web.
  'x-robots-tag': 'noindex, nofollow',
};

export interface SecurityHeaderOptions {
  csp?: string;
  /** Whether X-Forwarded-Proto is believed (web.trustProxy). */
  trustProxy?: boolean;
}

/**
 * The request came over TLS: directly, or through a trusted proxy that says so. Worked out here
 * rather than with request.protocol because requests rejected before routing (bad URL encoding)
 * do not go through Fastify's trust-proxy handling.
 */
export function isHttps(request: FastifyRequest | undefined, trustProxy: boolean): boolean {
  if (!request) return false;
  if ((request.raw.socket as { encrypted?: boolean } | undefined)?.encrypted) return true;
  if (!trustProxy) return false;
  const xfp = request.headers['x-forwarded-proto'];
  // The last value is the one the trusted proxy added; earlier ones are whatever the client sent.
  const last = (Array.isArray(xfp) ? xfp.join(',') : xfp)?.split(',').pop()?.trim().toLowerCase();
  return last === 'https';
}

export function applySecurityHeaders(reply: FastifyReply, request?: FastifyRequest, opts: SecurityHeaderOptions = {}): void {
  for (const [name, value] of Object.entries(ALWAYS)) reply.header(name, value);
  if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', opts.csp ?? PAGE_CSP);
  // Pages reveal a transfer's contents; no shared cache may keep them, and revocation must be
  // visible at once.
  if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'private, no-store');
  // Over TLS (directly, or behind a trusted proxy that says so), browsers should never fall back to HTTP.
  if (isHttps(request, opts.trustProxy ?? false)) reply.header('strict-transport-security', HSTS);
}

// onSend runs for every reply that goes through Fastify, including the not-found and error
// handlers, which onRequest-time headers would not reliably reach.
export const securityHeaders = globalPlugin<SecurityHeaderOptions>('ferry-security-headers', async (app, opts) => {
  app.addHook('onSend', async (request, reply, payload) => {
    applySecurityHeaders(reply, request, opts);
    return payload;
  });
});
