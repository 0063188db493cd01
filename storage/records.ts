import type { Selectable } from 'kysely';
import { appendAudit } from './audit.js';
import type { Db } from './database.js';
import { storedName } from './filenames.js';
import { addLinks, newLinkId, toLink, type NewLink, type RecipientLink } from './recipient-links.js';
import type { BlockReason } from './scan.js';
import type { FilesTable, TransfersTable, TransferState } from './schema.js';

// The records of transfers and their files. Plain functions over a Kysely handle; the
// gateway writes them, the web reads them.

export interface NewTransfer {
  id: string;
  tokenHash: string;
  queueId: string;
  sender: string;
  recipients: string[];
  subject: string | null;
  messageId: string | null;
  createdAt: number;
  expiresAt: number;
  /** The retention rule that chose expiresAt (storage/retention.ts). */
  retentionRule?: string | null;
  /** That rule's download limit; null or absent = the site's web.maxDownloads. */
  maxDownloads?: number | null;
  /** hashToken() of the sender's management token (/m/<token>); absent = none issued. */
  manageTokenHash?: string | null;
  /** hashTransferPassword() of the transfer's password (storage/transfer-passwords.ts); absent = no password. */
  passwordHash?: string | null;
  /**
   * The transfer's links (storage/recipient-links.ts). Absent: one shared link (recipient '')
   * whose token is the one tokenHash stands for.
   */
  links?: NewLink[];
}

export interface NewFile {
  transferId: string;
  idx: number;
  name: string;
  contentType: string;
  size: number;
  sha256: string;
  blobKey: string;
}

export interface Transfer {
  id: string;
  tokenHash: string;
  state: TransferState;
  queueId: string;
  sender: string;
  recipients: string[];
  subject: string | null;
  messageId: string | null;
  createdAt: number;
  expiresAt: number;
  fileCount: number;
  totalBytes: number;
  /** The retention rule that chose expiresAt; "admin" once an admin changed it; null before retention rules existed. */
  retentionRule: string | null;
  /** Download limit set by the retention rule; null = the site's web.maxDownloads. */
  maxDownloads: number | null;
  /** Legal hold: never swept while true. */
  held: boolean;
  heldAt: number | null;
  heldBy: string | null;
  holdReason: string | null;
  /** When the blobs were deleted; null while they exist. */
  purgedAt: number | null;
  /** SHA-256 of the sender's management token; null when none was issued. */
  manageTokenHash: string | null;
  /** The landing page asks for a password before anything is shown or served. The hash itself never leaves storage/. */
  passwordProtected: boolean;
}

export interface StoredFile {
  transferId: string;
  idx: number;
  name: string;
  contentType: string;
  size: number;
  sha256: string;
  blobKey: string;
  createdAt: number;
  /** No URL may return its bytes: quarantined, blocked after a rescan, or deleted (storage/scan.ts). */
  blocked: boolean;
  blockedReason: BlockReason | null;
}

/** A transfers row as a Transfer (also for queries elsewhere in storage/, e.g. admin-queries.ts). */
export function toTransfer(r: Selectable<TransfersTable>): Transfer {
  return {
    id: r.id,
    tokenHash: r.token_hash,
    state: r.state,
    queueId: r.queue_id,
    sender: r.sender,
    recipients: JSON.parse(r.recipients) as string[],
    subject: r.subject,
    messageId: r.message_id,
    createdAt: Number(r.created_at),
    expiresAt: Number(r.expires_at),
    fileCount: Number(r.file_count),
    totalBytes: Number(r.total_bytes),
    retentionRule: r.retention_rule ?? null,
    maxDownloads: r.max_downloads === null || r.max_downloads === undefined ? null : Number(r.max_downloads),
    held: Number(r.held ?? 0) === 1,
    heldAt: r.held_at === null || r.held_at === undefined ? null : Number(r.held_at),
    heldBy: r.held_by ?? null,
    holdReason: r.hold_reason ?? null,
    purgedAt: r.purged_at === null || r.purged_at === undefined ? null : Number(r.purged_at),
    manageTokenHash: r.manage_token_hash ?? null,
    passwordProtected: !!r.password_hash,
  };
}

function toFile(r: Selectable<FilesTable>): StoredFile {
  return {
    transferId: r.transfer_id,
    idx: Number(r.idx),
    name: r.name,
    contentType: r.content_type,
    size: Number(r.size),
    sha256: r.sha256,
    blobKey: r.blob_key,
    createdAt: Number(r.created_at),
    blocked: Number(r.blocked ?? 0) === 1,
    blockedReason: (r.blocked_reason as BlockReason | null) ?? null,
  };
}

