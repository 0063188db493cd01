import { ConfigError, loadConfig, redactConfig } from '../config/index.js';
import { parseArgs } from './args.js';
import { checkConfigFiles } from './check-files.js';
import { hashPasswordCommand } from './hash-password.js';
import { createLogger } from './logger.js';
import { stopOnSignals } from './shutdown.js';
import { startRoles, type Role } from './start.js';

const USAGE = `Usage: ferry <command> [--config FILE]

Commands:
  start          run every role in one process: gateway, web and worker
  gateway        run only the SMTP gateway (accepts, offloads, relays)
  web            run only the download web service
  worker         run only the background work: the delivery queue and the upkeep
  check-config   validate the configuration and print the effective values
  queue list|retry|delete
                 the delivery queue: list (--json), retry ID|--all, delete ID [--bounce]
  transfers list|show|revoke|extend|hold|release|delete
                 offloaded transfers: search, detail, revoke, expiry, legal hold
  rules list|set|delete
                 retention rules: default, minimum, maximum, per sender or domain
  purge [--dry-run]
                 run one retention sweep now, with a summary
  hash-password [NAME]
                 read a password from standard input and print a line for smtp.auth.usersFile

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
  if (args.command === 'hash-password') process.exit(await hashPasswordCommand(args.rest));
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
    case 'transfers': {
      const { transfersCommand } = await import('./transfers.js');
      process.exitCode = await transfersCommand(config, args.rest);
      return;
    }
    case 'rules': {
      const { rulesCommand } = await import('./rules.js');
      process.exitCode = await rulesCommand(config, args.rest);
      return;
    }
    case 'purge': {
      const { purgeCommand } = await import('./purge.js');
      process.exitCode = await purgeCommand(config, args.rest);
      return;
    }
    case 'queue': {
      const { queueCommand } = await import('./queue.js');
      process.exitCode = await queueCommand(config, args.rest);
      return;
    }
    case 'check-config': {
      // Passwords in URLs and secret settings (storage.s3.secretAccessKey, ...) print as ***.
      console.log(JSON.stringify(redactConfig(config), null, 2));
      const problems = checkConfigFiles(config);
      if (problems.length) {
        for (const p of problems) console.error(`ferry: configuration error: ${p}`);
        process.exit(78);
      }
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
        // A certificate or users file that cannot be used (gateway/tls.ts, gateway/auth.ts).
        if (err.code === 'FERRY_ERR_SMTP_TLS' || err.code === 'FERRY_ERR_USERS_FILE') {
          console.error(`ferry: configuration error: ${err.message}`);
          process.exit(78);
        }
        // Checks at start-up that need the storage (web.downloads: redirect with a file store).
        if (err instanceof ConfigError) {
          console.error(`ferry: configuration error: ${err.message}`);
          process.exit(78);
        }
        // The database cannot be reached or migrated; the message names it (password masked).
        if (err.code === 'FERRY_ERR_DATABASE_UNAVAILABLE') {
          console.error(`ferry: ${err.message}; check storage.database and that the server is up`);
          process.exit(1);
        }
        throw err;
      });
      // The roles' own timers are unref'd (they must not keep a test or an embedding process
      // alive); a `ferry worker` has no listening socket, so without this it would exit at once.
      const keepAlive = setInterval(() => undefined, 60 * 60 * 1000);
      stopOnSignals(
        () => running.stop().finally(() => clearInterval(keepAlive)),
        logger,
        config.shutdown.timeout,
      );
      return;
    }
    default:
      console.error(`ferry: unknown command "${args.command}"\n\n${USAGE}`);
      process.exit(2);
  }
}
