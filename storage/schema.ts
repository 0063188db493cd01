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
  /** SHA-256 (hex) of the sender's management token (/m/<token>, migration 0080_links); null = none issued. */
  manage_token_hash: ColumnType<string | null, string | null | undefined, string | null>;
  /** scrypt hash of the transfer's password (storage/transfer-passwords.ts, migration 0081_passwords); null = no password. Never leaves storage/. */
  password_hash: ColumnType<string | null, string | null | undefined, string | null>;
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
  // Malware scanning (migration 0070_scan, storage/scan.ts). Optional in inserts: the database fills the defaults.
  /** clean | infected | unscanned (scanner failed, accepted) | too_large; null = not scanned (scan.engine off). */
  scan_verdict: ColumnType<string | null, string | null | undefined, string | null>;
  /** clamav | icap. */
  scan_engine: ColumnType<string | null, string | null | undefined, string | null>;
  /** The scanner's signature version at the scan ("ClamAV 1.4.6/27471/Tue Dec  1 09:25:02 2026"). */
  scan_version: ColumnType<string | null, string | null | undefined, string | null>;
  /** Name of the signature that matched. */
  scan_signature: ColumnType<string | null, string | null | undefined, string | null>;
  scan_at: ColumnType<number | null, number | null | undefined, number | null>;
  /** 1: no URL returns the file's bytes (quarantined, blocked after a rescan, or deleted by an admin). */
  blocked: ColumnType<number, number | undefined, number>;
  /** quarantine | rescan | deleted. */
  blocked_reason: ColumnType<string | null, string | null | undefined, string | null>;
  blocked_at: ColumnType<number | null, number | null | undefined, number | null>;
  released_at: ColumnType<number | null, number | null | undefined, number | null>;
  released_by: ColumnType<string | null, string | null | undefined, string | null>;
  /** 1: rescan at the next chance whatever the signature version (ferry scan rescan). */
  rescan_due: ColumnType<number, number | undefined, number>;
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
  /**
   * 1 while this request holds one of the file's allowed downloads (migration 0040): from the
   * reservation before its first byte until it ends incomplete; for good once counted.
   */
  slot: ColumnType<number, number | undefined, number>;
  /** The link the request came through (migration 0080_links); null for rows written before links existed. */
  link_id: ColumnType<string | null, string | null | undefined, string | null>;
  /** 1 once a download notice or digest covered this row, or none ever will (migration 0082_sender_notices). */
  notified: ColumnType<number, number | undefined, number>;
}

/** Links whose first complete download the sender was told about (worker/download-notices.ts). */
export interface DownloadNoticesTable {
  /** The link's id, or the transfer's for downloads recorded without a link. */
  link_key: string;
  transfer_id: string;
  sent_at: number;
}

/** Each sender's last download digest (worker/download-notices.ts). */
export interface SenderDigestsTable {
  sender: string;
  /** The digest time up to which the last digest covered downloads. */
  cutoff: number;
  sent_at: number;
}

/**
 * The ways into a transfer (migration 0080_links, storage/recipient-links.ts): one per envelope
 * recipient, or one shared link (recipient ''). The web resolves tokens through this table only.
 */
export interface LinksTable {
  id: string;
  transfer_id: string;
  /** The envelope address as given; '' for the shared link. */
  recipient: string;
  /** SHA-256 (hex) of the link's token. */
  token_hash: string;
  created_at: number;
  revoked_at: ColumnType<number | null, number | null | undefined, number | null>;
  /** Who revoked it ("sender:ADDRESS", "admin:NAME"). */
  revoked_by: ColumnType<string | null, string | null | undefined, string | null>;
  /** The exact message relayed to this recipient, kept for "send again"; deleted with the transfer's files. */
  copy_blob_key: ColumnType<string | null, string | null | undefined, string | null>;
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
  /** 1: transfers this rule applies to get a password (migration 0081_passwords). */
  require_password: number;
  /** 1/0: receipts to the sender on/off for this rule; null = the rule is silent (senders.receipts decides). */
  receipts: number | null;
}

/**
 * Wrong password guesses per transfer and client address group, and the lock they lead to
 * (migration 0081_passwords, storage/transfer-passwords.ts). client_group '*' counts every
 * address together.
 */
export interface PasswordFailuresTable {
  transfer_id: string;
  /** config/ip-ranges.ts addressGroup() of the client, or '*'. */
  client_group: string;
  failures: number;
  locked_until: number | null;
  updated_at: number;
  /** On the '*' row: when the sender was last told of a lock. */
  notified_at: ColumnType<number | null, number | null | undefined, number | null>;
}

/** The server side of unlock cookies (storage/transfer-passwords.ts): only the secret's SHA-256 is kept. */
export interface TransferUnlocksTable {
  secret_hash: string;
  transfer_id: string;
  created_at: number;
  expires_at: number;
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
  /** SHA-256 of the previous row's canonical form (storage/audit.ts auditRowHash; migration 0060_audit_chain). */
  prev_hash: ColumnType<string | null, string | null | undefined, never>;
}

/** One row (id 1): the newest audit entry's id and hash, the head of the chain. */
export interface AuditChainTable {
  id: number;
  last_id: number;
  last_hash: string;
}

/** Admin UI sessions (storage/admin-sessions.ts): server-side, so logout and revocation end them everywhere. */
export interface AdminSessionsTable {
  /** Public id, shown in the sessions list and used to revoke; not the cookie's secret. */
  id: string;
  /** SHA-256 (hex) of the session id in the cookie; the id itself is never stored. */
  secret_hash: string;
  /** The admin: a token's NAME, or the e-mail address single sign-on gave. */
  name: string;
  role: 'admin' | 'readonly';
  method: 'token' | 'oidc';
  /** The token's public id (token sessions), so removing a token from the configuration ends its sessions. */
  token_id: string | null;
  client: string | null;
  user_agent: string | null;
  created_at: number;
  last_seen_at: number;
  /** Absolute end (admin.session.maxAge after login), whatever the activity. */
  expires_at: number;
  ended_at: number | null;
  /** "logout", or the admin who revoked it ("admin:NAME"). */
  ended_by: string | null;
}

export interface Database {
  admin_sessions: AdminSessionsTable;
  transfers: TransfersTable;
  files: FilesTable;
  downloads: DownloadsTable;
  links: LinksTable;
  retention_rules: RetentionRulesTable;
  password_failures: PasswordFailuresTable;
  transfer_unlocks: TransferUnlocksTable;
  audit_log: AuditLogTable;
  audit_chain: AuditChainTable;
  queue_entries: QueueEntriesTable;
  download_notices: DownloadNoticesTable;
  sender_digests: SenderDigestsTable;
}
