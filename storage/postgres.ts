import { createRequire } from 'node:module';
import { Kysely, PostgresAdapter, PostgresDialect } from 'kysely';
import type pg from 'pg';
import type { Database } from './schema.js';

// Records on PostgreSQL, through the same Kysely queries and migrations as SQLite.

// pg costs about 14 MB of RSS once loaded and a Ferry on SQLite never needs it: it is loaded
// when the first pool is made, not when storage/ is imported. require(), as for the AWS SDK
// (s3-blob-store.ts): pg is CommonJS and postgresKysely is synchronous.
const requirePg = createRequire(import.meta.url);
let pgModule: typeof pg | undefined;
const loadPg = (): typeof pg => (pgModule ??= requirePg('pg') as typeof pg);

const INT8_OID = 20;

/** True when the URL names a PostgreSQL database. */
export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//.test(url);
}

export interface PostgresOptions {
  /** Connections in the pool. Default 10. */
  maxConnections?: number;
  /** Waiting for a connection (and for the server when it is down). Default 5 s. */
  connectionTimeoutMs?: number;
  /** Any single statement. Default 30 s. */
  statementTimeoutMs?: number;
}

export function postgresKysely(url: string, opts: PostgresOptions = {}): { db: Kysely<Database>; pool: pg.Pool } {
  const pgLib = loadPg();
  const pool = new pgLib.Pool({
    connectionString: url,
    max: opts.maxConnections ?? 10,
    connectionTimeoutMillis: opts.connectionTimeoutMs ?? 5_000,
    idleTimeoutMillis: 30_000,
    statement_timeout: opts.statementTimeoutMs ?? 30_000,
    application_name: 'ferry',
    // Times and sizes are bigint columns; pg returns them as strings by default. They stay far
    // below 2^53 (milliseconds until the year 287396, bytes up to 9 PB), so numbers are exact,
    // and this pool's rows then match the schema's types. Set per pool, not globally in pg.types,
    // so nothing else in the process changes.
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID && format !== 'binary' ? (v: string) => Number(v) : pgLib.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
    },
  });
  // An idle client whose server went away emits 'error' on the pool; unhandled, that would end
  // the process. The next query gets a fresh connection or a proper error.
  pool.on('error', () => undefined);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return { db, pool };
}

/** True for a Kysely handle on PostgreSQL (migrations use it where SQL differs). */
export function isPostgres(db: Kysely<any>): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}
