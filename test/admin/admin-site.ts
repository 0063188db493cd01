import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { buildSite } from '../../admin/site.js';
import { DAY_MS, seedRetentionRules } from '../../storage/index.js';
import { makeEnv, PUBLIC_URL, type Env } from '../web/helpers.js';

/** The retention bounds the admin tests' sites run with (30 days by default, 1 to 90). */
export const RETENTION = { defaultMs: 30 * DAY_MS, minMs: DAY_MS, maxMs: 90 * DAY_MS };

export interface AdminSite {
  env: Env;
  app: FastifyInstance;
  /** http://127.0.0.1:PORT */
  base: string;
}

/**
 * A fresh database and blob store with the retention rules seeded, and the site with the admin
 * side on for a full admin ("boss") and a read-only one ("helpdesk"), listening on loopback.
 */
export async function startAdminSite(tokens: { admin: string; readonly: string }): Promise<AdminSite> {
  const env = await makeEnv();
  await seedRetentionRules(env.db, RETENTION);
  const app = await buildSite({
    publicUrl: PUBLIC_URL,
    db: env.db,
    blobs: env.blobs,
    rateLimit: false,
    admin: { tokens: [`boss:${tokens.admin}`], readonlyTokens: [`helpdesk:${tokens.readonly}`], retention: RETENTION },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { env, app, base: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` };
}
