import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { BlobNotFoundError, BlobStoreUnavailableError, DatabaseUnavailableError, DAY_MS, type BlobStore, type Db, type RetentionBounds } from '../storage/index.js';
import { buildCss } from './assets/ferry-css.js';
import { FERRY_JS } from './assets/ferry-js.js';
import { brandColors, DEFAULT_BRAND, type Brand } from './brand.js';
import { GoneError, LimitReachedError, RateLimitedError, WebError } from './errors.js';
import { DownloadLog } from './download-log.js';
import { FILE_HEADER_NAMES } from './file-response.js';
import { pickLanguage } from './i18n.js';
import { pageContext, type PageContext, type SiteContext } from './pages/layout.js';
import { blockedPage } from './pages/blocked.js';
import { BlockedError } from './scan-block.js';
import { errorPage, gonePage, limitPage, notFoundPage, tooManyPage } from './pages/status.js';
import { accessLog, redactUrl } from './plugins/access-log.js';
import { canonicalPath } from './plugins/canonical-path.js';
import { gracefulClose } from './plugins/graceful-close.js';
import { registerTokenRateLimit, type RateLimitOptions } from './plugins/rate-limit.js';
import { applySecurityHeaders, pageCsp, securityHeaders } from './plugins/security-headers.js';
import { transferContext } from './plugins/transfer-context.js';
import { transferUnlock, type PasswordSettings } from './plugins/transfer-unlock.js';
import { loadLogo } from './logo.js';
import { assetRoutes, assetVersion, ICON_PATH, iconSvg, logoPath, SCRIPT_PATH, STYLESHEET_PATH } from './routes/assets.js';
import { fileRoutes } from './routes/file.js';
import { healthRoutes, type HealthRoutesOptions, type ReadinessCheck } from './routes/health.js';
import { homeRoutes } from './routes/home.js';
import { landingRoutes } from './routes/landing.js';
import { unlockRoutes } from './routes/unlock.js';
import { manageRoutes } from './routes/manage.js';
import { zipRoutes } from './routes/zip.js';
import { loadTls, type TlsInput } from './tls.js';

export interface WebAppOptions {
  /** The URL recipients use, e.g. https://files.example.com; links on pages are built from it. */
  publicUrl: string;
  db: Db;
  blobs: BlobStore;
  logger?: Logger | boolean;
  /**
   * web.trustProxy: believe X-Forwarded-For / -Proto / -Host from a reverse proxy, so client
   * addresses (download log, rate limits) and the scheme (HSTS) are the real ones. Also accepts
   * what Fastify's trustProxy accepts (addresses or CIDR ranges of the proxies).
   */
  trustProxy?: boolean | string | string[];
  /** web.showSubject: show the message subject on the landing page (and name the zip after it). Default true. */
  showSubject?: boolean;
  /** web.maxDownloads: how many times each file may be downloaded (a zip counts for each file in it); 0 = unlimited. */
  maxDownloads?: number;
  /**
   * web.downloads: proxy (default) streams file bytes through Ferry; redirect answers a file
   * request with a 302 to a presigned URL of the blob store, valid presignExpirySeconds.
   */
  downloads?: { mode: 'proxy' | 'redirect'; presignExpirySeconds: number };
  /** web.tls: serve HTTPS directly. PEM text or file paths. */
  tls?: TlsInput;
  /** web.brand: name, logo and accent colour of the pages. logoFile: an image Ferry serves itself (wins over logoUrl). */
  brand?: Partial<Brand> & { logoFile?: string };
  /** Limits on token look-ups per client address; false turns them off (tests). */
  rateLimit?: RateLimitOptions | false;
  /** Clock in ms since the epoch; tests move it to check expiry. */
  now?: () => number;
  /** How long close() lets downloads in flight run on before cutting them (shutdown.timeout). Default 30 s. */
  closeGraceMs?: number;
  /** /readyz: undefined when ready, else the reason (composed by cli/health.ts). Without it /readyz answers ready. */
  readiness?: ReadinessCheck;
  /** metrics.onWebPort: serve /metrics (Prometheus), optionally behind metrics.token. Default false. */
  metrics?: HealthRoutesOptions['metrics'];
  /** Tests only: zip sizes and offsets from this value on use ZIP64 fields. */
  zip64Threshold?: number;
  /**
   * Features mounted beside the download pages by whoever composes the process (the admin side,
   * admin/site.ts). The web service itself knows none of them.
   */
  mounts?: readonly WebMount[];
  /**
   * retention.default/.minimum/.maximum from the configuration: what the sender's management page
   * (/m/<token>) falls back to when the rules table holds no bounds (it is seeded at every start).
   */
  retention?: RetentionBounds;
  /**
   * Password-protected transfers (docs/passwords.md): web.passwordMaxFailures, web.passwordLockout,
   * web.unlockTtl, and senders.from / smtp.hostname for the lock notice to the sender.
   */
  passwords?: PasswordSettings;
}

