import { AdminActionError, type AdminActionErrorKind } from './admin-actions.js';
import type { Db } from './database.js';
import { getTransfer } from './records.js';
import { listLinks, revokeLink, type RecipientLink } from './recipient-links.js';

// An admin shuts out one recipient (issue 17 item 6): that recipient's link answers 410, the
// other recipients' links keep working. Shared by the admin API, the admin UI and
// `ferry transfers revoke ID --recipient ADDRESS`; each revocation is audited by revokeLink.

/** An AdminActionError whose code says what was missing, so API clients need not parse the message. */
export class RecipientLinkError extends AdminActionError {
  override readonly code: string;
  constructor(kind: AdminActionErrorKind, code: string, message: string) {
    super(kind, message);
    this.name = 'RecipientLinkError';
    this.code = code;
  }
}

/** Which link: a recipient's address (case-insensitive; its every link) or one link's id. */
export type LinkChoice = { recipient: string } | { linkId: string };

/** Revokes the chosen links; returns them as they were before. Throws RecipientLinkError when there is nothing to revoke. */
export async function revokeRecipientLinks(db: Db, transferId: string, which: LinkChoice, actor: string): Promise<RecipientLink[]> {
  if (!(await getTransfer(db, transferId))) throw new RecipientLinkError('not_found', 'FERRY_ERR_TRANSFER_NOT_FOUND', `no transfer ${transferId}`);
  const links = await listLinks(db, transferId);
  const chosen =
    'linkId' in which ? links.filter((l) => l.id === which.linkId) : links.filter((l) => l.recipient !== '' && l.recipient.toLowerCase() === which.recipient.trim().toLowerCase());
  if (chosen.length === 0) {
    const named = links.filter((l) => l.recipient !== '').map((l) => l.recipient);
    const what = 'linkId' in which ? `no link ${which.linkId}` : `no link of its own for ${which.recipient}`;
    throw new RecipientLinkError(
      'not_found',
      'FERRY_ERR_RECIPIENT_NOT_FOUND',
      `transfer ${transferId} has ${what}; ${named.length ? `its recipients with links of their own: ${named.join(', ')}` : 'its recipients share one link: revoke the transfer instead'}`,
    );
  }
  const open = chosen.filter((l) => l.revokedAt === null);
  if (open.length === 0) throw new RecipientLinkError('conflict', 'FERRY_ERR_LINK_REVOKED', `the link of ${chosen[0]!.recipient || 'the transfer'} was revoked already (${new Date(chosen[0]!.revokedAt!).toISOString()} by ${chosen[0]!.revokedBy ?? 'unknown'})`);
  const revoked: RecipientLink[] = [];
  // A link revoked meanwhile by someone else is simply not in the answer.
  for (const l of open) if (await revokeLink(db, transferId, l.id, actor)) revoked.push(l);
  return revoked;
}
