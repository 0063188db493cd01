import type { Logger } from 'pino';

// SIGTERM / SIGINT: one graceful stop (the gateway drains, downloads finish, each for up to
// shutdown.timeout), then exit 0. A second signal, or the stop taking far longer than the
// timeout (a stuck socket), ends the process at once with status 1: an admin pressing Ctrl-C
// twice, or an orchestrator's kill, must never wait on Ferry. Whatever a cut transaction
// leaves behind is pending in the database and removed by the worker's sweep.

/** Extra time past shutdown.timeout for the cancelled transactions' cleanup and the final closes. */
const CLEANUP_MARGIN_MS = 15_000;

/**
 * Installs the handlers; the returned function starts the same graceful stop without a signal
 * (a worker process of a node is told to stop by its primary over IPC, cli/cluster.ts). Only
 * a second *signal* exits at once: Ctrl-C reaches a node's primary and its workers together
 * (one process group), and the primary's own stop request must not count as the second.
 */
export function stopOnSignals(stop: () => Promise<void>, logger: Logger, timeoutMs: number): (why: string) => void {
  let stopping = false;
  const begin = (fields: Record<string, string>) => {
    if (stopping) return;
    stopping = true;
    // Started before the log line: a node's primary tells its workers first (cli/cluster.ts), so
    // whoever sees this line and connects is already refused with 421 4.3.2.
    const stopped = stop();
    logger.info({ ...fields, timeoutMs }, 'stopping: no new connections; messages and downloads in flight may finish');
    // Written now, not with the next batch (cli/logger.ts): whoever watches the log for it acts on it.
    logger.flush();
    setTimeout(() => {
      logger.error('stop did not finish in time: exiting now');
      process.exit(1);
    }, timeoutMs + CLEANUP_MARGIN_MS).unref();
    stopped.then(
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
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping && signalled) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    signalled = true;
    begin({ signal });
  };
  let signalled = false;
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return (why) => begin({ reason: why });
}
