import net from 'node:net';

// A loopback TCP proxy in front of a real server (RGW, PostgreSQL), so a test can make that
// server unreachable or hung for one Ferry without touching the server that other test files
// share: cut() resets every connection and refuses new ones, stall() keeps connections open but
// forwards nothing more (a hung server), heal() goes back to normal.

export class TcpProxy {
  private server: net.Server;
  private readonly pairs = new Set<[net.Socket, net.Socket]>();
  private mode: 'ok' | 'cut' | 'stall' = 'ok';
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {
    this.server = net.createServer((client) => this.accept(client));
  }

  static forUrl(url: string): TcpProxy {
    const u = new URL(url);
    return new TcpProxy(u.hostname, Number(u.port));
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  /** `url` with its host and port replaced by the proxy's. */
  rewrite(url: string): string {
    const u = new URL(url);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString().replace(/\/$/, url.endsWith('/') ? '/' : '');
  }

  private accept(client: net.Socket): void {
    client.on('error', () => undefined);
    if (this.mode === 'cut') {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(this.targetPort, this.targetHost);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    const pair: [net.Socket, net.Socket] = [client, upstream];
    this.pairs.add(pair);
    const forget = () => this.pairs.delete(pair);
    client.on('close', () => {
      upstream.destroy();
      forget();
    });
    upstream.on('close', () => {
      client.destroy();
      forget();
    });
    // Forwarded by hand rather than pipe(), so that stall() can stop the flow both ways; with
    // backpressure, so that the proxy never holds more than socket buffers (a stall must bite).
    const forward = (from: net.Socket, to: net.Socket) =>
      from.on('data', (d) => {
        if (this.mode !== 'ok') return;
        if (!to.write(d)) {
          from.pause();
          to.once('drain', () => from.resume());
        }
      });
    forward(client, upstream);
    forward(upstream, client);
  }

  /** The server is gone: open connections are reset, new ones refused. */
  cut(): void {
    this.mode = 'cut';
    for (const [c, u] of this.pairs) {
      c.resetAndDestroy();
      u.destroy();
    }
    this.pairs.clear();
  }

  /** The server hangs: connections open but nothing more gets through (requests and answers are dropped). */
  stall(): void {
    this.mode = 'stall';
  }

  /** Back to normal for new connections (stalled ones are reset: their bytes were lost). */
  heal(): void {
    if (this.mode === 'stall') {
      for (const [c, u] of this.pairs) {
        c.destroy();
        u.destroy();
      }
      this.pairs.clear();
    }
    this.mode = 'ok';
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
