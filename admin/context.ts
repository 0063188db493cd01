import type { BlobStore, Db, RetentionBounds } from '../storage/index.js';
import type { Brand } from '../web/brand.js';
import type { AdminAuthLimiter } from './auth-limit.js';
import type { AdminToken } from './auth.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The admin a request is authenticated as (bearer token or UI session); set by web/admin. */
    ferryAdmin?: AdminToken;
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
  sessionTtlMs: number;
  now: () => number;
  /** Failed authentications per client address (auth-limit.ts). */
  authLimit: AdminAuthLimiter;
}
