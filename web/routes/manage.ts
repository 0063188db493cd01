import { createHmac } from 'node:crypto';
import formbody from '@fastify/formbody';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import {
  canResend,
  DAY_MS,
  findTransferByManageToken,
  hashToken,
  listFiles,
  listLinks,
  manageUrl,
  recipientStatus,
  resendCopy,
  sameSecret,
  revokeAllBySender,
  revokeLinkBySender,
  SenderActionError,
  senderCanAct,
  senderExpiryBounds,
  setExpiryBySender,
  type BlobStore,
  type Db,
  type RetentionBounds,
  type Transfer,
} from '../../storage/index.js';
import { NotFoundError, UnavailableError } from '../errors.js';
import type { ManageDone, ManageError, ManageStatus } from '../i18n.js';
import { MANAGE_MESSAGES } from '../i18n.js';
import { layout, type PageContext } from '../pages/layout.js';
import { managePage, type ManageExpiry, type ManageFlash } from '../pages/manage.js';
import { html } from '../html.js';

export interface ManageRoutesOptions {
  db: Db;
  blobs: BlobStore;
  publicUrl: string;
  now: () => number;
  /** The pages' CSP (web/plugins/security-headers.ts pageCsp); this page lets its forms post to this site. */
  csp: string;
  /** Retention bounds from the configuration, used when the rules table has none (never seeded). */
  retention: RetentionBounds;
  pageFor: (request: FastifyRequest) => PageContext;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The transfer whose manage token is the `:token` path parameter; set before any /m/:token handler runs. */
    ferryManaged: Transfer | null;
  }
}

const HTML = 'text/html; charset=utf-8';

/**
 * The form token of a management page: an HMAC keyed with the manage token's hash.
 *
 * The page has no session and no cookie: the token in its path is the whole credential. So the
 * classic cross-site request forgery, a foreign page riding on credentials the browser adds by
 * itself, has nothing to ride on: a forged POST works only for someone who already knows the
 * token, and they could act directly. The checks here are defence in depth, and the one that
 * would stop a foreign page is the same-origin check (sameOrigin below). The form token adds that
 * a POST must carry a value only a page rendered for this very transfer contains (or someone who
 * holds its token computes): a form copied from another transfer's page, or put together from
 * the URL alone (a crafted link, an automated tool that was handed the URL), is refused.
 * Keyed with the hash, not the token, so that the value in the page is not the token's own
 * digest; it is stable for the life of the transfer, so a page left open for days still posts.
 */
export function manageFormToken(tokenHash: string): string {
  return createHmac('sha256', tokenHash).update('ferry-manage-form').digest('base64url');
}

function formTokenMatches(tokenHash: string, submitted: unknown): boolean {
  return typeof submitted === 'string' && sameSecret(manageFormToken(tokenHash), submitted);
}

/**
 * Whether a POST came from a page of this site. Browsers say so in Sec-Fetch-Site (every current
 * one); where it is missing, the Origin header decides. NB: the pages send no Referer
 * (Referrer-Policy: no-referrer), and with that policy the Fetch standard has a form POST carry
 * `Origin: null`, so "null" is normal for our own forms: it is accepted only together with
 * Sec-Fetch-Site: same-origin. A request with neither header is not from a browser (no browser
 * that sends neither exists any more); it passes on its form token alone.
 */
export function sameOrigin(request: FastifyRequest, publicUrl: string): boolean {
  const site = request.headers['sec-fetch-site'];
  if (typeof site === 'string') return site === 'same-origin';
  const origin = request.headers.origin;
  if (origin === undefined) return true;
  if (origin === 'null') return false;
  const own = [new URL(publicUrl).origin, `${request.protocol}://${request.host}`];
  return own.includes(origin);
}

function stateOf(t: Transfer, now: number): ManageStatus {
  if (t.state === 'live') return t.expiresAt > now ? 'live' : 'expired';
  return t.state === 'revoked' ? 'revoked' : t.state === 'expired' ? 'expired' : 'deleted';
}

