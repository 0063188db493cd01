import type { FastifyRequest } from 'fastify';
import { appendAudit } from '../storage/index.js';
import type { AdminContext } from './context.js';

// The read-only role (admin.readonlyTokens, SSO readonlyGroups): everything that only reads
// (GET, HEAD) is allowed, everything else refused, in the API and the UI alike. Deciding by
// method rather than by a list of routes means a route added later is closed to read-only
// admins until it is a GET, not open until someone remembers to list it.

export function isReadOnlyMethod(method: string): boolean {
  return method === 'GET' || method === 'HEAD';
}

/** Records a refused change in the audit log and the server log. */
export async function refuseReadOnly(ctx: AdminContext, request: FastifyRequest, what: string): Promise<void> {
  const who = request.ferryAdmin?.name ?? 'unknown';
  request.log.warn({ admin: who, what, client: request.ip }, 'read-only admin refused a change');
  await appendAudit(ctx.db, { actor: `admin:${who}`, action: 'admin_refused', detail: { request: what.slice(0, 200), role: 'readonly', client: request.ip }, at: ctx.now() });
}
