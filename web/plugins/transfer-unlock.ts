import cookie from '@fastify/cookie';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { addressGroup } from '../../config/ip-ranges.js';
import { isTokenShaped, isTransferUnlocked, landingUrl, passwordLock, type BlobStore, type Db, type Transfer } from '../../storage/index.js';
import { UnavailableError } from '../errors.js';
import { LANGUAGES } from '../i18n.js';
import type { PageContext } from '../pages/layout.js';
import { lockedPage, passwordPage } from '../pages/password.js';
import { globalPlugin } from './global.js';
import { isHttps } from './security-headers.js';

// Password-protected transfers (docs/passwords.md). Registered in the /t/:token scope right
// after transfer-context, this guard stands before every route of a protected transfer: without
// a valid unlock cookie the landing page is the password prompt (200), and every other request
// (a file, the zip, a range, HEAD) gets the same prompt with 403, so a download link opened on
// its own leads to the prompt and no byte, size or name is given out. Routes are guarded unless
// they say otherwise (only POST /unlock does), so a route added later is protected by default.
//
// The unlock cookie holds a random secret whose SHA-256 is stored with the transfer's id
// (storage/transfer-passwords.ts): it opens that transfer only, for web.unlockTtl. HttpOnly,
// SameSite=Strict, Path=<prefix>/t/<token> (the browser sends it for that link and nothing
// else), and over HTTPS Secure with the __Secure- prefix.

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route answers before a protected transfer is unlocked (the unlock form's target). */
    ferryBeforeUnlock?: boolean;
  }
}

export interface PasswordSettings {
  /** web.passwordMaxFailures: wrong guesses from one client address group before it is locked out. Default 10. */
  maxFailures?: number;
  /** web.passwordLockout. Default 1 h. */
  lockoutMs?: number;
  /** web.unlockTtl: how long the unlock cookie works. Default 12 h. */
  unlockTtlMs?: number;
  /** senders.from: the From of the lock notice to the sender. Default ferry@<hostname>. */
  noticeFrom?: string;
  /** smtp.hostname, for the notice's Message-ID. Default the machine's name. */
  hostname?: string;
  /** Password checks (scrypt, 32 MiB and tens of ms each) running at once per process. Default 2. */
  maxConcurrentChecks?: number;
}

export interface TransferUnlockOptions {
  db: Db;
  blobs: BlobStore;
  publicUrl: string;
  now: () => number;
  /** web.trustProxy: whether X-Forwarded-Proto says HTTPS (the cookie is then Secure). */
  trustProxy: boolean;
  /** The pages' CSP; the prompt's form needs form-action 'self' where the others have 'none'. */
  csp: string;
  pageFor: (request: FastifyRequest) => PageContext;
  settings?: PasswordSettings;
}

const HTML = 'text/html; charset=utf-8';

export function unlockCookieName(https: boolean): string {
  return https ? '__Secure-ferry_unlock' : 'ferry_unlock';
}

/** The path of a link's landing page, with the public URL's prefix. */
export function landingPath(publicUrl: string, token: string): string {
  return new URL(landingUrl(publicUrl, token)).pathname;
}

/** "?lang=de" when the request chose a language that way, so the form and the redirect keep it. */
export function langQuery(request: FastifyRequest): string {
  const lang = (request.query as Record<string, unknown> | undefined)?.lang;
  return typeof lang === 'string' && (LANGUAGES as readonly string[]).includes(lang) ? `?lang=${lang}` : '';
}

/** The prompt, with the form posting to this link's /unlock. */
export function sendPrompt(
  opts: TransferUnlockOptions,
  request: FastifyRequest,
  reply: FastifyReply,
  status: number,
  error?: { kind: 'empty' } | { kind: 'wrong'; left: number },
): FastifyReply {
  const { token } = request.params as { token: string };
  const transfer = request.ferryTransfer!;
  const action = `${landingPath(opts.publicUrl, token)}/unlock${langQuery(request)}`;
  return reply
    .code(status)
    .type(HTML)
    .header('vary', 'accept-language')
    .header('content-security-policy', formCsp(opts.csp))
    .send(passwordPage(opts.pageFor(request), { transfer, action, ...(error ? { error } : {}) }, status));
}

export function sendLocked(opts: TransferUnlockOptions, request: FastifyRequest, reply: FastifyReply, transfer: Transfer, lockedUntil: number, everyone: boolean): FastifyReply {
  return reply
    .code(429)
    .type(HTML)
    .header('vary', 'accept-language')
    .header('retry-after', String(Math.max(1, Math.ceil((lockedUntil - opts.now()) / 1000))))
    .send(lockedPage(opts.pageFor(request), transfer, lockedUntil, everyone));
}

/** The recipients' pages forbid forms (form-action 'none'); the prompt posts to this site. */
export function formCsp(csp: string): string {
  return csp.replace("form-action 'none'", "form-action 'self'");
}

export const transferUnlock = globalPlugin<TransferUnlockOptions>('ferry-transfer-unlock', async (app, opts) => {
  const { db, now } = opts;
  await app.register(cookie);

  app.addHook('preHandler', async (request, reply) => {
    const transfer = request.ferryTransfer;
    if (!transfer?.passwordProtected || request.routeOptions.config?.ferryBeforeUnlock) return;
    const https = isHttps(request, opts.trustProxy);
    const secret = request.cookies[unlockCookieName(https)];
    let lock;
    try {
      if (secret && isTokenShaped(secret) && (await isTransferUnlocked(db, transfer.id, secret, now()))) return;
      lock = await passwordLock(db, transfer.id, addressGroup(request.ip), now());
    } catch (err) {
      throw new UnavailableError('unlock check failed', { cause: err });
    }
    if (lock.lockedUntil) return sendLocked(opts, request, reply, transfer, lock.lockedUntil, lock.scope === 'all');
    const isLanding = (request.method === 'GET' || request.method === 'HEAD') && /^\/t\/:token\/?$/.test(request.routeOptions.url ?? '');
    return sendPrompt(opts, request, reply, isLanding ? 200 : 403);
  });
});
