import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { storageOptionsFrom } from './storage-options.js';
import type { Gateway } from '../gateway/gateway.js';
// Not from config/index.js: that loads the configuration's parser (zod, yaml), which a worker
// process never needs (it gets the parsed configuration from the primary, cli/worker-config.ts).
import { ConfigError } from '../config/config-error.js';
import { redactUrlPassword } from '../config/redact.js';
import { openBlobStore, openStorage, retentionBounds, RetentionRuleError, seedRetentionRules, type Storage } from '../storage/index.js';
import type { FastifyInstance } from 'fastify';
import type { QueueRunner } from '../worker/queue-runner.js';
import type { MetricsExposure } from '../web/routes/health.js';
import { readinessCheck } from './health.js';
import { countSweep, useDatabaseForMetrics } from './metrics.js';
import { bannerFields } from './banner.js';

// Each role's code is imported when that role starts (below): a `ferry web` process never loads
// the SMTP server and MIME parser, a `ferry gateway` never loads Fastify and the admin UI; this
// keeps start-up short and each process's memory to what it runs (docs/performance.md).

// The roles of a Ferry process. `ferry start` runs all three in one process; a bigger site runs
// `ferry gateway`, `ferry web` and `ferry worker` separately, sharing storage. No role keeps
// state another needs: everything shared lives in the blob store and the database.

import type { Role } from './role.js';
export type { Role };

export interface RunningFerry {
  storage: Storage;
  gateway: Gateway;
  web: FastifyInstance;
  smtpPort: number;
  webPort: number;
  queueRunner?: QueueRunner;
  stop(): Promise<void>;
}

export interface RunningRoles {
  storage: Storage;
  gateway?: Gateway;
  web?: FastifyInstance;
  smtpPort?: number;
  webPort?: number;
  /** metrics.port's listener, when set. */
  metricsPort?: number;
  /** The worker role's queue runner. */
  queueRunner?: QueueRunner;
  /** /readyz as this process sees it: undefined when ready, else the reason. */
  readiness: () => Promise<string | undefined>;
  stop(): Promise<void>;
}

const STALE_PENDING_MS = 60 * 60 * 1000;

export interface StartOptions {
  /** Serve metrics.port's listener here (default true; a node's primary serves it instead, cli/cluster.ts). */
  metricsServer?: boolean;
  /** /metrics's figures on the web port: default this process's; a node's workers answer with the node's sum. */
  metricsText?: MetricsExposure['text'];
  /** Log line once running (default "Ferry is running"; a node's primary says that when every worker is up). */
  runningMessage?: string;
  /** The gateway listens on no port: a node's primary hands it connections (Gateway.adopt, cli/smtp-dispatch.ts). */
  smtpHanded?: boolean;
}