export async function createTransfer(db: Db, t: NewTransfer): Promise<void> {
  // The transfer and its links commit together: a transfer is only ever reached through a link.
  if (!db.isTransaction) return db.transaction().execute((trx) => createTransfer(trx as unknown as Db, t));
  await db
    .insertInto('transfers')
    .values({
      id: t.id,
      token_hash: t.tokenHash,
      state: 'pending',
      queue_id: t.queueId,
      sender: t.sender,
      recipients: JSON.stringify(t.recipients),
      subject: t.subject,
      message_id: t.messageId,
      created_at: t.createdAt,
      expires_at: t.expiresAt,
      file_count: 0,
      total_bytes: 0,
      retention_rule: t.retentionRule ?? null,
      max_downloads: t.maxDownloads ?? null,
      manage_token_hash: t.manageTokenHash ?? null,
      password_hash: t.passwordHash ?? null,
    })
    .execute();
  await addLinks(db, t.id, t.links ?? [{ id: newLinkId(), recipient: '', tokenHash: t.tokenHash }], t.createdAt);
}

export async function addFile(db: Db, f: NewFile): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx
      .insertInto('files')
      .values({
        transfer_id: f.transferId,
        idx: f.idx,
        // The one place names enter the records: cleaned and capped (storage/filenames.ts).
        name: storedName(f.name),
        content_type: f.contentType,
        size: f.size,
        sha256: f.sha256,
        blob_key: f.blobKey,
        created_at: Date.now(),
      })
      .execute();
    await trx
      .updateTable('transfers')
      .set((eb) => ({ file_count: eb('file_count', '+', 1), total_bytes: eb('total_bytes', '+', f.size) }))
      .where('id', '=', f.transferId)
      .execute();
  });
}

/** pending -> live, once the next hop has the message. */
export async function markLive(db: Db, transferId: string): Promise<void> {
  const r = await db.updateTable('transfers').set({ state: 'live' }).where('id', '=', transferId).where('state', '=', 'pending').executeTakeFirst();
  // Audit: only the call that made the change records it (a retry finds the row live already).
  if (Number(r.numUpdatedRows) === 1) await auditGoneLive(db, transferId);
}

async function auditGoneLive(db: Db, transferId: string): Promise<void> {
  const t = await getTransfer(db, transferId);
  if (!t) return;
  await appendAudit(db, { actor: 'gateway', action: 'stored', transferId, detail: { files: t.fileCount, bytes: t.totalBytes, sender: t.sender } });
  await appendAudit(db, {
    actor: 'gateway',
    action: 'link_issued',
    transferId,
    detail: { recipients: t.recipients, expiresAt: new Date(t.expiresAt).toISOString(), rule: t.retentionRule, maxDownloads: t.maxDownloads },
  });
}

export async function setState(db: Db, transferId: string, state: TransferState): Promise<void> {
  await db.updateTable('transfers').set({ state }).where('id', '=', transferId).execute();
}

export async function getTransfer(db: Db, transferId: string): Promise<Transfer | undefined> {
  const r = await db.selectFrom('transfers').selectAll().where('id', '=', transferId).executeTakeFirst();
  return r ? toTransfer(r) : undefined;
}

/** The transfer a link's token leads to (storage/recipient-links.ts; revoked links too), as the web resolves it. */
export async function findTransferByTokenHash(db: Db, tokenHash: string): Promise<Transfer | undefined> {
  const r = await db
    .selectFrom('links')
    .innerJoin('transfers', 'transfers.id', 'links.transfer_id')
    .selectAll('transfers')
    .where('links.token_hash', '=', tokenHash)
    .executeTakeFirst();
  return r ? toTransfer(r) : undefined;
}

export async function listFiles(db: Db, transferId: string): Promise<StoredFile[]> {
  const rows = await db.selectFrom('files').selectAll().where('transfer_id', '=', transferId).orderBy('idx').execute();
  return rows.map(toFile);
}

export async function getFile(db: Db, transferId: string, idx: number): Promise<StoredFile | undefined> {
  const r = await db.selectFrom('files').selectAll().where('transfer_id', '=', transferId).where('idx', '=', idx).executeTakeFirst();
  return r ? toFile(r) : undefined;
}

/** Removes the records of a transfer (its files and downloads go with it). The caller deletes blobs first. */
export async function deleteTransferRecords(db: Db, transferId: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx.deleteFrom('downloads').where('transfer_id', '=', transferId).execute();
    await trx.deleteFrom('links').where('transfer_id', '=', transferId).execute();
    await trx.deleteFrom('transfer_unlocks').where('transfer_id', '=', transferId).execute();
    await trx.deleteFrom('password_failures').where('transfer_id', '=', transferId).execute();
    await trx.deleteFrom('files').where('transfer_id', '=', transferId).execute();
    await trx.deleteFrom('transfers').where('id', '=', transferId).execute();
  });
}

