import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { Gateway } from '../gateway/gateway.js';
import { openStorage, sweepStalePending, type Storage } from '../storage/index.js';
import { buildWebApp } from '../web/app.js';

// The roles of a Ferry process. `ferry start` runs all three in one process; a bigger site runs
// `ferry gateway`, `ferry web` and `ferry worker` separately, sharing storage. No role keeps
// state another needs: everything shared lives in the blob store and the database.

export type Role = 'gateway' | 'web' | 'worker';

export interface RunningFerry {
  storage: Storage;
  gateway: Gateway;
  web: Awaited<ReturnType<typeof buildWebApp>>;
  smtpPort: number;
  webPort: number;
  stop(): Promise<void>;
}

export interface RunningRoles {
  storage: Storage;
  gateway?: Gateway;
  web?: Awaited<ReturnType<typeof buildWebApp>>;
  smtpPort?: number;
  webPort?: number;
  stop(): Promise<void>;
}

const STALE_PENDING_MS = 60 * 60 * 1000;
const SWEEP_EVERY_MS = 10 * 60 * 1000;

/** Starts the given roles on one storage connection. */
export async function startRoles(config: Config, logger: Logger, roles: readonly Role[]): Promise<RunningRoles> {
  const storage = await openStorage(config.storage);
  const stops: (() => Promise<unknown>)[] = [];
  const out: RunningRoles = {
    storage,
    async stop() {
      await Promise.allSettled(stops.map((s) => s()));
      await storage.close();
    },
  };
  try {
    if (roles.includes('gateway')) {
      const gateway = new Gateway({ config, db: storage.db, blobs: storage.blobs, logger: logger.child({ role: 'gateway' }) });
      out.smtpPort = (await gateway.listen()).port;
      out.gateway = gateway;
      stops.push(() => gateway.close());
    }
    if (roles.includes('web')) {
      const web = await buildWebApp({
        publicUrl: config.web.publicUrl,
        db: storage.db,
        blobs: storage.blobs,
        logger: logger.child({ role: 'web' }),
        trustProxy: config.web.trustProxy,
        showSubject: config.web.showSubject,
        maxDownloads: config.web.maxDownloads,
        brand: config.web.brand,
        ...(config.web.tls.cert && config.web.tls.key ? { tls: { cert: config.web.tls.cert, key: config.web.tls.key } } : {}),
      });
      await web.listen({ port: config.web.port, host: config.web.host });
      const addr = web.server.address();
      out.webPort = typeof addr === 'object' && addr ? addr.port : config.web.port;
      out.web = web;
      stops.push(() => web.close());
    }
    if (roles.includes('worker')) stops.push(startWorker(storage, logger.child({ role: 'worker' })));
  } catch (err) {
    await out.stop();
    throw err;
  }
  logger.info(
    {
      roles,
      smtp: out.smtpPort !== undefined ? `${config.smtp.host}:${out.smtpPort}` : undefined,
      web: out.webPort !== undefined ? `${config.web.host}:${out.webPort}` : undefined,
      publicUrl: config.web.publicUrl,
      relay: roles.includes('gateway') ? config.relay.url.replace(/\/\/[^@/]*@/, '//***@') : undefined,
      blobs: config.storage.blobs,
      database: config.storage.database.replace(/\/\/[^@/]*@/, '//***@'),
    },
    'Ferry is running',
  );
  return out;
}

/**
 * The worker role: background upkeep. For now it removes transfers left pending by a process
 * that died mid-message (older than an hour), with their blobs, at start and every ten minutes.
 * Several workers may run at once: deleting what is already gone is not an error.
 */
function startWorker(storage: Storage, logger: Logger): () => Promise<void> {
  let running: Promise<unknown> = Promise.resolve();
  const sweep = () => {
    running = sweepStalePending(storage.db, storage.blobs, STALE_PENDING_MS).then(
      (n) => n && logger.info({ removed: n }, 'removed transfers left pending by an interrupted message'),
      (err: Error) => logger.warn({ err }, 'sweep of stale pending transfers failed'),
    );
  };
  sweep();
  const timer = setInterval(sweep, SWEEP_EVERY_MS);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}

/** `ferry start`: every role in one process. */
export async function startAll(config: Config, logger: Logger): Promise<RunningFerry> {
  const r = await startRoles(config, logger, ['gateway', 'web', 'worker']);
  return { ...r, gateway: r.gateway!, web: r.web!, smtpPort: r.smtpPort!, webPort: r.webPort! };
}
