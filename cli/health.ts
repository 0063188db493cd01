import { checkDatabase, type Storage } from '../storage/index.js';

// /readyz as this process sees it: every role needs the database and the blob store; the gateway
// role also needs its SMTP listener up and not draining. The web role serves the answer
// (web/routes/health.ts), and so does the metrics listener (cli/metrics-server.ts).

export interface ReadinessSources {
  storage: Storage;
  /** Present when the gateway role runs here. */
  smtpReady?: () => boolean;
  /** True from the first shutdown signal on. */
  stopping?: () => boolean;
  /** A check must answer within this, or it counts as failed (default 5 s). */
  timeoutMs?: number;
}

export function readinessCheck(src: ReadinessSources): () => Promise<string | undefined> {
  const timeoutMs = src.timeoutMs ?? 5000;
  const within = <T>(p: Promise<T>, what: string) =>
    Promise.race([
      p,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} did not answer within ${timeoutMs} ms`)), timeoutMs).unref()),
    ]);
  return async () => {
    if (src.stopping?.()) return 'shutting down';
    if (src.smtpReady && !src.smtpReady()) return 'smtp: not listening';
    try {
      await within(checkDatabase(src.storage.db), 'the database');
    } catch (err) {
      return `database: ${(err as Error).message}`;
    }
    try {
      await within(src.storage.blobs.check(), 'the blob store');
    } catch (err) {
      return `blob store: ${(err as Error).message}`;
    }
    return undefined;
  };
}
