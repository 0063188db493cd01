import net from 'node:net';

// A raw-socket SMTP client for tests where the exact reply lines matter (nodemailer's client
// hides them). Lines are CRLF-terminated; multi-line replies are collected whole.

export class RawSmtp {
  private buf = '';
  private waiters: ((line: string) => void)[] = [];
  private lines: string[] = [];
  closed = false;
  readonly socket: net.Socket;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buf += d;
      let i;
      while ((i = this.buf.indexOf('\r\n')) >= 0) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 2);
        this.lines.push(line);
        this.flush();
      }
    });
    socket.on('close', () => {
      this.closed = true;
      this.flush();
    });
    socket.on('error', () => undefined);
  }

  /** `localAddress` picks the client's own address (e.g. 127.0.0.2, outside smtp.trustedNetworks). */
  static async connect(port: number, host = '127.0.0.1', localAddress?: string): Promise<RawSmtp> {
    const socket = net.connect({ port, host, ...(localAddress ? { localAddress } : {}) });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const c = new RawSmtp(socket);
    await c.reply(); // greeting
    return c;
  }

  private flush() {
    while (this.waiters.length && (this.lines.length || this.closed)) {
      const w = this.waiters.shift()!;
      w(this.lines.length ? this.lines.shift()! : '');
    }
  }

  private nextLine(timeoutMs = 30_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('timeout waiting for a reply line')), timeoutMs);
      this.waiters.push((l) => {
        clearTimeout(t);
        resolve(l);
      });
      this.flush();
    });
  }

  /** The next complete reply (all lines of a multi-line reply joined by \n); '' if the connection closed. */
  async reply(timeoutMs?: number): Promise<string> {
    const out: string[] = [];
    for (;;) {
      const l = await this.nextLine(timeoutMs);
      if (l === '' && this.closed) return out.join('\n');
      out.push(l);
      if (!/^\d{3}-/.test(l)) return out.join('\n');
    }
  }

  write(data: string | Buffer): boolean {
    return this.socket.write(data);
  }

  async cmd(line: string): Promise<string> {
    this.write(`${line}\r\n`);
    return this.reply();
  }

  /** Sends `body` as DATA content (dot-stuffed here), waiting for the socket to drain. */
  async data(body: Buffer | string | AsyncIterable<Buffer>): Promise<string> {
    const r = await this.cmd('DATA');
    if (!r.startsWith('354')) return r;
    const send = async (chunk: Buffer) => {
      if (!this.write(chunk)) await new Promise((res) => this.socket.once('drain', res));
    };
    if (typeof body === 'string' || Buffer.isBuffer(body)) await send(dotStuff(Buffer.from(body)));
    else for await (const chunk of body) await send(chunk);
    this.write('\r\n.\r\n');
    return this.reply(120_000);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Dot-stuffs a whole message (lines starting with "." get another). */
export function dotStuff(b: Buffer): Buffer {
  const s = b.toString('latin1').replace(/(^|\r\n)\./g, '$1..');
  return Buffer.from(s.endsWith('\r\n') ? s.slice(0, -2) : s, 'latin1');
}

/**
 * One message over a fresh connection, alice@example.com to bob@example.net: EHLO, MAIL, RCPT,
 * DATA. Returns the reply to DATA (the commands before it are not checked: a refusal there shows
 * up as a DATA reply that is not 250).
 */
export async function sendOne(port: number, raw: Buffer | string): Promise<string> {
  const c = await RawSmtp.connect(port);
  try {
    await c.cmd('EHLO client.test');
    await c.cmd('MAIL FROM:<alice@example.com>');
    await c.cmd('RCPT TO:<bob@example.net>');
    return await c.data(raw);
  } finally {
    c.close();
  }
}
