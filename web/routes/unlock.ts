import os from 'node:os';
import formbody from '@fastify/formbody';
import type {} from '@fastify/rate-limit';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { addressGroup } from '../../config/ip-ranges.js';
import {
  appendAudit,
  claimLockNotice,
  clearPasswordFailures,
  createTransferUnlock,
  isOwnAddress,
  newToken,
  passwordLock,
  recordPasswordFailure,
  Semaphore,
  transferPasswordHash,
  verifyTransferPassword,
  type FailureLimits,
  type LockState,
} from '../../storage/index.js';
import { RateLimitedError, UnavailableError } from '../errors.js';
import { errorPage } from '../pages/status.js';
import { queueLockNotice } from '../password-notice.js';
import { isHttps } from '../plugins/security-headers.js';
import { landingPath, langQuery, sendLocked, sendPrompt, unlockCookieName, type TransferUnlockOptions } from '../plugins/transfer-unlock.js';

// POST /t/:token/unlock: the password prompt's form (docs/passwords.md).
//
// Every answer to a wrong password is the same whatever was typed, and while a lock holds the
// password is not even checked: the right one gets the very same lock page as a wrong one. A
// check costs one scrypt (32 MiB, tens of ms of a libuv thread, which file reads share), so:
// at most `maxConcurrentChecks` run at once per process and a few more may wait; beyond that,
// and past 30 attempts in 10 minutes from one address group, the answer is 429 at once.
// The password is read from the body and handed to scrypt, and is never logged: Fastify's
// request logging is off (web/app.ts) and the access log has no body.

const MAX_WAITING = 16;
const WAIT_MS = 10_000;
const ATTEMPTS_MAX = 30;
const ATTEMPTS_WINDOW_MS = 600_000;
/** A botnet gets this many times web.passwordMaxFailures in all before everyone is locked out. */
export const ALL_ADDRESSES_FACTOR = 5;

const HTML = 'text/html; charset=utf-8';

