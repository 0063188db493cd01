import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import {
  AdminActionError,
  adminStats,
  appendAudit,
  AUDIT_ACTIONS,
  DAY_MS,
  deleteRule,
  deleteTransferNow,
  holdTransfer,
  listAudit,
  listRules,
  MATCH_KINDS,
  parseRuleId,
  queueStats,
  reapplyRetention,
  releaseTransfer,
  RetentionRuleError,
  revokeTransfer,
  searchTransfers,
  setRule,
  setTransferExpiry,
  transferDetail,
  type MatchKind,
  type TransferState,
} from '../storage/index.js';
import { isHttps } from '../web/plugins/security-headers.js';
import { assetVersion } from '../web/routes/assets.js';
import { ADMIN_CSS } from './admin-css.js';
import { auditExportStream, exportHeaders } from './api.js';
import { toApiError } from './api-errors.js';
import { checkCsrf, checkLoginNonce, csrfToken, issueSession, matchToken, newLoginNonce, verifySession } from './auth.js';
import type { AdminContext } from './context.js';
import { queueUi } from './queue-ui.js';
import type { AdminPage } from './layout.js';
import {
  auditPage,
  dashboardPage,
  loginPage,
  messagePage,
  rulesPage,
  transferPage,
  transfersPage,
  type RuleFormValues,
  type SearchValues,
} from './pages.js';
import { auditExportQuery, describeIssues, transferSearchQuery } from './schemas.js';

// The admin UI under /admin. Login with an admin token gives a session cookie (HttpOnly,
// SameSite=Strict, Secure over TLS, path /admin); every form that changes something carries a
// CSRF token derived from the session (auth.ts) and is refused without it. No JavaScript.

