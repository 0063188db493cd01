import { ConfigError } from '../config/index.js';

/**
 * Ends the process with a one-line reason when the roles cannot start. The same in a single
 * process and in each worker process of a node (cli/cluster.ts), whose primary then exits with
 * the worker's status.
 */
export function exitOnStartError(e: unknown): never {
  const err = e as NodeJS.ErrnoException;
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
}