/** Downloads that counted (full bodies actually sent) for a transfer, for the per-transfer limit. */
export async function countCountedDownloads(db: Db, transferId: string): Promise<number> {
  const r = await db
    .selectFrom('downloads')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('transfer_id', '=', transferId)
    .where('counted', '=', 1)
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

export async function countTransfers(db: Db): Promise<number> {
  const r = await db.selectFrom('transfers').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(r.n);
}

export interface DownloadRecord {
  transferId: string;
  fileIdx: number | null;
  status: number;
  bytesSent: number;
  range: string | null;
  client: string | null;
  userAgent: string | null;
  counted: boolean;
  scanner?: boolean;
  method?: string;
  /** The link the request came through (storage/recipient-links.ts). */
  linkId?: string | null;
}

export async function recordDownload(db: Db, d: DownloadRecord): Promise<void> {
  await db
    .insertInto('downloads')
    .values({
      transfer_id: d.transferId,
      link_id: d.linkId ?? null,
      file_idx: d.fileIdx,
      at: Date.now(),
      status: d.status,
      bytes_sent: d.bytesSent,
      range: d.range,
      client: d.client,
      user_agent: d.userAgent ? d.userAgent.slice(0, 500) : null,
      counted: d.counted ? 1 : 0,
      // A counted download holds its slot of the limit (storage/download-slots.ts).
      slot: d.counted ? 1 : 0,
      scanner: d.scanner ? 1 : 0,
      method: d.method ?? null,
    })
    .execute();
  // The download log keeps every request; the audit log only the downloads that counted.
  if (d.counted) {
    await appendAudit(db, {
      actor: d.client ? `web:${d.client}` : 'web',
      action: 'downloaded',
      transferId: d.transferId,
      detail: { file: d.fileIdx, bytes: d.bytesSent },
    });
  }
}

/**
 * Used-up downloads per file of a transfer (a zip counts for every file in it): what
 * web.maxDownloads and rule limits are checked against. Counted downloads plus the ones running
 * now, which hold a slot (storage/download-slots.ts).
 */
export interface DownloadUse {
  /** Slots held per file index, zips included. */
  used(idx: number): number;
}

/** With `linkId`, the use of that link only: the limit applies per recipient's link (storage/download-slots.ts). */
export async function downloadUse(db: Db, transferId: string, linkId?: string | null): Promise<DownloadUse> {
  const rows = await db
    .selectFrom('downloads')
    .select(['file_idx', (eb) => eb.fn.countAll<number>().as('n')])
    .where('transfer_id', '=', transferId)
    .$if(linkId != null, (b) => b.where('link_id', '=', linkId!))
    .where('slot', '=', 1)
    .groupBy('file_idx')
    .execute();
  let zips = 0;
  const byFile = new Map<number, number>();
  for (const r of rows) {
    if (r.file_idx === null) zips += Number(r.n);
    else byFile.set(Number(r.file_idx), Number(r.n));
  }
  return { used: (idx) => (byFile.get(idx) ?? 0) + zips };
}

/**
 * The link whose token hashes to `tokenHash`, with its transfer, in one query. Whatever their
 * states: the caller decides what a revoked link or an expired transfer answers.
 */
export async function findLinkByTokenHash(db: Db, tokenHash: string): Promise<{ link: RecipientLink; transfer: Transfer } | undefined> {
  const r = await db
    .selectFrom('links')
    .innerJoin('transfers', 'transfers.id', 'links.transfer_id')
    .selectAll('transfers')
    .select([
      'links.id as l_id',
      'links.transfer_id as l_transfer_id',
      'links.recipient as l_recipient',
      'links.token_hash as l_token_hash',
      'links.created_at as l_created_at',
      'links.revoked_at as l_revoked_at',
      'links.revoked_by as l_revoked_by',
      'links.copy_blob_key as l_copy_blob_key',
    ])
    .where('links.token_hash', '=', tokenHash)
    .executeTakeFirst();
  if (!r) return undefined;
  return {
    link: toLink({
      id: r.l_id,
      transfer_id: r.l_transfer_id,
      recipient: r.l_recipient,
      token_hash: r.l_token_hash,
      created_at: r.l_created_at,
      revoked_at: r.l_revoked_at,
      revoked_by: r.l_revoked_by,
      copy_blob_key: r.l_copy_blob_key,
    }),
    transfer: toTransfer(r),
  };
}
