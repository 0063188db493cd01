import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { clientKey } from '../web/plugins/rate-limit.js';

// Failed admin authentications (API requests with a wrong token, UI logins with a wrong token)
// are counted per client address. A request with no credential at all is not a failure: a
// proxy without web.trustProxy puts every client behind one address, and browsers, monitors and
// link checkers that hit /admin/api without a token must not lock the admins out.
//
// Past `max` failures in the window the address is blocked until the window ends, but the
// credential is still checked, after `delayMs`: a wrong one gets 429 (and counts again), a right
// one gets in. So a correct token is never locked out for longer than that short delay (the
// attack run locked every admin out for 600 s with token-less requests), while each further
// guess costs the guesser the delay. Tokens are at least 24 characters (the schema refuses
// less), so this is defence in depth against a weak one, like the download links' limiter.

export interface AdminAuthLimitOptions {
  /** Failed authentications per client address per window. Default 20. */
  max?: number;
  /** Default 10 minutes. */
  windowMs?: number;
  /** How long a blocked address waits before its credential is checked. Default 2 s. */
  delayMs?: number;
}

export interface AdminAuthLimiter {
  /**
   * Call before checking a credential. Resolves at once, with undefined, when the address may
   * try; when it is blocked, after the delay, with the seconds the block has left.
   */
  gate(request: FastifyRequest): Promise<number | undefined>;
  /** Counts one wrong credential. */
  fail(request: FastifyRequest): Promise<void>;
}

const MAX_BLOCKED = 10_000;

export const NO_LIMIT: AdminAuthLimiter = { gate: async () => undefined, fail: async () => undefined };

export async function adminAuthLimiter(app: FastifyInstance, opts: AdminAuthLimitOptions = {}): Promise<AdminAuthLimiter> {
  await app.register(rateLimit, { global: false });
  const keyGenerator = (req: FastifyRequest) => clientKey(req.ip);
  const failures = app.createRateLimit({ max: opts.max ?? 20, timeWindow: opts.windowMs ?? 600_000, keyGenerator });
  const delayMs = opts.delayMs ?? 2000;
  const blocked = new Map<string, number>();
  const blockedFor = (request: FastifyRequest): number | undefined => {
    const key = keyGenerator(request);
    const until = blocked.get(key);
    if (until === undefined) return undefined;
    const left = until - Date.now();
    if (left > 0) return Math.ceil(left / 1000);
    blocked.delete(key);
    return undefined;
  };
  return {
    async gate(request) {
      const wait = blockedFor(request);
      if (wait !== undefined && delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      return wait;
    },
    async fail(request) {
      const r = await failures(request);
      // isAllowed is true only for an allow-listed key (none here); the max-th failure still
      // gets its 401, and from then on the address is blocked until the window ends.
      if (!r.isAllowed && (r.remaining === 0 || r.isExceeded)) {
        if (blocked.size >= MAX_BLOCKED) blocked.delete(blocked.keys().next().value!);
        blocked.set(r.key, Date.now() + r.ttl);
      }
    },
  };
}
