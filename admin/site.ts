import type { FastifyInstance } from 'fastify';
import type { RetentionBounds } from '../storage/index.js';
import { buildWebApp, type WebAppOptions, type WebMount } from '../web/app.js';
import { adminEnabled, adminPlugin } from './index.js';

// The admin side is mounted into the web service's Fastify app (same port, same look), but the
// web service does not import it: the process that composes the roles (cli/start.ts) passes
// this mount in, as Postfix's master wires its programs together.

export interface AdminOptions {
  token?: string;
  tokens?: readonly string[];
  retention: RetentionBounds;
  sessionTtlMs?: number;
}

/** The admin API and UI under /admin as a web mount; undefined when no admin token is set. */
export function adminMount(admin: AdminOptions | undefined): WebMount | undefined {
  if (!admin || !adminEnabled(admin)) return undefined;
  return async (app, site) => {
    await app.register(adminPlugin, {
      ...admin,
      db: site.db,
      blobs: site.blobs,
      maxDownloads: site.maxDownloads,
      publicUrl: site.publicUrl,
      pathPrefix: site.pathPrefix,
      stylesheet: site.stylesheet,
      icon: site.icon,
      brand: site.brand,
      trustProxy: site.trustProxy,
      now: site.now,
      ...(site.rateLimited ? {} : { authLimit: false as const }),
    });
  };
}

/** The web service with the admin side mounted (when `admin` names a token). */
export function buildSite(opts: WebAppOptions & { admin?: AdminOptions }): Promise<FastifyInstance> {
  const { admin, ...web } = opts;
  const mount = adminMount(admin);
  return buildWebApp({ ...web, mounts: [...(web.mounts ?? []), ...(mount ? [mount] : [])] });
}
