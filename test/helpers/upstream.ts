import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { AddressInfo } from 'node:net';

// A real next-hop SMTP server for the tests (smtp-server), recording what it receives and
// answering as a test tells it to.

export interface ReceivedMessage {
  from: string;
  to: string[];
  raw: Buffer;
  /** When the message was taken (just before the 250). */
  at: number;
}

export interface UpstreamBehaviour {
  /** Reply for RCPT TO per recipient; undefined accepts. */
  rcpt?: (address: string) => { code: number; message: string } | undefined;
  /** Reply after DATA; undefined accepts. */
  data?: () => { code: number; message: string } | undefined;
}

export class Upstream {
  readonly messages: ReceivedMessage[] = [];
  behaviour: UpstreamBehaviour = {};
  private server: SMTPServer;
  port = 0;

  constructor() {
    this.server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      hideENHANCEDSTATUSCODES: false,
      logger: false,
      onRcptTo: (address, _session, cb) => {
        const r = this.behaviour.rcpt?.(address.address);
        if (r) return cb(Object.assign(new Error(r.message), { responseCode: r.code }));
        cb();
      },
      onData: (stream: SMTPServerDataStream, session: SMTPServerSession, cb) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const r = this.behaviour.data?.();
          if (r) return cb(Object.assign(new Error(r.message), { responseCode: r.code }));
          this.messages.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((x) => x.address),
            raw: Buffer.concat(chunks),
            at: Date.now(),
          });
          cb(null, 'OK upstream');
        });
      },
    });
    this.server.on('error', () => undefined);
  }

  /** Listens on `port` (default: a free one); a test that brings a next hop back passes the old port. */
  async start(port = 0): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.server.address() as AddressInfo).port;
    return this;
  }

  get url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
