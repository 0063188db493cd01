import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newToken } from '../../storage/index.js';
import { buildWebApp } from '../../web/app.js';
import { clientKey } from '../../web/plugins/rate-limit.js';
import { addTransfer, makeEnv, PUBLIC_URL, type Env, type Fixture } from './helpers.js';

// Token look-ups are limited per client address: a generous limit on all of them, a strict one
// on failed ones, after which the address gets 429 even for good tokens (so a guesser learns
// nothing). Addresses come from X-Forwarded-For here (trustProxy), as behind a real proxy.

let env: Env;
let app: FastifyInstance;
let fx: Fixture;
const from = (ip: string, extra: Record<string, string> = {}) => ({ 'x-forwarded-for': ip, ...extra });

beforeAll(async () => {
  env = await makeEnv();
  fx = await addTransfer(env, { files: [{ name: 'a.txt', data: Buffer.from('a') }] });
  app = await buildWebApp({ publicUrl: PUBLIC_URL, db: env.db, blobs: env.blobs, trustProxy: true, rateLimit: { max: 12, windowMs: 60_000, missMax: 3, missWindowMs: 60_000 } });
});

afterAll(async () => {
  await app.close();
  await env.close();
});

describe('token rate limits', () => {
  it('cut off an address after a few failed look-ups, for good tokens too, and leave other addresses alone', async () => {
    const guesser = '203.0.113.50';
    for (let i = 0; i < 3; i++) {
      expect((await app.inject({ url: `/t/${newToken()}`, headers: from(guesser) })).statusCode).toBe(404);
    }
    const refused = await app.inject({ url: `/t/${newToken()}`, headers: from(guesser, { 'accept-language': 'de' }) });
    expect(refused.statusCode).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect(refused.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(refused.body).toContain('<h1>Zu viele Anfragen</h1>');
    expect(refused.body).not.toMatch(/rate limit exceeded|FST_|statusCode/i);
    // A good token from the same address: also refused, so the answer reveals nothing.
    expect((await app.inject({ url: `/t/${fx.token}`, headers: from(guesser) })).statusCode).toBe(429);
    expect((await app.inject({ url: `/t/${fx.token}/1/a.txt`, headers: from(guesser) })).statusCode).toBe(429);
    // Another address is not affected, and neither are pages outside /t/.
    expect((await app.inject({ url: `/t/${fx.token}`, headers: from('198.51.100.1') })).statusCode).toBe(200);
    expect((await app.inject({ url: '/', headers: from(guesser) })).statusCode).toBe(200);
    expect((await app.inject({ url: '/assets/ferry.css', headers: from(guesser) })).statusCode).toBe(200);
  });

  it('let many successful look-ups through, up to the general limit', async () => {
    const office = '192.0.2.10';
    for (let i = 0; i < 12; i++) {
      expect((await app.inject({ url: i % 2 ? `/t/${fx.token}` : `/t/${fx.token}/1/a.txt`, headers: from(office) })).statusCode, `request ${i + 1}`).toBe(200);
    }
    const res = await app.inject({ url: `/t/${fx.token}`, headers: from(office) });
    expect(res.statusCode).toBe(429);
    expect(res.body).toContain('Too many requests');
  });

  it('treat an IPv6 /64 as one client', async () => {
    expect(clientKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:db8:1:2:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(clientKey('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(clientKey('192.0.2.1')).toBe('192.0.2.1');
    for (let i = 0; i < 3; i++) await app.inject({ url: `/t/${newToken()}`, headers: from(`2001:db8:5:6::${i + 1}`) });
    expect((await app.inject({ url: `/t/${fx.token}`, headers: from('2001:db8:5:6:ffff::9') })).statusCode).toBe(429);
    expect((await app.inject({ url: `/t/${fx.token}`, headers: from('2001:db8:5:7::1') })).statusCode).toBe(200);
  });
});
