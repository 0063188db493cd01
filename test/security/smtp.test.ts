import net from 'node:net';
import os from 'node:os';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { addressInList, buildBlockList } from '../../config/ip-ranges.js';
import { buildDsn } from '../../gateway/dsn.js';
import { startFerry, type TestFerry } from '../helpers/ferry.js';
import { RawSmtp } from '../helpers/smtp-client.js';

// The gateway, attacked from the SMTP side: never an open relay (IPv4-mapped IPv6 addresses
// from a dual-stack listener, logins that fail), and no SMTP smuggling towards the next hop
// (a bare LF or CR before a dot must not reach it as a line end).

/**
 * A next hop that records the exact bytes of every command and of the DATA it is sent
 * (smtp-server would parse them away). No PIPELINING: each command gets its reply.
 */
class RawNextHop {
  readonly commands: string[] = [];
  readonly data: Buffer[] = [];
  private server = net.createServer((socket) => {
    let buf = Buffer.alloc(0);
    let inData = false;
    socket.write('220 nexthop.test ESMTP\r\n');
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        if (inData) {
          const end = buf.indexOf('\r\n.\r\n');
          if (end < 0) return;
          this.data.push(buf.subarray(0, end + 2));
          buf = buf.subarray(end + 5);
          inData = false;
          socket.write('250 2.0.0 queued\r\n');
          continue;
        }
        const eol = buf.indexOf('\r\n');
        if (eol < 0) return;
        const line = buf.subarray(0, eol).toString('latin1');
        buf = buf.subarray(eol + 2);
        this.commands.push(line);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') socket.write('250-nexthop.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n');
        else if (verb === 'AUTH') socket.write('235 2.7.0 ok\r\n');
        else if (line.toUpperCase() === 'STARTTLS') socket.write('502 5.5.1 not offered\r\n');
        else if (verb === 'DATA') {
          inData = true;
          socket.write('354 go ahead\r\n');
        } else if (verb === 'QUIT') socket.end('221 bye\r\n');
        else socket.write('250 2.0.0 ok\r\n');
      }
    });
    socket.on('error', () => undefined);
  });
  port = 0;

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

describe('trusted networks and IPv4-mapped IPv6 addresses', () => {
  it('matches ::ffff:a.b.c.d against IPv4 ranges, and nothing outside them', () => {
    const list = buildBlockList(['10.0.0.0/8', '::1/128']);
    expect(addressInList(list, '::ffff:10.0.0.1')).toBe(true);
    expect(addressInList(list, '::FFFF:10.1.2.3')).toBe(true);
    expect(addressInList(list, '::ffff:11.0.0.1')).toBe(false);
    expect(addressInList(list, '::ffff:127.0.0.1')).toBe(false);
    expect(addressInList(list, '127.0.0.1')).toBe(false);
    // IPv4-compatible and NAT64 forms are not the IPv4 address: not trusted.
    expect(addressInList(list, '::10.0.0.1')).toBe(false);
    expect(addressInList(list, '64:ff9b::a00:1')).toBe(false);
    expect(addressInList(list, undefined)).toBe(false);
    expect(addressInList(list, 'not-an-address')).toBe(false);
  });
  it('an IPv6 range never trusts IPv4 clients (::/0 or ::/64 is not an open relay)', () => {
    for (const wide of ['::/0', '::/64', '::ffff:0:0/95']) {
      const list = buildBlockList([wide]);
      expect(addressInList(list, '8.8.8.8'), wide).toBe(false);
      expect(addressInList(list, '::ffff:8.8.8.8'), wide).toBe(false);
    }
    expect(addressInList(buildBlockList(['::/0']), '2001:db8::1')).toBe(true);
    // An IPv4-mapped range is the IPv4 range it maps, for both spellings of a client.
    const mapped = buildBlockList(['::ffff:10.0.0.0/104']);
    expect(addressInList(mapped, '10.1.2.3')).toBe(true);
    expect(addressInList(mapped, '::ffff:10.1.2.3')).toBe(true);
    expect(addressInList(mapped, '11.1.2.3')).toBe(false);
    // And an IPv4 range never matches an IPv6 client.
    expect(addressInList(buildBlockList(['0.0.0.0/0']), '2001:db8::1')).toBe(false);
  });
});

describe('a dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d', () => {
  let ferry: TestFerry | undefined;
  afterEach(async () => {
    await ferry?.stopAndClean();
    ferry = undefined;
  });

  // A dual-stack listen on '::' needs IPv6 on the machine (the loopback's ::1 is enough).
  const hasIpv6 = Object.values(os.networkInterfaces()).some((list) => list?.some((i) => i.family === 'IPv6'));
  if (!hasIpv6) console.warn('test/security/smtp.test.ts: dual-stack cases skipped, no IPv6 on this machine');

  it.skipIf(!hasIpv6)('relays for a trusted IPv4 client and refuses an untrusted one', async () => {
    for (const [trusted, expected] of [
      [['127.0.0.0/8'], /^250/],
      [['10.0.0.0/8', '::1/128'], /^550 5\.7\.1 /],
    ] as const) {
      ferry = await startFerry({ smtp: { host: '::', trustedNetworks: trusted, greetingDelay: 0 } });
      const c = await RawSmtp.connect(ferry.smtpPort!, '127.0.0.1');
      expect(await c.cmd('EHLO client.test')).toMatch(/^250/);
      expect(await c.cmd('MAIL FROM:<a@example.org>')).toMatch(/^250/);
      expect(await c.cmd('RCPT TO:<b@example.net>')).toMatch(expected);
      c.close();
      await ferry.stopAndClean();
      ferry = undefined;
    }
  });
});

