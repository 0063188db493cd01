import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminMount } from '../../admin/site.js';
import { hashToken } from '../../storage/index.js';
import { buildWebApp } from '../../web/app.js';
import { addTransfer, makeEnv, PUBLIC_URL, type Env, type Fixture } from '../web/helpers.js';

// Issue 15 item 6: link tokens never reach the request log, whatever spelling of the link a
// client sends, and admin requests are logged without their query strings. The log lines read
// here are the real ones: pino writing to a stream, as in production (only the stream differs).

const ADMIN_TOKEN = 'admin-token-for-the-log-test-0123456789';
const QUERY_SECRET = 'Qs3cr3tQs3cr3tQs3cr3tQs3cr3tQs3cr3t';

let env: Env;
let app: FastifyInstance;
let fx: Fixture;
const lines: string[] = [];

beforeAll(async () => {
  env = await makeEnv();
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  const admin = adminMount({ token: ADMIN_TOKEN, retention: { defaultMs: 7 * 86_400_000, minMs: 86_400_000, maxMs: 30 * 86_400_000 } });
  app = await buildWebApp({ publicUrl: PUBLIC_URL, db: env.db, blobs: env.blobs, logger: pino({ level: 'debug' }, stream), rateLimit: false, mounts: admin ? [admin] : [] });
  fx = await addTransfer(env, { files: [{ name: 'report.pdf', data: Buffer.from('%PDF-1.7 not really') }] });
});

afterAll(async () => {
  await app.close();
  await env.close();
});

/** The token with one character percent-encoded: same token to a lax decoder, different bytes. */
function escapeOne(token: string, at: number): string {
  return `${token.slice(0, at)}%${token.charCodeAt(at).toString(16).toUpperCase()}${token.slice(at + 1)}`;
}

describe('link tokens in the request log', () => {
  it('the canonical links work and are logged with the token hash only', async () => {
    const t = fx.token;
    for (const url of [`/t/${t}`, `/t/${t}/1/report.pdf`, `/t/${t}?lang=de`]) {
      const res = await app.inject({ method: 'GET', url, headers: { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0' } });
      expect(res.statusCode, url).toBe(200);
    }
    const logged = lines.join('');
    expect(logged).not.toContain(t);
    expect(logged).toContain(`/t/h:${hashToken(t).slice(0, 12)}/1/report.pdf`);
  });

  it('every other spelling of a link answers 404 and none of them logs the token', async () => {
    const t = fx.token;
    const variants = [
      `/%74/${t}`,
      `/%54/${t}`,
      `/t//${t}`,
      `//t/${t}`,
      `/T/${t}`,
      `/t/${t}/`,
      `/t/${escapeOne(t, 3)}`,
      `/t/${t}/%31/report.pdf`,
      `/t/${t}/1//report.pdf`,
      `/t/${t}/1/report%2Epdf`,
      `/t/${t}/%7a%69%70`,
      `/t/${t}%2F1%2Freport.pdf`,
      `/x/${t}`,
      `/t;a/${t}`,
    ];
    const before = lines.length;
    for (const url of variants) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(404);
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    }
    const logged = lines.slice(before).join('');
    // One completed-request line per variant, none with the token or its escaped form.
    expect(logged.match(/request completed/g)?.length).toBe(variants.length);
    expect(logged).not.toContain(t);
    expect(logged).not.toContain(escapeOne(t, 3));
  });

  it('admin requests are logged without their query strings', async () => {
    const before = lines.length;
    for (const url of [`/admin/api/transfers?token=${QUERY_SECRET}`, `/admin?token=${QUERY_SECRET}`, `/admin/api/transfers?q=${fx.token}`]) {
      await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    }
    const logged = lines.slice(before).join('');
    expect(logged.match(/request completed/g)?.length).toBe(3);
    expect(logged).not.toContain(QUERY_SECRET);
    expect(logged).not.toContain(fx.token);
    expect(logged).not.toContain(ADMIN_TOKEN);
    expect(logged).toContain('"url":"/admin/api/transfers?…"');
  });
});
