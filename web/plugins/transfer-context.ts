import type { FastifyRequest } from 'fastify';
import { findLinkByTokenHash, hashToken, isTokenShaped, tokenMatches, type Db, type RecipientLink, type Transfer } from '../../storage/index.js';
import { GoneError, NotFoundError, UnavailableError } from '../errors.js';
import { globalPlugin } from './global.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The live transfer named by the `:token` path parameter; set before any /t/:token handler runs. */
    ferryTransfer: Transfer | null;
    /** The link whose token that is (storage/recipient-links.ts): limits and the download log are per link. */
    ferryLink: RecipientLink | null;
  }
}

export interface TransferContextOptions {
  db: Db;
  now: () => number;
}

/** Compared against when a look-up finds nothing; no token hashes to it. */
const NO_TOKEN_HASH = '0'.repeat(64);

/**
 * Looks a token up, through the transfer's links (storage/recipient-links.ts), and decides
 * whether its files may be served. Unknown, malformed, pending and deleted transfers all answer
 * 404 (a probe cannot tell them apart); expired and revoked ones 410, and so does a revoked link
 * of a transfer that is otherwise live (only its own recipient ever held that token).
 *
 * Every token, well-formed or not, is hashed and looked up: a bad token costs the same work as
 * a good one up to the answer, so response times do not tell a guesser which guesses were
 * well-formed, and the lookup is by hash, so they cannot tell how close a guess came.
 */
export async function resolveLiveLink(db: Db, token: string, now: number): Promise<{ link: RecipientLink; transfer: Transfer }> {
  const shaped = isTokenShaped(token);
  let found: { link: RecipientLink; transfer: Transfer } | undefined;
  try {
    found = await findLinkByTokenHash(db, hashToken(token));
  } catch (err) {
    throw new UnavailableError('transfer lookup failed', { cause: err });
  }
  // The lookup is by hash equality in SQL; confirm in constant time before trusting it. The
  // comparison runs for a miss too (against a hash no token has), so a token that exists but is
  // pending or deleted costs exactly what an unknown one does.
  const matches = tokenMatches(token, found?.link.tokenHash ?? NO_TOKEN_HASH);
  if (!shaped || !found || !matches) throw new NotFoundError(shaped ? 'unknown token' : 'malformed token');
  const { link, transfer } = found;
  switch (transfer.state) {
    case 'pending':
    case 'deleted':
      throw new NotFoundError(`transfer ${transfer.state}`);
    case 'expired':
    case 'revoked':
      throw new GoneError(transfer.state, transfer.expiresAt, transfer.sender);
    case 'live':
      // The sweeper may not have run yet: the clock, not the state, decides.
      if (transfer.expiresAt <= now) throw new GoneError('expired', transfer.expiresAt, transfer.sender);
      if (link.revokedAt !== null) throw new GoneError('revoked', transfer.expiresAt, transfer.sender);
      return { link, transfer };
    default:
      throw new NotFoundError('unknown transfer state');
  }
}

/** Every route registered in the same scope gets `request.ferryTransfer` and `request.ferryLink`, or never runs. */
export const transferContext = globalPlugin<TransferContextOptions>('ferry-transfer-context', async (app, { db, now }) => {
  app.decorateRequest('ferryTransfer', null);
  app.decorateRequest('ferryLink', null);
  app.addHook('preHandler', async (request: FastifyRequest) => {
    const { token } = request.params as { token?: string };
    try {
      const { link, transfer } = await resolveLiveLink(db, token ?? '', now());
      request.ferryTransfer = transfer;
      request.ferryLink = link;
    } catch (err) {
      if (err instanceof NotFoundError && app.ferryNoteMiss) await app.ferryNoteMiss(request);
      throw err;
    }
  });
});
