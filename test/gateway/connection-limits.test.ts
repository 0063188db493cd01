import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addressGroup } from '../../config/ip-ranges.js';
import { hashPassword } from '../../gateway/auth.js';
import { startFerry, tempDir, type TestFerry } from '../helpers/ferry.js';
import { RawSmtp } from '../helpers/smtp-client.js';

// Issue 15, item 2: 505 connections from one untrusted address (127.0.0.2, trusted networks
// 127.0.0.1/32) got 500 greetings, and the organisation's MTA then got 421. Now: at most
// smtp.maxConnectionsPerAddress per address (IPv6: per /64), smtp.reservedConnections slots
// only for trusted and logged-in clients, and a short idle timeout for clients that may not
// send (smtp.untrustedIdleTimeout).

const plain = (user: string, pass: string) => Buffer.from(`\0${user}\0${pass}`).toString('base64');

/** A bare connection and its first reply line: the greeting, or the 421 that refuses it. */
async function connect(port: number, localAddress: string): Promise<{ socket: net.Socket; greeting: string }> {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress });
  socket.on('error', () => undefined);
  let buf = '';
  const greeting = await new Promise<string>((resolve) => {
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      const i = buf.indexOf('\r\n');
      if (i >= 0) resolve(buf.slice(0, i));
    });
    socket.on('close', () => resolve(buf));
  });
  return { socket, greeting };
}

async function relayOne(port: number, localAddress: string, outbox: string): Promise<void> {
  const c = await RawSmtp.connect(port, '127.0.0.1', localAddress);
  expect(await c.cmd('EHLO mta.example.com')).toMatch(/^250/);
  expect(await c.cmd('MAIL FROM:<alice@example.com>')).toMatch(/^250/);
  expect(await c.cmd('RCPT TO:<bob@example.net>')).toMatch(/^250/);
  const reply = await c.data('From: alice@example.com\r\nTo: bob@example.net\r\nSubject: still here\r\n\r\nhello\r\n');
  expect(reply).toMatch(/^250 2\.0\.0 Ok: queued as /);
  const id = /queued as ([A-Z0-9]+)/.exec(reply)![1];
  expect(fs.existsSync(path.join(outbox, `${id}.eml`))).toBe(true);
  c.close();
}

function closeAll(conns: { socket: net.Socket }[]) {
  for (const c of conns) c.socket.destroy();
}

describe('the attack of issue 15: 505 connections from one untrusted address', () => {
  let ferry: TestFerry;
  beforeAll(async () => {
    ferry = await startFerry({ smtp: { trustedNetworks: ['127.0.0.1/32'] } });
  });
  afterAll(async () => ferry?.stopAndClean());

  it('gets smtp.maxConnectionsPerAddress (20) greetings and 421 4.7.0 for the rest; the trusted MTA still relays', async () => {
    const opened = await Promise.all(Array.from({ length: 505 }, () => connect(ferry.smtpPort, '127.0.0.2')));
    try {
      const greeted = opened.filter((o) => o.greeting.startsWith('220 '));
      const refused = opened.filter((o) => !o.greeting.startsWith('220 '));
      expect(greeted).toHaveLength(20);
      expect(refused).toHaveLength(485);
      for (const r of refused) {
        expect(r.greeting).toBe('421 4.7.0 Too many connections from your address are open to this gateway (at most 20); please try again in a moment.');
      }
      await relayOne(ferry.smtpPort, '127.0.0.1', ferry.outbox);
    } finally {
      closeAll(opened);
    }
  }, 60_000);
});

