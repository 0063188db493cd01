import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../gateway/auth.js';
import { authClientKey, SmtpAuthLimiter } from '../../gateway/auth-limit.js';
import { startFerry, tempDir, type TestFerry } from '../helpers/ferry.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { Upstream } from '../helpers/upstream.js';

// SMTP AUTH guessing must not go on for ever by reconnecting: the per-connection limit (three
// failures, then 421) is backed by a per-address one (20 failures in ten minutes), after which
// AUTH from that address gets 421 4.7.0 at once, right password included, without hashing.

const plain = (user: string, pass: string) => Buffer.from(`\0${user}\0${pass}`).toString('base64');

describe('SMTP AUTH failures are limited per client address, across connections', () => {
  let ferry: TestFerry;
  let upstream: Upstream;
  const dir = tempDir('ferry-sec-authlimit-');

  beforeAll(async () => {
    upstream = await new Upstream().start();
    const usersFile = path.join(dir, 'users');
    fs.writeFileSync(usersFile, `alice:${await hashPassword('right password', 10)}\n`);
    ferry = await startFerry({
      // Loopback is not trusted: these clients must log in. No TLS, so AUTH is allowed in clear (test only).
      smtp: { trustedNetworks: ['192.0.2.0/24'], greetingDelay: 0, auth: { usersFile, allowInsecure: true } },
      relay: { url: upstream.url },
    });
  });
  afterAll(async () => {
    await ferry?.stopAndClean();
    await upstream?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function session(localAddress: string): Promise<RawSmtp> {
    const c = await RawSmtp.connect(ferry.smtpPort!, '127.0.0.1', localAddress);
    expect(await c.cmd('EHLO guesser.test')).toMatch(/^250/);
    return c;
  }

  it('refuses AUTH inside a mail transaction with 503 5.5.1 (RFC 4954), and accepts it after RSET', async () => {
    const c = await session('127.0.0.9');
    expect(await c.cmd('MAIL FROM:<mallory@example.com>')).toMatch(/^250/);
    expect(await c.cmd(`AUTH PLAIN ${plain('alice', 'right password')}`)).toMatch(/^503 5\.5\.1 /);
    // Still not logged in: the transaction cannot relay.
    expect(await c.cmd('RCPT TO:<carol@example.net>')).toMatch(/^550 5\.7\.1 /);
    expect(await c.cmd('RSET')).toMatch(/^250/);
    expect(await c.cmd(`AUTH PLAIN ${plain('alice', 'right password')}`)).toMatch(/^235/);
    c.close();
  });

  it('refuses every AUTH from an address after 20 failures, and only from that address', async () => {
    let failures = 0;
    while (failures < 20) {
      const c = await session('127.0.0.3');
      for (let i = 0; i < 3 && failures < 20; i++) {
        expect(await c.cmd(`AUTH PLAIN ${plain('alice', `guess-${failures}`)}`)).toMatch(/^(535 5\.7\.8|421 4\.7\.0)/);
        failures++;
      }
      c.close();
    }
    // A fresh connection from the same address: refused at once, even with the right password.
    const blocked = await session('127.0.0.3');
    expect(await blocked.cmd(`AUTH PLAIN ${plain('alice', 'right password')}`)).toMatch(/^421 4\.7\.0 /);
    blocked.close();
    // Without a login the address still cannot relay.
    const c2 = await session('127.0.0.3');
    expect(await c2.cmd('MAIL FROM:<alice@example.com>')).toMatch(/^250/);
    expect(await c2.cmd('RCPT TO:<carol@example.net>')).toMatch(/^550 5\.7\.1 /);
    c2.close();
    // Another address is not affected.
    const other = await session('127.0.0.4');
    expect(await other.cmd(`AUTH PLAIN ${plain('alice', 'right password')}`)).toMatch(/^235 /);
    other.close();
  });
});

describe('SmtpAuthLimiter', () => {
  it('counts IPv4-mapped and plain IPv4 as one client, IPv6 by /64, and forgets after the window', () => {
    expect(authClientKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(authClientKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(authClientKey('2001:db8:1:2::ffff')).toBe('2001:db8:1:2::/64');
    let now = 1_000_000;
    const l = new SmtpAuthLimiter({ max: 2, windowMs: 60_000, now: () => now });
    l.fail('192.0.2.7');
    expect(l.blocked('::ffff:192.0.2.7')).toBe(false);
    l.fail('::ffff:192.0.2.7');
    expect(l.blocked('192.0.2.7')).toBe(true);
    expect(l.blocked('192.0.2.8')).toBe(false);
    now += 60_000;
    expect(l.blocked('192.0.2.7')).toBe(false);
  });
});
