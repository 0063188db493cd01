import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRelay, RelayError, type Relay, type RelayOptions } from '../../gateway/relay.js';
import { tempDir } from '../helpers/ferry.js';

// The relay client against real SMTP servers (smtp-server): connection reuse, a pooled
// connection the server closed, STARTTLS required / opportunistic / off, AUTH, timeouts.

const dir = tempDir('ferry-relay-');
let cert: { key: string; cert: string } | undefined;
const hasOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
if (!hasOpenssl) console.warn('queue-relay.test.ts: STARTTLS tests skipped: openssl is missing (it makes their self-signed certificate)');

beforeAll(() => {
  if (!hasOpenssl) return;
  const key = path.join(dir, 'key.pem');
  const crt = path.join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', crt, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  cert = { key: fs.readFileSync(key, 'utf8'), cert: fs.readFileSync(crt, 'utf8') };
});

interface Seen {
  connections: number;
  messages: { secure: boolean; user: unknown; to: string[] }[];
}

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function server(opts: Partial<SMTPServerOptions> = {}): Promise<{ port: number; seen: Seen }> {
  const seen: Seen = { connections: 0, messages: [] };
  const s = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    logger: false,
    onConnect: (_session, cb) => {
      seen.connections++;
      cb();
    },
    onData: (stream, session, cb) => {
      stream.resume();
      stream.on('end', () => {
        seen.messages.push({ secure: session.secure, user: session.user, to: session.envelope.rcptTo.map((r) => r.address) });
        cb();
      });
    },
    ...opts,
  });
  s.on('error', () => undefined);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise<void>((r) => s.close(() => r())));
  return { port: (s.server.address() as net.AddressInfo).port, seen };
}

function relay(url: string, opts: Partial<RelayOptions> = {}): Relay {
  const r = createRelay({ url, hostname: 'ferry.test', timeoutMs: 5000, starttls: 'opportunistic', tlsVerify: false, poolSize: 2, ...opts });
  cleanups.push(() => r.close());
  return r;
}

const msg = (n: number) => () => Readable.from([Buffer.from(`Subject: m${n}\r\n\r\nhello ${n}\r\n`)]);
const send = (r: Relay, n: number, to = ['bob@example.net']) => r.send({ from: 'alice@example.com', to, size: 30 }, msg(n), `m${n}`);

describe('connection reuse', () => {
  it('five messages in a row share one connection; with poolSize 0 each gets its own', async () => {
    const { port, seen } = await server();
    const pooled = relay(`smtp://127.0.0.1:${port}`);
    for (let i = 0; i < 5; i++) expect((await send(pooled, i)).accepted).toEqual(['bob@example.net']);
    expect(seen).toMatchObject({ connections: 1 });
    expect(seen.messages).toHaveLength(5);

    const single = relay(`smtp://127.0.0.1:${port}`, { poolSize: 0 });
    for (let i = 0; i < 3; i++) await send(single, i);
    expect(seen.connections).toBe(4);
  });

  it('an idle connection is closed with QUIT after idleMs, so a quiet gateway holds none at the next hop', async () => {
    let closed = 0;
    const { port, seen } = await server({ onClose: () => closed++ });
    const r = relay(`smtp://127.0.0.1:${port}`, { idleMs: 300 });
    await send(r, 1);
    await new Promise((res) => setTimeout(res, 100));
    expect(closed).toBe(0);
    await new Promise((res) => setTimeout(res, 600));
    expect(closed).toBe(1);
    // The next message opens a new connection.
    await send(r, 2);
    expect(seen.connections).toBe(2);
  });

  it('as many idle connections are kept as poolSize says, the rest are closed after their message', async () => {
    let closed = 0;
    const { port, seen } = await server({ onClose: () => closed++ });
    const r = relay(`smtp://127.0.0.1:${port}`, { poolSize: 3 });
    await Promise.all(Array.from({ length: 5 }, (_, i) => send(r, i)));
    expect(seen.connections).toBe(5);
    await new Promise((res) => setTimeout(res, 200));
    expect(closed).toBe(2);
    // The next three reuse the idle ones.
    await Promise.all(Array.from({ length: 3 }, (_, i) => send(r, 10 + i)));
    expect(seen.connections).toBe(5);
  });

  it('an idle connection the next hop closed is replaced, and the message goes once', async () => {
    // The next hop drops idle clients after 200 ms.
    const { port, seen } = await server({ socketTimeout: 200 });
    const r = relay(`smtp://127.0.0.1:${port}`);
    await send(r, 1);
    await new Promise((res) => setTimeout(res, 600));
    expect((await send(r, 2)).accepted).toEqual(['bob@example.net']);
    expect(seen.connections).toBe(2);
    expect(seen.messages).toHaveLength(2);
  });

  it('after a refusal the connection is not reused (its state is uncertain)', async () => {
    const { port, seen } = await server({ onRcptTo: (a, _s, cb) => (a.address.startsWith('no') ? cb(Object.assign(new Error('No'), { responseCode: 550 })) : cb()) });
    const r = relay(`smtp://127.0.0.1:${port}`);
    const err = await send(r, 1, ['nobody@example.net']).catch((e: RelayError) => e);
    expect(err).toBeInstanceOf(RelayError);
    expect((err as RelayError).permanent).toBe(true);
    expect((err as RelayError).rejected.map((x) => [x.recipient, x.code])).toEqual([['nobody@example.net', 550]]);
    await send(r, 2);
    await send(r, 3);
    expect(seen.connections).toBe(2);
  });
});

