import { adminEnabled } from '../admin/auth.js';
import type { Config } from '../config/schema.js';
import type { Role } from './role.js';

// What the start banner ("Ferry is running") tells an admin beyond the ports: where the admin
// UI is, or that it is off and how to turn it on, and where metrics and health checks answer.
// Spread into the log line by cli/start.ts and cli/cluster.ts.

export interface BannerPorts {
  roles: readonly Role[];
  webPort?: number;
  metricsPort?: number;
}

/** A listener's address as a browser on this machine reaches it (0.0.0.0 and :: mean any). */
function local(host: string, port: number, https = false): string {
  const h = host === '0.0.0.0' || host === '::' || host === '' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  return `${https ? 'https' : 'http'}://${h}:${port}`;
}


export function bannerFields(config: Config, p: BannerPorts): { admin?: string; metrics?: string; health?: string } {
  const out: { admin?: string; metrics?: string; health?: string } = {};
  const web = p.webPort !== undefined ? local(config.web.host, p.webPort, !!(config.web.tls.cert && config.web.tls.key)) : undefined;
  const own = p.metricsPort !== undefined ? local(config.metrics.host, p.metricsPort) : undefined;
  if (p.roles.includes('web')) {
    out.admin = adminEnabled(config.admin)
      ? `${config.web.publicUrl.replace(/\/+$/, '')}/admin (API: /admin/api)`
      : 'off: set admin.tokens (e.g. FERRY_ADMIN_TOKENS="alice:$(openssl rand -base64 32)") or admin.oidc.issuer to turn it on (docs/admin.md)';
  }
  const metrics = [config.metrics.onWebPort && web ? `${web}/metrics` : undefined, own ? `${own}/metrics` : undefined].filter(Boolean);
  out.metrics = metrics.length ? metrics.join(' and ') : 'off: set metrics.port (or metrics.onWebPort: true for the web role)';
  const health = [web ? `${web}/healthz, ${web}/readyz` : undefined, own ? `${own}/healthz, ${own}/readyz` : undefined].filter(Boolean);
  if (health.length) out.health = health.join(' and ');
  return out;
}
