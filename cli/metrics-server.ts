import Fastify, { type FastifyInstance } from 'fastify';
import { healthRoutes, type MetricsExposure, type ReadinessCheck } from '../web/routes/health.js';

// metrics.port: a small listener of its own for /metrics, /healthz and /readyz, so that a
// `ferry gateway` or `ferry worker` process (no web role) can be scraped and probed, and so that
// metrics need not be exposed on the public download port (metrics.onWebPort: false).

export async function startMetricsServer(opts: { port: number; host: string; readiness: ReadinessCheck; exposure?: MetricsExposure }): Promise<{ app: FastifyInstance; port: number }> {
  const app = Fastify({ logger: false });
  await app.register(healthRoutes, { readiness: opts.readiness, metrics: opts.exposure ?? true });
  await app.listen({ port: opts.port, host: opts.host });
  const addr = app.server.address();
  return { app, port: typeof addr === 'object' && addr ? addr.port : opts.port };
}
