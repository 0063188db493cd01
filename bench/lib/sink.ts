import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';

// The next hop for the bench: a real SMTP server (so Ferry's production relay path, nodemailer's
// client, is what runs) that counts the bytes it receives and keeps only the first `keepBytes`
// of each message: enough to find the download links in a rewritten message, and bounded even
// if Ferry relayed a message with its attachment still inside.

export interface SunkMessage {
  from: string;
  to: string[];
  /** Every byte the next hop received for this message. */
  bytes: number;
  /** The first keepBytes of it. */
  head: Buffer;
  truncated: boolean;
}

export class SinkServer {
  readonly messages: SunkMessage[] = [];
  private readonly server: SMTPServer;
  private waiters: (() => void)[] = [];
  port = 0;

  constructor(private readonly keepBytes = 1024 * 1024) {
    this.server = new SMTPServer({
      authOptional: true,
      // Plain SMTP on loopback: Ferry's opportunistic STARTTLS would otherwise meet smtp-server's
      // self-signed default certificate.
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData: (stream: SMTPServerDataStream, session: SMTPServerSession, cb) => {
        const kept: Buffer[] = [];
        let keptBytes = 0;
        let bytes = 0;
        stream.on('data', (c: Buffer) => {
          bytes += c.length;
          if (keptBytes < this.keepBytes) {
            const part = c.subarray(0, this.keepBytes - keptBytes);
            kept.push(Buffer.from(part)); // a copy: the chunk's pool must not be pinned
            keptBytes += part.length;
          }
        });
        stream.on('end', () => {
          this.messages.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            bytes,
            head: Buffer.concat(kept),
            truncated: bytes > keptBytes,
          });
          cb(null, 'OK bench sink');
          for (const w of this.waiters.splice(0)) w();
        });
      },
    });
    this.server.on('error', () => undefined);
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.server.address() as AddressInfo).port;
    return this;
  }

  get url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  /** Resolves once `count` messages have arrived. */
  async waitFor(count: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`the next hop received ${this.messages.length} of ${count} messages within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async stop(): Promise<void> {
    await Promise.race([new Promise<void>((resolve) => this.server.close(() => resolve())), new Promise((r) => setTimeout(r, 5000).unref())]);
  }
}
