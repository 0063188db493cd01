import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import type { SMTPServerAddress, SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import { addressInList, buildBlockList } from '../config/ip-ranges.js';
import type { Config } from '../config/schema.js';
import { checkDatabase, type BlobStore, type Db } from '../storage/index.js';
import { createRelay, type Relay } from './relay.js';
import { replies, SmtpReplyError } from './replies.js';
import { FerrySMTPServer } from './smtp-server.js';
import { MessageTransaction } from './transaction.js';

export interface GatewayOptions {
  config: Config;
  db: Db;
  blobs: BlobStore;
  logger: Logger;
  /** Defaults to the relay named by config.relay.url. */
  relay?: Relay;
}

/**
 * The SMTP role: accepts mail from trusted clients within the size policy, runs each message
 * through a MessageTransaction, and answers with what the transaction decided.
 */
export class Gateway {
  readonly server: FerrySMTPServer;
  private readonly relay: Relay;
  private readonly inFlight = new Map<string, MessageTransaction>();
  private readonly trusted;

  constructor(private readonly opts: GatewayOptions) {
    const { config, logger } = opts;
    this.relay = opts.relay ?? createRelay({ url: config.relay.url, hostname: config.smtp.hostname, timeoutMs: config.relay.timeout, starttls: config.relay.starttls, tlsVerify: config.relay.tlsVerify });
    this.trusted = buildBlockList(config.smtp.trustedNetworks);
    const ctx = { config, db: opts.db, blobs: opts.blobs, relay: this.relay, logger, spoolDir: path.resolve(config.dataDir, 'spool') };

    this.server = new FerrySMTPServer({
      name: config.smtp.hostname,
      banner: 'Ferry',
      size: config.smtp.maxMessageSize,
      hideSize: false,
      hideENHANCEDSTATUSCODES: false,
      hidePIPELINING: false,
      hide8BITMIME: false,
      hideSMTPUTF8: false,
      // DSN parameters are passed on once the delivery queue exists.
      hideDSN: true,
      // No SMTP AUTH yet: relaying is for trusted networks only.
      disabledCommands: ['AUTH'],
      authOptional: true,
      disableReverseLookup: true,
      maxRecipients: config.smtp.maxRecipients,
      socketTimeout: config.smtp.socketTimeout,
      logger: false,
      onMailFrom: (_address: SMTPServerAddress, _session: SMTPServerSession, cb: (err?: Error | null) => void) => {
        this.checkStorage().then(() => cb(), (err: Error) => {
          logger.warn({ err }, 'storage unavailable, refusing MAIL FROM');
          cb(new SmtpReplyError(replies.storageUnavailable()));
        });
      },
      onRcptTo: (address: SMTPServerAddress, session: SMTPServerSession, cb: (err?: Error | null) => void) => {
        // Never an open relay: only clients inside smtp.trustedNetworks may send through Ferry.
        if (!addressInList(this.trusted, session.remoteAddress)) {
          logger.info({ client: session.remoteAddress, to: address.address }, 'relay denied');
          return cb(new SmtpReplyError(replies.relayDenied(address.address)));
        }
        cb();
      },
      onData: (stream: SMTPServerDataStream, session: SMTPServerSession, cb: (err?: Error | null, message?: string) => void) => {
        const tx = new MessageTransaction(ctx, session);
        this.inFlight.set(session.id, tx);
        tx.run(stream)
          .then(
            ({ reply }) => (reply.code < 300 ? cb(null, `${reply.enhanced} ${reply.text}`) : cb(new SmtpReplyError(reply))),
            (err: Error) => {
              logger.error({ err }, 'unexpected failure in a message transaction');
              cb(new SmtpReplyError(replies.localError()));
            },
          )
          .finally(() => this.inFlight.delete(session.id));
      },
      onClose: (session: SMTPServerSession) => {
        // Backstop for a client that vanished: the DATA stream may not tell us.
        this.inFlight.get(session.id)?.cancel('connection closed');
      },
    });
    this.server.on('error', (err: Error) => logger.debug({ err }, 'smtp connection error'));
  }

  private async checkStorage(): Promise<void> {
    await this.opts.blobs.check();
    await checkDatabase(this.opts.db);
  }

  async listen(port = this.opts.config.smtp.port, host = this.opts.config.smtp.host): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.server.off('error', onError);
        resolve();
      });
    });
    return this.server.server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.relay.close();
  }
}