const SESSION_COOKIE = 'ferry_admin';
const NONCE_COOKIE = 'ferry_admin_login';
const HTML = 'text/html; charset=utf-8';
/** Like the download pages' CSP (no script at all here), but forms may post to this site. */
export function adminCsp(logoUrl?: string): string {
  let img = "'self' data:";
  if (logoUrl && /^https:\/\//i.test(logoUrl)) img += ` ${new URL(logoUrl).origin}`;
  return `default-src 'none'; style-src 'self'; img-src ${img}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`;
}

type Body = Record<string, unknown> | undefined;
const field = (body: Body, name: string): string => {
  const v = body?.[name];
  return typeof v === 'string' ? v.trim() : Array.isArray(v) && typeof v[0] === 'string' ? v[0].trim() : '';
};

export const adminUi: FastifyPluginAsync<{ ctx: AdminContext }> = async (app, { ctx }) => {
  await app.register(cookie);
  await app.register(formbody);
  app.decorateRequest('ferryAdminCsrf', '');
  const cssVersion = assetVersion(ADMIN_CSS);
  const page = (request: FastifyRequest, active?: AdminPage['active']): AdminPage => ({
    base: ctx.base,
    stylesheet: ctx.stylesheet,
    adminStylesheet: `${ctx.base}/assets/admin.css?v=${cssVersion}`,
    icon: ctx.icon,
    brandName: ctx.brand.name,
    ...(ctx.brand.logoUrl ? { logoUrl: ctx.brand.logoUrl } : {}),
    ...(request.ferryAdmin ? { admin: request.ferryAdmin.name, csrf: request.ferryAdminCsrf } : {}),
    ...(active ? { active } : {}),
  });
  const cookieOptions = (request: FastifyRequest, maxAgeSeconds?: number) => ({
    path: ctx.base,
    httpOnly: true,
    sameSite: 'strict' as const,
    secure: isHttps(request, ctx.trustProxy),
    ...(maxAgeSeconds !== undefined ? { maxAge: maxAgeSeconds } : {}),
  });

  const csp = adminCsp(ctx.brand.logoUrl);
  app.addHook('onRequest', async (_request, reply) => {
    reply.header('content-security-policy', csp);
  });
  app.setNotFoundHandler((request, reply) => reply.code(404).type(HTML).send(messagePage(page(request), 'Not found', 'There is no such admin page.', 404)));
  app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const e = toApiError(err);
    const status = e?.statusCode ?? ((err as { statusCode?: number }).statusCode ?? 500);
    if (status >= 500) request.log.error({ err }, 'admin page failed');
    const message = e?.message ?? (status < 500 ? 'The request could not be understood.' : 'Something went wrong; see the server log.');
    return reply.code(status).type(HTML).send(messagePage(page(request), status < 500 ? 'Cannot do that' : 'Error', message, status));
  });

  app.get('/assets/admin.css', async (_request, reply) => reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=86400').send(ADMIN_CSS));

  // ---- login ----
  const showLogin = (request: FastifyRequest, reply: FastifyReply, error?: string) => {
    const nonce = newLoginNonce();
    reply.setCookie(NONCE_COOKIE, nonce, cookieOptions(request, 3600));
    return reply.code(error ? 401 : 200).type(HTML).send(loginPage(page(request), nonce, error));
  };
  app.get('/login', async (request, reply) => {
    if (verifySession(ctx.tokens, request.cookies[SESSION_COOKIE], ctx.now(), ctx.sessionTtlMs)) return reply.redirect(ctx.base, 303);
    return showLogin(request, reply);
  });
  app.post('/login', async (request, reply) => {
    const body = request.body as Body;
    if (!checkLoginNonce(request.cookies[NONCE_COOKIE], body?._nonce)) {
      return reply.code(403).type(HTML).send(messagePage(page(request), 'Form expired', 'The login form expired or did not come from this site. Reload the login page and try again.', 403));
    }
    const wait = ctx.authLimit.blockedFor(request);
    if (wait !== undefined) {
      reply.header('retry-after', String(wait));
      return reply.code(429).type(HTML).send(messagePage(page(request), 'Too many attempts', `Too many failed logins from your address. Try again in ${Math.ceil(wait / 60)} minutes.`, 429));
    }
    const admin = matchToken(ctx.tokens, field(body, 'token'));
    if (!admin) {
      await ctx.authLimit.fail(request);
      request.log.warn({ client: request.ip }, 'admin login with a wrong token');
      return showLogin(request, reply, 'That is not an admin token.');
    }
    reply.setCookie(SESSION_COOKIE, issueSession(admin, ctx.now()), cookieOptions(request, Math.floor(ctx.sessionTtlMs / 1000)));
    reply.clearCookie(NONCE_COOKIE, cookieOptions(request));
    await appendAudit(ctx.db, { actor: `admin:${admin.name}`, action: 'admin_login', detail: { client: request.ip } });
    return reply.redirect(ctx.base, 303);
  });

  // ---- everything else needs a session; every POST its CSRF token ----
  await app.register(async (app) => {
    app.addHook('preHandler', async (request, reply) => {
      const session = request.cookies[SESSION_COOKIE];
      const admin = verifySession(ctx.tokens, session, ctx.now(), ctx.sessionTtlMs);
      if (!admin) {
        if (request.method === 'GET' || request.method === 'HEAD') return reply.redirect(`${ctx.base}/login`, 303);
        return reply.code(403).type(HTML).send(messagePage(page(request), 'Not logged in', 'Your session has ended. Log in again and repeat the change.', 403));
      }
      request.ferryAdmin = admin;
      request.ferryAdminCsrf = csrfToken(admin, session!);
      if (request.method === 'POST' && !checkCsrf(admin, session!, (request.body as Body)?._csrf)) {
        request.log.warn({ client: request.ip, url: request.url }, 'admin form without a valid CSRF token refused');
        return reply.code(403).type(HTML).send(messagePage(page(request), 'Form refused', 'This form did not come from this admin page (no valid CSRF token). Reload the page and try again.', 403));
      }
    });
    const actor = (request: FastifyRequest) => `admin:${request.ferryAdmin!.name}`;

    app.post('/logout', async (request, reply) => {
      reply.clearCookie(SESSION_COOKIE, cookieOptions(request));
      return reply.redirect(`${ctx.base}/login`, 303);
    });

    app.get('/', async (request, reply) => {
      const stats = await adminStats(ctx.db, { days: 30, now: ctx.now() });
      return reply.type(HTML).send(dashboardPage(page(request, 'dashboard'), stats, await queueStats(ctx.db, ctx.now())));
    });

    app.get('/transfers', async (request, reply) => {
      const raw = Object.fromEntries(Object.entries((request.query as Record<string, unknown>) ?? {}).filter(([, v]) => typeof v === 'string' && v.trim() !== '')) as Record<string, string>;
      const values: SearchValues = { sender: raw.sender, recipient: raw.recipient, file: raw.file, from: raw.from, to: raw.to, state: raw.state };
      const parsed = transferSearchQuery.safeParse(raw);
      if (!parsed.success) {
        return reply.code(400).type(HTML).send(transfersPage(page(request, 'transfers'), values, [], null, ctx.now(), describeIssues(parsed.error).message));
      }
      const q = parsed.data;
      let result;
      try {
        result = await searchTransfers(ctx.db, { sender: q.sender, recipient: q.recipient, fileName: q.file, from: q.from, to: q.to, state: q.state as TransferState | 'held' | undefined, limit: q.limit, cursor: q.cursor }, ctx.now());
      } catch (err) {
        const e = toApiError(err);
        if (!e) throw err;
        return reply.code(400).type(HTML).send(transfersPage(page(request, 'transfers'), values, [], null, ctx.now(), e.message));
      }
      let nextUrl: string | null = null;
      if (result.nextCursor) {
        const qs = new URLSearchParams({ ...Object.fromEntries(Object.entries(values).filter(([, v]) => v)), ...(raw.limit ? { limit: String(q.limit) } : {}), cursor: result.nextCursor });
        nextUrl = `${ctx.base}/transfers?${qs.toString()}`;
      }
      return reply.type(HTML).send(transfersPage(page(request, 'transfers'), values, result.items, nextUrl, ctx.now()));
    });

    const showTransfer = async (request: FastifyRequest, reply: FastifyReply, id: string, extra: { done?: unknown; error?: string }, status = 200) => {
      const d = await transferDetail(ctx.db, id);
      if (!d) return reply.code(404).type(HTML).send(messagePage(page(request, 'transfers'), 'Not found', `There is no transfer ${id}.`, 404));
      const audit = await listAudit(ctx.db, { transferId: id, limit: 200 });
      return reply.code(status).type(HTML).send(transferPage(page(request, 'transfers'), d, audit, ctx.maxDownloads, ctx.now(), extra));
    };

    app.get('/transfers/:id', async (request, reply) => {
      const { id } = request.params as { id: string };
      return showTransfer(request, reply, id, { done: (request.query as Record<string, unknown>)?.done });
    });

    app.post('/transfers/:id/:action', async (request, reply) => {
      const { id, action } = request.params as { id: string; action: string };
      const body = request.body as Body;
      const who = actor(request);
      try {
        switch (action) {
          case 'revoke':
            await revokeTransfer(ctx.db, id, who, field(body, 'reason') || undefined);
            break;
          case 'extend': {
            const addDays = field(body, 'addDays');
            const until = field(body, 'until');
            const d = await transferDetail(ctx.db, id, 0);
            if (!d) throw new AdminActionError('not_found', `There is no transfer ${id}.`);
            let expiresAt: number;
            if (addDays && !until) {
              const n = Number(addDays);
              if (!Number.isFinite(n) || n === 0) throw new AdminActionError('out_of_bounds', 'Enter a number of days other than 0, such as 7 or -3.');
              expiresAt = d.transfer.expiresAt + n * DAY_MS;
            } else if (until && !addDays) {
              // Keep the time of day of the current expiry: a date alone moves it by whole days.
              const t = Date.parse(`${until}T${new Date(d.transfer.expiresAt).toISOString().slice(11)}`);
              if (!/^\d{4}-\d{2}-\d{2}$/.test(until) || !Number.isFinite(t)) throw new AdminActionError('out_of_bounds', 'Enter the date as YYYY-MM-DD.');
              expiresAt = t;
            } else {
              throw new AdminActionError('out_of_bounds', 'Enter either a number of days or a date (not both).');
            }
            await setTransferExpiry(ctx.db, id, expiresAt, who, ctx.bounds);
            break;
          }
          case 'hold':
            await holdTransfer(ctx.db, id, who, field(body, 'reason') || undefined);
            break;
          case 'release':
            await releaseTransfer(ctx.db, id, who);
            break;
          case 'delete':
            if (field(body, 'confirm') !== 'yes') throw new AdminActionError('out_of_bounds', 'Tick the box to confirm that the files are to be deleted.');
            await deleteTransferNow(ctx.db, ctx.blobs, id, who);
            break;
          default:
            return reply.code(404).type(HTML).send(messagePage(page(request, 'transfers'), 'Not found', 'There is no such action.', 404));
        }
      } catch (err) {
        if (!(err instanceof AdminActionError)) throw err;
        return showTransfer(request, reply, id, { error: err.message }, err.kind === 'not_found' ? 404 : err.kind === 'conflict' ? 409 : 400);
      }
      const done = { revoke: 'revoked', extend: 'extended', hold: 'held', release: 'released', delete: 'deleted' }[action]!;
      return reply.redirect(`${ctx.base}/transfers/${encodeURIComponent(id)}?done=${done}`, 303);
    });

    const showRules = async (request: FastifyRequest, reply: FastifyReply, extra: Parameters<typeof rulesPage>[2], status = 200) =>
      reply.code(status).type(HTML).send(rulesPage(page(request, 'rules'), await listRules(ctx.db), extra));

    app.get('/rules', async (request, reply) => showRules(request, reply, { done: (request.query as Record<string, unknown>)?.done }));

    app.post('/rules', async (request, reply) => {
      const body = request.body as Body;
      const id = field(body, 'id');
      const values: RuleFormValues = {
        kind: field(body, 'kind'),
        match: field(body, 'match'),
        days: field(body, 'days'),
        downloadLimit: field(body, 'downloadLimit'),
        reapply: field(body, 'reapply') === 'yes',
      };
      try {
        let kind;
        let match;
        if (id) ({ kind, match } = parseRuleId(id));
        else {
          if (!(MATCH_KINDS as readonly string[]).includes(values.kind ?? '')) throw new RetentionRuleError('Choose the kind of rule: sender address, sender domain or recipient domain.', 'kind');
          kind = values.kind as MatchKind;
          match = values.match ?? '';
          if (!match) throw new RetentionRuleError('Enter the address or domain the rule matches.', 'match');
        }
        const days = Number(values.days);
        if (!values.days || !Number.isFinite(days)) throw new RetentionRuleError('Enter the number of days, such as 30.', 'days');
        let downloadLimit: number | null = null;
        if (values.downloadLimit) {
          downloadLimit = Number(values.downloadLimit);
          if (!Number.isInteger(downloadLimit) || downloadLimit < 1) throw new RetentionRuleError('The download limit must be a whole number of at least 1, or empty for the site default.', 'downloadLimit');
        }
        await setRule(ctx.db, { kind, match, periodMs: days * DAY_MS, downloadLimit }, actor(request), ctx.bounds);
        if (values.reapply) await reapplyRetention(ctx.db, actor(request), ctx.bounds);
      } catch (err) {
        if (!(err instanceof RetentionRuleError)) throw err;
        return showRules(request, reply, { error: err.message, errorRule: id || 'new', values }, 400);
      }
      return reply.redirect(`${ctx.base}/rules?done=rule-saved`, 303);
    });

    app.post('/rules/delete', async (request, reply) => {
      const id = field(request.body as Body, 'id');
      try {
        await deleteRule(ctx.db, id, actor(request));
      } catch (err) {
        if (!(err instanceof RetentionRuleError)) throw err;
        return showRules(request, reply, { error: err.message, errorRule: id || 'new' }, 400);
      }
      return reply.redirect(`${ctx.base}/rules?done=rule-deleted`, 303);
    });

    app.post('/rules/reapply', async (request, reply) => {
      await reapplyRetention(ctx.db, actor(request), ctx.bounds);
      return reply.redirect(`${ctx.base}/rules?done=reapplied`, 303);
    });

    app.get('/audit', async (request, reply) => {
      const q = (request.query as Record<string, unknown>) ?? {};
      const action = typeof q.action === 'string' && q.action ? q.action.slice(0, 40) : undefined;
      const transferId = typeof q.transferId === 'string' && q.transferId ? q.transferId.trim().slice(0, 64) : undefined;
      const before = typeof q.before === 'string' && /^\d{1,15}$/.test(q.before) ? Number(q.before) : undefined;
      const items = await listAudit(ctx.db, { action, transferId, beforeId: before, limit: 100 });
      const filter = new URLSearchParams({ ...(action ? { action } : {}), ...(transferId ? { transferId } : {}) });
      const last = items[items.length - 1];
      const nextUrl = items.length === 100 && last ? `${ctx.base}/audit?${new URLSearchParams({ ...Object.fromEntries(filter), before: String(last.id) }).toString()}` : null;
      const exportQuery = filter.toString() ? `&${filter.toString()}` : '';
      return reply.type(HTML).send(auditPage(page(request, 'audit'), items, { action, transferId }, nextUrl, exportQuery, AUDIT_ACTIONS));
    });

    app.get('/audit/export', async (request, reply) => {
      const raw = Object.fromEntries(Object.entries((request.query as Record<string, unknown>) ?? {}).filter(([, v]) => typeof v === 'string' && v !== ''));
      const parsed = auditExportQuery.safeParse(raw);
      if (!parsed.success) return reply.code(400).type(HTML).send(messagePage(page(request, 'audit'), 'Cannot export', describeIssues(parsed.error).message, 400));
      exportHeaders(reply, parsed.data.format, ctx.now());
      return reply.send(auditExportStream(ctx, parsed.data));
    });

    await app.register(queueUi, { ctx, page });
  });
};