/** Starts the given roles on one storage connection. */
export async function startRoles(config: Config, logger: Logger, roles: readonly Role[], opts: StartOptions = {}): Promise<RunningRoles> {
  const storage = await openStorage(storageOptionsFrom(config));
  if (roles.includes('web') && config.web.downloads === 'redirect' && !storage.blobs.presignGet) {
    await storage.close();
    throw new ConfigError(`web.downloads = "redirect" needs a blob store that can presign URLs (s3://), but storage.blobs is a ${storage.blobs.kind} store; set web.downloads to proxy`);
  }
  // A missing bucket or wrong credentials would otherwise show only as 452s to every sender.
  // Not fatal: the store may merely be down for a moment, and Ferry refuses mail correctly meanwhile.
  await storage.blobs.check().catch((err: Error) => logger.warn({ err: err.message }, 'the blob store is not usable now: MAIL FROM gets 452 4.3.1 and downloads 503 until it is (check storage.blobs and its credentials)'));
  const releaseMetrics = useDatabaseForMetrics(storage.db);
  await seedRetention(config, storage);
  const stops: (() => Promise<unknown>)[] = [];
  const lastStops: (() => Promise<unknown>)[] = [];
  let stopping = false;
  const out: RunningRoles = {
    storage,
    readiness: async () => undefined,
    async stop() {
      // /readyz says 503 from now on; the gateway drains and the web finishes downloads, each
      // for up to shutdown.timeout, at the same time.
      stopping = true;
      await Promise.allSettled(stops.map((s) => s()));
      // The metrics listener goes last, so that its /readyz says "shutting down" during the drain.
      await Promise.allSettled(lastStops.map((s) => s()));
      releaseMetrics();
      await storage.close();
    },
  };
  const readiness = (out.readiness = readinessCheck({
    storage,
    ...(roles.includes('gateway') ? { smtpReady: () => out.gateway?.ready ?? false } : {}),
    stopping: () => stopping,
  }));
  try {
    if (roles.includes('gateway')) {
      const { Gateway } = await import('../gateway/gateway.js');
      // DKIM and ARC keys are read once, here: a key that cannot sign stops start-up naming it.
      const { signingFor } = await import('../gateway/outgoing.js');
      try {
        signingFor(config);
      } catch (err) {
        throw new ConfigError((err as Error).message);
      }
      const gateway = new Gateway({ config, db: storage.db, blobs: storage.blobs, logger: logger.child({ role: 'gateway' }) });
      if (opts.smtpHanded) gateway.takeHandedConnections();
      else out.smtpPort = (await gateway.listen()).port;
      out.gateway = gateway;
      stops.push(() => gateway.close());
    }
    if (roles.includes('web')) {
      // Beside the gateway in one process, downloads get an S3 client (connection pool) of their
      // own, so that slow recipients holding sockets cannot starve the uploads, nor the reverse.
      const webBlobs = roles.includes('gateway') && storage.blobs.kind === 's3' ? openBlobStore(config.storage.blobs, { s3: storageOptionsFrom(config).s3 }) : storage.blobs;
      if (webBlobs !== storage.blobs) lastStops.push(() => webBlobs.close());
      const { buildSite } = await import('../admin/site.js');
      const web = await buildSite({
        publicUrl: config.web.publicUrl,
        db: storage.db,
        blobs: webBlobs,
        logger: logger.child({ role: 'web' }),
        trustProxy: config.web.trustProxy,
        showSubject: config.web.showSubject,
        maxDownloads: config.web.maxDownloads,
        rateLimit: config.web.rateLimit.enabled
          ? { max: config.web.rateLimit.max, windowMs: config.web.rateLimit.window, missMax: config.web.rateLimit.maxMisses, missWindowMs: config.web.rateLimit.missWindow }
          : false,
        downloads: { mode: config.web.downloads, presignExpirySeconds: Math.round(config.web.presignExpiry / 1000) },
        brand: config.web.brand,
        // The bounds a sender may move an expiry within on the management page (/m/).
        retention: retentionBounds(config),
        passwords: { maxFailures: config.web.passwordMaxFailures, lockoutMs: config.web.passwordLockout, unlockTtlMs: config.web.unlockTtl, noticeFrom: config.senders.from, hostname: config.smtp.hostname },
        closeGraceMs: config.shutdown.timeout,
        readiness,
        metrics: config.metrics.onWebPort ? metricsExposure(config, opts.metricsText) : false,
        admin: {
          token: config.admin.token,
          tokens: config.admin.tokens,
          readonlyTokens: config.admin.readonlyTokens,
          oidc: config.admin.oidc,
          sessionIdleMs: config.admin.session.idleTimeout,
          sessionMaxAgeMs: config.admin.session.maxAge,
          authLimit: { delayMs: config.admin.lockoutDelay },
          retention: retentionBounds(config),
        },
        ...(config.web.tls.cert && config.web.tls.key ? { tls: { cert: config.web.tls.cert, key: config.web.tls.key } } : {}),
      });
      await web.listen({ port: config.web.port, host: config.web.host });
      const addr = web.server.address();
      out.webPort = typeof addr === 'object' && addr ? addr.port : config.web.port;
      out.web = web;
      stops.push(() => web.close());
    }
    if (roles.includes('worker')) stops.push(await startWorker(config, storage, logger.child({ role: 'worker' })));
    if (roles.includes('worker')) {
      // Rescans of live files when the scanner's signatures change (worker/rescan.ts, docs/scanning.md).
      const { startRescanner } = await import('../worker/rescan.js');
      stops.push(startRescanner(config, storage.db, storage.blobs, logger.child({ role: 'worker', part: 'rescan' })));
      // Download notices and digests to senders (worker/download-notices.ts, docs/senders.md).
      const { startDownloadNotices } = await import('../worker/download-notices.js');
      stops.push(startDownloadNotices(config, storage.db, storage.blobs, logger.child({ role: 'worker', part: 'notices' })));
    }
    if (roles.includes('gateway') && config.scan.engine === 'off') {
      logger.warn('scan.engine is off: offloaded files go live without a malware check (docs/scanning.md)');
    }
    if (roles.includes('worker')) {
      // The delivery queue (docs/queue.md): retries what the next hop could not take at once.
      const { startQueueRunner } = await import('./queue-worker.js');
      const queue = startQueueRunner(config, storage, logger.child({ role: 'worker', part: 'queue' }));
      out.queueRunner = queue.runner;
      stops.push(() => queue.stop());
    }
    if (config.metrics.port !== undefined && opts.metricsServer !== false) {
      const { startMetricsServer } = await import('./metrics-server.js');
      const m = await startMetricsServer({ port: config.metrics.port, host: config.metrics.host, readiness, exposure: metricsExposure(config) });
      out.metricsPort = m.port;
      lastStops.push(() => m.app.close());
    }
  } catch (err) {
    await out.stop();
    throw err;
  }
  logger.info(
    {
      roles,
      smtp: out.smtpPort !== undefined ? `${config.smtp.host}:${out.smtpPort}` : undefined,
      smtpTls: out.gateway?.tlsAddress() ? `${config.smtp.host}:${out.gateway.tlsAddress()!.port}` : undefined,
      web: out.webPort !== undefined ? `${config.web.host}:${out.webPort}` : undefined,
      metrics: out.metricsPort !== undefined ? `${config.metrics.host}:${out.metricsPort}` : undefined,
      publicUrl: config.web.publicUrl,
      relay: roles.includes('gateway') ? redactUrlPassword(config.relay.url) : undefined,
      blobs: config.storage.blobs,
      database: redactUrlPassword(config.storage.database),
      ...bannerFields(config, { roles, webPort: out.webPort, metricsPort: out.metricsPort }),
    },
    opts.runningMessage ?? 'Ferry is running',
  );
  // Written now, not with the next batch (cli/logger.ts): supervisors and scripts wait for it.
  logger.flush();
  return out;
}

