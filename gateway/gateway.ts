import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import type { SMTPServerAddress, SMTPServerAuthentication, SMTPServerAuthenticationResponse, SMTPServerDataStream, SMTPServerOptions, SMTPServerSession } from 'smtp-server';
import { addressInList, buildBlockList } from '../config/ip-ranges.js';
import type { Config } from '../config/schema.js';
import { checkDatabase, type BlobStore, type Db } from '../storage/index.js';
import { Users } from './auth.js';
import { SmtpAuthLimiter } from './auth-limit.js';
import { ConnectionLimits } from './connection-limits.js';
import { heapOverLimit } from './heap-guard.js';
import { messagesRejected, smtpAuth, smtpSessions, smtpSessionsActive, smtpStarttls } from './metrics.js';
import { createRelay, type Relay } from './relay.js';
import { replies, SmtpReplyError } from './replies.js';
import { FerrySMTPServer, type FerryServerExtras } from './smtp-server.js';
import { implicitTlsPort, loadSmtpTls } from './tls.js';
import { MessageTransaction } from './transaction.js';

export interface GatewayOptions {
  config: Config;
  db: Db;
  blobs: BlobStore;
  logger: Logger;
  /** Defaults to the relay named by config.relay.url. */
  relay?: Relay;
}

/** Wrong passwords allowed on one connection before it is closed. */
const MAX_AUTH_FAILURES = 3;
/**
 * How long a storage check that passed answers for the MAIL FROMs after it. Checking at every
 * MAIL FROM (mkdir, access and statfs of the blob directory and a database round trip) was 9 %
 * of the CPU of a small message (docs/performance.md); the S3 store caches its own for 2 s.
 */
const STORAGE_CHECK_TTL_MS = 1000;

/**
 * The SMTP role: accepts mail from trusted clients and logged-in users within the size policy,
 * runs each message through a MessageTransaction, and answers with what the transaction decided.
 * Listens on smtp.port (STARTTLS when smtp.tls is set) and on smtp.tlsPort (implicit TLS).
 */
export class Gateway {
  readonly server: FerrySMTPServer;
  /** The implicit-TLS listener (smtp.tlsPort), when configured. */
  readonly tlsServer: FerrySMTPServer | undefined;
  private readonly relay: Relay;
  private readonly inFlight = new Map<string, { tx: MessageTransaction; done: Promise<unknown> }>();
  private readonly trusted;
  private readonly users: Users | undefined;
  private listening = false;
  /** Connections come from adopt(), not from a listener of its own (takeHandedConnections). */
  private handed = false;
  /** Sessions counted in ferry_smtp_sessions_active (refused connections are not). */
  private readonly counted = new Set<string>();
  /** Open connections on smtp.tlsPort (TLS from the start, so onSecure is not a STARTTLS). */
  private readonly implicitTls = new Set<string>();
  /** Failed logins per open connection. */
  private readonly authFailures = new Map<string, number>();
  /** Failed logins per client address across connections (auth-limit.ts). */
  private readonly authLimiter = new SmtpAuthLimiter();
  private closing: Promise<void> | undefined;

  constructor(private readonly opts: GatewayOptions) {
    const { config, logger } = opts;
    this.relay = opts.relay ?? createRelay({ url: config.relay.url, hostname: config.smtp.hostname, timeoutMs: config.relay.attemptTimeout, starttls: config.relay.starttls, tlsVerify: config.relay.tlsVerify, poolSize: config.relay.poolSize });
    this.trusted = buildBlockList(config.smtp.trustedNetworks);
    // Both throw a named error (bad PEM, bad users file) that stops start-up with the key to fix.
    const tls = config.smtp.tls.cert && config.smtp.tls.key ? loadSmtpTls({ cert: config.smtp.tls.cert, key: config.smtp.tls.key }) : undefined;
    this.users = config.smtp.auth.usersFile
      ? new Users(config.smtp.auth.usersFile, (err) => logger.error({ err }, 'smtp.auth.usersFile changed and cannot be used; the previous users stay valid'))
      : undefined;
    const options = this.serverOptions(tls);
    this.server = new FerrySMTPServer(options);
    this.tlsServer = implicitTlsPort(config) !== undefined && tls ? new FerrySMTPServer({ ...options, secure: true }) : undefined;
    for (const s of [this.server, this.tlsServer]) s?.on('error', (err: Error) => logger.debug({ err }, 'smtp connection error'));
  }

