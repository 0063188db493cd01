import type { ColumnType, Generated } from 'kysely';

// Table types for Kysely. Times are milliseconds since the epoch (integers), which every
// database stores the same way; JSON lists are TEXT.

export type TransferState = 'pending' | 'live' | 'expired' | 'revoked' | 'deleted';

export interface TransfersTable {
  id: string;
  token_hash: string;
  state: TransferState;
  /** Queue id the SMTP client was given; also in the logs. */
  queue_id: string;
  sender: string;
  /** JSON array of envelope recipients. */
  recipients: string;
  subject: string | null;
  message_id: string | null;
  created_at: number;
  expires_at: number;
  file_count: number;
  total_bytes: number;
  // Retention and administration (migration 0020_retention). Columns are optional in the
  // insert type so code written before them keeps compiling; the database fills the defaults.
  /** Id of the retention rule that chose expires_at ("default", "recipient_domain:example.com", "admin"). */
  retention_rule: ColumnType<string | null, string | null | undefined, string | null>;
  /** Download limit the rule set for this transfer; null = the site's web.maxDownloads. */
  max_downloads: ColumnType<number | null, number | null | undefined, number | null>;
  /** 1 while on legal hold: never swept. */
  held: ColumnType<number, number | undefined, number>;
  held_at: ColumnType<number | null, number | null | undefined, number | null>;
  held_by: ColumnType<string | null, string | null | undefined, string | null>;
  hold_reason: ColumnType<string | null, string | null | undefined, string | null>;
  /** When the blobs were deleted (expiry, revocation or delete now); null while they exist. */
  purged_at: ColumnType<number | null, number | null | undefined, number | null>;
  /** Worker that owns this row for a sweep step, and since when (a lease; see worker/sweeper.ts). */
  sweep_claim: ColumnType<string | null, string | null | undefined, string | null>;
  sweep_claimed_at: ColumnType<number | null, number | null | undefined, number | null>;
}

export interface FilesTable {
  transfer_id: string;
  /** 1-based position in the transfer, as in the links. */
  idx: number;
  name: string;
  content_type: string;
  size: number;
  sha256: string;
  blob_key: string;
  created_at: number;
}

export interface DownloadsTable {
  id: Generated<number>;
  transfer_id: string;
  /** null for a whole-transfer download (zip). */
  file_idx: number | null;
  at: number;
  status: number;
  bytes_sent: number;
  range: string | null;
  client: string | null;
  user_agent: string | null;
  counted: number;
  /** 1 when the request came from a known scanner or link prefetcher. */
  scanner: number;
  /** GET or HEAD. */
  method: string | null;
}

/** A message waiting for the next hop (see storage/queue.ts, docs/queue.md). */
export interface QueueEntriesTable {
  /** The queue id the SMTP client was given (or a new one for a DSN). */
  id: string;
  /** 'message' (a client's message) or 'dsn' (a delivery status notification Ferry wrote). */
  kind: string;
  /** The transfer whose links the message carries; null when nothing was offloaded. */
  transfer_id: string | null;
  /** Envelope sender; '' for the null sender (DSNs). */
  sender: string;
  /** JSON array of QueueRecipient: every recipient with its own state. */
  recipients: string;
  /** DSN parameters from MAIL FROM (RFC 3461), passed on to the next hop. */
  dsn_ret: string | null;
  dsn_envid: string | null;
  /** The message bytes in the blob store. */
  blob_key: string;
  size: number;
  created_at: number;
  next_attempt_at: number;
  attempts: number;
  last_error: string | null;
  /** Worker delivering the entry right now, until lease_until (0 = nobody). */
  lease_owner: string | null;
  lease_until: number;
  /** 1 once the delay warning went out. */
  warned: number;
  /** 'bounce' when an admin asked to return the message to its sender. */
  cancel: string | null;
}

export type RetentionRuleKind = 'default' | 'minimum' | 'maximum' | 'sender' | 'sender_domain' | 'recipient_domain';

/** Retention settings and rules, editable at run time (storage/retention.ts). */
export interface RetentionRulesTable {
  /** "default", "minimum", "maximum", or KIND:MATCH such as "sender_domain:example.com". */
  id: string;
  kind: RetentionRuleKind;
  /** Lower-case address or domain; '' for default, minimum and maximum. */
  match: string;
  period_ms: number;
  download_limit: number | null;
  /** "config" rows follow the configuration file at each start; "admin" rows were set at run time and are kept. */
  source: 'config' | 'admin';
  updated_at: number;
  updated_by: string;
}

/** Append-only record of admin actions and lifecycle events (storage/audit.ts). */
export interface AuditLogTable {
  id: Generated<number>;
  at: number;
  /** Who: "admin:NAME", "cli:USER", "gateway", "web", "sweeper:WORKER". */
  actor: string;
  action: string;
  transfer_id: string | null;
  /** JSON object with what changed. */
  detail: string | null;
}

export interface Database {
  transfers: TransfersTable;
  files: FilesTable;
  downloads: DownloadsTable;
  retention_rules: RetentionRulesTable;
  audit_log: AuditLogTable;
  queue_entries: QueueEntriesTable;
}
