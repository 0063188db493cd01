import type { Selectable } from 'kysely';
import { appendAudit } from './audit.js';
import type { Db } from './database.js';
import type { LinksTable } from './schema.js';
import { newId } from './tokens.js';

// The ways into a transfer (issue 17): each envelope recipient may hold a token of its own over
// the one stored copy, or all share one link (recipient ''). The web resolves tokens through
// links only, so revoking one link shuts out that recipient and nobody else, and the download
// log and limits can tell the recipients apart.

export interface RecipientLink {
  id: string;
  transferId: string;
  /** The envelope address as given; '' for the shared link. */
  recipient: string;
  tokenHash: string;
  createdAt: number;
  revokedAt: number | null;
  revokedBy: string | null;
  /** Blob key of the exact message relayed to this recipient ("send again"); null when none was kept. */
  copyBlobKey: string | null;
}

export interface NewLink {
  id: string;
  recipient: string;
  /** hashToken() of the link's token; the token itself is never stored. */
  tokenHash: string;
  copyBlobKey?: string | null;
}

export function newLinkId(): string {
  return newId();
}

export function toLink(r: Selectable<LinksTable>): RecipientLink {
  return {
    id: r.id,
    transferId: r.transfer_id,
    recipient: r.recipient,
    tokenHash: r.token_hash,
    createdAt: Number(r.created_at),
    revokedAt: r.revoked_at === null || r.revoked_at === undefined ? null : Number(r.revoked_at),
    revokedBy: r.revoked_by ?? null,
    copyBlobKey: r.copy_blob_key ?? null,
  };
}

/** `db` may be a transaction (createTransfer writes a transfer and its links together). */
export async function addLinks(db: Db, transferId: string, links: NewLink[], now = Date.now()): Promise<void> {
  if (links.length === 0) return;
  await db
    .insertInto('links')
    .values(
      links.map((l) => ({
        id: l.id,
        transfer_id: transferId,
        recipient: l.recipient,
        token_hash: l.tokenHash,
        created_at: now,
        copy_blob_key: l.copyBlobKey ?? null,
      })),
    )
    .execute();
}

export async function setCopyBlobKey(db: Db, linkId: string, key: string): Promise<void> {
  await db.updateTable('links').set({ copy_blob_key: key }).where('id', '=', linkId).execute();
}

/** The transfer's links, the shared one included: oldest first, then by recipient (a stable order for pages and the CLI). */
export async function listLinks(db: Db, transferId: string): Promise<RecipientLink[]> {
  const rows = await db.selectFrom('links').selectAll().where('transfer_id', '=', transferId).orderBy('created_at').orderBy('recipient').orderBy('id').execute();
  return rows.map(toLink);
}

/** Audited as 'link_revoked' with the actor; false when unknown or already revoked. */
export async function revokeLink(db: Db, transferId: string, linkId: string, actor: string): Promise<boolean> {
  const run = async (q: Db): Promise<boolean> => {
    const now = Date.now();
    const r = await q
      .updateTable('links')
      .set({ revoked_at: now, revoked_by: actor.slice(0, 200) })
      .where('id', '=', linkId)
      .where('transfer_id', '=', transferId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) return false;
    const link = await q.selectFrom('links').select(['recipient']).where('id', '=', linkId).executeTakeFirstOrThrow();
    await appendAudit(q, { actor, action: 'link_revoked', transferId, at: now, detail: { link: linkId, recipient: link.recipient } });
    return true;
  };
  if (db.isTransaction) return run(db);
  return db.transaction().execute((trx) => run(trx as unknown as Db));
}

/** Blob keys of the recipients' stored copies, for deleting them with the transfer's files. */
export async function copyBlobKeys(db: Db, transferId: string): Promise<string[]> {
  const rows = await db.selectFrom('links').select(['copy_blob_key']).where('transfer_id', '=', transferId).where('copy_blob_key', 'is not', null).execute();
  return rows.map((r) => r.copy_blob_key!).filter((k) => k !== '');
}