  private serverOptions(tls: { cert: Buffer; key: Buffer } | undefined): SMTPServerOptions & FerryServerExtras {
    const { config, logger } = this.opts;
    const ctx = { config, db: this.opts.db, blobs: this.opts.blobs, relay: this.relay, logger, spoolDir: path.resolve(config.dataDir, 'spool') };
    const greetingDelay = config.smtp.greetingDelay;
    const disabled: string[] = [];
    if (!this.users) disabled.push('AUTH');
    // Without a certificate of its own Ferry offers no STARTTLS: the library's built-in
    // certificate is public, so it would protect nothing.
    if (!tls) disabled.push('STARTTLS');
    return {
      ...(tls ? { key: tls.key, cert: tls.cert } : {}),
      greetingDelay: (address: string) => (addressInList(this.trusted, address) ? 0 : greetingDelay),
      name: config.smtp.hostname,
      banner: 'Ferry',
      size: config.smtp.maxMessageSize,
      hideSize: false,
      hideENHANCEDSTATUSCODES: false,
      hidePIPELINING: false,
      hide8BITMIME: false,
      hideSMTPUTF8: false,
      // DSN parameters (RET, ENVID, NOTIFY, ORCPT) are kept with the message and passed to the
      // next hop (gateway/queue-delivery.ts); Ferry sends DSNs itself for what it queues.
      hideDSN: false,
      disabledCommands: disabled,
      authMethods: ['PLAIN', 'LOGIN'],
      // Trusted networks relay without logging in; the relay policy is enforced in onRcptTo.
      authOptional: true,
      allowInsecureAuth: config.smtp.auth.allowInsecure,
      // The drain is Ferry's (close()); this only bounds the library's final wait for sockets.
      closeTimeout: 2000,
      disableReverseLookup: true,
      maxRecipients: config.smtp.maxRecipients,
      maxClients: config.smtp.maxConnections,
      connectionLimits: new ConnectionLimits({
        trusted: this.trusted,
        maxConnections: config.smtp.maxConnections,
        maxPerAddress: config.smtp.maxConnectionsPerAddress,
        reserved: config.smtp.reservedConnections ?? Math.floor(config.smtp.maxConnections / 10),
      }),
      untrustedIdleTimeout: config.smtp.untrustedIdleTimeout,
      socketTimeout: config.smtp.socketTimeout,
      logger: false,
      onConnect: (session: SMTPServerSession, cb: (err?: Error | null) => void) => {
        if (this.closing) return cb(new SmtpReplyError(replies.shuttingDown()));
        smtpSessions.inc({ tls: session.secure ? 'implicit' : 'plain' });
        if (session.secure) this.implicitTls.add(session.id);
        smtpSessionsActive.inc();
        this.counted.add(session.id);
        cb();
      },
      onSecure: (_socket: unknown, session: SMTPServerSession, cb: (err?: Error | null) => void) => {
        // Also called right after onConnect for every connection on smtp.tlsPort: not a STARTTLS.
        if (!this.implicitTls.has(session.id)) smtpStarttls.inc();
        cb();
      },
      onAuth: (auth: SMTPServerAuthentication, session: SMTPServerSession, cb: (err: Error | null | undefined, response?: SMTPServerAuthenticationResponse) => void) => {
        const name = auth.username ?? '';
        if (this.authLimiter.blocked(session.remoteAddress)) {
          // Refused before any hashing: the guesser learns nothing, and costs the server nothing.
          smtpAuth.inc({ result: 'failed' });
          logger.warn({ client: session.remoteAddress, user: name }, 'smtp login refused: too many failed logins from this address');
          return cb(new SmtpReplyError(replies.authTooManyFailures()));
        }
        this.authenticate(name, auth.password ?? '').then(
          (ok) => {
            smtpAuth.inc({ result: ok ? 'ok' : 'failed' });
            logger.info({ client: session.remoteAddress, user: name, result: ok ? 'ok' : 'failed' }, ok ? 'smtp login' : 'smtp login failed');
            if (ok) return cb(null, { user: name });
            // A few tries per connection, then it is closed: guessing needs a new connection
            // (and a new greeting delay) every few passwords.
            this.authLimiter.fail(session.remoteAddress);
            const failures = (this.authFailures.get(session.id) ?? 0) + 1;
            this.authFailures.set(session.id, failures);
            cb(new SmtpReplyError(failures >= MAX_AUTH_FAILURES ? replies.authTooManyFailures() : replies.authFailed()));
          },
          (err: Error) => {
            logger.error({ err }, 'smtp.auth.usersFile could not be checked');
            cb(new SmtpReplyError(replies.authUnavailable()));
          },
        );
      },
      onMailFrom: (_address: SMTPServerAddress, _session: SMTPServerSession, cb: (err?: Error | null) => void) => {
        const heap = heapOverLimit(config.smtp.heapLimit);
        if (heap) {
          messagesRejected.inc({ reason: 'memory' });
          logger.warn({ heapUsed: heap.used, threshold: Math.round(heap.threshold) }, 'heap above smtp.heapLimit, refusing MAIL FROM');
          return cb(new SmtpReplyError(replies.memoryShort()));
        }
        this.checkStorage().then(() => cb(), (err: Error) => {
          messagesRejected.inc({ reason: 'storage_error' });
          logger.warn({ err }, 'storage unavailable, refusing MAIL FROM');
          cb(new SmtpReplyError(replies.storageUnavailable()));
        });
      },
      onRcptTo: (address: SMTPServerAddress, session: SMTPServerSession, cb: (err?: Error | null) => void) => {
        // Never an open relay: only clients inside smtp.trustedNetworks, or logged in with SMTP
        // AUTH, may send through Ferry.
        if (!session.user && !addressInList(this.trusted, session.remoteAddress)) {
          messagesRejected.inc({ reason: 'relay_denied' });
          logger.info({ client: session.remoteAddress, to: address.address }, 'relay denied');
          return cb(new SmtpReplyError(replies.relayDenied(address.address)));
        }
        cb();
      },
      onData: (stream: SMTPServerDataStream, session: SMTPServerSession, cb: (err?: Error | null, message?: string) => void) => {
        const tx = new MessageTransaction(ctx, session);
        const done = tx
          .run(stream)
          .then(
            ({ reply }) => {
              if (reply.code >= 400) this.storageOkUntil = 0;
              return reply.code < 300 ? cb(null, `${reply.enhanced} ${reply.text}`) : cb(new SmtpReplyError(reply));
            },
            (err: Error) => {
              this.storageOkUntil = 0;
              logger.error({ err }, 'unexpected failure in a message transaction');
              cb(new SmtpReplyError(replies.localError()));
            },
          )
          .finally(() => this.inFlight.delete(session.id));
        this.inFlight.set(session.id, { tx, done });
      },
      onClose: (session: SMTPServerSession) => {
        if (this.counted.delete(session.id)) smtpSessionsActive.dec();
        this.authFailures.delete(session.id);
        this.implicitTls.delete(session.id);
        // Backstop for a client that vanished: the DATA stream may not tell us.
        this.inFlight.get(session.id)?.tx.cancel('connection closed');
      },
    };
  }

