import net from 'node:net';
import type { Worker } from 'node:cluster';
import { afterEach, describe, expect, it } from 'vitest';
import { SmtpDispatcher, type HandedConnection } from '../../cli/smtp-dispatch.js';

// cli/smtp-dispatch.ts, the primary's side of a node's SMTP port: real connections to a real
// listener, handed to stand-ins for the workers that record what they got (the hand-over itself,
// a socket passed over node:cluster's channel, is covered by test/ops/cluster.test.ts).

interface FakeWorker {
  worker: Worker;
  got: { msg: HandedConnection; socket: net.Socket }[];
  connected: boolean;
}

function fakeWorker(pid: number, fail = false): FakeWorker {
  const f: FakeWorker = { got: [], connected: true, worker: undefined as unknown as Worker };
  f.worker = {
    process: { pid },
    isConnected: () => f.connected,
    send: (msg: HandedConnection, socket: net.Socket, cb: (err: Error | null) => void) => {
      if (fail) return void setImmediate(() => cb(new Error('channel closed')));
      f.got.push({ msg, socket });
      setImmediate(() => cb(null));
      return true;
    },
  } as unknown as Worker;
  return f;
}

let dispatcher: SmtpDispatcher | undefined;
const clients: net.Socket[] = [];
afterEach(() => {
  dispatcher?.close();
  for (const c of clients.splice(0)) c.destroy();
  for (const f of fakes.splice(0)) for (const g of f.got) g.socket.destroy();
});
const fakes: FakeWorker[] = [];

async function connect(port: number, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const c = net.connect(port, '127.0.0.1');
    c.on('error', () => undefined);
    clients.push(c);
    await new Promise((r) => c.once('connect', r));
  }
}

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(cond()).toBe(true);
};

describe('SMTP connections handed out by the primary (SmtpDispatcher)', () => {
  it('each new connection goes to the worker with the fewest open sessions', async () => {
    dispatcher = new SmtpDispatcher();
    const { port } = await dispatcher.listen({ host: '127.0.0.1', port: 0, maxWaiting: 10 });
    const [a, b] = [fakeWorker(1), fakeWorker(2)];
    fakes.push(a, b);
    dispatcher.add(a.worker);
    dispatcher.add(b.worker);
    await connect(port, 6);
    await until(() => a.got.length + b.got.length === 6);
    expect([a.got.length, b.got.length]).toEqual([3, 3]);
    // Three of a's sessions end: the next three connections all go to a.
    for (let i = 0; i < 3; i++) dispatcher.closed(a.worker);
    await connect(port, 3);
    await until(() => a.got.length + b.got.length === 9);
    expect([a.got.length, b.got.length]).toEqual([6, 3]);
    expect(dispatcher.counts()).toEqual({ 1: 3, 2: 3 });
  });

  it('connections that arrive before any worker is ready wait for the first one; past maxWaiting they are closed', async () => {
    dispatcher = new SmtpDispatcher();
    const { port } = await dispatcher.listen({ host: '127.0.0.1', port: 0, maxWaiting: 2 });
    await connect(port, 3);
    const closed = new Promise((r) => clients[2]!.once('close', r));
    // The third has no place to wait.
    await closed;
    const a = fakeWorker(1);
    fakes.push(a);
    dispatcher.add(a.worker);
    await until(() => a.got.length === 2);
    expect(a.got.every((g) => g.msg.tls === false)).toBe(true);
  });

  it('a worker whose channel fails gets no connection: another takes it; a disconnected one is passed over', async () => {
    dispatcher = new SmtpDispatcher();
    const { port } = await dispatcher.listen({ host: '127.0.0.1', port: 0, maxWaiting: 2 });
    const [broken, gone, ok] = [fakeWorker(1, true), fakeWorker(2), fakeWorker(3)];
    fakes.push(broken, gone, ok);
    gone.connected = false;
    for (const f of [broken, gone, ok]) dispatcher.add(f.worker);
    await connect(port, 2);
    await until(() => ok.got.length === 2);
    expect(gone.got).toHaveLength(0);
    expect(dispatcher.counts()[1]).toBe(0);
  });

  it('connections on smtp.tlsPort are handed as TLS ones', async () => {
    dispatcher = new SmtpDispatcher();
    const { tlsPort } = await dispatcher.listen({ host: '127.0.0.1', port: 0, tlsPort: 0, maxWaiting: 2 });
    const a = fakeWorker(1);
    fakes.push(a);
    dispatcher.add(a.worker);
    await connect(tlsPort!, 1);
    await until(() => a.got.length === 1);
    expect(a.got[0]!.msg).toEqual({ ferry: 'smtp-connection', tls: true });
  });

  it('a client that resets before a worker has it does not end the primary', async () => {
    dispatcher = new SmtpDispatcher();
    const { port } = await dispatcher.listen({ host: '127.0.0.1', port: 0, maxWaiting: 5 });
    await connect(port, 2);
    for (const c of clients) c.resetAndDestroy();
    await new Promise((r) => setTimeout(r, 100));
    const a = fakeWorker(1);
    fakes.push(a);
    dispatcher.add(a.worker);
    // Still listening and handing out.
    await connect(port, 1);
    await until(() => a.got.length >= 1);
  });
});