/** metrics.token and where the figures come from, for a listener that serves /metrics. */
export function metricsExposure(config: Config, text?: MetricsExposure['text']): MetricsExposure {
  return { ...(config.metrics.token ? { token: config.metrics.token } : {}), ...(text ? { text } : {}) };
}

/**
 * The worker role's upkeep: the retention sweeper (worker/sweeper.ts, docs/retention.md) at
 * start and every retention.sweepInterval. It deletes the files of expired, revoked and deleted
 * transfers, removes records after retention.keepRecords, removes transfers left pending by a
 * process that died mid-message (older than an hour) and aborts incomplete multipart uploads.
 * Several workers may run at once: each row is claimed atomically by one of them.
 */
async function startWorker(config: Config, storage: Storage, logger: Logger): Promise<() => Promise<void>> {
  const { startSweeper } = await import('../worker/sweeper.js');
  return startSweeper(
    storage.db,
    storage.blobs,
    {
      intervalMs: config.retention.sweepInterval,
      keepRecordsMs: config.retention.keepRecords,
      stalePendingMs: STALE_PENDING_MS,
      onSweep: (s) => {
        if (!s) return countSweep('failed');
        countSweep(s.errors.length ? 'failed' : 'ok', {
          expired: s.expired,
          revoked_or_deleted: s.revokedOrDeleted,
          stale_pending: s.abandoned,
          records_removed: s.recordsRemoved,
        });
      },
    },
    logger,
  );
}

/**
 * Opens the storage once and closes it again: the database is created or migrated, and the
 * retention rules seeded, before a node's worker processes open it side by side (cli/cluster.ts).
 * Kysely takes no migration lock on SQLite, so two processes migrating at once would collide.
 */
export async function prepareStorage(config: Config): Promise<void> {
  const storage = await openStorage(storageOptionsFrom(config));
  await seedRetention(config, storage);
  await storage.close();
}

/** Brings retention.* from the configuration into the rules table (storage/retention.ts). */
async function seedRetention(config: Config, storage: Storage): Promise<void> {
  try {
    await seedRetentionRules(storage.db, { ...retentionBounds(config), rules: config.retention.rules });
  } catch (err) {
    if (!(err instanceof RetentionRuleError)) throw err;
    await storage.close();
    // A conflict between file and run-time bounds names its keys itself (storage/retention.ts).
    throw new ConfigError(err.field === 'bounds' ? err.message : `retention.rules: ${err.message}`);
  }
}

/** `ferry start`: every role in one process. */
export async function startAll(config: Config, logger: Logger): Promise<RunningFerry> {
  const r = await startRoles(config, logger, ['gateway', 'web', 'worker']);
  return { ...r, gateway: r.gateway!, web: r.web!, smtpPort: r.smtpPort!, webPort: r.webPort! };
}
