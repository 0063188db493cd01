import type { Generated } from 'kysely';

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

export interface Database {
  transfers: TransfersTable;
  files: FilesTable;
  downloads: DownloadsTable;
}
