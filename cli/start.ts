import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { Gateway } from '../gateway/gateway.js';
import { openStorage, sweepStalePending, type Storage } from '../storage/index.js';
import { buildWebApp } from '../web/app.js';

export interface RunningFerry {
  storage: Storage;
  gateway: Gateway;
  web: Awaited<ReturnType<typeof buildWebApp>>;
  smtpPort: number;
  webPort: number;
  stop(): Promise<void>;
}

const STALE_PENDING_MS = 60 * 60 * 1000;
const SWEEP_EVERY_MS = 10 * 60 * 1000;

/** `ferry start`: every role in one process, on the configured storage. */
export async function startAll(config: Config, logger: Logger): Promise<RunningFerry> {
  const storage = await openStorage(config.storage);
  const gateway = new Gateway({ config, db: storage.db, blobs: storage.blobs, logger: logger.child({ role: 'gateway' }) });
  const web = await buildWebApp({
    publicUrl: config.web.publicUrl,
    db: storage.db,
    blobs: storage.blobs,
    logger: logger.child({ role: 'web' }),
    trustProxy: config.web.trustProxy,
  });
  const smtp = await gateway.listen();
  await web.listen({ port: config.web.port, host: config.web.host });
  const webAddr = web.server.address();
  const webPort = typeof webAddr === 'object' && webAddr ? webAddr.port : config.web.port;

  // Pending transfers older than an hour were left by a crash mid-message: remove them.
  const sweep = () =>
    sweepStalePending(storage.db, storage.blobs, STALE_PENDING_MS).then(
      (n) => n && logger.info({ removed: n }, 'removed transfers left pending by an interrupted message'),
      (err: Error) => logger.warn({ err }, 'sweep of stale pending transfers failed'),
    );
  void sweep();
  const timer = setInterval(sweep, SWEEP_EVERY_MS);
  timer.unref();

  logger.info(
    { smtp: `${config.smtp.host}:${smtp.port}`, web: `${config.web.host}:${webPort}`, publicUrl: config.web.publicUrl, relay: config.relay.url.replace(/\/\/[^@/]*@/, '//***@'), blobs: config.storage.blobs, database: config.storage.database },
    'Ferry is running',
  );
  return {
    storage,
    gateway,
    web,
    smtpPort: smtp.port,
    webPort,
    async stop() {
      clearInterval(timer);
      await Promise.allSettled([gateway.close(), web.close()]);
      await storage.close();
    },
  };
}
