import pino, { type Logger } from 'pino';

/** JSON logs, or human-readable lines when writing to a terminal. */
export function createLogger(level: string): Logger {
  if (process.stdout.isTTY && level !== 'silent') {
    return pino({ level, transport: { target: 'pino-pretty', options: { translateTime: 'SYS:standard', ignore: 'pid,hostname' } } });
  }
  return pino({ level });
}
