import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { BadCursorError, getQueueEntry, getTransfer, queueStats, searchQueue } from '../storage/index.js';
import type { AdminContext } from './context.js';
import { deleteQueueEntry, QueueActionError, retryQueueEntry, retryWholeQueue } from './queue-actions.js';
import { queueDeletePage, queueEntryPage, queuePage, type QueueFilterValues } from './queue-pages.js';
import { messagePage } from './pages.js';
import type { AdminPage } from './layout.js';
import { describeIssues, queueIdParam, queueListQuery } from './schemas.js';

// The admin UI's queue pages under /admin/queue. Registered by ui.ts inside its session scope,
// so the session check and the CSRF check of every POST apply here too.

const HTML = 'text/html; charset=utf-8';

export interface QueueUiOptions {
  ctx: AdminContext;
  page: (request: FastifyRequest, active?: AdminPage['active']) => AdminPage;
}

type Body = Record<string, unknown> | undefined;
const field = (body: Body, name: string): string => {
  const v = body?.[name];
  return typeof v === 'string' ? v.trim() : '';
};

export const queueUi: FastifyPluginAsync<QueueUiOptions> = async (app, { ctx, page }) => {
  const actor = (request: FastifyRequest) => `admin:${request.ferryAdmin!.name}`;
  const notFound = (request: FastifyRequest, reply: FastifyReply, id: string) =>
    reply.code(404).type(HTML).send(messagePage(page(request, 'queue'), 'Not found', `There is no queue entry ${id}: it was delivered, returned or deleted already.`, 404));
  /** The id from the URL, or undefined after answering 404 (nothing from the URL reaches storage unchecked). */
  const idOf = (request: FastifyRequest) => {
    const r = queueIdParam.safeParse(request.params);
    return r.success ? r.data.id : undefined;
  };

  app.get('/queue', async (request, reply) => {
    const raw = Object.fromEntries(Object.entries((request.query as Record<string, unknown>) ?? {}).filter(([, v]) => typeof v === 'string' && v.trim() !== '')) as Record<string, string>;
    const { done, ...query } = raw;
    const values: QueueFilterValues = { state: query.state, sender: query.sender, recipient: query.recipient };
    const now = ctx.now();
    const stats = await queueStats(ctx.db, now);
    const empty = { values, items: [], total: 0, stats, nextUrl: null, now };
    const parsed = queueListQuery.safeParse(query);
    if (!parsed.success) return reply.code(400).type(HTML).send(queuePage(page(request, 'queue'), { ...empty, error: describeIssues(parsed.error).message }));
    const q = parsed.data;
    let result;
    try {
      result = await searchQueue(ctx.db, { status: q.state, kind: q.kind, sender: q.sender, recipient: q.recipient, limit: q.limit, cursor: q.cursor }, now);
    } catch (err) {
      if (!(err instanceof BadCursorError)) throw err;
      return reply.code(400).type(HTML).send(queuePage(page(request, 'queue'), { ...empty, error: err.message }));
    }
    let nextUrl: string | null = null;
    if (result.nextCursor) {
      const qs = new URLSearchParams({ ...Object.fromEntries(Object.entries(values).filter(([, v]) => v)), ...(query.limit ? { limit: String(q.limit) } : {}), cursor: result.nextCursor });
      nextUrl = `${ctx.base}/queue?${qs.toString()}`;
    }
    return reply.type(HTML).send(queuePage(page(request, 'queue'), { values, items: result.items, total: result.total, stats, nextUrl, now, done }));
  });

  const showEntry = async (request: FastifyRequest, reply: FastifyReply, id: string, extra: { done?: unknown; error?: string }, status?: number) => {
    const e = await getQueueEntry(ctx.db, id);
    if (!e) return notFound(request, reply, id);
    const t = e.transferId ? await getTransfer(ctx.db, e.transferId) : undefined;
    return reply.code(status ?? 200).type(HTML).send(queueEntryPage(page(request, 'queue'), e, t, ctx.now(), extra, status));
  };

  app.get('/queue/:id', async (request, reply) => {
    const id = idOf(request);
    if (!id) return notFound(request, reply, String((request.params as { id: string }).id));
    return showEntry(request, reply, id, { done: (request.query as Record<string, unknown>)?.done });
  });

  app.post('/queue/retry', async (request, reply) => {
    await retryWholeQueue(ctx, actor(request));
    return reply.redirect(`${ctx.base}/queue?done=retried-all`, 303);
  });

  app.post('/queue/:id/retry', async (request, reply) => {
    const id = idOf(request);
    if (!id) return notFound(request, reply, String((request.params as { id: string }).id));
    try {
      await retryQueueEntry(ctx, id, actor(request));
    } catch (err) {
      if (!(err instanceof QueueActionError)) throw err;
      if (err.kind === 'not_found') return notFound(request, reply, id);
      return showEntry(request, reply, id, { error: err.message }, 409);
    }
    return reply.redirect(`${ctx.base}/queue/${encodeURIComponent(id)}?done=retried`, 303);
  });

  // The confirmation step: a GET that changes nothing and shows what the delete will do.
  app.get('/queue/:id/delete', async (request, reply) => {
    const id = idOf(request);
    if (!id) return notFound(request, reply, String((request.params as { id: string }).id));
    const mode = (request.query as Record<string, unknown>)?.mode;
    if (mode !== 'bounce' && mode !== 'silent') return showEntry(request, reply, id, { error: 'Choose how to delete: return to the sender with a failure notice, or silently.' }, 400);
    const e = await getQueueEntry(ctx.db, id);
    if (!e) return notFound(request, reply, id);
    if (mode === 'bounce' && !e.sender) return showEntry(request, reply, id, { error: 'This entry has no sender (<>): it can only be deleted silently.' }, 409);
    return reply.type(HTML).send(queueDeletePage(page(request, 'queue'), e, mode));
  });

  app.post('/queue/:id/delete', async (request, reply) => {
    const id = idOf(request);
    if (!id) return notFound(request, reply, String((request.params as { id: string }).id));
    const body = request.body as Body;
    const mode = field(body, 'mode');
    if (mode !== 'bounce' && mode !== 'silent') return showEntry(request, reply, id, { error: 'Choose how to delete: return to the sender with a failure notice, or silently.' }, 400);
    if (field(body, 'confirm') !== 'yes') return showEntry(request, reply, id, { error: 'Confirm the delete on the confirmation page.' }, 400);
    try {
      const r = await deleteQueueEntry(ctx, id, mode === 'bounce', actor(request));
      if (r.result === 'deleted') return reply.redirect(`${ctx.base}/queue?done=deleted`, 303);
    } catch (err) {
      if (!(err instanceof QueueActionError)) throw err;
      if (err.kind === 'not_found') return notFound(request, reply, id);
      return showEntry(request, reply, id, { error: err.message }, 409);
    }
    return reply.redirect(`${ctx.base}/queue/${encodeURIComponent(id)}?done=bounced`, 303);
  });
};
