import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY_MS, seedRetentionRules } from '../../storage/index.js';
import { buildSite } from '../../admin/site.js';
import { makeEnv, PUBLIC_URL, type Env } from '../web/helpers.js';

// web.trustProxy: true means one reverse proxy in front of Ferry. Most proxies (HAProxy with
// forwardfor, Traefik, Caddy, cloud load balancers) APPEND the address they saw to the
// X-Forwarded-For a client sent, so only the right-most entry is known to be true. Believing the
// left-most one would let a client claim a new address with every request and walk past the
// admin login limit and the link-guessing limit.

const TOKEN = 'proxy-test-token-0123456789abcdef';
const bounds = { defaultMs: 30 * DAY_MS, minMs: DAY_MS, maxMs: 90 * DAY_MS };
let env: Env;
let app: FastifyInstance;

beforeAll(async () => {
  env = await makeEnv();
  await seedRetentionRules(env.db, bounds);
  app = await buildSite({
    publicUrl: PUBLIC_URL,
    db: env.db,
    blobs: env.blobs,
    trustProxy: true,
    rateLimit: { missMax: 5 },
    admin: { token: TOKEN, retention: bounds },
  });
  // A route that shows what Ferry takes the client to be.
  app.get('/whoami', async (request) => ({ ip: request.ip }));
});
afterAll(async () => {
  await app?.close();
  await env?.close();
});

// The proxy (at 127.0.0.1, the socket's peer) appended the real client, 203.0.113.9.
const viaProxy = (claimed: string) => ({ 'x-forwarded-for': `${claimed}, 203.0.113.9`, 'x-forwarded-proto': 'https' });

describe('behind a proxy that appends to X-Forwarded-For', () => {
  it('the client address is the one the proxy added, not the one the client claimed', async () => {
    const r = await app.inject({ url: '/whoami', headers: viaProxy('198.51.100.77') });
    expect(r.json()).toEqual({ ip: '203.0.113.9' });
    // And with no proxy header at all, the socket's peer.
    expect((await app.inject({ url: '/whoami' })).json()).toEqual({ ip: '127.0.0.1' });
  });

  it('the admin login limit cannot be dodged by claiming a new address per guess', async () => {
    for (let i = 0; i < 20; i++) {
      const r = await app.inject({ url: '/admin/api/stats', headers: { ...viaProxy(`198.51.100.${i}`), authorization: `Bearer wrong-token-${i}-0123456789abcdef` } });
      expect(r.statusCode).toBe(401);
    }
    // The 21st guess, from yet another claimed address, is still counted against the real one.
    // (The right token is never locked out for longer than admin.lockoutDelay: test/admin/api.test.ts.)
    const blocked = await app.inject({ url: '/admin/api/stats', headers: { ...viaProxy('198.51.100.200'), authorization: 'Bearer wrong-token-again-0123456789abcdef' } });
    expect(blocked.statusCode).toBe(429);
    expect(blocked.headers['retry-after']).toBeDefined();
  });

  it('the link-guessing limit cannot be dodged either', async () => {
    const guess = (i: number) => app.inject({ url: `/t/${'A'.repeat(26)}${String.fromCharCode(66 + i)}`, headers: { 'x-forwarded-for': `192.0.2.${i}, 203.0.113.50` } });
    for (let i = 0; i < 5; i++) expect((await guess(i)).statusCode).toBe(404);
    expect((await guess(9)).statusCode).toBe(429);
  });

  it('HSTS follows the X-Forwarded-Proto the proxy set, not one the client put in front', async () => {
    const spoofed = await app.inject({ url: '/', headers: { 'x-forwarded-proto': 'https, http' } });
    expect(spoofed.headers['strict-transport-security']).toBeUndefined();
    const real = await app.inject({ url: '/', headers: { 'x-forwarded-proto': 'https' } });
    expect(real.headers['strict-transport-security']).toBe('max-age=31536000');
  });
});