describe('no SMTP smuggling towards the next hop', () => {
  let ferry: TestFerry;
  let hop: RawNextHop;
  beforeAll(async () => {
    hop = await new RawNextHop().start();
    ferry = await startFerry({ smtp: { greetingDelay: 0 }, relay: { url: `smtp://127.0.0.1:${hop.port}`, starttls: 'off' } });
  });
  afterAll(async () => {
    await ferry?.stopAndClean();
    await hop?.stop();
  });

  it('bare LF and bare CR before a dot reach the next hop as CRLF, dot-stuffed, inside one message', async () => {
    const smuggled = 'MAIL FROM:<ceo@victim.example>\r\nRCPT TO:<staff@victim.example>\r\nDATA\r\nSubject: smuggled\r\n\r\nwire the money\r\n';
    const body =
      'From: a@example.org\r\nTo: b@example.net\r\nSubject: innocent\r\n\r\nhello\r\n' +
      `line one\n.\r\n${smuggled}` +
      `line two\r\n.\n${smuggled}` +
      `line three\r.\r${smuggled}` +
      'bye\r\n';
    const c = await RawSmtp.connect(ferry.smtpPort!);
    await c.cmd('EHLO client.test');
    expect(await c.cmd('MAIL FROM:<a@example.org>')).toMatch(/^250/);
    expect(await c.cmd('RCPT TO:<b@example.net>')).toMatch(/^250/);
    expect(await c.data(body)).toMatch(/^250/);
    c.close();
    // One transaction at the next hop; the smuggled commands stayed inside its DATA.
    expect(hop.commands.filter((l) => /^MAIL FROM:/i.test(l))).toEqual([expect.stringMatching(/^MAIL FROM:<a@example\.org>/i)]);
    expect(hop.data).toHaveLength(1);
    const sent = hop.data[0]!.toString('latin1');
    expect(sent).not.toMatch(/[^\r]\n/); // no bare LF
    expect(sent).not.toMatch(/\r[^\n]/); // no bare CR
    expect(sent).toContain('wire the money');
    // Every line that starts with a dot was stuffed.
    for (const line of sent.split('\r\n')) if (line.startsWith('.')) expect(line.startsWith('..'), JSON.stringify(line)).toBe(true);
  });
});

describe('the relay password never crosses the network in clear', () => {
  let hop: RawNextHop;
  let ferry: TestFerry | undefined;
  beforeAll(async () => {
    hop = await new RawNextHop().start();
  });
  afterEach(async () => {
    await ferry?.stopAndClean();
    ferry = undefined;
  });
  afterAll(async () => hop?.stop());

  const send = async (f: TestFerry) => {
    const c = await RawSmtp.connect(f.smtpPort!);
    await c.cmd('EHLO client.test');
    await c.cmd('MAIL FROM:<a@example.org>');
    await c.cmd('RCPT TO:<b@example.net>');
    // Delivered or queued for a retry: either way the client's message is safe.
    expect(await c.data('Subject: hi\r\n\r\nhello\r\n')).toMatch(/^250 /);
    c.close();
  };

  it('relay.starttls opportunistic (the default) with a password: a next hop without STARTTLS gets no AUTH', async () => {
    // An attacker on the path strips STARTTLS from the EHLO reply: this hop never offers it.
    ferry = await startFerry({ smtp: { greetingDelay: 0 }, relay: { url: `smtp://relayuser:Relay-Secret-9@127.0.0.1:${hop.port}` } });
    await send(ferry);
    expect(hop.commands.filter((l) => /^AUTH/i.test(l))).toEqual([]);
    const seen = Buffer.concat([Buffer.from(hop.commands.join('\n')), ...hop.data]).toString('latin1');
    expect(seen).not.toContain(Buffer.from('\0relayuser\0Relay-Secret-9').toString('base64'));
    expect(seen).not.toContain('Relay-Secret-9');
  });

  it('relay.starttls off says plaintext AUTH is wanted, and then it is used', async () => {
    ferry = await startFerry({ smtp: { greetingDelay: 0 }, relay: { url: `smtp://relayuser:Relay-Secret-9@127.0.0.1:${hop.port}`, starttls: 'off' } });
    await send(ferry);
    expect(hop.commands.some((l) => /^AUTH PLAIN/i.test(l))).toBe(true);
  });
});

describe('DSNs built from next-hop replies and client parameters', () => {
  it('a CR, LF or NUL in a reply, ENVID, ORCPT or address cannot start a header or a MIME part', () => {
    const inject = '\r\nX-Injected: yes\r\n\r\n--evil\r\nContent-Type: text/html\r\n\r\n<script>';
    const dsn = buildDsn({
      kind: 'failure',
      reportingMta: `ferry.test${inject}`,
      remoteMta: `mx.example.net${inject}`,
      to: `alice@example.org${inject}`,
      queueId: 'ABCDEF0123456789',
      envid: `env${inject}`,
      arrivalDate: Date.now(),
      recipients: [{ address: `bob@example.net${inject}`, orcpt: `rfc822;bob${inject}`, status: '5.1.1', diagnostic: `550 5.1.1 no such user${inject}\0` }],
      originalHeaders: Buffer.from('From: alice@example.org\r\nSubject: report\r\n\r\n'),
      now: Date.now(),
    }).toString('latin1');
    const lines = dsn.split('\r\n');
    expect(lines.filter((l) => /^X-Injected:/i.test(l))).toEqual([]);
    expect(lines.filter((l) => l === '--evil')).toEqual([]);
    expect(dsn).not.toContain('\0');
    expect(dsn).not.toMatch(/[^\r]\n|\r[^\n]/);
    // The values are still there, on their own lines, for a person to read.
    expect(dsn).toContain('Diagnostic-Code: smtp; 550 5.1.1 no such user X-Injected: yes --evil Content-Type: text/html <script>');
  });
});
