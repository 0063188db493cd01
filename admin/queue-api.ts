import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { getQueueEntry, getTransfer, queueEntryStatus, searchQueue, type QueueEntry } from '../storage/index.js';
import { transferJson } from '../storage/index.js';
import { ApiError, parseInput } from './api-errors.js';
import type { AdminContext } from './context.js';
import { deleteQueueEntry, retryQueueEntry, retryWholeQueue } from './queue-actions.js';
import { queueDeleteQuery, queueIdParam, queueListQuery } from './schemas.js';

// /admin/api/queue: the delivery queue (messages the next hop has not taken yet). Registered by
// api.ts inside its bearer-token scope, so it shares the authentication and error handling.

export function queueEntryJson(e: QueueEntry, now: number) {
  return {
    id: e.id,
    kind: e.kind,
    state: queueEntryStatus(e, now),
    sender: e.sender,
    recipients: e.recipients.map((r) => ({
      address: r.address,
      state: r.state,
      code: r.code ?? null,
      response: r.response ?? null,
      notify: r.notify ?? null,
      orcpt: r.orcpt ?? null,
    })),
    size: e.size,
    createdAt: new Date(e.createdAt).toISOString(),
    ageSeconds: Math.max(0, Math.floor((now - e.createdAt) / 1000)),
    attempts: e.attempts,
    nextAttemptAt: new Date(e.nextAttemptAt).toISOString(),
    lastError: e.lastError,
    transferId: e.transferId,
    leaseUntil: e.leaseUntil >= now ? new Date(e.leaseUntil).toISOString() : null,
    bounceRequested: e.cancel === 'bounce',
    delayNoticeSent: e.warned,
    dsnRet: e.dsnRet,
    dsnEnvid: e.dsnEnvid,
  };
}

export const queueApi: FastifyPluginAsync<{ ctx: AdminContext }> = async (app, { ctx }) => {
  const actor = (request: FastifyRequest) => `admin:${request.ferryAdmin!.name}`;

  app.get('/queue', async (request) => {
    const q = parseInput(queueListQuery, request.query);
    const now = ctx.now();
    const page = await searchQueue(ctx.db, { status: q.state, kind: q.kind, sender: q.sender, recipient: q.recipient, limit: q.limit, cursor: q.cursor }, now);
    return { items: page.items.map((e) => queueEntryJson(e, now)), total: page.total, nextCursor: page.nextCursor };
  });

  app.get('/queue/:id', async (request) => {
    const { id } = parseInput(queueIdParam, request.params);
    const e = await getQueueEntry(ctx.db, id);
    if (!e) throw new ApiError(404, 'FERRY_ERR_QUEUE_NOT_FOUND', `no queue entry ${id} (delivered, returned or deleted already?)`);
    const t = e.transferId ? await getTransfer(ctx.db, e.transferId) : undefined;
    return { ...queueEntryJson(e, ctx.now()), transfer: t ? transferJson(t, ctx.now()) : null };
  });

  app.post('/queue/retry', async (request) => ({ retried: await retryWholeQueue(ctx, actor(request)) }));

  app.post('/queue/:id/retry', async (request) => {
    const { id } = parseInput(queueIdParam, request.params);
    const e = await retryQueueEntry(ctx, id, actor(request));
    return { retried: 1, entry: queueEntryJson(e, ctx.now()) };
  });

  app.delete('/queue/:id', async (request) => {
    const { id } = parseInput(queueIdParam, request.params);
    const { bounce } = parseInput(queueDeleteQuery, request.query);
    const r = await deleteQueueEntry(ctx, id, bounce === 'true', actor(request));
    return { id, result: r.result };
  });
};
