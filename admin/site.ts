import type { FastifyInstance } from 'fastify';
import type { RetentionBounds } from '../storage/index.js';
import { buildWebApp, type WebAppOptions, type WebMount } from '../web/app.js';
import type { AdminAuthLimitOptions } from './auth-limit.js';
import { adminEnabled } from './auth.js';
import type { OidcSettings } from './oidc.js';

// The admin side is mounted into the web service's Fastify app (same port, same look), but the
// web service does not import it: the process that composes the roles (cli/start.ts) passes
// this mount in, as Postfix's master wires its programs together.

export interface AdminOptions {
  token?: string;
  tokens?: readonly string[];
  readonlyTokens?: readonly string[];
  /** admin.oidc; single sign-on is on when its issuer is set. */
  oidc?: Partial<OidcSettings>;
  retention: RetentionBounds;
  sessionIdleMs?: number;
  sessionMaxAgeMs?: number;
  /** admin.lockoutDelay and the failure limit (tests make them small). */
  authLimit?: AdminAuthLimitOptions;
}

function oidcSettings(o: Partial<OidcSettings> | undefined): OidcSettings | undefined {
  if (!o?.issuer || !o.clientId) return undefined;
  return {
    issuer: o.issuer,
    clientId: o.clientId,
    ...(o.clientSecret ? { clientSecret: o.clientSecret } : {}),
    allowedEmails: o.allowedEmails ?? [],
    ...(o.groupsClaim ? { groupsClaim: o.groupsClaim } : {}),
    adminGroups: o.adminGroups ?? [],
    readonlyGroups: o.readonlyGroups ?? [],
  };
}

/** The admin API and UI under /admin as a web mount; undefined when neither a token nor SSO is set. */
export function adminMount(admin: AdminOptions | undefined): WebMount | undefined {
  if (!admin) return undefined;
  const { oidc: rawOidc, authLimit, ...rest } = admin;
  const oidc = oidcSettings(rawOidc);
  if (!adminEnabled({ ...rest, ...(oidc ? { oidc } : {}) })) return undefined;
  return async (app, site) => {
    // Imported here, not at the top: a web service without the admin side never loads its
    // code (and the configuration schema it validates requests with): 1-2 MB per process.
    const { adminPlugin } = await import('./index.js');
    await app.register(adminPlugin, {
      ...rest,
      ...(oidc ? { oidc } : {}),
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
      ...(site.rateLimited ? { authLimit: authLimit ?? {} } : { authLimit: false as const }),
    });
  };
}

/** The web service with the admin side mounted (when `admin` names a token or SSO). */
export function buildSite(opts: WebAppOptions & { admin?: AdminOptions }): Promise<FastifyInstance> {
  const { admin, ...web } = opts;
  const mount = adminMount(admin);
  return buildWebApp({ ...web, mounts: [...(web.mounts ?? []), ...(mount ? [mount] : [])] });
}
