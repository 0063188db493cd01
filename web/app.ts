import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { BlobNotFoundError, BlobStoreUnavailableError, DatabaseUnavailableError, type BlobStore, type Db } from '../storage/index.js';
import { GoneError, WebError } from './errors.js';
import { FILE_HEADER_NAMES } from './file-response.js';
import { errorPage, gonePage, notFoundPage } from './pages/status.js';
import type { PageContext } from './pages/layout.js';
import { accessLog, redactUrl } from './plugins/access-log.js';
import { applySecurityHeaders, securityHeaders } from './plugins/security-headers.js';
import { transferContext } from './plugins/transfer-context.js';
import { assetRoutes, STYLESHEET_PATH } from './routes/assets.js';
import { fileRoutes } from './routes/file.js';
import { homeRoutes } from './routes/home.js';
import { landingRoutes } from './routes/landing.js';

export interface WebAppOptions {
  /** The URL recipients use, e.g. https://files.example.com; links on pages are built from it. */
  publicUrl: string;
  db: Db;
  blobs: BlobStore;
  logger?: Logger | boolean;
  /** Set when behind a reverse proxy, so the download log records the client, not the proxy. */
  trustProxy?: boolean;
  /** Clock in ms since the epoch; tests move it to check expiry. */
  now?: () => number;
}

const HTML = 'text/html; charset=utf-8';

// A file name segment is a percent-encoded display name of up to 200 characters, so it can be
// far longer than find-my-way's default 100-character limit, which would turn it into a 404.
const MAX_PARAM_LENGTH = 4096;

export async function buildWebApp(opts: WebAppOptions): Promise<FastifyInstance> {
  const publicUrl = new URL(opts.publicUrl);
  const now = opts.now ?? Date.now;
  // When the public URL has a path (https://host/ferry/), the proxy strips it on the way in, so
  // links written into pages must carry it.
  const page: PageContext = { stylesheet: `${publicUrl.pathname.replace(/\/+$/, '')}${STYLESHEET_PATH}` };

  const app = Fastify({
    ...(typeof opts.logger === 'object' ? { loggerInstance: opts.logger } : { logger: opts.logger ?? false }),
    trustProxy: opts.trustProxy ?? false,
    // Fastify's request log lines carry raw URLs, and URLs carry tokens: see plugins/access-log.ts.
    logController: new LogController({ disableRequestLogging: true }),
    // Only GETs and HEADs are served; nothing needs a body.
    bodyLimit: 16 * 1024,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH, ignoreTrailingSlash: true },
    // Bad percent-encoding and overlong segments are rejected before routing, where no hooks
    // run; without this they would get Fastify's JSON body echoing the URL and no security headers.
    frameworkErrors: (_err, _request, reply) => {
      applySecurityHeaders(reply as FastifyReply);
      void (reply as FastifyReply).code(404).type(HTML).send(notFoundPage(page));
    },
    // With a pino instance Fastify's types carry pino's Logger; callers only need the base logger
    // type, and one return type keeps the contract simple.
  }) as unknown as FastifyInstance;

  await app.register(securityHeaders);
  await app.register(accessLog);

  app.setNotFoundHandler((_request, reply) => reply.code(404).type(HTML).send(notFoundPage(page)));
  app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    // A file request that fails after its headers were planned must not turn into an error page
    // that still says "attachment" or carries the file's validators.
    for (const name of FILE_HEADER_NAMES) reply.removeHeader(name);
    const status = statusOf(err);
    if (status >= 500) {
      request.log.error({ err, url: redactUrl(request.url) }, status === 503 ? 'storage unavailable' : 'request failed');
    }
    if (status === 503) reply.header('retry-after', '60');
    const body =
      err instanceof GoneError
        ? gonePage(page, err.reason, err.expiresAt)
        : status === 404
          ? notFoundPage(page)
          : errorPage(page, status);
    return reply.code(status).type(HTML).send(body);
  });

  await app.register(assetRoutes);
  await app.register(homeRoutes, { page });
  await app.register(
    async (scope) => {
      await scope.register(transferContext, { db: opts.db, now });
      await scope.register(landingRoutes, { db: opts.db, publicUrl: opts.publicUrl, page });
      await scope.register(fileRoutes, { db: opts.db, blobs: opts.blobs });
    },
    { prefix: '/t/:token' },
  );

  return app;
}

function statusOf(err: unknown): number {
  if (err instanceof WebError) return err.statusCode;
  if (err instanceof BlobNotFoundError) return 404;
  if (err instanceof BlobStoreUnavailableError || err instanceof DatabaseUnavailableError) return 503;
  const code = (err as { statusCode?: unknown } | null)?.statusCode;
  // Fastify's own client errors (bad media type, body too large) keep their 4xx; anything else
  // is our fault and gets the generic page.
  if (typeof code === 'number' && code >= 400 && code < 500) return code;
  return 500;
}
