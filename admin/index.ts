import type { FastifyPluginAsync } from 'fastify';
import type { BlobStore, Db, RetentionBounds } from '../storage/index.js';
import type { Brand } from '../web/brand.js';
import { adminApi } from './api.js';
import { adminAuthLimiter, NO_LIMIT, type AdminAuthLimitOptions } from './auth-limit.js';
import { parseAdminTokens } from './auth.js';
import type { AdminContext } from './context.js';
import { adminUi } from './ui.js';

// The admin side: REST API under /admin/api, UI under /admin. Encapsulated: its cookie and
// form parsers, error handlers and CSP apply here only, not to the download pages. Off entirely
// (no route answers) when no admin token is configured.

export interface AdminPluginOptions {
  db: Db;
  blobs: BlobStore;
  /** admin.token */
  token?: string;
  /** admin.tokens: "TOKEN" or "NAME:TOKEN" */
  tokens?: readonly string[];
  retention: RetentionBounds;
  maxDownloads: number;
  publicUrl: string;
  /** Path prefix of the public URL ("" or "/ferry"), which a proxy strips on the way in. */
  pathPrefix: string;
  stylesheet: string;
  icon: string;
  brand: Brand;
  trustProxy: boolean;
  now: () => number;
  /** How long a UI login lasts. Default 12 hours. */
  sessionTtlMs?: number;
  /** Limit on failed authentications per client address; false turns it off (tests). */
  authLimit?: AdminAuthLimitOptions | false;
}

export function adminEnabled(opts: { token?: string; tokens?: readonly string[] }): boolean {
  return parseAdminTokens(opts.token, opts.tokens).length > 0;
}

export const adminPlugin: FastifyPluginAsync<AdminPluginOptions> = async (app, opts) => {
  const tokens = parseAdminTokens(opts.token, opts.tokens);
  if (tokens.length === 0) return;
  const authLimit = opts.authLimit === false ? NO_LIMIT : await adminAuthLimiter(app, opts.authLimit ?? {});
  const ctx: AdminContext = {
    db: opts.db,
    blobs: opts.blobs,
    tokens,
    bounds: opts.retention,
    maxDownloads: opts.maxDownloads,
    publicUrl: opts.publicUrl,
    base: `${opts.pathPrefix}/admin`,
    stylesheet: opts.stylesheet,
    icon: opts.icon,
    brand: opts.brand,
    trustProxy: opts.trustProxy,
    sessionTtlMs: opts.sessionTtlMs ?? 12 * 3_600_000,
    now: opts.now,
    authLimit,
  };
  await app.register(adminApi, { prefix: '/admin/api', ctx });
  await app.register(adminUi, { prefix: '/admin', ctx });
};
