import { type Kysely, type Migration, type MigrationProvider, sql } from 'kysely';
import { AUDIT_GENESIS_HASH, auditRowHash } from './audit-chain.js';
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
  '0040_download_slots': {
    // Download limits that hold under concurrency (web/download-log.ts, storage/download-slots.ts):
    // a downloads row with slot = 1 holds one of its file's allowed downloads, from before the
    // first byte is sent (the reservation) until it is known to be incomplete (released) or for
    // good (counted). Rows already counted hold theirs.
    async up(db: Kysely<any>) {
      await db.schema.alterTable('downloads').addColumn('slot', 'integer', (c) => c.notNull().defaultTo(0)).execute();
      await db.updateTable('downloads').set({ slot: 1 }).where('counted', '=', 1).execute();
      await db.schema.createIndex('downloads_slots').on('downloads').columns(['transfer_id', 'slot', 'file_idx']).execute();
      await db.schema.createIndex('downloads_client').on('downloads').columns(['transfer_id', 'file_idx', 'client']).execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.dropIndex('downloads_client').execute();
      await db.schema.dropIndex('downloads_slots').execute();
      await db.schema.alterTable('downloads').dropColumn('slot').execute();
    },
  },
  '0050_admin_sessions': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('admin_sessions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('secret_hash', 'text', (c) => c.notNull().unique())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('method', 'text', (c) => c.notNull())
        .addColumn('token_id', 'text')
        .addColumn('client', 'text')
        .addColumn('user_agent', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('ended_at', 'bigint')
        .addColumn('ended_by', 'text')
        .execute();
      await db.schema.createIndex('admin_sessions_expires').on('admin_sessions').columns(['expires_at']).execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.dropTable('admin_sessions').execute();
    },
  },
  '0060_audit_chain': {
    // The audit log refuses REPLACE and UPSERT, not only UPDATE and DELETE: SQLite's
    // INSERT OR REPLACE deletes the old row without firing delete triggers (recursive_triggers
    // is off), so a BEFORE INSERT trigger refuses an id that exists. And the hash chain
    // (storage/audit.ts): prev_hash on every row, the head in audit_chain; rows written before
    // this migration are chained here, in id order.
    async up(db: Kysely<any>) {
      await db.schema.alterTable('audit_log').addColumn('prev_hash', 'text').execute();
      await db.schema
        .createTable('audit_chain')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('last_id', 'bigint', (c) => c.notNull())
        .addColumn('last_hash', 'text', (c) => c.notNull())
        .execute();
      const pg = isPostgres(db);
      if (pg) await sql`ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only`.execute(db);
      else await sql`DROP TRIGGER audit_log_no_update`.execute(db);
      let prev = AUDIT_GENESIS_HASH;
      let lastId = 0;
      for (;;) {
        const rows = await db.selectFrom('audit_log').selectAll().where('id', '>', lastId).orderBy('id').limit(1000).execute();
        for (const r of rows) {
          await db.updateTable('audit_log').set({ prev_hash: prev }).where('id', '=', r.id).execute();
          prev = auditRowHash({ id: r.id, at: r.at, actor: r.actor, action: r.action, transfer_id: r.transfer_id, detail: r.detail, prev_hash: prev });
          lastId = Number(r.id);
        }
        if (rows.length < 1000) break;
      }
      await db.insertInto('audit_chain').values({ id: 1, last_id: lastId, last_hash: prev }).execute();
      if (pg) {
        await sql`ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only`.execute(db);
        await sql`CREATE FUNCTION ferry_audit_log_no_replace() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id) THEN RAISE EXCEPTION 'audit_log is append-only: entry % exists', NEW.id; END IF; RETURN NEW; END $$`.execute(db);
        await sql`CREATE TRIGGER audit_log_no_replace BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION ferry_audit_log_no_replace()`.execute(db);
        // INSERT ... ON CONFLICT DO UPDATE fires the UPDATE trigger of 0020; TRUNCATE fires no row trigger at all.
        await sql`CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION ferry_audit_log_append_only()`.execute(db);
      } else {
        await sql`CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END`.execute(db);
        // NB: a BEFORE INSERT trigger runs before conflict resolution, so INSERT OR REPLACE and
        // REPLACE INTO stop here instead of silently deleting the old row.
        await sql`CREATE TRIGGER audit_log_no_replace BEFORE INSERT ON audit_log WHEN NEW.id IS NOT NULL AND EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id) BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END`.execute(db);
      }
    },
    async down(db: Kysely<any>) {
      if (isPostgres(db)) {
        await sql`DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log`.execute(db);
        await sql`DROP TRIGGER IF EXISTS audit_log_no_replace ON audit_log`.execute(db);
        await sql`DROP FUNCTION IF EXISTS ferry_audit_log_no_replace()`.execute(db);
        await sql`ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only`.execute(db);
      } else {
        await sql`DROP TRIGGER IF EXISTS audit_log_no_replace`.execute(db);
        await sql`DROP TRIGGER IF EXISTS audit_log_no_update`.execute(db);
      }
      await db.schema.dropTable('audit_chain').execute();
      await db.schema.alterTable('audit_log').dropColumn('prev_hash').execute();
      if (isPostgres(db)) await sql`ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only`.execute(db);
      else await sql`CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END`.execute(db);
    },
  },
  '0070_scan': {
    // Malware scanning (storage/scan.ts): each file's verdict, and whether it is blocked.
    async up(db: Kysely<any>) {
      await db.schema
        .alterTable('files')
        .addColumn('scan_verdict', 'text')
        .execute();
      for (const [name, type] of [
        ['scan_engine', 'text'],
        ['scan_version', 'text'],
        ['scan_signature', 'text'],
        ['scan_at', 'bigint'],
        ['blocked_reason', 'text'],
        ['blocked_at', 'bigint'],
        ['released_at', 'bigint'],
        ['released_by', 'text'],
      ] as const) {
        await db.schema.alterTable('files').addColumn(name, type).execute();
      }
      await db.schema.alterTable('files').addColumn('blocked', 'integer', (c) => c.notNull().defaultTo(0)).execute();
      await db.schema.alterTable('files').addColumn('rescan_due', 'integer', (c) => c.notNull().defaultTo(0)).execute();
      await db.schema.createIndex('files_scan_version').on('files').columns(['scan_engine', 'scan_version']).execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.dropIndex('files_scan_version').execute();
      for (const name of ['rescan_due', 'blocked', 'released_by', 'released_at', 'blocked_at', 'blocked_reason', 'scan_at', 'scan_signature', 'scan_version', 'scan_engine', 'scan_verdict']) {
        await db.schema.alterTable('files').dropColumn(name).execute();
      }
    },
  },
  '0080_links': {
    // Per-recipient links (storage/recipient-links.ts): a transfer is reached through its links
    // only. Each existing transfer gets its shared link (recipient ''), whose token is the one
    // its recipients already hold, so old links keep working.
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('links')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('transfer_id', 'text', (c) => c.notNull().references('transfers.id').onDelete('cascade'))
        .addColumn('recipient', 'text', (c) => c.notNull())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('revoked_at', 'bigint')
        .addColumn('revoked_by', 'text')
        .addColumn('copy_blob_key', 'text')
        .execute();
      await db.schema.createIndex('links_transfer').on('links').columns(['transfer_id']).execute();
      // The shared link's id is the transfer's own (unique, and needs no random source in SQL).
      await sql`INSERT INTO links (id, transfer_id, recipient, token_hash, created_at) SELECT id, id, '', token_hash, created_at FROM transfers`.execute(db);
      await db.schema.alterTable('downloads').addColumn('link_id', 'text').execute();
      // Downloads so far came through the shared link (whose id is the transfer's): they keep
      // using up its allowance.
      await sql`UPDATE downloads SET link_id = transfer_id`.execute(db);
      await db.schema.createIndex('downloads_link_slots').on('downloads').columns(['link_id', 'slot', 'file_idx']).execute();
      await db.schema.alterTable('transfers').addColumn('manage_token_hash', 'text').execute();
      await db.schema.createIndex('transfers_manage_token').on('transfers').column('manage_token_hash').unique().execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.dropIndex('transfers_manage_token').execute();
      await db.schema.alterTable('transfers').dropColumn('manage_token_hash').execute();
      await db.schema.dropIndex('downloads_link_slots').execute();
      await db.schema.alterTable('downloads').dropColumn('link_id').execute();
      await db.schema.dropTable('links').execute();
    },
  },
  '0081_passwords': {
    // Password-protected transfers (storage/transfer-passwords.ts, docs/passwords.md): the
    // password's scrypt hash on the transfer, wrong guesses per client address group with the
    // lock they lead to, the server side of unlock cookies, and the retention rules' switches
    // for passwords and sender receipts.
    async up(db: Kysely<any>) {
      await db.schema.alterTable('transfers').addColumn('password_hash', 'text').execute();
      await db.schema
        .createTable('password_failures')
        .addColumn('transfer_id', 'text', (c) => c.notNull())
        .addColumn('client_group', 'text', (c) => c.notNull())
        .addColumn('failures', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('locked_until', 'bigint')
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('notified_at', 'bigint')
        .addPrimaryKeyConstraint('password_failures_pk', ['transfer_id', 'client_group'])
        .execute();
      await db.schema
        .createTable('transfer_unlocks')
        .addColumn('secret_hash', 'text', (c) => c.primaryKey())
        .addColumn('transfer_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('transfer_unlocks_expires').on('transfer_unlocks').columns(['expires_at']).execute();
      await db.schema.createIndex('transfer_unlocks_transfer').on('transfer_unlocks').columns(['transfer_id']).execute();
      await db.schema.alterTable('retention_rules').addColumn('require_password', 'integer', (c) => c.notNull().defaultTo(0)).execute();
      await db.schema.alterTable('retention_rules').addColumn('receipts', 'integer').execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.alterTable('retention_rules').dropColumn('receipts').execute();
      await db.schema.alterTable('retention_rules').dropColumn('require_password').execute();
      await db.schema.dropTable('transfer_unlocks').execute();
      await db.schema.dropTable('password_failures').execute();
      await db.schema.alterTable('transfers').dropColumn('password_hash').execute();
    },
  },
  '0082_sender_notices': {
    // Download notices to senders (worker/download-notices.ts, docs/senders.md): which download
    // rows a notice or digest has covered, which links had their first-download notice, and up
    // to which moment each sender's last digest went out. Downloads before this migration are
    // history: marked covered, so turning notices on never mails about them.
    async up(db: Kysely<any>) {
      await db.schema.alterTable('downloads').addColumn('notified', 'integer', (c) => c.notNull().defaultTo(0)).execute();
      await sql`UPDATE downloads SET notified = 1`.execute(db);
      await db.schema.createIndex('downloads_notify').on('downloads').columns(['notified', 'counted']).execute();
      await db.schema
        .createTable('download_notices')
        // The link's id; for downloads recorded without a link, the transfer's (its shared link's id).
        .addColumn('link_key', 'text', (c) => c.primaryKey())
        .addColumn('transfer_id', 'text', (c) => c.notNull().references('transfers.id').onDelete('cascade'))
        .addColumn('sent_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('download_notices_transfer').on('download_notices').columns(['transfer_id']).execute();
      await db.schema
        .createTable('sender_digests')
        .addColumn('sender', 'text', (c) => c.primaryKey())
        // The digest time the last digest covered downloads up to.
        .addColumn('cutoff', 'bigint', (c) => c.notNull())
        .addColumn('sent_at', 'bigint', (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.dropTable('sender_digests').execute();
      await db.schema.dropTable('download_notices').execute();
      await db.schema.dropIndex('downloads_notify').execute();
      await db.schema.alterTable('downloads').dropColumn('notified').execute();
    },
  },
};

export const migrationProvider: MigrationProvider = {
  async getMigrations() {
    return migrations;
  },
};