/** What a mounted feature may use of the site: the same look, clock and storage as the pages. */
export interface SiteInfo {
  db: Db;
  blobs: BlobStore;
  publicUrl: string;
  /** Path prefix of the public URL ("" or "/ferry"), which a proxy strips on the way in. */
  pathPrefix: string;
  stylesheet: string;
  icon: string;
  brand: Brand;
  maxDownloads: number;
  trustProxy: boolean;
  now: () => number;
  /** False when the rate limits are off (tests). */
  rateLimited: boolean;
}

export type WebMount = (app: FastifyInstance, site: SiteInfo) => Promise<void>;

const HTML = 'text/html; charset=utf-8';

/** Fastify trustProxy function: only the immediate peer (hop 0) is a trusted proxy. */
const ONE_PROXY_HOP = (_address: string, hop: number): boolean => hop === 0;

// A file name segment is a percent-encoded display name of up to 200 characters, so it can be
// far longer than find-my-way's default 100-character limit, which would turn it into a 404.
const MAX_PARAM_LENGTH = 4096;

export async function buildWebApp(opts: WebAppOptions): Promise<FastifyInstance> {
  const publicUrl = new URL(opts.publicUrl);
  const now = opts.now ?? Date.now;
  const brand: Brand = {
    name: opts.brand?.name?.trim() || DEFAULT_BRAND.name,
    color: opts.brand?.color || DEFAULT_BRAND.color,
    ...(opts.brand?.logoUrl ? { logoUrl: opts.brand.logoUrl } : {}),
  };
  const showSubject = opts.showSubject ?? true;
  const maxDownloads = Math.max(0, Math.floor(opts.maxDownloads ?? 0));
  const logo = opts.brand?.logoFile ? loadLogo(opts.brand.logoFile) : undefined;
  const colors = brandColors(brand.color);
  const css = buildCss(colors);
  const icon = iconSvg(colors.accent, colors.onAccent);
  // When the public URL has a path (https://host/ferry/), the proxy strips it on the way in, so
  // links written into pages must carry it.
  const prefix = publicUrl.pathname.replace(/\/+$/, '');
  if (logo) brand.logoUrl = `${prefix}${logoPath(logo)}?v=${assetVersion(logo.body)}`;
  const site: SiteContext = {
    stylesheet: `${prefix}${STYLESHEET_PATH}?v=${assetVersion(css)}`,
    script: `${prefix}${SCRIPT_PATH}?v=${assetVersion(FERRY_JS)}`,
    icon: `${prefix}${ICON_PATH}?v=${assetVersion(icon)}`,
    brand,
  };
  const csp = pageCsp(brand.logoUrl);
  const pageFor = (request: FastifyRequest): PageContext => {
    let lang;
    try {
      lang = pickLanguage((request.query as Record<string, unknown> | undefined)?.lang, request.headers['accept-language']);
    } catch {
      lang = pickLanguage(undefined, undefined);
    }
    return pageContext(site, lang);
  };

  const app = Fastify({
    ...(typeof opts.logger === 'object' ? { loggerInstance: opts.logger } : { logger: opts.logger ?? false }),
    ...(opts.tls ? { https: loadTls(opts.tls) } : {}),
    // `true` trusts the one proxy in front (the socket's peer) and no one before it: Fastify's own
    // `true` trusts every hop, so the client's own X-Forwarded-For entry (left-most) would become
    // request.ip behind any proxy that appends to the header, and a client could pick a new
    // address per request and walk past the rate limits and the admin login limit.
    trustProxy: opts.trustProxy === true ? ONE_PROXY_HOP : (opts.trustProxy ?? false),
    // Fastify's request log lines carry raw URLs, and URLs carry tokens: see plugins/access-log.ts.
    logController: new LogController({ disableRequestLogging: true }),
    // Only GETs and HEADs are served; nothing needs a body.
    bodyLimit: 16 * 1024,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH, ignoreTrailingSlash: true },
    // Bad percent-encoding and overlong segments are rejected before routing, where no hooks
    // run; without this they would get Fastify's JSON body echoing the URL and no security headers.
    frameworkErrors: (_err, request, reply) => {
      applySecurityHeaders(reply as FastifyReply, request as FastifyRequest, { csp, trustProxy: Boolean(opts.trustProxy) });
      void (reply as FastifyReply).code(404).type(HTML).send(notFoundPage(pageFor(request as FastifyRequest)));
    },
    // With a pino instance Fastify's types carry pino's Logger; callers only need the base logger
    // type, and one return type keeps the contract simple.
  }) as unknown as FastifyInstance;

  await app.register(securityHeaders, { csp, trustProxy: Boolean(opts.trustProxy) });
  await app.register(accessLog);
  await app.register(canonicalPath);
  await app.register(gracefulClose, { graceMs: opts.closeGraceMs ?? 30_000 });

  app.setNotFoundHandler((request, reply) => reply.code(404).type(HTML).header('vary', 'accept-language').send(notFoundPage(pageFor(request))));
  app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    // A file request that fails after its headers were planned must not turn into an error page
    // that still says "attachment" or carries the file's validators.
    for (const name of FILE_HEADER_NAMES) reply.removeHeader(name);
    reply.removeHeader('content-length');
    reply.removeHeader('content-type');
    const status = statusOf(err);
    if (status >= 500) {
      request.log.error({ err, url: redactUrl(request.url) }, status === 503 ? 'storage unavailable' : 'request failed');
    }
    if (status === 503) reply.header('retry-after', '60');
    if (err instanceof RateLimitedError) reply.header('retry-after', String(err.retryAfterSeconds));
    const page = pageFor(request);
    const body =
      err instanceof GoneError
        ? gonePage(page, err.reason, err.expiresAt, err.sender)
        : err instanceof LimitReachedError
          ? limitPage(page, err.maxDownloads, err.sender)
          : err instanceof RateLimitedError
            ? tooManyPage(page, err.retryAfterSeconds)
            : err instanceof BlockedError
              ? blockedPage(page, err.reason, err.sender)
            : status === 404
              ? notFoundPage(page)
              : errorPage(page, status);
    return reply.code(status).type(HTML).header('vary', 'accept-language').send(body);
  });

  // Download records are written in batches; the last batch goes in before the app is closed.
  const downloadLog = new DownloadLog(opts.db, app.log);
  app.addHook('onClose', () => downloadLog.close());

  await app.register(healthRoutes, { readiness: opts.readiness, metrics: opts.metrics ?? false });
  await app.register(assetRoutes, { css, js: FERRY_JS, icon, logo });
  await app.register(homeRoutes, { pageFor });
  await app.register(
    async (scope) => {
      if (opts.rateLimit !== false) await registerTokenRateLimit(scope, opts.rateLimit ?? {});
      await scope.register(transferContext, { db: opts.db, now });
      // Before any route that shows or serves something: a protected transfer needs its unlock.
      const unlock = { db: opts.db, blobs: opts.blobs, publicUrl: opts.publicUrl, now, trustProxy: Boolean(opts.trustProxy), csp, pageFor, settings: opts.passwords ?? {} };
      await scope.register(transferUnlock, unlock);
      await scope.register(unlockRoutes, unlock);
      await scope.register(landingRoutes, {
        db: opts.db,
        publicUrl: opts.publicUrl,
        showSubject,
        maxDownloads,
        now,
        zip64Threshold: opts.zip64Threshold,
        pageFor,
      });
      await scope.register(zipRoutes, { db: opts.db, blobs: opts.blobs, downloadLog, maxDownloads, showSubject, zip64Threshold: opts.zip64Threshold });
      await scope.register(fileRoutes, { db: opts.db, blobs: opts.blobs, downloadLog, maxDownloads, downloads: opts.downloads });
    },
    { prefix: '/t/:token' },
  );
  // The sender's management page: the same token rules and limits as /t/ (its own counters).
  await app.register(
    async (scope) => {
      if (opts.rateLimit !== false) await registerTokenRateLimit(scope, opts.rateLimit ?? {});
      await scope.register(manageRoutes, {
        db: opts.db,
        blobs: opts.blobs,
        publicUrl: opts.publicUrl,
        now,
        csp,
        retention: opts.retention ?? { defaultMs: 30 * DAY_MS, minMs: DAY_MS, maxMs: 365 * DAY_MS },
        pageFor,
      });
    },
    { prefix: '/m/:token' },
  );
  const info: SiteInfo = {
    db: opts.db,
    blobs: opts.blobs,
    publicUrl: opts.publicUrl,
    pathPrefix: prefix,
    stylesheet: site.stylesheet,
    icon: site.icon,
    brand,
    maxDownloads,
    trustProxy: Boolean(opts.trustProxy),
    now,
    rateLimited: opts.rateLimit !== false,
  };
  for (const mount of opts.mounts ?? []) await mount(app, info);

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
