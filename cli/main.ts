import { parseArgs } from './args.js';
import type { Role } from './start.js';
import { configFromPrimary } from './worker-config.js';
import { holdYoungGeneration } from './young-generation.js';

// Every command's code (and the configuration schema) is imported only when that command runs:
// `ferry --help` loads nothing else, and `ferry check-config` never loads the SMTP server,
// Fastify or the S3 SDK. Each command answers within a second (test/cli/startup-time.test.ts).

const USAGE = `Usage: ferry <command> [--config FILE]
       ferry transfers|queue|rules ... --server URL    (token in FERRY_CLI_TOKEN)

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
  audit verify   check the audit log's hash chain; names the first changed entry
  hash-password [NAME]
                 read a password from standard input and print a line for smtp.auth.usersFile

Configuration comes from FILE (default ./ferry.yaml if present), then FERRY_* environment
variables (smtp.port -> FERRY_SMTP_PORT). See the README for every key.

--server URL (or FERRY_CLI_SERVER) runs transfers, queue and rules through that Ferry's admin
API with the token in FERRY_CLI_TOKEN, without the configuration; the server enforces the
token's role (a read-only token may look, not change). See docs/admin.md.`;

const REMOTE_COMMANDS = ['transfers', 'queue', 'rules'];
const SERVER_COMMANDS = ['start', 'gateway', 'web', 'worker'];

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
  if (args.command === 'hash-password') {
    const { hashPasswordCommand } = await import('./hash-password.js');
    process.exit(await hashPasswordCommand(args.rest));
  }
  // FERRY_CLI_SERVER in an admin's profile applies to the remote commands only; --server given
  // to another command is a mistake worth saying.
  if (args.server !== undefined || (process.env.FERRY_CLI_SERVER && REMOTE_COMMANDS.includes(args.command))) {
    if (!REMOTE_COMMANDS.includes(args.command)) {
      console.error(`ferry: --server (FERRY_CLI_SERVER) goes with ${REMOTE_COMMANDS.join(', ')}; ferry ${args.command} runs on the Ferry host with its configuration`);
      process.exit(2);
    }
    const { AdminApiClient } = await import('./admin-client.js');
    const { UsageError } = await import('./admin-output.js');
    let api;
    try {
      api = AdminApiClient.fromArgs(args.server)!;
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
      console.error(`ferry: ${err.message}`);
      process.exit(2);
    }
    process.exitCode = await remoteCommand(args.command, api, args.rest);
    return;
  }
  if (SERVER_COMMANDS.includes(args.command)) holdYoungGeneration();
  let config = configFromPrimary();
  if (!config) {
    const { ConfigError, loadConfig } = await import('../config/index.js');
    try {
      config = loadConfig({ file: args.config });
    } catch (err) {
      if (err instanceof ConfigError) {
        console.error(`ferry: configuration error: ${err.message}`);
        process.exit(78); // EX_CONFIG
      }
      throw err;
    }
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
    case 'audit': {
      const { auditCommand } = await import('./audit.js');
      process.exitCode = await auditCommand(config, args.rest);
      return;
    }
    case 'queue': {
      const { queueCommand } = await import('./queue.js');
      process.exitCode = await queueCommand(config, args.rest);
      return;
    }
    case 'scan': {
      const { scanCommand } = await import('./scan.js');
      process.exitCode = await scanCommand(config, args.rest);
      return;
    }
    case 'check-config': {
      const { checkConfigCommand } = await import('./check-config.js');
      process.exitCode = await checkConfigCommand(config, args.config ?? '(defaults and environment)');
      return;
    }
    case 'start':
    case 'gateway':
    case 'web':
    case 'worker': {
      const roles: Role[] = args.command === 'start' ? ['gateway', 'web', 'worker'] : [args.command];
      const { createLogger } = await import('./logger.js');
      const { runRoles } = await import('./cluster.js');
      // One process, or a node of `processes` workers sharing the listeners (cli/cluster.ts).
      await runRoles(config, createLogger(config.log.level), roles, argv);
      return;
    }
    default:
      console.error(`ferry: unknown command "${args.command}"\n\n${USAGE}`);
      process.exit(2);
  }
}

async function remoteCommand(command: string, api: import('./admin-client.js').AdminApiClient, rest: string[]): Promise<number> {
  switch (command) {
    case 'transfers':
      return (await import('./transfers.js')).transfersCommand(api, rest);
    case 'queue':
      return (await import('./queue.js')).queueCommand(api, rest);
    default:
      return (await import('./rules.js')).rulesCommand(api, rest);
  }
}
