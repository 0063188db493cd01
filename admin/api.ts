import { Readable } from 'node:stream';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import {
  adminStats,
  AUDIT_CSV_HEADER,
  auditCsvLine,
  auditJsonLine,
  DAY_MS,
  deleteRule,
  deleteTransferNow,
  displayName,
  getTransfer,
  holdTransfer,
  iterateAudit,
  listAudit,
  listRules,
  parseRuleId,
  reapplyRetention,
  recipientStatus,
  recipientStatusJson,
  releaseTransfer,
  fileScanJson,
  fileScans,
  ruleJson,
  revokeRecipientLinks,
  revokeTransfer,
  searchTransfers,
  setRule,
  setTransferExpiry,
  transferDetail,
  transferJson,
  type AuditEntry,
  type TransferState,
} from '../storage/index.js';
import { bearerToken, matchToken } from './auth.js';
import { isReadOnlyMethod, refuseReadOnly } from './roles.js';
import type { AdminContext } from './context.js';
import { openApiDocument } from './openapi.js';
import { QueueActionError } from './queue-actions.js';
import { queueApi } from './queue-api.js';
import { quarantineApi } from './quarantine.js';
import { ApiError, parseInput, toApiError } from './api-errors.js';
import {
  auditExportQuery,
  auditQuery,
  expiryBody,
  reasonBody,
  recipientRevokeBody,
  ruleBody,
  ruleIdParam,
  statsQuery,
  transferIdParam,
  transferSearchQuery,
} from './schemas.js';

// The admin REST API under /admin/api. JSON in and out; errors are
// { "error": { "code", "message", "issues"? } } with 400 (bad input), 401 (no or wrong token),
// 403 (a read-only token asked for a change: FERRY_ERR_READ_ONLY), 429 (too many wrong tokens),
// 404, 409 (the transfer's state does not allow it, or a queue entry is being delivered). Every change is in the audit log as
// admin:NAME.

export function auditJson(e: AuditEntry) {
  return { id: e.id, at: new Date(e.at).toISOString(), actor: e.actor, action: e.action, transferId: e.transferId, detail: e.detail };
}

/** The audit entries matching a query, streamed as CSV or JSON lines (bounded memory). */
export function auditExportStream(ctx: AdminContext, q: z.output<typeof auditExportQuery>): Readable {
  const filter = { action: q.action, transferId: q.transferId, actor: q.actor, since: q.since, until: q.until };
  return Readable.from(
    (async function* () {
      if (q.format === 'csv') yield AUDIT_CSV_HEADER;
      for await (const e of iterateAudit(ctx.db, filter)) yield q.format === 'csv' ? auditCsvLine(e) : auditJsonLine(e);
    })(),
  );
}