function field(body: unknown, name: string): string {
  const v = (body as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' ? v : Array.isArray(v) && typeof v[0] === 'string' ? v[0] : '';
}

export const unlockRoutes: FastifyPluginAsync<TransferUnlockOptions> = async (app, opts) => {
  const { db, now } = opts;
  const s = opts.settings ?? {};
  const maxFailures = s.maxFailures ?? 10;
  const limits: FailureLimits = { maxFailures, maxFailuresAll: maxFailures * ALL_ADDRESSES_FACTOR, lockoutMs: s.lockoutMs ?? 3_600_000 };
  const unlockTtlMs = s.unlockTtlMs ?? 12 * 3_600_000;
  const hostname = s.hostname ?? os.hostname();
  const noticeFrom = s.noticeFrom ?? `ferry@${hostname}`;
  const checks = new Semaphore(s.maxConcurrentChecks ?? 2);
  // The token rate limiter of the scope (web/plugins/rate-limit.ts) brings @fastify/rate-limit;
  // without it (rate limits off) only the concurrency cap holds.
  const attempts = app.hasDecorator('createRateLimit')
    ? app.createRateLimit({ max: ATTEMPTS_MAX, timeWindow: ATTEMPTS_WINDOW_MS, keyGenerator: (req: FastifyRequest) => `unlock:${addressGroup(req.ip)}` })
    : undefined;

  await app.register(formbody);

  /**
   * One scrypt at a time per slot; a full queue is refused rather than left to grow. The lock is
   * read again once the slot is ours, and again after a right password: a burst of parallel
   * guesses all passed the route's first look before any of them was counted, so without these
   * the guesses queued behind the one that locked would still be tried, and a right one among
   * them would unlock a transfer that is locked.
   */
  async function check(pw: string, hash: string, lockOf: () => Promise<LockState>): Promise<{ right: boolean; lock: LockState }> {
    if (checks.waiting >= MAX_WAITING) throw new RateLimitedError(5);
    let release: () => void;
    try {
      release = await checks.acquire(AbortSignal.timeout(WAIT_MS));
    } catch {
      throw new RateLimitedError(5);
    }
    try {
      const before = await lockOf();
      if (before.lockedUntil) return { right: false, lock: before };
      const right = await verifyTransferPassword(pw, hash);
      return { right, lock: right ? await lockOf() : {} };
    } finally {
      release();
    }
  }

  // The language links of a page answered from the POST are relative ("?lang=de") and so lead
  // here with a GET: back to the link's page in that language, prompt or files.
  app.get<{ Params: { token: string } }>('/unlock', { config: { ferryBeforeUnlock: true } }, async (request, reply) =>
    reply.redirect(`${landingPath(opts.publicUrl, request.params.token)}${langQuery(request)}`, 303),
  );

  app.post<{ Params: { token: string } }>('/unlock', { config: { ferryBeforeUnlock: true } }, async (request, reply) => {
    const transfer = request.ferryTransfer!;
    const landing = `${landingPath(opts.publicUrl, request.params.token)}${langQuery(request)}`;
    if (!transfer.passwordProtected) return reply.redirect(landing, 303);
    // Another site's page cannot post guesses from a recipient's browser (and so lock out the
    // recipient's network): browsers say where a form came from.
    if (request.headers['sec-fetch-site'] === 'cross-site') {
      return reply.code(403).type(HTML).header('vary', 'accept-language').send(errorPage(opts.pageFor(request), 403));
    }
    if (attempts) {
      const r = await attempts(request);
      if (!r.isAllowed && r.isExceeded) throw new RateLimitedError(Math.max(1, r.ttlInSeconds));
    }
    const group = addressGroup(request.ip);
    const at = now();
    let hash: string | undefined;
    try {
      const lock = await passwordLock(db, transfer.id, group, at);
      if (lock.lockedUntil) return sendLocked(opts, request, reply, transfer, lock.lockedUntil, lock.scope === 'all');
      hash = await transferPasswordHash(db, transfer.id);
    } catch (err) {
      throw new UnavailableError('password lookup failed', { cause: err });
    }
    if (!hash) return reply.redirect(landing, 303);
    const pw = field(request.body, 'password');
    // An empty form is not a guess: not counted.
    if (!pw.trim()) return sendPrompt(opts, request, reply, 400, { kind: 'empty' });

    let outcome;
    try {
      outcome = await check(pw, hash, () => passwordLock(db, transfer.id, group, now()));
    } catch (err) {
      if (err instanceof RateLimitedError) throw err;
      throw new UnavailableError('password lookup failed', { cause: err });
    }
    if (outcome.lock.lockedUntil) return sendLocked(opts, request, reply, transfer, outcome.lock.lockedUntil, outcome.lock.scope === 'all');
    if (outcome.right) {
      const secret = newToken();
      const https = isHttps(request, opts.trustProxy);
      try {
        await createTransferUnlock(db, transfer.id, secret, now(), unlockTtlMs);
        await clearPasswordFailures(db, transfer.id, group);
      } catch (err) {
        throw new UnavailableError('storing the unlock failed', { cause: err });
      }
      reply.setCookie(unlockCookieName(https), secret, {
        path: landingPath(opts.publicUrl, request.params.token),
        httpOnly: true,
        sameSite: 'strict',
        secure: https,
        maxAge: Math.floor(unlockTtlMs / 1000),
      });
      return reply.redirect(landing, 303);
    }

    let failure;
    try {
      failure = await recordPasswordFailure(db, transfer.id, group, limits, now());
    } catch (err) {
      throw new UnavailableError('counting a wrong password failed', { cause: err });
    }
    if (failure.newlyLocked) {
      request.log.warn({ transferId: transfer.id, client: group, scope: failure.scope, until: failure.lockedUntil }, 'transfer locked after wrong passwords');
      try {
        await appendAudit(db, {
          actor: `web:${request.ip}`,
          action: 'password_locked',
          transferId: transfer.id,
          detail: { client: failure.scope === 'all' ? '*' : group, until: new Date(failure.lockedUntil!).toISOString() },
        });
        // Never to Ferry's own address, which anyone may have written as the envelope sender.
        if (!isOwnAddress(transfer.sender, noticeFrom) && (await claimLockNotice(db, transfer.id, limits, now()))) {
          await queueLockNotice(
            { db, blobs: opts.blobs, hostname },
            noticeFrom,
            transfer,
            { ...(failure.scope === 'all' ? {} : { group }), lockedUntil: failure.lockedUntil!, maxFailures },
            now(),
          );
        }
      } catch (err) {
        // The lock holds whatever happens to the notice; the recipient's answer does not wait for it.
        request.log.error({ err, transferId: transfer.id }, 'could not record or announce a password lock');
      }
    }
    if (failure.lockedUntil) return sendLocked(opts, request, reply, transfer, failure.lockedUntil, failure.scope === 'all');
    return sendPrompt(opts, request, reply, 403, { kind: 'wrong', left: failure.left });
  });
};
