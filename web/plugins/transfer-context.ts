import type { FastifyRequest } from 'fastify';
import { findTransferByTokenHash, hashToken, isTokenShaped, tokenMatches, type Db, type Transfer } from '../../storage/index.js';
import { GoneError, NotFoundError, UnavailableError } from '../errors.js';
import { globalPlugin } from './global.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The live transfer named by the `:token` path parameter; set before any /t/:token handler runs. */
    ferryTransfer: Transfer | null;
  }
}

export interface TransferContextOptions {
  db: Db;
  now: () => number;
}

/**
 * Looks a token up and decides whether its files may be served. Unknown, pending and deleted
 * transfers all answer 404 (a probe cannot tell them apart); expired and revoked ones 410.
 */
export async function resolveLiveTransfer(db: Db, token: string, now: number): Promise<Transfer> {
  // A malformed token never reaches the database.
  if (!isTokenShaped(token)) throw new NotFoundError('malformed token');
  let transfer: Transfer | undefined;
  try {
    transfer = await findTransferByTokenHash(db, hashToken(token));
  } catch (err) {
    throw new UnavailableError('transfer lookup failed', { cause: err });
  }
  // The lookup is by hash equality in SQL; confirm in constant time before trusting it.
  if (!transfer || !tokenMatches(token, transfer.tokenHash)) throw new NotFoundError('unknown token');
  switch (transfer.state) {
    case 'pending':
    case 'deleted':
      throw new NotFoundError(`transfer ${transfer.state}`);
    case 'expired':
    case 'revoked':
      throw new GoneError(transfer.state, transfer.expiresAt);
    case 'live':
      // The sweeper may not have run yet: the clock, not the state, decides.
      if (transfer.expiresAt <= now) throw new GoneError('expired', transfer.expiresAt);
      return transfer;
    default:
      throw new NotFoundError('unknown transfer state');
  }
}

/** Every route registered in the same scope gets `request.ferryTransfer`, or never runs. */
export const transferContext = globalPlugin<TransferContextOptions>('ferry-transfer-context', async (app, { db, now }) => {
  app.decorateRequest('ferryTransfer', null);
  app.addHook('preHandler', async (request: FastifyRequest) => {
    const { token } = request.params as { token?: string };
    request.ferryTransfer = await resolveLiveTransfer(db, token ?? '', now());
  });
});
