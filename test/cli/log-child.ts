// A process that logs through cli/logger.ts as `ferry start` does, for test/cli/logger.test.ts:
//   log-child.ts exit N     N lines, then process.exit(0)
//   log-child.ts throw      one line, then an uncaught error
//   log-child.ts linger     one line, then 3 s alive
//   log-child.ts flood N    N lines of 1 KiB at once ("flooded" on stderr), then 2 s alive,
//                           printing the dropped-lines counter on stderr
import { register } from 'prom-client';
import { createLogger } from '../../cli/logger.js';

const [mode, n] = process.argv.slice(2);
const logger = createLogger('info', { maxBytes: 1024 * 1024, dropCheckMs: 200 });
if (mode === 'exit') {
  for (let i = 0; i < Number(n); i++) logger.info({ i }, 'line');
  process.exit(0);
} else if (mode === 'throw') {
  logger.info({ i: 0 }, 'before the error');
  setImmediate(() => {
    throw new Error('boom');
  });
} else if (mode === 'linger') {
  logger.info({ i: 0 }, 'one line');
  setTimeout(() => undefined, 3000);
} else if (mode === 'flood') {
  const pad = 'x'.repeat(1000);
  for (let i = 0; i < Number(n); i++) logger.info({ i, pad }, 'line');
  process.stderr.write('flooded\n');
  setTimeout(async () => process.stderr.write(`metric ${(await register.getSingleMetricAsString('ferry_log_lines_dropped_total')).split('\n').at(-1)}\n`), 1500);
  setTimeout(() => undefined, 2000);
}