  private async authenticate(name: string, password: string): Promise<boolean> {
    if (!this.users) return false;
    return this.users.check(name, password);
  }

  /** SMTP is listening and not shutting down (for /readyz). */
  get ready(): boolean {
    return this.listening && !this.closing;
  }

  private storageOkUntil = 0;
  private storageCheck: Promise<void> | undefined;

  /**
   * Whether the blob store and the database can take mail: checked at most once per
   * STORAGE_CHECK_TTL_MS while they pass, shared by the MAIL FROMs that arrive during a check.
   * NB a failure is never reused (the next MAIL FROM checks again), and a transaction that ends
   * with a temporary failure forgets the last pass, so a store that breaks mid-message is seen
   * by the very next MAIL FROM.
   */
  private checkStorage(): Promise<void> {
    if (performance.now() < this.storageOkUntil) return Promise.resolve();
    this.storageCheck ??= (async () => {
      try {
        await this.opts.blobs.check();
        await checkDatabase(this.opts.db);
        this.storageOkUntil = performance.now() + STORAGE_CHECK_TTL_MS;
      } finally {
        this.storageCheck = undefined;
      }
    })();
    return this.storageCheck;
  }

  async listen(port = this.opts.config.smtp.port, host = this.opts.config.smtp.host): Promise<AddressInfo> {
    const addr = await listenOn(this.server, port, host);
    if (this.tlsServer) {
      try {
        await listenOn(this.tlsServer, this.opts.config.smtp.tlsPort!, host);
      } catch (err) {
        await new Promise<void>((resolve) => this.server.close(() => resolve()));
        throw err;
      }
    }
    this.listening = true;
    return addr;
  }

