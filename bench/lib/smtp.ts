import net from 'node:net';

// A minimal SMTP client over a raw socket: the bench must control exactly how bytes go out
// (one generated chunk at a time, waiting for the socket to drain) and must never wait without
// a deadline, which a general-purpose client does not guarantee. Replies are read whole
// (multi-line joined with \n).

export class SmtpSession {
  private buf = '';
  private readonly lines: string[] = [];
  private waiter: (() => void) | undefined;
  private closedErr: Error | undefined;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf += d.toString('latin1');
      if (this.buf.length > 1024 * 1024) return this.fail(new Error('SMTP server sent over 1 MiB without a line end'));
      let i;
      while ((i = this.buf.indexOf('\r\n')) >= 0) {
        this.lines.push(this.buf.slice(0, i));
        this.buf = this.buf.slice(i + 2);
      }
      this.wake();
    });
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('the SMTP server closed the connection')));
  }

  private fail(err: Error) {
    this.closedErr ??= err;
    this.wake();
  }

  private wake() {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  static async connect(port: number, timeoutMs: number, host = '127.0.0.1'): Promise<SmtpSession> {
    const socket = net.connect({ port, host });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        socket.destroy();
        reject(new Error(`no connection to ${host}:${port} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(t);
        resolve();
      });
      socket.once('error', (err) => {
        clearTimeout(t);
        reject(err);
      });
    });
    return new SmtpSession(socket);
  }

  /** The next complete reply. Rejects on timeout or when the connection ends first. */
  async reply(timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    const out: string[] = [];
    for (;;) {
      while (!this.lines.length) {
        if (this.closedErr) throw new Error(`${this.closedErr.message}${out.length ? ` (after "${out.join('\\n')}")` : ''}`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no SMTP reply within ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          this.waiter = () => {
            clearTimeout(t);
            resolve();
          };
        });
      }
      const line = this.lines.shift()!;
      out.push(line);
      if (!/^\d{3}-/.test(line)) return out.join('\n');
    }
  }

  async command(line: string, timeoutMs = 30_000): Promise<string> {
    await this.write(Buffer.from(`${line}\r\n`, 'latin1'), timeoutMs);
    return this.reply(timeoutMs);
  }

  /** Writes, then waits for the socket to drain if its buffer is full: the sender's memory stays at one chunk. */
  async write(chunk: Buffer, timeoutMs: number): Promise<void> {
    if (this.closedErr) throw this.closedErr;
    if (this.socket.write(chunk)) return;
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(t);
        this.socket.off('drain', onDrain);
        this.socket.off('close', onClose);
        if (err) reject(err);
        else resolve();
      };
      const onDrain = () => done();
      const onClose = () => done(this.closedErr ?? new Error('the SMTP server closed the connection while we were sending'));
      const t = setTimeout(() => done(new Error(`the SMTP server read nothing for ${timeoutMs} ms`)), timeoutMs);
      this.socket.on('drain', onDrain);
      this.socket.on('close', onClose);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Connects until a 220 greeting comes, or the deadline passes (or `gaveUp` says the server is dead). */
export async function waitForGreeting(port: number, timeoutMs: number, gaveUp: () => string | undefined = () => undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const dead = gaveUp();
    if (dead) throw new Error(dead);
    try {
      const s = await SmtpSession.connect(port, Math.max(100, Math.min(2000, deadline - Date.now())));
      try {
        const greeting = await s.reply(Math.max(100, Math.min(5000, deadline - Date.now())));
        if (greeting.startsWith('220')) {
          await s.command('QUIT', 2000).catch(() => undefined);
          return;
        }
        last = greeting;
      } finally {
        s.close();
      }
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no SMTP greeting on 127.0.0.1:${port} within ${timeoutMs} ms (last: ${last})`);
}
