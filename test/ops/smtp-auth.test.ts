import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { register } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword, parseUsers, Users, verifyPassword } from '../../gateway/auth.js';
import { freePort, startFerry, tempDir, type TestFerry } from '../helpers/ferry.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { Upstream } from '../helpers/upstream.js';
import { hasTool, makeCert, swaks } from './helpers.js';

// SMTP AUTH and TLS with a real client (swaks) and a certificate made by openssl: AUTH only
// after TLS, logged-in users relay from anywhere, everyone else outside trustedNetworks gets
// 550 5.7.1, a wrong password 535 5.7.8.

const missing = ['swaks', 'openssl'].filter((t) => !hasTool(t));
if (missing.length) console.warn(`test/ops/smtp-auth.test.ts: skipped, missing ${missing.join(', ')} (Debian packages swaks, openssl)`);

describe('password hashes', () => {
  it('verifies scrypt hashes from hashPassword and bcrypt hashes (htpasswd -B), and nothing else', async () => {
    const s = await hashPassword('correct horse', 10);
    expect(s).toMatch(/^\$scrypt\$ln=10,r=8,p=1\$/);
    expect(await verifyPassword('correct horse', s)).toBe(true);
    expect(await verifyPassword('correct hors', s)).toBe(false);
    const b = bcrypt.hashSync('battery staple', 4).replace(/^\$2a\$/, '$2y$');
    expect(await verifyPassword('battery staple', b)).toBe(true);
    expect(await verifyPassword('battery', b)).toBe(false);
    expect(await verifyPassword('x', 'plaintext')).toBe(false);
  });

  it('the example users file in docs/operations.md is valid and matches its stated password', async () => {
    const doc = fs.readFileSync(path.join(import.meta.dirname, '../../docs/operations.md'), 'utf8');
    const block = /```\n(# \/etc\/ferry\/smtp-users[^`]*)```/.exec(doc)![1]!;
    const users = parseUsers(block);
    expect([...users.keys()]).toEqual(['exchange', 'printer']);
    for (const hash of users.values()) expect(await verifyPassword('example password', hash)).toBe(true);
  });

  it('re-reads a changed users file; a broken edit keeps the previous users and is reported once', async () => {
    const d = tempDir('ferry-users-');
    const file = path.join(d, 'users');
    fs.writeFileSync(file, `alice:${await hashPassword('a-pass', 10)}\n`);
    const errors: string[] = [];
    const users = new Users(file, (err) => errors.push(err.message));
    expect(await users.check('alice', 'a-pass')).toBe(true);
    expect(await users.check('bob', 'b-pass')).toBe(false);
    fs.appendFileSync(file, `bob:${await hashPassword('b-pass', 10)}\n`);
    expect(await users.check('bob', 'b-pass')).toBe(true);
    fs.appendFileSync(file, 'carol:not-a-hash\n');
    expect(await users.check('alice', 'a-pass')).toBe(true);
    expect(await users.check('bob', 'b-pass')).toBe(true);
    expect(errors).toEqual([`smtp.auth.usersFile ${file} line 3: expected NAME:HASH with a scrypt hash from "ferry hash-password" or a bcrypt hash ($2b$...)`]);
    fs.rmSync(d, { recursive: true, force: true });
  });

  it('names the line of a bad users file without showing it', () => {
    expect(() => parseUsers('# users\nalice:$2y$04$abc\n', 'users.txt')).toThrow(/users\.txt line 2: expected NAME:HASH/);
    expect(parseUsers('\n# c\nbob:$2b$04$' + 'a'.repeat(53) + '\n').has('bob')).toBe(true);
  });
});

describe.skipIf(missing.length > 0)('SMTP AUTH and TLS (swaks)', () => {
  let ferry: TestFerry;
  let upstream: Upstream;
  let tlsPort = 0;
  const dir = tempDir('ferry-auth-');

  beforeAll(async () => {
    upstream = await new Upstream().start();
    const { cert, key } = makeCert(dir);
    const usersFile = path.join(dir, 'users');
    fs.writeFileSync(usersFile, `# Ferry SMTP users\nalice:${await hashPassword('s3cret pass', 12)}\nbob:${bcrypt.hashSync('bob-pw', 4)}\n`);
    tlsPort = await freePort();
    ferry = await startFerry({
      // Loopback is NOT trusted here: every client of this test is an outsider unless it logs in.
      smtp: { trustedNetworks: ['192.0.2.0/24'], tls: { cert, key }, tlsPort, auth: { usersFile }, greetingDelay: 0 },
      relay: { url: upstream.url },
    });
  });
  afterAll(async () => {
    await ferry?.stopAndClean();
    await upstream?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const base = () => ['--server', '127.0.0.1', '--port', String(ferry.smtpPort), '--from', 'alice@example.com', '--to', 'carol@example.net', '--helo', 'client.test'];

  it('STARTTLS + AUTH PLAIN: an outsider who logs in relays', async () => {
    const before = upstream.messages.length;
    const r = await swaks([...base(), '--tls', '--auth', 'PLAIN', '--auth-user', 'alice', '--auth-password', 's3cret pass', '--header', 'Subject: auth plain']);
    expect(r.out).toMatch(/235 2\.7\.0/);
    expect(r.out).toMatch(/250 2\.0\.0 Ok: queued as/);
    expect(r.status).toBe(0);
    expect(upstream.messages.length).toBe(before + 1);
    expect(upstream.messages.at(-1)!.raw.toString()).toContain('Subject: auth plain');
  });

  it('AUTH LOGIN on the implicit-TLS port, with a bcrypt user', async () => {
    const r = await swaks(['--server', '127.0.0.1', '--port', String(tlsPort), '--tlsc', '--auth', 'LOGIN', '--auth-user', 'bob', '--auth-password', 'bob-pw', '--from', 'bob@example.com', '--to', 'dave@example.net']);
    expect(r.out).toMatch(/235 2\.7\.0/);
    expect(r.status).toBe(0);
  });

  it('without TLS, AUTH is not advertised and is refused with 538 5.7.11', async () => {
    const c = await RawSmtp.connect(ferry.smtpPort);
    const ehlo = await c.cmd('EHLO client.test');
    expect(ehlo).toContain('STARTTLS');
    expect(ehlo).not.toMatch(/AUTH/);
    expect(await c.cmd('AUTH PLAIN ' + Buffer.from('\0alice\0s3cret pass').toString('base64'))).toBe('538 5.7.11 Log in only over an encrypted connection: send STARTTLS first.');
    c.close();
    // swaks, asked to log in without TLS, finds no AUTH to use.
    const r = await swaks([...base(), '--auth', 'PLAIN', '--auth-user', 'alice', '--auth-password', 's3cret pass']);
    expect(r.status).not.toBe(0);
    expect(r.out).not.toMatch(/235 /);
  });

  it('a wrong password gets 535 5.7.8 and relays nothing', async () => {
    const before = upstream.messages.length;
    const r = await swaks([...base(), '--tls', '--auth', 'PLAIN', '--auth-user', 'alice', '--auth-password', 'wrong']);
    expect(r.out).toContain('535 5.7.8 The user name or password is not correct.');
    expect(r.status).not.toBe(0);
    const u = await swaks([...base(), '--tls', '--auth', 'LOGIN', '--auth-user', 'nobody', '--auth-password', 'x']);
    expect(u.out).toContain('535 5.7.8');
    expect(upstream.messages.length).toBe(before);
  });

  it('the third wrong password on one connection closes it with 421 4.7.0', async () => {
    const c = await startTls(ferry.smtpPort);
    const ehlo = await c.cmd('EHLO client.test');
    expect(ehlo).toMatch(/AUTH PLAIN LOGIN/);
    const plain = (u: string, p: string) => `AUTH PLAIN ${Buffer.from(`\0${u}\0${p}`).toString('base64')}`;
    expect(await c.cmd(plain('alice', 'one'))).toBe('535 5.7.8 The user name or password is not correct.');
    expect(await c.cmd(plain('alice', 'two'))).toBe('535 5.7.8 The user name or password is not correct.');
    expect(await c.cmd(plain('alice', 'three'))).toBe('421 4.7.0 Too many failed logins; closing the connection.');
    expect(await c.closed).toBe(true);
  });

  it('an outsider who does not log in is refused at RCPT with 550 5.7.1, over TLS too (never an open relay)', async () => {
    const r = await swaks([...base(), '--tls']);
    expect(r.out).toMatch(/550 5\.7\.1 Relaying to <carol@example\.net> is not allowed/);
    expect(r.status).not.toBe(0);
  });

  it('counted: logins ok and failed, STARTTLS upgrades, implicit-TLS sessions', async () => {
    // The tests above, in order: 2 good logins; 2 + 3 wrong passwords; STARTTLS by swaks --tls
    // (4 runs) and by the raw client (1); one session on the implicit-TLS port.
    expect(await metric('ferry_smtp_auth_total', { result: 'ok' })).toBe(2);
    expect(await metric('ferry_smtp_auth_total', { result: 'failed' })).toBe(5);
    expect(await metric('ferry_smtp_starttls_total')).toBe(5);
    expect(await metric('ferry_smtp_sessions_total', { tls: 'implicit' })).toBe(1);
  });
});