const DONE: readonly ManageDone[] = ['link-revoked', 'revoked', 'expiry', 'resent'];
const ERRORS: Record<SenderActionError['kind'], ManageError> = {
  not_live: 'not-live',
  not_found: 'not-found',
  out_of_bounds: 'out-of-bounds',
  link_revoked: 'link-revoked',
  no_copy: 'no-copy',
  too_soon: 'too-soon',
  busy: 'busy',
};
const ERROR_CODES = new Set<string>(Object.values(ERRORS).concat('confirm'));

type Body = Record<string, unknown> | undefined;
const field = (body: Body, name: string): string => {
  const v = body?.[name];
  return typeof v === 'string' ? v.trim() : '';
};

/**
 * GET /m/:token: the sender's management page; POST /m/:token/revoke, /expiry,
 * /links/:linkId/revoke and /links/:linkId/resend: its actions, each answered with a 303 back to
 * the page and a status line (?done= or ?error=, fixed codes: nothing from the request is shown).
 * Registered in a scope with the token rate limit (plugins/rate-limit.ts), like /t/: a failed
 * look-up counts as a miss, and an address past the miss limit gets 429 for every token.
 */
export const manageRoutes: FastifyPluginAsync<ManageRoutesOptions> = async (app, opts) => {
  const { db, blobs, now } = opts;
  // The recipients' pages forbid forms altogether (form-action 'none'); this one posts to itself.
  const csp = opts.csp.replace("form-action 'none'", "form-action 'self'");
  await app.register(formbody);
  app.decorateRequest('ferryManaged', null);

  app.addHook('preHandler', async (request) => {
    const { token } = request.params as { token?: string };
    let transfer: Transfer | undefined;
    try {
      transfer = await findTransferByManageToken(db, token ?? '');
    } catch (err) {
      throw new UnavailableError('transfer lookup failed', { cause: err });
    }
    // A transfer still being received has sent no receipt: no one can hold its token yet.
    if (!transfer || transfer.state === 'pending') {
      if (app.ferryNoteMiss) await app.ferryNoteMiss(request);
      throw new NotFoundError('unknown manage token');
    }
    request.ferryManaged = transfer;
  });

  const pathOf = (request: FastifyRequest) => new URL(manageUrl(opts.publicUrl, (request.params as { token: string }).token)).pathname;

  app.get('/', async (request, reply) => {
    const transfer = request.ferryManaged!;
    const at = now();
    const canAct = senderCanAct(transfer, at);
    let files, statuses, links, bounds;
    try {
      [files, statuses, links] = await Promise.all([listFiles(db, transfer.id), recipientStatus(db, transfer.id), listLinks(db, transfer.id)]);
      bounds = canAct ? await senderExpiryBounds(db, transfer, opts.retention, at) : undefined;
    } catch (err) {
      throw new UnavailableError('management page lookup failed', { cause: err });
    }
    const byId = new Map(links.map((l) => [l.id, l]));
    let expiry: ManageExpiry | undefined;
    if (bounds) {
      const minDays = Math.max(1, Math.ceil((bounds.earliest - transfer.createdAt) / DAY_MS));
      const maxDays = Math.floor((bounds.latest - transfer.createdAt) / DAY_MS);
      if (minDays <= maxDays) {
        const current = Math.round((transfer.expiresAt - transfer.createdAt) / DAY_MS);
        expiry = { minDays, maxDays, currentDays: Math.min(Math.max(current, minDays), maxDays), earliest: transfer.createdAt + minDays * DAY_MS, latest: transfer.createdAt + maxDays * DAY_MS, cap: bounds.cap };
      }
    }
    const query = (request.query ?? {}) as Record<string, unknown>;
    let flash: ManageFlash | undefined;
    if (typeof query.error === 'string' && ERROR_CODES.has(query.error)) flash = { kind: 'error', what: query.error as ManageError };
    else if (typeof query.done === 'string' && (DONE as readonly string[]).includes(query.done)) {
      const what = query.done as ManageDone;
      const link = typeof query.link === 'string' ? byId.get(query.link) : undefined;
      // A line about one recipient needs that recipient; a made-up link id gets no line at all.
      if (link || (what !== 'link-revoked' && what !== 'resent')) flash = { kind: 'done', what, ...(link ? { recipient: link.recipient } : {}) };
    }
    const page = managePage(opts.pageFor(request), {
      transfer,
      status: stateOf(transfer, at),
      files,
      recipients: statuses.map((s) => ({ status: s, canResend: byId.has(s.linkId) && canResend(byId.get(s.linkId)!) })),
      canAct,
      expiry,
      base: pathOf(request),
      formToken: manageFormToken(hashToken((request.params as { token: string }).token)),
      flash,
    });
    return reply.type(HTML).header('content-security-policy', csp).header('vary', 'accept-language').send(page);
  });

  /** Runs one action after the origin and form-token checks, then 303s back to the page with its outcome. */
  const act = (run: (request: FastifyRequest, transfer: Transfer) => Promise<{ done: ManageDone; link?: string } | { error: ManageError }>) => {
    return async (request: FastifyRequest, reply: FastifyReply) => {
      const transfer = request.ferryManaged!;
      const token = (request.params as { token: string }).token;
      if (!sameOrigin(request, opts.publicUrl) || !formTokenMatches(hashToken(token), (request.body as Body)?._form)) {
        request.log.warn({ client: request.ip, transferId: transfer.id }, 'management form refused: not from this page (origin or form token)');
        const ctx = opts.pageFor(request);
        const m = MANAGE_MESSAGES[ctx.lang];
        return reply
          .code(403)
          .type(HTML)
          .header('vary', 'accept-language')
          .send(layout(ctx, m.refusedTitle, html`<h1>${m.refusedTitle}</h1>\n<div class="card notice"><p>${m.refusedBody}</p></div>`, { status: 403 }));
      }
      let outcome;
      try {
        outcome = await run(request, transfer);
      } catch (err) {
        if (!(err instanceof SenderActionError)) throw err;
        outcome = { error: ERRORS[err.kind] };
      }
      const qs = new URLSearchParams({ lang: opts.pageFor(request).lang });
      if ('error' in outcome) qs.set('error', outcome.error);
      else {
        qs.set('done', outcome.done);
        if (outcome.link) qs.set('link', outcome.link);
      }
      return reply.redirect(`${pathOf(request)}?${qs.toString()}`, 303);
    };
  };

  app.post(
    '/revoke',
    act(async (request, t) => {
      if (field(request.body as Body, 'confirm') !== 'yes') return { error: 'confirm' };
      await revokeAllBySender(db, t, now());
      return { done: 'revoked' };
    }),
  );

  app.post(
    '/expiry',
    act(async (request, t) => {
      const raw = field(request.body as Body, 'days');
      const days = /^\d{1,5}$/.test(raw) ? Number(raw) : NaN;
      if (!Number.isFinite(days)) return { error: 'out-of-bounds' };
      await setExpiryBySender(db, t, t.createdAt + days * DAY_MS, opts.retention, now());
      return { done: 'expiry' };
    }),
  );

  app.post(
    '/links/:linkId/revoke',
    act(async (request, t) => {
      const { linkId } = request.params as { linkId: string };
      await revokeLinkBySender(db, t, linkId, now());
      return { done: 'link-revoked', link: linkId };
    }),
  );

  app.post(
    '/links/:linkId/resend',
    act(async (request, t) => {
      const { linkId } = request.params as { linkId: string };
      await resendCopy(db, blobs, t, linkId, now());
      return { done: 'resent', link: linkId };
    }),
  );
};
