import type { FastifyReply } from 'fastify';
import { globalPlugin } from './global.js';

// Headers every response carries, pages and files alike. A route that needs a different value
// (the file route's sandbox CSP, the stylesheet's Cache-Control) sets it itself; these are only
// filled in where missing.

export const PAGE_CSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const ALWAYS: Record<string, string> = {
  // The token is in the path: a Referer would hand working links to any site a page links to.
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
};

const DEFAULTS: Record<string, string> = {
  'content-security-policy': PAGE_CSP,
  // Pages reveal a transfer's contents; no shared cache may keep them, and revocation must be
  // visible at once.
  'cache-control': 'private, no-store',
};

export function applySecurityHeaders(reply: FastifyReply): void {
  for (const [name, value] of Object.entries(ALWAYS)) reply.header(name, value);
  for (const [name, value] of Object.entries(DEFAULTS)) if (!reply.hasHeader(name)) reply.header(name, value);
}

// onSend runs for every reply that goes through Fastify, including the not-found and error
// handlers, which onRequest-time headers would not reliably reach.
export const securityHeaders = globalPlugin('ferry-security-headers', async (app) => {
  app.addHook('onSend', async (_request, reply, payload) => {
    applySecurityHeaders(reply);
    return payload;
  });
});
