import { ConfigError } from '../config/config-error.js';

/** What to say and the exit status for an error the roles can fail to start with; undefined for any other error (a bug: it crashes with its stack). */
export function startErrorReport(e: unknown): { message: string; code: number } | undefined {
  const err = e as NodeJS.ErrnoException;
  if (err?.code === 'EADDRINUSE') return { message: `ferry: cannot listen: ${err.message}; another program uses the port (set smtp.port / web.port)`, code: 1 };
  // A certificate or users file that cannot be used (gateway/tls.ts, gateway/auth.ts).
  if (err?.code === 'FERRY_ERR_SMTP_TLS' || err?.code === 'FERRY_ERR_USERS_FILE') return { message: `ferry: configuration error: ${err.message}`, code: 78 };
  // Checks at start-up that need the storage (web.downloads: redirect with a file store).
  if (err instanceof ConfigError) return { message: `ferry: configuration error: ${err.message}`, code: 78 };
  // The database cannot be reached or migrated; the message names it (password masked).
  if (err?.code === 'FERRY_ERR_DATABASE_UNAVAILABLE') return { message: `ferry: ${err.message}; check storage.database and that the server is up`, code: 1 };
  return undefined;
}

/**
 * Ends the process with a one-line reason when the roles cannot start. The same in a single
 * process and in the primary of a node; a node's worker processes report theirs to the primary
 * instead (cli/cluster.ts), which prints the first and exits with its status.
 */
export function exitOnStartError(e: unknown): never {
  const report = startErrorReport(e);
  if (!report) throw e;
  console.error(report.message);
  process.exit(report.code);
}
