import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { register } from 'prom-client';

/**
 * Readiness as the process composing the roles sees it (cli/health.ts): undefined when ready,
 * otherwise the reason, e.g. "database: connection refused".
 */
export type ReadinessCheck = () => Promise<string | undefined>;

/** Where /metrics is served, how it is guarded and where its figures come from. */
export interface MetricsExposure {
  /** metrics.token: /metrics (and /readyz's reason) only for `Authorization: Bearer <token>`. */
  token?: string;
  /** The exposition text; default this process's registry. Several processes of one node answer with their sum (cli/cluster.ts). */
  text?: () => Promise<{ contentType: string; body: string }>;
}

export interface HealthRoutesOptions {
  readiness?: ReadinessCheck;
  /** Serve /metrics (Prometheus text format) too; /readyz gives its reason only where metrics are served. */
  metrics?: boolean | MetricsExposure;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest();

/**
 * /healthz: the process is alive and answers (for a container's liveness probe and HEALTHCHECK).
 * /readyz: it can do its work: database and blob store reachable, SMTP listening when the
 * gateway runs here, not shutting down; otherwise 503 with the reason in the body.
 * /metrics: prom-client's registry, where the gateway, web and storage metrics are registered.
 * No token, no cookie, nothing from a transfer: safe to answer plain text.
 */
export const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (app, opts) => {
  const text = 'text/plain; charset=utf-8';
  const exposure: MetricsExposure | undefined = opts.metrics === true ? {} : opts.metrics || undefined;
  // Digests of equal length, so the comparison takes the same time whatever was sent.
  const wanted = exposure?.token !== undefined ? sha256(exposure.token) : undefined;
  const authorised = (request: FastifyRequest) => {
    if (!exposure) return false;
    if (!wanted) return true;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
    return timingSafeEqual(sha256(m?.[1] ?? ''), wanted) && !!m;
  };
  app.get('/healthz', async (_request, reply) => reply.header('cache-control', 'no-store').type(text).send('ok\n'));
  app.get('/readyz', async (request, reply) => {
    const reason = opts.readiness ? await opts.readiness().catch((err: Error) => `readiness check failed: ${err.message}`) : undefined;
    reply.header('cache-control', 'no-store').type(text);
    // The reason names the database, the blob store and their errors: only where metrics are
    // served (and to the metrics token's bearer). A load balancer needs the status alone.
    if (reason) return reply.code(503).header('retry-after', '5').send(authorised(request) ? `not ready: ${reason}\n` : 'not ready\n');
    return reply.send('ready\n');
  });
  if (exposure) {
    app.get('/metrics', async (request, reply) => {
      reply.header('cache-control', 'no-store');
      if (!authorised(request)) return reply.code(401).header('www-authenticate', 'Bearer realm="metrics"').type(text).send('metrics need Authorization: Bearer <metrics.token>\n');
      const { contentType, body } = exposure.text ? await exposure.text() : { contentType: register.contentType, body: await register.metrics() };
      return reply.type(contentType).send(body);
    });
  }
};