describe.skipIf(!hasOpenssl)('STARTTLS', () => {
  const tlsServer = () => server({ disabledCommands: ['AUTH'], key: cert!.key, cert: cert!.cert });

  it('opportunistic: TLS when offered; off: plain even when offered', async () => {
    const { port, seen } = await tlsServer();
    await send(relay(`smtp://127.0.0.1:${port}`, { starttls: 'opportunistic' }), 1);
    await send(relay(`smtp://127.0.0.1:${port}`, { starttls: 'off' }), 2);
    expect(seen.messages.map((m) => m.secure)).toEqual([true, false]);
  });

  it('required: a next hop without STARTTLS gets nothing, and that is a temporary failure (queued, not bounced)', async () => {
    const { port, seen } = await server();
    const err = await send(relay(`smtp://127.0.0.1:${port}`, { starttls: 'required' }), 1).catch((e: RelayError) => e);
    expect(err).toBeInstanceOf(RelayError);
    expect((err as RelayError).permanent).toBe(false);
    expect(seen.messages).toHaveLength(0);
  });

  it('required with certificate checks: a self-signed next hop is refused; without checks it is used', async () => {
    const { port, seen } = await tlsServer();
    const err = await send(relay(`smtp://127.0.0.1:${port}`, { starttls: 'required', tlsVerify: true }), 1).catch((e: RelayError) => e);
    expect((err as RelayError).permanent).toBe(false);
    await send(relay(`smtp://127.0.0.1:${port}`, { starttls: 'required', tlsVerify: false }), 2);
    expect(seen.messages.map((m) => m.secure)).toEqual([true]);
  });
});

describe('AUTH', () => {
  const authServer = () =>
    server({
      disabledCommands: ['STARTTLS'],
      allowInsecureAuth: true,
      authOptional: false,
      onAuth: (auth, _s, cb) => (auth.username === 'ferry' && auth.password === 'p@ss word' ? cb(null, { user: 'ferry' }) : cb(new Error('Invalid username or password'))),
    });

  it('logs in with the user and password from the URL (URL-encoded)', async () => {
    const { port, seen } = await authServer();
    await send(relay(`smtp://ferry:p%40ss%20word@127.0.0.1:${port}`, { starttls: 'off' }), 1);
    expect(seen.messages.map((m) => m.user)).toEqual(['ferry']);
  });

  it('a refused login is a temporary failure (the message waits in the queue), not a bounce to the sender', async () => {
    const { port, seen } = await authServer();
    const err = await send(relay(`smtp://ferry:wrong@127.0.0.1:${port}`, { starttls: 'off' }), 1).catch((e: RelayError) => e);
    expect(err).toBeInstanceOf(RelayError);
    expect((err as RelayError).permanent).toBe(false);
    expect((err as RelayError).message).toMatch(/refused Ferry's login/);
    expect(seen.messages).toHaveLength(0);
  });
});

describe('timeouts', () => {
  it('a next hop that accepts the connection and never greets: the attempt ends at relay.attemptTimeout', async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    cleanups.push(async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    });
    const t0 = Date.now();
    const err = await send(relay(`smtp://127.0.0.1:${(silent.address() as net.AddressInfo).port}`, { timeoutMs: 800 }), 1).catch((e: RelayError) => e);
    const ms = Date.now() - t0;
    expect(err).toBeInstanceOf(RelayError);
    expect((err as RelayError).permanent).toBe(false);
    expect(ms).toBeGreaterThanOrEqual(700);
    expect(ms).toBeLessThan(5000);
  });

  it('a next hop that stops answering after DATA: the attempt ends at relay.attemptTimeout', async () => {
    const { port, seen } = await server({ onData: (stream) => stream.resume() }); // never calls back
    const t0 = Date.now();
    const err = await send(relay(`smtp://127.0.0.1:${port}`, { timeoutMs: 800 }), 1).catch((e: RelayError) => e);
    expect(err).toBeInstanceOf(RelayError);
    expect((err as RelayError).permanent).toBe(false);
    expect((err as RelayError).dataStarted).toBe(true);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(seen.messages).toHaveLength(0);
  });
});
