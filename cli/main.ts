import { ConfigError, loadConfig } from '../config/index.js';
import { parseArgs } from './args.js';
import { createLogger } from './logger.js';
import { startRoles, type Role } from './start.js';

const USAGE = `Usage: ferry <command> [--config FILE]

Commands:
  start          run every role in one process: gateway, web and worker
  gateway        run only the SMTP gateway (accepts, offloads, relays)
  web            run only the download web service
  worker         run only the background upkeep (removes transfers left by a crash)
  check-config   validate the configuration and print the effective values

Configuration comes from FILE (default ./ferry.yaml if present), then FERRY_* environment
variables (smtp.port -> FERRY_SMTP_PORT). See the README for every key.`;

export async function main(argv: string[]): Promise<void> {
  let args;
  try {
    args = parseArgs(argv);
  } catch (err) {
    console.error(`ferry: ${(err as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (args.help || !args.command) {
    console.log(USAGE);
    process.exit(args.command || args.help ? 0 : 2);
  }
  let config;
  try {
    config = loadConfig({ file: args.config });
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`ferry: configuration error: ${err.message}`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }

  switch (args.command) {
    case 'check-config': {
      const masked = JSON.parse(JSON.stringify(config, (k, v) => (k === 'url' && typeof v === 'string' ? v.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@') : v)));
      console.log(JSON.stringify(masked, null, 2));
      console.error(`ferry: configuration ${args.config ?? '(defaults and environment)'} is valid`);
      return;
    }
    case 'start':
    case 'gateway':
    case 'web':
    case 'worker': {
      const roles: Role[] = args.command === 'start' ? ['gateway', 'web', 'worker'] : [args.command];
      const logger = createLogger(config.log.level);
      const running = await startRoles(config, logger, roles).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'EADDRINUSE') {
          console.error(`ferry: cannot listen: ${err.message}; another program uses the port (set smtp.port / web.port)`);
          process.exit(1);
        }
        throw err;
      });
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        logger.info({ signal }, 'stopping');
        running.stop().then(
          () => process.exit(0),
          (err: Error) => {
            logger.error({ err }, 'error while stopping');
            process.exit(1);
          },
        );
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
      return;
    }
    default:
      console.error(`ferry: unknown command "${args.command}"\n\n${USAGE}`);
      process.exit(2);
  }
}