/** A line-oriented SMTP client that has done STARTTLS (node:tls over the plain socket). */
async function startTls(port: number): Promise<{ cmd(line: string): Promise<string>; closed: Promise<boolean> }> {
  const plain = await RawSmtp.connect(port);
  await plain.cmd('EHLO client.test');
  expect(await plain.cmd('STARTTLS')).toMatch(/^220 /);
  plain.socket.removeAllListeners('data');
  const socket = tls.connect({ socket: plain.socket, rejectUnauthorized: false, servername: 'localhost' });
  await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
  socket.setEncoding('latin1');
  let buf = '';
  const waiting: ((reply: string) => void)[] = [];
  const lines: string[] = [];
  const flush = () => {
    while (waiting.length && lines.length) {
      const end = lines.findIndex((l) => !/^\d{3}-/.test(l));
      if (end < 0) return;
      waiting.shift()!(lines.splice(0, end + 1).join('\n'));
    }
  };
  socket.on('data', (d: string) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\r\n')) >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 2);
    }
    flush();
  });
  const closed = new Promise<boolean>((resolve) => socket.once('close', () => resolve(true)));
  return {
    cmd(line: string) {
      socket.write(`${line}\r\n`);
      return new Promise((resolve) => {
        waiting.push(resolve);
        flush();
      });
    },
    closed,
  };
}

