import net from 'node:net';
import type { Worker } from 'node:cluster';

// SMTP connections of a node, handed out by the primary to the worker with the fewest open
// sessions (docs/operations.md#processes). node:cluster's round robin gives the next connection
// to whichever worker acknowledged its last one first, which under a burst is the same worker
// again and again: ten 100 MiB messages that arrived together went 10:0, 9:1 or 8:2 in the
// bench, and the worker with them all held 203-224 MB where an even 5:5 held 159-201 (147-152
// with cli/buffer-collector.ts; docs/performance.md, "Which worker gets a connection"). An SMTP session is long and a large
// one is heavy, so the count of open sessions is what decides. The web port stays with the
// cluster's round robin: a download request is short and a worker's read budget bounds it.

/** The message a worker gets with a connection's socket: which listener took it. */
export interface HandedConnection {
  ferry: 'smtp-connection';
  /** Taken on smtp.tlsPort (TLS from the first byte). */
  tls: boolean;
}

/** What a worker says when a connection it was handed has closed. */
export interface ConnectionClosed {
  ferry: 'smtp-closed';
}

export interface SmtpListenOptions {
  host: string;
  port: number;
  /** smtp.tlsPort, when the gateway serves implicit TLS there. */
  tlsPort?: number;
  /** Connections that may wait for a worker to be ready (start-up, a replacement); more are closed. */
  maxWaiting: number;
}

export class SmtpDispatcher {
  private readonly servers: net.Server[] = [];
  /** Open sessions per worker that may take connections. */
  private readonly open = new Map<Worker, number>();
  private readonly waiting: { socket: net.Socket; tls: boolean }[] = [];
  private maxWaiting = 0;
  /** Where the search for the least busy worker starts: ties go round the workers. */
  private turn = 0;

  /** Binds smtp.port (and smtp.tlsPort); the ports in use come back (port 0: the one chosen). */
  async listen(opts: SmtpListenOptions): Promise<{ port: number; tlsPort?: number }> {
    this.maxWaiting = opts.maxWaiting;
    const port = await this.bind(opts.port, opts.host, false);
    const tlsPort =
      opts.tlsPort !== undefined
        ? await this.bind(opts.tlsPort, opts.host, true).catch((err: unknown) => {
            this.close();
            throw err;
          })
        : undefined;
    return { port, tlsPort };
  }

  private bind(port: number, host: string, tls: boolean): Promise<number> {
    // NB pauseOnConnect: the primary never reads a byte; the worker's socket starts reading.
    const server = net.createServer({ pauseOnConnect: true }, (socket) => this.take(socket, tls));
    this.servers.push(server);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        // An accept error (EMFILE) must not end the primary; the listener goes on.
        server.on('error', () => undefined);
        resolve((server.address() as net.AddressInfo).port);
      });
    });
  }

  /** `worker` is ready to take connections (again). */
  add(worker: Worker): void {
    if (!this.open.has(worker)) this.open.set(worker, 0);
    while (this.waiting.length) {
      const w = this.waiting.shift()!;
      if (!w.socket.destroyed) this.hand(w.socket, w.tls);
    }
  }

  /** `worker` is gone: its connections went with it. */
  remove(worker: Worker): void {
    this.open.delete(worker);
  }

  /** `worker` says one of its connections closed. */
  closed(worker: Worker): void {
    const n = this.open.get(worker);
    if (n !== undefined) this.open.set(worker, Math.max(0, n - 1));
  }

  /** Open sessions per worker pid (tests). */
  counts(): Record<number, number> {
    return Object.fromEntries([...this.open].map(([w, n]) => [w.process.pid, n]));
  }

  /** Stops listening; connections already handed stay with their workers. */
  close(): void {
    for (const w of this.waiting.splice(0)) w.socket.destroy();
    // NB not waiting for 'close': a server whose sockets went to other processes asks each of
    // them whether the socket is still open, and a worker that has already ended never answers.
    for (const s of this.servers.splice(0)) s.close();
  }

  private take(socket: net.Socket, tls: boolean): void {
    // NB a client that resets before its worker has the socket would otherwise raise an
    // unhandled 'error' here and end the primary, and with it the node.
    socket.on('error', () => socket.destroy());
    this.hand(socket, tls);
  }

  private hand(socket: net.Socket, tls: boolean, failed?: Worker): void {
    const worker = this.leastBusy(failed);
    if (!worker) {
      if (this.waiting.length < this.maxWaiting) this.waiting.push({ socket, tls });
      else socket.destroy();
      return;
    }
    this.open.set(worker, this.open.get(worker)! + 1);
    worker.send({ ferry: 'smtp-connection', tls } satisfies HandedConnection, socket, (err) => {
      if (!err) return;
      // The worker went away meanwhile: another one takes the client (one retry), or it is closed.
      this.closed(worker);
      if (!failed && !socket.destroyed) this.hand(socket, tls, worker);
      else socket.destroy();
    });
  }

  private leastBusy(except?: Worker): Worker | undefined {
    const workers = [...this.open.keys()].filter((w) => w !== except && w.isConnected());
    if (!workers.length) return undefined;
    let best: Worker | undefined;
    for (let i = 0; i < workers.length; i++) {
      const w = workers[(this.turn + i) % workers.length]!;
      if (!best || this.open.get(w)! < this.open.get(best)!) best = w;
    }
    this.turn = (this.turn + 1) % workers.length;
    return best;
  }
}
