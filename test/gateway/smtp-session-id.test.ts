import net from 'node:net';
import type { SMTPServerSession } from 'smtp-server';
import { afterEach, describe, expect, it } from 'vitest';
import { FerrySMTPServer } from '../../gateway/smtp-server.js';

// gateway/smtp-server.ts draws each connection's session id from the pool of bytes for shown ids
// (storage/tokens.ts) instead of one randomBytes() call per connection; a listener that expects
// a PROXY header still goes smtp-server's own way.

const servers: FerrySMTPServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise<void>((r) => s.close(() => r()));
});

async function listen(opts: { useProxy?: boolean } = {}): Promise<{ port: number; sessions: SMTPServerSession[] }> {
  const sessions: SMTPServerSession[] = [];
  const s = new FerrySMTPServer({
    logger: false,
    authOptional: true,
    ...opts,
    onConnect: (session, cb) => {
      sessions.push(session);
      cb();
    },
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return { port: (s.server.address() as net.AddressInfo).port, sessions };
}

/** Connects, optionally sends `first`, and waits for the greeting. */
function greeting(port: number, first = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1', () => first && c.write(first));
    c.once('data', (d) => {
      c.end('QUIT\r\n');
      resolve(d.toString());
    });
    c.once('error', reject);
  });
}

describe('SMTP session ids', () => {
  it('every connection gets its own id of 16 base-32 digits, as smtp-server makes them', async () => {
    const { port, sessions } = await listen();
    for (let i = 0; i < 600; i += 50) await Promise.all(Array.from({ length: 50 }, () => greeting(port)));
    expect(sessions).toHaveLength(600);
    for (const s of sessions) expect(s.id).toMatch(/^[0-9a-v]{16}$/);
    expect(new Set(sessions.map((s) => s.id)).size).toBe(600);
  });

  it('a listener with useProxy reads the PROXY header (the client address it names is the session’s)', async () => {
    const { port, sessions } = await listen({ useProxy: true });
    const g = await greeting(port, 'PROXY TCP4 203.0.113.7 127.0.0.1 5555 25\r\n');
    expect(g).toMatch(/^220 /);
    expect(sessions[0]!.remoteAddress).toBe('203.0.113.7');
    expect(sessions[0]!.id).toMatch(/^[0-9a-v]{16}$/);
  });
});