describe('reserved slots and logged-in clients', () => {
  let ferry: TestFerry;
  const dir = tempDir('ferry-connlimits-');
  beforeAll(async () => {
    const usersFile = path.join(dir, 'users');
    fs.writeFileSync(usersFile, `alice:${await hashPassword('right password', 10)}\n`);
    ferry = await startFerry({
      smtp: {
        trustedNetworks: ['127.0.0.1/32'],
        maxConnections: 30,
        reservedConnections: 10,
        maxConnectionsPerAddress: 5,
        auth: { usersFile, allowInsecure: true },
      },
    });
  });
  afterAll(async () => {
    await ferry?.stopAndClean();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('many untrusted addresses fill only the unreserved share; the trusted MTA gets a reserved slot and relays', async () => {
    const opened: { socket: net.Socket; greeting: string }[] = [];
    try {
      // Six addresses, five connections each: 30 attempts for the 20 unreserved slots.
      for (let a = 2; a <= 7; a++) opened.push(...(await Promise.all(Array.from({ length: 5 }, () => connect(ferry.smtpPort, `127.0.0.${a}`)))));
      const greeted = opened.filter((o) => o.greeting.startsWith('220 '));
      expect(greeted).toHaveLength(20);
      for (const o of opened.filter((x) => !x.greeting.startsWith('220 '))) {
        expect(o.greeting).toBe('421 4.7.0 Too many connections are open to this gateway; please try again in a moment.');
      }
      await relayOne(ferry.smtpPort, '127.0.0.1', ferry.outbox);
    } finally {
      closeAll(opened);
    }
  });

  it('a client that logged in no longer counts against its address or the unreserved share', async () => {
    // The previous test's connections are closed; wait until the server has seen them all go.
    for (let i = 0; i < 100; i++) {
      const probe = await Promise.all(Array.from({ length: 5 }, () => connect(ferry.smtpPort, '127.0.0.2')));
      closeAll(probe);
      if (probe.every((p) => p.greeting.startsWith('220 '))) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 200));
    const user = await RawSmtp.connect(ferry.smtpPort, '127.0.0.1', '127.0.0.2');
    expect(await user.cmd('EHLO laptop.example.com')).toMatch(/^250/);
    expect(await user.cmd(`AUTH PLAIN ${plain('alice', 'right password')}`)).toMatch(/^235 /);
    const others = await Promise.all(Array.from({ length: 6 }, () => connect(ferry.smtpPort, '127.0.0.2')));
    try {
      // Five more from the same address: the logged-in connection is not one of its five.
      expect(others.filter((o) => o.greeting.startsWith('220 '))).toHaveLength(5);
      expect(await user.cmd('MAIL FROM:<alice@example.com>')).toMatch(/^250/);
      expect(await user.cmd('RCPT TO:<bob@example.net>')).toMatch(/^250/);
    } finally {
      user.close();
      closeAll(others);
    }
  });
});

describe('idle timeout for clients that may not send', () => {
  let ferry: TestFerry;
  beforeAll(async () => {
    ferry = await startFerry({ smtp: { trustedNetworks: ['127.0.0.1/32'], untrustedIdleTimeout: '1s', socketTimeout: '5m' } });
  });
  afterAll(async () => ferry?.stopAndClean());

  it('an idle untrusted client is disconnected after smtp.untrustedIdleTimeout; an idle trusted one stays', async () => {
    const untrusted = await RawSmtp.connect(ferry.smtpPort, '127.0.0.1', '127.0.0.2');
    const trusted = await RawSmtp.connect(ferry.smtpPort, '127.0.0.1', '127.0.0.1');
    try {
      // The server says 421 and closes once the short timeout passed (waited for, not timed).
      expect(await untrusted.reply(10_000)).toMatch(/^421 /);
      await new Promise((r) => setTimeout(r, 300));
      expect(untrusted.closed).toBe(true);
      expect(trusted.closed).toBe(false);
      expect(await trusted.cmd('NOOP')).toMatch(/^250/);
    } finally {
      untrusted.close();
      trusted.close();
    }
  });
});

describe('addressGroup (per-address key)', () => {
  it('is the IPv4 address (also when IPv4-mapped) and the /64 of an IPv6 address', () => {
    expect(addressGroup('127.0.0.2')).toBe('127.0.0.2');
    expect(addressGroup('::ffff:127.0.0.2')).toBe('127.0.0.2');
    expect(addressGroup('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(addressGroup('2001:db8:1:2:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64');
    expect(addressGroup('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressGroup('2001:db8:1:3::1')).not.toBe(addressGroup('2001:db8:1:2::1'));
  });
});