  /**
   * Serve connections another process accepts (a node's primary, cli/smtp-dispatch.ts) instead
   * of listening here: from now on this gateway is ready, and adopt() gives it each connection.
   */
  takeHandedConnections(): void {
    this.listening = true;
    this.handed = true;
  }

  /** Serves a connection the primary accepted; `tls`: it came in on smtp.tlsPort. */
  adopt(socket: Socket, tls: boolean): void {
    const server = tls ? this.tlsServer : this.server;
    // NB 'connection' is what the listener itself emits for an accepted socket: the library's
    // handler (and the TLS handshake on smtp.tlsPort) takes it from there, as for its own.
    if (server && this.handed) server.server.emit('connection', socket);
    else socket.destroy();
  }

  /** The implicit-TLS listener's address, when smtp.tlsPort is set. */
  tlsAddress(): AddressInfo | undefined {
    return this.tlsServer?.server.address() as AddressInfo | undefined;
  }

  /**
   * Graceful stop: new connections and new commands get 421 4.3.2, messages in flight may finish
   * for up to `timeoutMs` (shutdown.timeout); then those still running are cancelled, which
   * deletes what they stored, and every connection is closed with 421 4.3.2.
   */
  close(timeoutMs = this.opts.config.shutdown.timeout): Promise<void> {
    this.closing ??= this.drainAndClose(timeoutMs);
    return this.closing;
  }

  private async drainAndClose(timeoutMs: number): Promise<void> {
    const servers = [this.server, this.tlsServer].filter((s): s is FerrySMTPServer => !!s);
    for (const s of servers) s.drain();
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight.size && Date.now() < deadline) {
      await Promise.race([Promise.allSettled([...this.inFlight.values()].map((e) => e.done)), sleep(Math.min(250, Math.max(1, deadline - Date.now())))]);
    }
    if (this.inFlight.size) {
      this.opts.logger.warn({ messages: this.inFlight.size }, 'shutdown timeout reached: cancelling the messages still in flight');
      const left = [...this.inFlight.values()];
      for (const e of left) e.tx.cancel('shutting down');
      await Promise.allSettled(left.map((e) => e.done));
    }
    for (const s of servers) s.closeConnections();
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => (this.listening && !this.handed ? s.close(() => resolve()) : resolve()))));
    this.listening = false;
    await this.relay.close();
  }
}

function listenOn(server: FerrySMTPServer, port: number, host: string): Promise<AddressInfo> {
  return new Promise<AddressInfo>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.server.once('error', onError);
    server.listen(port, host, () => {
      server.server.off('error', onError);
      resolve(server.server.address() as AddressInfo);
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
