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
};

export const migrationProvider: MigrationProvider = {
  async getMigrations() {
    return migrations;
  },
};
