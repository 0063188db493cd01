import type { FastifyPluginAsync } from 'fastify';
import type { BlobStore, Db, RetentionBounds } from '../storage/index.js';
import type { Brand } from '../web/brand.js';
import { adminApi } from './api.js';
import { adminAuthLimiter, NO_LIMIT, type AdminAuthLimitOptions } from './auth-limit.js';
import { adminEnabled, parseAdminTokens } from './auth.js';
import type { AdminContext } from './context.js';
import { OidcLogin, type OidcSettings } from './oidc.js';
import { adminUi } from './ui.js';

// The admin side: REST API under /admin/api, UI under /admin. Encapsulated: its cookie and
// form parsers, error handlers and CSP apply here only, not to the download pages. Off entirely
// (no route answers) when neither an admin token nor single sign-on is configured.

export interface AdminPluginOptions {
  db: Db;
  blobs: BlobStore;
  /** admin.token */
  token?: string;
  /** admin.tokens: "TOKEN" or "NAME:TOKEN" */
  tokens?: readonly string[];
  /** admin.readonlyTokens, same form */
  readonlyTokens?: readonly string[];
  /** admin.oidc, when its issuer is set */
  oidc?: OidcSettings;
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
  /** A UI session ends after this long without a request. Default 1 hour. */
  sessionIdleMs?: number;
  /** ...and this long after login at the latest. Default 12 hours. */
  sessionMaxAgeMs?: number;
  /** Limit on failed authentications per client address; false turns it off (tests). */
  authLimit?: AdminAuthLimitOptions | false;
}

export const adminPlugin: FastifyPluginAsync<AdminPluginOptions> = async (app, opts) => {
  if (!adminEnabled(opts)) return;
  const tokens = parseAdminTokens(opts.token, opts.tokens, opts.readonlyTokens);
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
    sessionIdleMs: opts.sessionIdleMs ?? 3_600_000,
    sessionMaxAgeMs: opts.sessionMaxAgeMs ?? 12 * 3_600_000,
    now: opts.now,
    authLimit,
    ...(opts.oidc?.issuer ? { oidc: new OidcLogin(opts.oidc) } : {}),
  };
  await app.register(adminApi, { prefix: '/admin/api', ctx });
  await app.register(adminUi, { prefix: '/admin', ctx });
};
