import type { AdminSession, BlobStore, Db, RetentionBounds } from '../storage/index.js';
import type { Brand } from '../web/brand.js';
import type { AdminAuthLimiter } from './auth-limit.js';
import type { AdminIdentity, AdminToken } from './auth.js';
import type { OidcLogin } from './oidc.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The admin a request is authenticated as (bearer token or UI session); set by web/admin. */
    ferryAdmin?: AdminIdentity;
    /** The UI session of the request (absent for the API). */
    ferryAdminSession?: AdminSession;
    /** The CSRF token of the admin UI session, for the forms of the page being rendered. */
    ferryAdminCsrf?: string;
  }
}

/** What the admin API and UI share. */
export interface AdminContext {
  db: Db;
  blobs: BlobStore;
  tokens: AdminToken[];
  /** retention.default/minimum/maximum from the configuration: the fallback when the rules table has none. */
  bounds: RetentionBounds;
  /** web.maxDownloads, shown where a transfer has no limit of its own. */
  maxDownloads: number;
  publicUrl: string;
  /** URL path of the admin UI as browsers see it, e.g. "/admin" or "/ferry/admin" behind a proxy. */
  base: string;
  stylesheet: string;
  icon: string;
  brand: Brand;
  trustProxy: boolean;
  /** admin.session.idleTimeout and maxAge. */
  sessionIdleMs: number;
  sessionMaxAgeMs: number;
  now: () => number;
  /** Failed authentications per client address (auth-limit.ts). */
  authLimit: AdminAuthLimiter;
  /** Single sign-on, when admin.oidc.issuer is set. */
  oidc?: OidcLogin;
}
