import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../gateway/auth.js';
import { receivedField } from '../../gateway/received.js';
import { freePort, startFerry, tempDir, type TestFerry } from '../helpers/ferry.js';
import { ferryReceived, stripFerryReceived } from '../helpers/received.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { Upstream } from '../helpers/upstream.js';
import { hasTool, makeCert, swaks } from '../ops/helpers.js';

// Ferry's Received field (RFC 5321 section 4.4) on every relayed message, read back by two
// independent parsers (Python's email package and mailparser), with the RFC 3848 protocol
// name of the session: ESMTP, ESMTPS (STARTTLS or implicit TLS), ESMTPSA (logged in), SMTP (HELO).

const missing = ['swaks', 'openssl', 'python3'].filter((t) => !hasTool(t));
if (missing.length) console.warn(`test/gateway/received.test.ts: skipped, missing ${missing.join(', ')} (Debian packages swaks, openssl, python3)`);

/** Python's email package: the first Received field, its parsed date and the rest of the fields. */
function pythonReceived(raw: Buffer): { received: string; date: string; count: number } {
  const script = [
    'import sys, json, email, email.policy, email.utils',
    'm = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)',
    'r = m.get_all("Received")',
    'first = str(r[0])',
    'd = email.utils.parsedate_to_datetime(first.rsplit(";", 1)[1].strip())',
    'print(json.dumps({"received": first, "date": d.isoformat(), "count": len(r)}))',
  ].join('\n');
  return JSON.parse(execFileSync('python3', ['-c', script], { input: raw }).toString());
}

describe.skipIf(missing.length > 0)("Ferry's Received field", () => {
  let ferry: TestFerry;
  let upstream: Upstream;
  let tlsPort = 0;
  const dir = tempDir('ferry-received-');

  beforeAll(async () => {
    upstream = await new Upstream().start();
    const { cert, key } = makeCert(dir);
    const usersFile = path.join(dir, 'users');
    fs.writeFileSync(usersFile, `alice:${await hashPassword('s3cret pass', 10)}\n`);
    tlsPort = await freePort();
    ferry = await startFerry({
      smtp: { tls: { cert, key }, tlsPort, auth: { usersFile }, greetingDelay: 0 },
      relay: { url: upstream.url },
    });
  });
  afterAll(async () => {
    await ferry?.stopAndClean();
    await upstream?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const base = () => ['--server', '127.0.0.1', '--port', String(ferry.smtpPort), '--from', 'alice@example.com', '--to', 'carol@example.net', '--helo', 'client.test'];

  async function viaSwaks(args: string[]): Promise<{ raw: Buffer; id: string }> {
    const before = upstream.messages.length;
    const r = await swaks(args);
    expect(r.status, r.out).toBe(0);
    const id = /queued as ([0-9A-F]{16})/.exec(r.out)![1]!;
    expect(upstream.messages.length).toBe(before + 1);
    return { raw: upstream.messages.at(-1)!.raw, id };
  }

  async function check(raw: Buffer, id: string, protocol: string, rcpt: string | undefined) {
    const t0 = Date.now();
    const trace = ferryReceived(raw);
    expect(trace).toMatchObject({ by: 'ferry.test', protocol, id });
    // The client as it named itself and its address; one recipient is named, several never.
    expect(trace.field).toMatch(/^Received: from client\.test \(\[127\.0\.0\.1\]\)\r\n/);
    if (rcpt) expect(trace.field).toContain(`for <${rcpt}>;`);
    else expect(trace.field).not.toContain(' for <');

    const py = pythonReceived(raw);
    expect(py.received.replace(/\s+/g, ' ')).toBe(trace.field.replace(/^Received: /, '').replace(/\s+/g, ' ').trim());
    expect(Math.abs(Date.parse(py.date) - t0)).toBeLessThan(5 * 60_000);
    expect(py.count).toBe(1 + (stripFerryReceived(raw).toString('latin1').match(/^Received:/gim)?.length ?? 0));

    const mail = await simpleParser(raw);
    const first = ([] as string[]).concat(mail.headers.get('received') as string | string[])[0]!;
    expect(first).toContain(`by ferry.test (Ferry) with ${protocol} id ${id}`);
  }

  it('plain ESMTP from a trusted client', async () => {
    const { raw, id } = await viaSwaks([...base(), '--header', 'Subject: plain']);
    await check(raw, id, 'ESMTP', 'carol@example.net');
  });

  it('ESMTPS after STARTTLS', async () => {
    const { raw, id } = await viaSwaks([...base(), '--tls', '--header', 'Subject: starttls']);
    await check(raw, id, 'ESMTPS', 'carol@example.net');
  });

  it('ESMTPSA after STARTTLS and AUTH, and on the implicit-TLS port', async () => {
    const a = await viaSwaks([...base(), '--tls', '--auth', 'PLAIN', '--auth-user', 'alice', '--auth-password', 's3cret pass']);
    await check(a.raw, a.id, 'ESMTPSA', 'carol@example.net');
    const b = await viaSwaks(['--server', '127.0.0.1', '--port', String(tlsPort), '--tlsc', '--helo', 'client.test', '--from', 'alice@example.com', '--to', 'carol@example.net']);
    await check(b.raw, b.id, 'ESMTPS', 'carol@example.net');
  });

  it('SMTP after HELO; two recipients: none named (Bcc stays blind)', async () => {
    const c = await RawSmtp.connect(ferry.smtpPort);
    try {
      await c.cmd('HELO client.test');
      await c.cmd('MAIL FROM:<alice@example.com>');
      await c.cmd('RCPT TO:<bob@example.net>');
      await c.cmd('RCPT TO:<hidden@example.org>');
      const before = upstream.messages.length;
      const reply = await c.data(Buffer.from('From: alice@example.com\r\nTo: bob@example.net\r\nSubject: two\r\n\r\nHello.\r\n'));
      expect(reply).toMatch(/^250 /);
      expect(upstream.messages.length).toBe(before + 1);
      await check(upstream.messages.at(-1)!.raw, reply.split(' ').at(-1)!, 'SMTP', undefined);
      expect(upstream.messages.at(-1)!.raw.toString()).not.toContain('hidden@example.org');
    } finally {
      c.close();
    }
  });

  it('a hostile EHLO name cannot add lines or comments to the field', () => {
    const f = receivedField({ helo: 'evil\r\nX-Injected: 1 (x)', remoteAddress: '::ffff:192.0.2.7', by: 'ferry.test', protocol: 'ESMTP', queueId: 'ABC', recipients: ['a@b.example'], date: new Date(Date.UTC(2026, 11, 2, 6, 11, 39)) }).toString();
    expect(f).toBe('Received: from evilX-Injected:1x ([192.0.2.7])\r\n\tby ferry.test (Ferry) with ESMTP id ABC\r\n\tfor <a@b.example>; Wed, 02 Dec 2026 06:11:39 +0000\r\n');
  });
});
