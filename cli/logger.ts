import pino, { type Logger } from 'pino';
import { Counter, register } from 'prom-client';

/**
 * How standard output is written (JSON logs). Each line a write of its own cost a worker 7 % of
 * its time on small mail (a write and a thread hand-off per message); lines are collected up to
 * `batchBytes` and written together, and at the latest after `flushMs`. A process that exits, even
 * on an uncaught error, writes what it holds first (pino flushes on 'exit'); one killed with
 * SIGKILL loses at most `flushMs` of lines. At most `maxBytes` wait: while standard output does
 * not take them (a stalled log reader), further lines are counted and dropped instead of growing
 * the process, counted in `ferry_log_lines_dropped_total`, and a warning says how many once the
 * reader catches up.
 */
export const LOG_OUTPUT = { batchBytes: 4096, flushMs: 250, maxBytes: 8 * 1024 * 1024, dropCheckMs: 5_000 };

export type LogOutput = typeof LOG_OUTPUT;

/** JSON logs, or human-readable lines when writing to a terminal. `output`: the figures above, for tests. */
export function createLogger(level: string, output: Partial<LogOutput> = {}): Logger {
  const o = { ...LOG_OUTPUT, ...output };
  if (process.stdout.isTTY && level !== 'silent') {
    return pino({ level, transport: { target: 'pino-pretty', options: { translateTime: 'SYS:standard', ignore: 'pid,hostname' } } });
  }
  const out = pino.destination({ dest: 1, sync: false, minLength: o.batchBytes, periodicFlush: o.flushMs, maxLength: o.maxBytes });
  const logger = pino({ level }, out);
  const droppedTotal =
    (register.getSingleMetric('ferry_log_lines_dropped_total') as Counter | undefined) ??
    new Counter({ name: 'ferry_log_lines_dropped_total', help: 'Log lines dropped because standard output did not take them (a stalled or slow log reader)' });
  let dropped = 0;
  out.on('drop', () => {
    dropped++;
    droppedTotal.inc();
  });
  setInterval(() => {
    if (!dropped) return;
    const n = dropped;
    dropped = 0;
    logger.warn({ dropped: n }, `${n} log lines were dropped: standard output did not take them fast enough (a stalled or slow log reader)`);
    // NB 'drop' fires inside write(): if the warning itself found no room, count again next time.
    if (dropped) dropped = n;
  }, o.dropCheckMs).unref();
  return logger;
}
