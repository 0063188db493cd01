import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { CompiledQuery, Kysely, Migrator, SqliteDialect, type Driver } from 'kysely';
import { migrationProvider } from './migrations.js';
import { isPostgresUrl, postgresKysely, type PostgresOptions } from './postgres.js';
import type { Database } from './schema.js';

export type Db = Kysely<Database>;

export class DatabaseUnavailableError extends Error {
  readonly code = 'FERRY_ERR_DATABASE_UNAVAILABLE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DatabaseUnavailableError';
  }
}

/**
 * Opens the records database from a `sqlite:FILE` or `postgres://USER:PASSWORD@HOST:PORT/DB` URL
 * and brings its schema up to date. Several processes may start at once: on PostgreSQL the
 * migrations run under an advisory lock, on SQLite under the file's write lock.
 */
export async function openDatabase(url: string, opts: { postgres?: PostgresOptions } = {}): Promise<Db> {
  if (isPostgresUrl(url)) return openPostgres(url, opts.postgres);
  const m = /^sqlite:(.+)$/.exec(url);
  if (!m) throw new Error(`unsupported database URL ${redactUrl(url)} (expected sqlite:FILE or postgres://USER:PASSWORD@HOST:PORT/DATABASE)`);
  const file = m[1]!;
  if (file !== ':memory:') {
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true, mode: 0o750 });
    // Senders, recipients, subjects and file names are personal data: a new database file is
    // Ferry's user's only (SQLite gives its -wal and -shm files the same mode).
    fs.closeSync(fs.openSync(file, 'a', 0o600));
  }
  const sqlite = new SQLite(file);
  // WAL lets the web role read while the gateway writes; busy_timeout waits for the other
  // writer instead of failing at once when several processes share the file (a node runs one
  // per core, cli/cluster.ts). Writes are short; a wait of seconds means the disk is stuck.
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('busy_timeout = 10000');
  sqlite.pragma('foreign_keys = ON');
  // FULL: in WAL mode NORMAL does not sync at commit, so a power loss could roll back a queue
  // record or a transfer whose 250 was already sent. FULL syncs the WAL at every commit.
  sqlite.pragma('synchronous = FULL');
  const db = new Kysely<Database>({ dialect: new ImmediateSqliteDialect({ database: sqlite }) });
  await migrate(db);
  return db;
}

/**
 * Kysely's SQLite transactions start with a plain (deferred) BEGIN. NB: in WAL mode a deferred
 * transaction that has read and then writes, after another process committed in between, fails
 * at once with SQLITE_BUSY(_SNAPSHOT): busy_timeout cannot help, since waiting would not make
 * its snapshot current. BEGIN IMMEDIATE takes the write lock first, and waiting for that lock is
 * what busy_timeout does, so no client ever sees SQLITE_BUSY as a 451.
 */
class ImmediateSqliteDialect extends SqliteDialect {
  override createDriver(): Driver {
    const driver = super.createDriver();
    driver.beginTransaction = async (connection) => {
      await connection.executeQuery(CompiledQuery.raw('begin immediate'));
    };
    return driver;
  }
}

async function openPostgres(url: string, opts?: PostgresOptions): Promise<Db> {
  const { db } = postgresKysely(url, opts);
  try {
    await migrate(db);
  } catch (err) {
    await db.destroy().catch(() => undefined);
    // Name the database (password masked): with several nodes, which one matters.
    throw new DatabaseUnavailableError(`cannot open ${redactUrl(url)}: ${(err as Error).message}`, { cause: err });
  }
  return db;
}

/** The URL with its password masked, for messages and logs. */
export function redactUrl(url: string): string {
  // Up to the LAST "@" of the authority, as URL parsers read it (a raw "@" in the user name or
  // password is accepted by them); the same rule as config/redact.ts, which storage/ cannot import.
  return url
    .replace(/^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)@/i, (whole, scheme: string, userInfo: string) => {
      const colon = userInfo.indexOf(':');
      return colon < 0 ? whole : `${scheme}${userInfo.slice(0, colon)}:***@`;
    })
    // pg also takes ?password= (and ?sslpassword=) as a URL parameter.
    .replace(/([?&](?:ssl)?password=)[^&#]*/gi, (_m, key: string) => (/^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? `${key}***` : _m));
}

export async function migrate(db: Db): Promise<void> {
  const migrator = new Migrator({ db, provider: migrationProvider });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    throw new DatabaseUnavailableError(`database ${failed ? `migration ${failed} failed` : 'migrations could not run'}: ${(error as Error).message}`, { cause: error });
  }
}

export async function checkDatabase(db: Db): Promise<void> {
  try {
    await db.selectFrom('transfers').select('id').limit(1).execute();
  } catch (err) {
    throw new DatabaseUnavailableError(`database is not reachable: ${(err as Error).message}`, { cause: err });
  }
}
