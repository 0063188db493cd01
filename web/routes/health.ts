import type { FastifyPluginAsync } from 'fastify';
import { register } from 'prom-client';

/**
 * Readiness as the process composing the roles sees it (cli/health.ts): undefined when ready,
 * otherwise the reason, e.g. "database: connection refused".
 */
export type ReadinessCheck = () => Promise<string | undefined>;

export interface HealthRoutesOptions {
  readiness?: ReadinessCheck;
  /** Serve /metrics (Prometheus text format) too. */
  metrics?: boolean;
}

/**
 * /healthz: the process is alive and answers (for a container's liveness probe and HEALTHCHECK).
 * /readyz: it can do its work: database and blob store reachable, SMTP listening when the
 * gateway runs here, not shutting down; otherwise 503 with the reason in the body.
 * /metrics: prom-client's registry, where the gateway, web and storage metrics are registered.
 * No token, no cookie, nothing from a transfer: safe to answer plain text.
 */
export const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (app, opts) => {
  const text = 'text/plain; charset=utf-8';
  app.get('/healthz', async (_request, reply) => reply.header('cache-control', 'no-store').type(text).send('ok\n'));
  app.get('/readyz', async (_request, reply) => {
    const reason = opts.readiness ? await opts.readiness().catch((err: Error) => `readiness check failed: ${err.message}`) : undefined;
    reply.header('cache-control', 'no-store').type(text);
    if (reason) return reply.code(503).header('retry-after', '5').send(`not ready: ${reason}\n`);
    return reply.send('ready\n');
  });
  if (opts.metrics) {
    app.get('/metrics', async (_request, reply) => {
      const body = await register.metrics();
      return reply.header('cache-control', 'no-store').type(register.contentType).send(body);
    });
  }
};
