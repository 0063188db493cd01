import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { addressGroup } from '../../config/ip-ranges.js';
import { RateLimitedError } from '../errors.js';

// Token look-ups are limited per client address with @fastify/rate-limit, in two tiers:
// - every request under /t/ counts against a generous limit (default 300 a minute), which a
//   recipient with a download manager does not reach but a flood does;
// - failed look-ups (unknown, malformed, pending or deleted tokens) count against a strict one
//   (default 20 in 10 minutes); once it is reached, the address gets 429 for every look-up, good tokens
//   included, until the window ends, so guessing is cut off without telling the guesser anything.
// A company behind one NAT address that opens the same link a hundred times is not affected
// by the second tier, because its look-ups succeed. Tokens carry 160 random bits, so this is
// defence in depth, and protection of the database, rather than what keeps tokens secret.

export interface RateLimitOptions {
  /** Requests under /t/ per client address per window. Default 300. */
  max?: number;
  /** Default 60 s. */
  windowMs?: number;
  /** Failed token look-ups per client address per miss window before the address is refused. Default 20. */
  missMax?: number;
  /** Default 10 minutes. */
  missWindowMs?: number;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Set by the token rate limiter: call after a look-up found nothing. */
    ferryNoteMiss?: (request: FastifyRequest) => Promise<void>;
  }
}

const MAX_BLOCKED = 10_000;

/** The key of a client for the limits: its address group (config/ip-ranges.ts: IPv4 address, or IPv6 /64). */
export const clientKey = (ip: string): string => addressGroup(ip);

export async function registerTokenRateLimit(app: FastifyInstance, opts: RateLimitOptions): Promise<void> {
  await app.register(rateLimit, { global: false });
  const keyGenerator = (req: FastifyRequest) => clientKey(req.ip);
  const lookups = app.createRateLimit({ max: opts.max ?? 300, timeWindow: opts.windowMs ?? 60_000, keyGenerator });
  const misses = app.createRateLimit({ max: opts.missMax ?? 20, timeWindow: opts.missWindowMs ?? 600_000, keyGenerator });
  // Addresses past the miss limit, and until when. The store of @fastify/rate-limit has no way
  // to look at a counter without incrementing it, which a check on every request would need.
  const blocked = new Map<string, number>();

  app.addHook('onRequest', async (request) => {
    const key = keyGenerator(request);
    const until = blocked.get(key);
    if (until !== undefined) {
      const left = until - Date.now();
      if (left > 0) throw new RateLimitedError(Math.ceil(left / 1000));
      blocked.delete(key);
    }
    const r = await lookups(request);
    if (!r.isAllowed && r.isExceeded) throw new RateLimitedError(Math.max(1, r.ttlInSeconds));
  });

  app.decorate('ferryNoteMiss', async (request: FastifyRequest) => {
    const r = await misses(request);
    // The missMax-th failure still gets its 404; from then on the address gets 429 until the window ends.
    if (!r.isAllowed && r.remaining === 0) {
      if (blocked.size >= MAX_BLOCKED) blocked.delete(blocked.keys().next().value!);
      blocked.set(r.key, Date.now() + r.ttl);
    }
  });
}