/** The value of a metric (with these labels) in this process's registry. */
async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = register.getSingleMetric(name);
  if (!m) return NaN;
  const v = (await m.get()).values.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l));
  return v?.value ?? 0;
}

describe('greeting delay', () => {
  let ferry: TestFerry;
  beforeAll(async () => {
    ferry = await startFerry({ smtp: { trustedNetworks: ['127.0.0.1/32'], greetingDelay: '1500ms' } });
  });
  afterAll(async () => ferry?.stopAndClean());

  async function greeting(localAddress: string, talkEarly = false): Promise<{ line: string; ms: number }> {
    const t0 = Date.now();
    const socket = net.connect({ port: ferry.smtpPort, host: '127.0.0.1', localAddress });
    socket.setEncoding('latin1');
    if (talkEarly) socket.once('connect', () => socket.write('EHLO early.test\r\n'));
    const line = await new Promise<string>((resolve) => {
      let buf = '';
      socket.on('data', (d: string) => {
        buf += d;
        if (buf.includes('\r\n')) resolve(buf.split('\r\n')[0]!);
      });
      socket.on('close', () => resolve(buf));
    });
    socket.destroy();
    return { line, ms: Date.now() - t0 };
  }

  it('greets a trusted client at once and makes others wait smtp.greetingDelay', async () => {
    const trusted = await greeting('127.0.0.1');
    expect(trusted.line).toMatch(/^220 ferry\.test ESMTP/);
    expect(trusted.ms).toBeLessThan(1000);
    const other = await greeting('127.0.0.2');
    expect(other.line).toMatch(/^220 /);
    expect(other.ms).toBeGreaterThanOrEqual(1400);
  });

  it('an untrusted client that talks before the greeting is refused', async () => {
    const r = await greeting('127.0.0.2', true);
    expect(r.line).toBe('421 4.5.0 Commands were sent before the greeting; closing the connection.');
  });
});
