import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import {
  AdminActionError,
  adminStats,
  appendAudit,
  createAdminSession,
  endAdminSession,
  listAdminSessions,
  useAdminSession,
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
  fileScans,
  recipientStatus,
  releaseTransfer,
  RetentionRuleError,
  revokeRecipientLinks,
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
import { checkCsrf, checkLoginNonce, csrfToken, looksLikeSessionId, matchToken, newLoginNonce, newSessionId, sessionIdHash, type AdminIdentity } from './auth.js';
import { decodeFlow, encodeFlow, OidcRefused } from './oidc.js';
import { isReadOnlyMethod, refuseReadOnly } from './roles.js';
import { sessionsPage } from './sessions-page.js';
import type { AdminContext } from './context.js';
import { queueUi } from './queue-ui.js';
import { quarantineUi } from './quarantine-page.js';
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

// The admin UI under /admin. Login with an admin token (or single sign-on, oidc.ts) opens a
// server-side session (storage/admin-sessions.ts) whose random id is the cookie: HttpOnly,
// SameSite=Strict, and over HTTPS named with the __Host- prefix (Secure, Path=/, no Domain), so
// no other host or path can set or shadow it. Over plain HTTP (a laptop, a test) browsers refuse
// __Host- cookies, so the cookie is then "ferry_admin" with Path=/admin, not Secure; see
// docs/admin.md. Every form that changes something carries a CSRF token derived from the session
// (auth.ts) and is refused without it. No JavaScript.

const HTML = 'text/html; charset=utf-8';
/** Like the download pages' CSP (no script at all here), but forms may post to this site. */
export function adminCsp(logoUrl?: string): string {
  let img = "'self' data:";
  if (logoUrl && /^https:\/\//i.test(logoUrl)) img += ` ${new URL(logoUrl).origin}`;
  return `default-src 'none'; style-src 'self'; img-src ${img}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`;
}

/** Cookie names: the __Host- prefix wherever the browser will accept it (HTTPS). */
export function adminCookieNames(https: boolean) {
  const p = https ? '__Host-' : '';
  return { session: `${p}ferry_admin`, nonce: `${p}ferry_admin_login`, oidc: `${p}ferry_admin_oidc` };
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
    ...(request.ferryAdmin ? { admin: request.ferryAdmin.name, csrf: request.ferryAdminCsrf, readonly: request.ferryAdmin.role === 'readonly' } : {}),
    ...(active ? { active } : {}),
  });
  const https = (request: FastifyRequest) => isHttps(request, ctx.trustProxy);
  const names = (request: FastifyRequest) => adminCookieNames(https(request));
  const cookieOptions = (request: FastifyRequest, maxAgeSeconds?: number, sameSite: 'strict' | 'lax' = 'strict') => ({
    // NB __Host- cookies must be Secure, have Path=/ and no Domain, or the browser drops them.
    path: https(request) ? '/' : ctx.base,
    httpOnly: true,
    sameSite,
    secure: https(request),
    ...(maxAgeSeconds !== undefined ? { maxAge: maxAgeSeconds } : {}),
  });
  /** The live session of the request's cookie, with its id; undefined when there is none. */
  const currentSession = async (request: FastifyRequest) => {
    const sid = request.cookies[names(request).session];
    if (!looksLikeSessionId(sid)) return undefined;
    const s = await useAdminSession(ctx.db, sessionIdHash(sid), ctx.now(), ctx.sessionIdleMs);
    if (!s) return undefined;
    // A token removed from the configuration (or moved to another role) ends its sessions.
    if (s.method === 'token' && !ctx.tokens.some((t) => t.id === s.tokenId && t.role === s.role)) return undefined;
    if (s.method === 'oidc' && !ctx.oidc) return undefined;
    return { sid, session: s };
  };
  const openSession = async (request: FastifyRequest, reply: FastifyReply, who: AdminIdentity, method: 'token' | 'oidc', tokenId?: string) => {
    const sid = newSessionId();
    await createAdminSession(ctx.db, {
      secretHash: sessionIdHash(sid),
      name: who.name,
      role: who.role,
      method,
      tokenId: tokenId ?? null,
      client: request.ip,
      userAgent: typeof request.headers['user-agent'] === 'string' ? request.headers['user-agent'] : null,
      now: ctx.now(),
      maxAgeMs: ctx.sessionMaxAgeMs,
    });
    reply.setCookie(names(request).session, sid, cookieOptions(request, Math.floor(ctx.sessionMaxAgeMs / 1000)));
    await appendAudit(ctx.db, { actor: `admin:${who.name}`, action: 'admin_login', detail: { client: request.ip, method, role: who.role }, at: ctx.now() });
  };

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
  const showLogin = (request: FastifyRequest, reply: FastifyReply, error?: string, status?: number) => {
    const nonce = newLoginNonce();
    reply.setCookie(names(request).nonce, nonce, cookieOptions(request, 3600));
    return reply
      .code(status ?? (error ? 401 : 200))
      .type(HTML)
      .send(loginPage(page(request), nonce, { error, sso: !!ctx.oidc, tokens: ctx.tokens.length > 0 }, status));
  };
  app.get('/login', async (request, reply) => {
    if (await currentSession(request)) return reply.redirect(ctx.base, 303);
    return showLogin(request, reply);
  });
  app.post('/login', async (request, reply) => {
    const body = request.body as Body;
    if (!checkLoginNonce(request.cookies[names(request).nonce], body?._nonce)) {
      return reply.code(403).type(HTML).send(messagePage(page(request), 'Form expired', 'The login form expired or did not come from this site. Reload the login page and try again.', 403));
    }
    const presented = field(body, 'token');
    // An empty form is not a wrong credential (auth-limit.ts): not counted.
    if (!presented) return showLogin(request, reply, 'Enter an admin token.', 400);
    const blocked = await ctx.authLimit.gate(request);
    const admin = matchToken(ctx.tokens, presented);
    if (!admin) {
      await ctx.authLimit.fail(request);
      request.log.warn({ client: request.ip }, 'admin login with a wrong token');
      if (blocked !== undefined) {
        reply.header('retry-after', String(blocked));
        return reply.code(429).type(HTML).send(messagePage(page(request), 'Too many attempts', `Too many failed logins from your address. Try again in ${Math.ceil(blocked / 60)} minutes.`, 429));
      }
      return showLogin(request, reply, 'That is not an admin token.');
    }
    await openSession(request, reply, { name: admin.name, role: admin.role }, 'token', admin.id);
    reply.clearCookie(names(request).nonce, cookieOptions(request));
    return reply.redirect(ctx.base, 303);
  });

  // ---- single sign-on (oidc.ts) ----
  if (ctx.oidc) {
    const oidc = ctx.oidc;
    const callbackUrl = `${new URL(ctx.publicUrl).origin}${ctx.base}/oidc/callback`;
    const FLOW_SECONDS = 600;
    app.get('/oidc/login', async (request, reply) => {
      let started;
      try {
        started = await oidc.start(callbackUrl);
      } catch (err) {
        request.log.error({ err }, 'single sign-on: the provider could not be reached');
        return reply.code(502).type(HTML).send(messagePage(page(request), 'Single sign-on unavailable', 'The identity provider (admin.oidc.issuer) could not be reached; see the server log. Log in with an admin token meanwhile.', 502));
      }
      reply.setCookie(names(request).oidc, encodeFlow(started.flow), cookieOptions(request, FLOW_SECONDS, 'lax'));
      return reply.redirect(started.url, 303);
    });
    app.get('/oidc/callback', async (request, reply) => {
      const flow = decodeFlow(request.cookies[names(request).oidc]);
      reply.clearCookie(names(request).oidc, cookieOptions(request, undefined, 'lax'));
      if (!flow) {
        return reply.code(403).type(HTML).send(messagePage(page(request), 'Login expired', 'The single sign-on login expired or did not start in this browser. Start it again from the login page.', 403));
      }
      // The URL the provider redirected to, rebuilt from the configured public URL (not from the
      // Host header, which the client chooses) plus the query the provider added.
      const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?')) : '';
      let who: AdminIdentity;
      try {
        who = await oidc.finish(new URL(callbackUrl + query), flow);
      } catch (err) {
        if (err instanceof OidcRefused) {
          request.log.warn({ client: request.ip, reason: err.message }, 'single sign-on: user refused');
          return reply.code(403).type(HTML).send(messagePage(page(request), 'Not allowed', `${err.message}. Ask an administrator to add you.`, 403));
        }
        request.log.warn({ client: request.ip, err: (err as Error).message }, 'single sign-on: callback refused');
        return reply.code(403).type(HTML).send(messagePage(page(request), 'Login refused', 'The answer from the identity provider did not check out (state, nonce, code or signature). Start the login again.', 403));
      }
      await openSession(request, reply, who, 'oidc');
      return reply.redirect(ctx.base, 303);
    });
  }

  // ---- everything else needs a session; every POST its CSRF token ----
  await app.register(async (app) => {
    app.addHook('preHandler', async (request, reply) => {
      const cur = await currentSession(request);
      if (!cur) {
        if (request.method === 'GET' || request.method === 'HEAD') return reply.redirect(`${ctx.base}/login`, 303);
        return reply.code(403).type(HTML).send(messagePage(page(request), 'Not logged in', 'Your session has ended. Log in again and repeat the change.', 403));
      }
      request.ferryAdmin = { name: cur.session.name, role: cur.session.role };
      request.ferryAdminSession = cur.session;
      request.ferryAdminCsrf = csrfToken(cur.sid);
      if (request.method === 'POST' && !checkCsrf(cur.sid, (request.body as Body)?._csrf)) {
        request.log.warn({ client: request.ip, url: request.url }, 'admin form without a valid CSRF token refused');
        return reply.code(403).type(HTML).send(messagePage(page(request), 'Form refused', 'This form did not come from this admin page (no valid CSRF token). Reload the page and try again.', 403));
      }
      // Read-only admins: every change refused (roles.ts), logout excepted; the confirmation
      // page of a queue delete too, as it leads only to a change.
      const route = request.routeOptions.url ?? '';
      if (cur.session.role === 'readonly' && ((!isReadOnlyMethod(request.method) && !route.endsWith('/logout')) || route.endsWith('/queue/:id/delete'))) {
        await refuseReadOnly(ctx, request, `${request.method} ${route}`);
        return reply.code(403).type(HTML).send(messagePage(page(request), 'Read-only', 'You are logged in with a read-only role: you can search and view, but not change anything.', 403));
      }
    });
    const actor = (request: FastifyRequest) => `admin:${request.ferryAdmin!.name}`;

    app.post('/logout', async (request, reply) => {
      const sid = request.cookies[names(request).session]!;
      await endAdminSession(ctx.db, { secretHash: sessionIdHash(sid) }, 'logout', ctx.now());
      await appendAudit(ctx.db, { actor: actor(request), action: 'admin_logout', detail: { client: request.ip }, at: ctx.now() });
      reply.clearCookie(names(request).session, cookieOptions(request));
      const idp = request.ferryAdminSession?.method === 'oidc' && ctx.oidc ? await ctx.oidc.logoutUrl(`${new URL(ctx.publicUrl).origin}${ctx.base}/login`) : undefined;
      return reply.redirect(idp ?? `${ctx.base}/login`, 303);
    });

    app.get('/sessions', async (request, reply) => {
      const items = await listAdminSessions(ctx.db, ctx.now(), ctx.sessionIdleMs);
      return reply.type(HTML).send(sessionsPage(page(request, 'sessions'), items, request.ferryAdminSession!.id, ctx.now(), (request.query as Record<string, unknown>)?.done));
    });

    app.post('/sessions/:id/revoke', async (request, reply) => {
      const { id } = request.params as { id: string };
      const ended = /^[0-9a-f]{16}$/.test(id) ? await endAdminSession(ctx.db, { id }, actor(request), ctx.now()) : undefined;
      if (!ended) return reply.code(404).type(HTML).send(messagePage(page(request, 'sessions'), 'Not found', 'There is no such session: it ended already.', 404));
      await appendAudit(ctx.db, { actor: actor(request), action: 'admin_session_revoked', detail: { session: id, admin: ended.name, client: ended.client, since: new Date(ended.createdAt).toISOString() }, at: ctx.now() });
      if (id === request.ferryAdminSession!.id) {
        reply.clearCookie(names(request).session, cookieOptions(request));
        return reply.redirect(`${ctx.base}/login`, 303);
      }
      return reply.redirect(`${ctx.base}/sessions?done=session-revoked`, 303);
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
      return reply.code(status).type(HTML).send(transferPage(page(request, 'transfers'), d, audit, ctx.maxDownloads, ctx.now(), extra, await recipientStatus(ctx.db, id), await fileScans(ctx.db, id)));
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
          case 'revoke-recipient':
            await revokeRecipientLinks(ctx.db, id, { linkId: field(body, 'link') }, who);
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
      const done = { revoke: 'revoked', 'revoke-recipient': 'recipient-revoked', extend: 'extended', hold: 'held', release: 'released', delete: 'deleted' }[action]!;
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
      // A form without the switches (the bounds' rows, a page from before they existed) leaves them as they are.
      const withSwitches = field(body, 'switches') === 'yes';
      if (withSwitches) {
        values.requirePassword = field(body, 'requirePassword') === 'yes';
        values.receipts = field(body, 'receipts');
      }
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
        let receipts: boolean | null | undefined;
        if (withSwitches) {
          if (!['', 'on', 'off'].includes(values.receipts ?? '')) throw new RetentionRuleError('Receipts must be on, off or the site setting.', 'receipts');
          receipts = values.receipts === 'on' ? true : values.receipts === 'off' ? false : null;
        }
        await setRule(ctx.db, { kind, match, periodMs: days * DAY_MS, downloadLimit, requirePassword: withSwitches ? values.requirePassword : undefined, receipts }, actor(request), ctx.bounds);
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
    await app.register(quarantineUi, { ctx, page });
  });
};
