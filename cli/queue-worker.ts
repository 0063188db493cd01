import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { QueueRunner } from '../worker/queue-runner.js';
import { createRelay } from '../gateway/relay.js';
import { sweepSpool } from '../gateway/spool.js';
import type { Storage } from '../storage/index.js';

const SPOOL_MAX_IDLE_MS = 24 * 60 * 60 * 1000;

/** The worker role's delivery queue: a QueueRunner with its own relay client, polling until stopped. */
export function startQueueRunner(config: Config, storage: Storage, logger: Logger): { runner: QueueRunner; stop(): Promise<void> } {
  const relay = createRelay({
    url: config.relay.url,
    hostname: config.smtp.hostname,
    timeoutMs: config.relay.attemptTimeout,
    starttls: config.relay.starttls,
    tlsVerify: config.relay.tlsVerify,
    poolSize: config.relay.poolSize,
  });
  const runner = new QueueRunner({ db: storage.db, blobs: storage.blobs, relay, logger, queue: config.queue, hostname: config.smtp.hostname });
  runner.start();
  // Working files of SMTP transactions a killed gateway left behind (the spool is per dataDir).
  const spoolDir = path.resolve(config.dataDir, 'spool');
  const sweep = () =>
    void sweepSpool(spoolDir, SPOOL_MAX_IDLE_MS).then(
      (n) => n && logger.info({ removed: n, spoolDir }, 'removed spool files left by an interrupted process'),
      (err: Error) => logger.warn({ err }, 'spool sweep failed'),
    );
  sweep();
  const timer = setInterval(sweep, 60 * 60 * 1000);
  timer.unref();
  return {
    runner,
    async stop() {
      clearInterval(timer);
      await runner.stop();
      await relay.close();
    },
  };
}
