import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { clientKey } from '../web/plugins/rate-limit.js';

// Failed admin authentications (API requests with a wrong token, UI logins with a wrong token)
// are counted per client address. Past `max` in the window, the address gets 429 for every
// admin authentication, right token included, until the window ends: guessing is cut off
// without telling the guesser whether a guess was right. Tokens are long and random, so this is
// defence in depth (against a weak token someone chose), like the download links' limiter.

export interface AdminAuthLimitOptions {
  /** Failed authentications per client address per window. Default 20. */
  max?: number;
  /** Default 10 minutes. */
  windowMs?: number;
}

export interface AdminAuthLimiter {
  /** Seconds the client must wait, or undefined when it may try. */
  blockedFor(request: FastifyRequest): number | undefined;
  /** Counts one failed authentication. */
  fail(request: FastifyRequest): Promise<void>;
}

const MAX_BLOCKED = 10_000;

export const NO_LIMIT: AdminAuthLimiter = { blockedFor: () => undefined, fail: async () => undefined };

export async function adminAuthLimiter(app: FastifyInstance, opts: AdminAuthLimitOptions = {}): Promise<AdminAuthLimiter> {
  await app.register(rateLimit, { global: false });
  const keyGenerator = (req: FastifyRequest) => clientKey(req.ip);
  const failures = app.createRateLimit({ max: opts.max ?? 20, timeWindow: opts.windowMs ?? 600_000, keyGenerator });
  const blocked = new Map<string, number>();
  return {
    blockedFor(request) {
      const key = keyGenerator(request);
      const until = blocked.get(key);
      if (until === undefined) return undefined;
      const left = until - Date.now();
      if (left > 0) return Math.ceil(left / 1000);
      blocked.delete(key);
      return undefined;
    },
    async fail(request) {
      const r = await failures(request);
      // isAllowed is true only for an allow-listed key (none here); the max-th failure still
      // gets its 401, and from then on the address gets 429 until the window ends.
      if (!r.isAllowed && (r.remaining === 0 || r.isExceeded)) {
        if (blocked.size >= MAX_BLOCKED) blocked.delete(blocked.keys().next().value!);
        blocked.set(r.key, Date.now() + r.ttl);
      }
    },
  };
}
