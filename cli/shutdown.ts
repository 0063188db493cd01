import type { Logger } from 'pino';

// SIGTERM / SIGINT: one graceful stop (the gateway drains, downloads finish, each for up to
// shutdown.timeout), then exit 0. A second signal, or the stop taking far longer than the
// timeout (a stuck socket), ends the process at once with status 1: an admin pressing Ctrl-C
// twice, or an orchestrator's kill, must never wait on Ferry. Whatever a cut transaction
// leaves behind is pending in the database and removed by the worker's sweep.

/** Extra time past shutdown.timeout for the cancelled transactions' cleanup and the final closes. */
const CLEANUP_MARGIN_MS = 15_000;

export function stopOnSignals(stop: () => Promise<void>, logger: Logger, timeoutMs: number): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal, timeoutMs }, 'stopping: no new connections; messages and downloads in flight may finish');
    setTimeout(() => {
      logger.error('stop did not finish in time: exiting now');
      process.exit(1);
    }, timeoutMs + CLEANUP_MARGIN_MS).unref();
    stop().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (err: Error) => {
        logger.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
