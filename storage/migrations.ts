import { type Kysely, type Migration, type MigrationProvider, sql } from 'kysely';
import { isPostgres } from './postgres.js';

// Migrations live in code (not files found at run time) so the compiled package carries them.
// Column types are chosen to mean the same on SQLite and PostgreSQL (bigint for times and sizes).

const migrations: Record<string, Migration> = {
  '0001_transfers_files_downloads': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('transfers')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('queue_id', 'text', (c) => c.notNull())
        .addColumn('sender', 'text', (c) => c.notNull())
        .addColumn('recipients', 'text', (c) => c.notNull())
        .addColumn('subject', 'text')
        .addColumn('message_id', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('file_count', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('total_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema.createIndex('transfers_state_created').on('transfers').columns(['state', 'created_at']).execute();
      await db.schema.createIndex('transfers_state_expires').on('transfers').columns(['state', 'expires_at']).execute();
      await db.schema
        .createTable('files')
        .addColumn('transfer_id', 'text', (c) => c.notNull().references('transfers.id').onDelete('cascade'))
        .addColumn('idx', 'integer', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('content_type', 'text', (c) => c.notNull())
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('sha256', 'text', (c) => c.notNull())
        .addColumn('blob_key', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('files_pk', ['transfer_id', 'idx'])
        .execute();
      await db.schema
        .createTable('downloads')
        // SQLite's INTEGER PRIMARY KEY AUTOINCREMENT; PostgreSQL has no AUTO_INCREMENT, an identity instead.
        .addColumn('id', 'integer', (c) => (isPostgres(db) ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey().autoIncrement()))
        .addColumn('transfer_id', 'text', (c) => c.notNull().references('transfers.id').onDelete('cascade'))
        .addColumn('file_idx', 'integer')
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('status', 'integer', (c) => c.notNull())
        .addColumn('bytes_sent', 'bigint', (c) => c.notNull())
        .addColumn('range', 'text')
        .addColumn('client', 'text')
        .addColumn('user_agent', 'text')
        .addColumn('counted', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema.createIndex('downloads_transfer').on('downloads').columns(['transfer_id', 'at']).execute();
      void sql;
    },
    async down(db: Kysely<any>) {
      await db.schema.dropTable('downloads').execute();
      await db.schema.dropTable('files').execute();
      await db.schema.dropTable('transfers').execute();
    },
  },
  '0002_downloads_scanner': {
    async up(db: Kysely<any>) {
      // Requests by mail security scanners and link prefetchers are logged but never counted.
      await db.schema.alterTable('downloads').addColumn('scanner', 'integer', (c) => c.notNull().defaultTo(0)).execute();
      await db.schema.alterTable('downloads').addColumn('method', 'text').execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.alterTable('downloads').dropColumn('method').execute();
      await db.schema.alterTable('downloads').dropColumn('scanner').execute();
    },
  },
  '0010_queue': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('queue_entries')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('transfer_id', 'text')
        .addColumn('sender', 'text', (c) => c.notNull())
        .addColumn('recipients', 'text', (c) => c.notNull())
        .addColumn('dsn_ret', 'text')
        .addColumn('dsn_envid', 'text')
        .addColumn('blob_key', 'text', (c) => c.notNull())
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('last_error', 'text')
        .addColumn('lease_owner', 'text')
        .addColumn('lease_until', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('warned', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('cancel', 'text')
        .execute();
      await db.schema.createIndex('queue_entries_due').on('queue_entries').columns(['next_attempt_at']).execute();
      await db.schema.createIndex('queue_entries_created').on('queue_entries').columns(['created_at']).execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.dropTable('queue_entries').execute();
    },
  },
  '0020_retention': {
    async up(db: Kysely<any>) {
      // Which rule chose the expiry, the rule's download limit, legal hold, when the blobs went,
      // and the sweeper's claim (a lease, so several workers never work on the same row).
      for (const [name, type] of [
        ['retention_rule', 'text'],
        ['max_downloads', 'integer'],
        ['held_at', 'bigint'],
        ['held_by', 'text'],
        ['hold_reason', 'text'],
        ['purged_at', 'bigint'],
        ['sweep_claim', 'text'],
        ['sweep_claimed_at', 'bigint'],
      ] as const) {
        await db.schema.alterTable('transfers').addColumn(name, type).execute();
      }
      await db.schema.alterTable('transfers').addColumn('held', 'integer', (c) => c.notNull().defaultTo(0)).execute();
      await db.schema.createIndex('transfers_purged_at').on('transfers').columns(['purged_at']).execute();
      await db.schema.createIndex('transfers_created').on('transfers').columns(['created_at']).execute();
      await db.schema
        .createTable('retention_rules')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('match', 'text', (c) => c.notNull())
        .addColumn('period_ms', 'bigint', (c) => c.notNull())
        .addColumn('download_limit', 'integer')
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_by', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('audit_log')
        .addColumn('id', 'integer', (c) => (isPostgres(db) ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey().autoIncrement()))
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('transfer_id', 'text')
        .addColumn('detail', 'text')
        .execute();
      await db.schema.createIndex('audit_log_at').on('audit_log').columns(['at']).execute();
      await db.schema.createIndex('audit_log_transfer').on('audit_log').columns(['transfer_id', 'id']).execute();
      // Append-only in the database itself, not just by convention in the code.
      if (isPostgres(db)) {
        await sql`CREATE FUNCTION ferry_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$`.execute(db);
        await sql`CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION ferry_audit_log_append_only()`.execute(db);
      } else {
        await sql`CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END`.execute(db);
        await sql`CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END`.execute(db);
      }
    },
    async down(db: Kysely<any>) {
      await db.schema.dropTable('audit_log').execute();
      if (isPostgres(db)) await sql`DROP FUNCTION IF EXISTS ferry_audit_log_append_only()`.execute(db);
      await db.schema.dropTable('retention_rules').execute();
      await db.schema.dropIndex('transfers_created').execute();
      await db.schema.dropIndex('transfers_purged_at').execute();
      for (const name of ['held', 'sweep_claimed_at', 'sweep_claim', 'purged_at', 'hold_reason', 'held_by', 'held_at', 'max_downloads', 'retention_rule']) {
        await db.schema.alterTable('transfers').dropColumn(name).execute();
      }
    },
  },
};

export const migrationProvider: MigrationProvider = {
  async getMigrations() {
    return migrations;
  },
};