export function exportHeaders(reply: FastifyReply, format: 'csv' | 'jsonl', now: number): void {
  const stamp = new Date(now).toISOString().slice(0, 19).replace(/[:T]/g, '-');
  reply
    .type(format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8')
    .header('content-disposition', `attachment; filename="ferry-audit-${stamp}.${format === 'csv' ? 'csv' : 'jsonl'}"`);
}

export const adminApi: FastifyPluginAsync<{ ctx: AdminContext }> = async (app, { ctx }) => {
  const now = () => ctx.now();

  app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    let e = toApiError(err);
    if (!e) {
      const status = (err as { statusCode?: number }).statusCode;
      if (typeof status === 'number' && status >= 400 && status < 500) e = new ApiError(status, 'FERRY_ERR_BAD_REQUEST', (err as Error).message);
      else {
        request.log.error({ err }, 'admin API request failed');
        e = new ApiError(500, 'FERRY_ERR_INTERNAL', 'internal error; see the server log');
      }
    }
    if (e.statusCode === 401) reply.header('www-authenticate', 'Bearer realm="ferry-admin"');
    return reply.code(e.statusCode).type('application/json; charset=utf-8').send({ error: { code: e.code, message: e.message, ...(e.issues ? { issues: e.issues } : {}) } });
  });
  app.setNotFoundHandler((_request, reply) =>
    reply.code(404).type('application/json; charset=utf-8').send({ error: { code: 'FERRY_ERR_NOT_FOUND', message: 'no such admin API endpoint; see /admin/api/openapi.json' } }),
  );

  // The description is public: it says what the API does, not what is stored.
  app.get('/openapi.json', async (_request, reply) => reply.type('application/json; charset=utf-8').send(openApiDocument(ctx.publicUrl)));

  // Everything else needs the bearer token.
  await app.register(async (app) => {
    app.addHook('onRequest', async (request, reply) => {
      const presented = bearerToken(request.headers.authorization);
      // No credential at all is not a failed guess (auth-limit.ts): not counted.
      if (!presented) throw new ApiError(401, 'FERRY_ERR_UNAUTHORIZED', 'send Authorization: Bearer <admin token> (admin.token, admin.tokens or admin.readonlyTokens)');
      const blocked = await ctx.authLimit.gate(request);
      const admin = matchToken(ctx.tokens, presented);
      if (!admin) {
        await ctx.authLimit.fail(request);
        if (blocked !== undefined) {
          reply.header('retry-after', String(blocked));
          throw new ApiError(429, 'FERRY_ERR_RATE_LIMITED', `too many failed authentications from this address; try again in ${blocked} s`);
        }
        throw new ApiError(401, 'FERRY_ERR_UNAUTHORIZED', 'send Authorization: Bearer <admin token> (admin.token, admin.tokens or admin.readonlyTokens)');
      }
      request.ferryAdmin = { name: admin.name, role: admin.role };
      if (admin.role === 'readonly' && !isReadOnlyMethod(request.method)) {
        await refuseReadOnly(ctx, request, `${request.method} ${request.routeOptions.url ?? request.url.split('?')[0]}`);
        throw new ApiError(403, 'FERRY_ERR_READ_ONLY', `${admin.name} has a read-only token (admin.readonlyTokens): it may search and view, not change anything`);
      }
    });
    const actor = (request: FastifyRequest) => `admin:${request.ferryAdmin!.name}`;

    app.get('/transfers', async (request) => {
      const q = parseInput(transferSearchQuery, request.query);
      const page = await searchTransfers(ctx.db, { sender: q.sender, recipient: q.recipient, fileName: q.file, from: q.from, to: q.to, state: q.state as TransferState | 'held' | undefined, limit: q.limit, cursor: q.cursor }, now());
      return { items: page.items.map((t) => transferJson(t, now())), nextCursor: page.nextCursor };
    });

    app.get('/transfers/:id', async (request) => {
      const { id } = parseInput(transferIdParam, request.params);
      const d = await transferDetail(ctx.db, id);
      if (!d) throw new ApiError(404, 'FERRY_ERR_TRANSFER_NOT_FOUND', `no transfer ${id}`);
      return {
        ...transferJson(d.transfer, now()),
        effectiveMaxDownloads: d.transfer.maxDownloads ?? ctx.maxDownloads,
        // Names as the landing page shows them (storage/filenames.ts): no bidi overrides, control or invisible characters.
        // With each file's malware check (scan.engine), null when it was never scanned.
        files: await (async () => {
          const scans = await fileScans(ctx.db, id);
          return d.files.map((f) => ({ idx: f.idx, name: displayName(f.name), contentType: f.contentType, size: f.size, sha256: f.sha256, scan: fileScanJson(scans.get(f.idx)) }));
        })(),
        // Whether a password guards it; the hash itself never leaves storage/.
        passwordProtected: d.transfer.passwordProtected,
        recipients: (await recipientStatus(ctx.db, id)).map(recipientStatusJson),
        countedDownloads: d.countedDownloads,
        downloads: d.downloads.map((x) => ({ ...x, at: new Date(x.at).toISOString() })),
        audit: (await listAudit(ctx.db, { transferId: id, limit: 200 })).map(auditJson),
      };
    });

    app.post('/transfers/:id/revoke', async (request) => {
      const { id } = parseInput(transferIdParam, request.params);
      const b = parseInput(reasonBody, request.body ?? {});
      return transferJson(await revokeTransfer(ctx.db, id, actor(request), b.reason), now());
    });

    app.post('/transfers/:id/recipients/revoke', async (request) => {
      const { id } = parseInput(transferIdParam, request.params);
      const b = parseInput(recipientRevokeBody, request.body ?? {});
      const revoked = await revokeRecipientLinks(ctx.db, id, b.linkId !== undefined ? { linkId: b.linkId } : { recipient: b.recipient! }, actor(request));
      return { revoked: revoked.map((l) => l.id), recipients: (await recipientStatus(ctx.db, id)).map(recipientStatusJson) };
    });

    app.post('/transfers/:id/expiry', async (request) => {
      const { id } = parseInput(transferIdParam, request.params);
      const b = parseInput(expiryBody, request.body ?? {});
      let expiresAt = b.expiresAt;
      if (expiresAt === undefined) {
        const t = await getTransfer(ctx.db, id);
        if (!t) throw new ApiError(404, 'FERRY_ERR_TRANSFER_NOT_FOUND', `no transfer ${id}`);
        expiresAt = t.expiresAt + b.addDays! * DAY_MS;
      }
      return transferJson(await setTransferExpiry(ctx.db, id, Math.round(expiresAt), actor(request), ctx.bounds), now());
    });

    app.post('/transfers/:id/hold', async (request) => {
      const { id } = parseInput(transferIdParam, request.params);
      const b = parseInput(reasonBody, request.body ?? {});
      return transferJson(await holdTransfer(ctx.db, id, actor(request), b.reason), now());
    });

    app.post('/transfers/:id/release', async (request) => {
      const { id } = parseInput(transferIdParam, request.params);
      return transferJson(await releaseTransfer(ctx.db, id, actor(request)), now());
    });

    app.delete('/transfers/:id', async (request) => {
      const { id } = parseInput(transferIdParam, request.params);
      return transferJson(await deleteTransferNow(ctx.db, ctx.blobs, id, actor(request)), now());
    });

    app.get('/rules', async () => ({ items: (await listRules(ctx.db)).map(ruleJson) }));

    app.put('/rules/:id', async (request) => {
      const { id } = parseInput(ruleIdParam, request.params);
      const b = parseInput(ruleBody, request.body ?? {});
      const { kind, match } = parseRuleId(id);
      if ((kind === 'minimum' || kind === 'maximum') && (b.requirePassword || (b.receipts !== undefined && b.receipts !== null))) {
        // The bounds only clamp periods; a switch there would silently do nothing.
        throw new ApiError(400, 'FERRY_ERR_RETENTION_RULE', `${kind} is a bound; requirePassword and receipts belong to the default or a sender or domain rule`);
      }
      const rule = await setRule(
        ctx.db,
        { kind, match, periodMs: b.days * DAY_MS, downloadLimit: b.downloadLimit ?? null, requirePassword: b.requirePassword, receipts: b.receipts },
        actor(request),
        ctx.bounds,
      );
      const reapplied = b.reapply ? await reapplyRetention(ctx.db, actor(request), ctx.bounds) : null;
      return { ...ruleJson(rule), ...(reapplied !== null ? { reappliedTransfers: reapplied } : {}) };
    });

    app.delete('/rules/:id', async (request) => {
      const { id } = parseInput(ruleIdParam, request.params);
      if (!(await deleteRule(ctx.db, id, actor(request)))) throw new ApiError(404, 'FERRY_ERR_RULE_NOT_FOUND', `no rule ${id}`);
      return { deleted: id };
    });

    app.post('/rules/reapply', async (request) => ({ reappliedTransfers: await reapplyRetention(ctx.db, actor(request), ctx.bounds) }));

    app.get('/stats', async (request) => {
      const q = parseInput(statsQuery, request.query);
      return adminStats(ctx.db, { days: q.days, now: now() });
    });

    app.get('/audit', async (request) => {
      const q = parseInput(auditQuery, request.query);
      const items = await listAudit(ctx.db, { action: q.action, transferId: q.transferId, actor: q.actor, since: q.since, until: q.until, beforeId: q.before, limit: q.limit });
      const last = items[items.length - 1];
      return { items: items.map(auditJson), nextBefore: items.length === q.limit && last ? last.id : null };
    });

    app.get('/audit/export', async (request, reply) => {
      const q = parseInput(auditExportQuery, request.query);
      exportHeaders(reply, q.format, now());
      return reply.send(auditExportStream(ctx, q));
    });

    await app.register(queueApi, { ctx });
    await app.register(quarantineApi, { ctx });
  });
};
