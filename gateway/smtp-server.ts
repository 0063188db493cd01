import type net from 'node:net';
import type tls from 'node:tls';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { messagesRejected } from './metrics.js';
import type { ConnectionLimits } from './connection-limits.js';
import { carriesEnhancedCode, replies } from './replies.js';
import { feedDataInBulk } from './dot-unstuffing.js';
import { shownIdBytes } from '../storage/index.js';

// smtp-server with Ferry's reply rules. Two things the library cannot be configured to do:
// 1. give a reply its own RFC 3463 code (it derives one from the reply code, so "552" always
//    becomes 5.2.2 "mailbox full" and "452" 4.2.2): catalogue replies carry their code in front
//    of the text and send() passes them through verbatim;
// 2. word the SIZE refusal at MAIL FROM: its text is fixed inside the library.
// Both reach into smtp-server internals (send, _validateMailParams, connect), so the version is
// pinned with ~ and test/smtp-replies.test.ts checks the exact reply lines.
// Also here, for the same reason: the DATA phase parsed in bulk (dot-unstuffing.ts), the
// greeting delay per client (the library waits a fixed 100 ms for every connection), AUTH advertised only once TLS is up (the library advertises it on
// plaintext too, then refuses it), the connection limits per address and the reserved slots
// (connection-limits.ts) with a shorter idle timeout for clients that may not send, and the drain on shutdown (new connections get 421 4.3.2
// while transactions in flight finish; the library's close() stops listening at once).

type ConnectionInternals = {
  _server: { options: SMTPServerOptions & FerryServerExtras } & Pick<FerrySMTPServer, 'draining' | 'greetingDelayFor'>;
  _setListeners(callback: () => void): void;
  _armTimeout(socket?: net.Socket): void;
  _socket: net.Socket;
  id: string;
  session: { user?: unknown };
  secure: boolean;
  remoteAddress: string;
  name: string;
  _createParser(): { _feedDataStream: typeof feedDataInBulk };
  _validateMailParams(parsed: { address: string; args: Record<string, string | boolean> | false }): {
    code: number;
    message: string;
    enhancedCode: string | null;
  } | null;
};

/** Options FerrySMTPServer adds to smtp-server's. */
export interface FerryServerExtras {
  /** Milliseconds to wait before the greeting of a client at this address (the library: always 100). */
  greetingDelay?: (remoteAddress: string) => number;
  /** Per-address limits and reserved slots; without it only maxClients applies. */
  connectionLimits?: ConnectionLimits;
  /** Idle timeout (ms) for clients outside trustedNetworks that have not logged in. */
  untrustedIdleTimeout?: number;
}

class FerryConnection extends SMTPConnection {
  private get internals(): ConnectionInternals {
    return this as unknown as ConnectionInternals;
  }

  override init(): void {
    // As SMTPConnection.init, with the delay before the greeting chosen per client, and none
    // while draining (the greeting is then 421 at once, see Gateway's onConnect).
    const self = this.internals;
    const server = self._server;
    const delay = server.draining ? 0 : server.greetingDelayFor(self.remoteAddress);
    self._setListeners(() => {
      const open = (server as unknown as { connections: Set<unknown> }).connections.size;
      const limits = server.options.connectionLimits;
      if (limits) {
        const refused = limits.admit(self.id, self.remoteAddress, open);
        if (refused) return this.send(refused.code, `${refused.enhanced} ${refused.text}`, false);
        self._socket.once('close', () => limits.release(self.id));
      } else {
        const max = server.options.maxClients;
        if (max && open > max) {
          const r = replies.tooManyConnections();
          return this.send(r.code, `${r.enhanced} ${r.text}`, false);
        }
      }
      if (delay <= 0) return this.connectionReady();
      // Connections that talk during the delay are refused by the library (421 "You talk too soon").
      setTimeout(() => this.connectionReady(), delay).unref();
    });
  }

  /** Until it logs in, a client outside trustedNetworks gets the short idle timeout. */
  private get mayIdleLong(): boolean {
    const self = this.internals;
    const limits = self._server.options.connectionLimits;
    return !!self.session?.user || !limits || limits.isTrusted(self.remoteAddress);
  }

  override send(code: number, data?: string | string[] | null, context?: string | false): void {
    const self = this.internals;
    if (code === 235) {
      // Logged in (RFC 4954): the normal idle timeout, and a slot outside the share open to everyone.
      self._server.options.connectionLimits?.promote(self.id);
      super.send(code, data, context);
      // Only the time changes: the library's timeout listener stays armed.
      return void self._socket.setTimeout(Number(self._server.options.socketTimeout) || 60_000);
    }
    if (code === 250 && Array.isArray(data) && !self.secure && !self._server.options.allowInsecureAuth) {
      // EHLO: the library lists AUTH on plaintext too and then refuses it with 538; a client
      // should only see AUTH where it can use it (after STARTTLS, or on smtp.tlsPort).
      data = data.filter((line) => !/^AUTH\b/i.test(line));
    }
    if (code === 421 && typeof data === 'string' && data.endsWith(' You talk too soon')) {
      // The library's refusal of a client that talked during the greeting delay.
      const r = replies.talkedTooSoon();
      return super.send(r.code, `${r.enhanced} ${r.text}`, false);
    }
    if (code === 538) {
      const r = replies.authNeedsTls();
      return super.send(r.code, `${r.enhanced} ${r.text}`, false);
    }
    if (typeof data === 'string' && carriesEnhancedCode(code, data)) return super.send(code, data, false);
    if (code === 421 && data === 'Server shutting down') {
      // Sent by the library to every command once close() was called.
      const r = replies.shuttingDown();
      return super.send(r.code, `${r.enhanced} ${r.text}`, false);
    }
    if (context === 'TOO_MANY_RECIPIENTS') {
      // The library checks smtp.maxRecipients itself, with a fixed text; say it in Ferry's words.
      const r = replies.tooManyRecipients(Number((this as unknown as ConnectionInternals)._server.options.maxRecipients));
      return super.send(r.code, `${r.enhanced} ${r.text}`, false);
    }
    super.send(code, data, context);
  }
}

// Patched on the prototype rather than declared as an override: the method is internal and
// not in the library's type declarations.
const proto = FerryConnection.prototype as unknown as ConnectionInternals;
const validateMailParams = (SMTPConnection.prototype as unknown as ConnectionInternals)._validateMailParams;
proto._validateMailParams = function (this: ConnectionInternals, parsed) {
  const error = validateMailParams.call(this, parsed);
  if (error && error.code === 552 && parsed.args) {
    const declared = Number(parsed.args.SIZE);
    const limit = Number(this._server.options.size);
    const r = replies.declaredTooBig(declared, limit);
    messagesRejected.inc({ reason: 'size_mail_from' });
    return { code: r.code, message: `${r.enhanced} ${r.text}`, enhancedCode: null };
  }
  return error;
};

// Every parser of the connection (a new one after STARTTLS) reads DATA in bulk.
const createParser = (SMTPConnection.prototype as unknown as ConnectionInternals)._createParser;
proto._createParser = function (this: ConnectionInternals) {
  const parser = createParser.call(this);
  parser._feedDataStream = feedDataInBulk;
  return parser;
};

const armTimeout = (SMTPConnection.prototype as unknown as ConnectionInternals)._armTimeout;
proto._armTimeout = function (this: ConnectionInternals, socket?: net.Socket) {
  armTimeout.call(this, socket);
  const short = this._server.options.untrustedIdleTimeout;
  if (short && !(this as unknown as FerryConnection)['mayIdleLong']) {
    // Same listener as the library's, with the shorter time; setTimeout replaces the time only.
    (socket ?? this._socket).setTimeout(Math.min(short, Number(this._server.options.socketTimeout) || short));
  }
};

// RFC 4954 section 4: AUTH is refused once MAIL FROM has started a transaction; the library accepts
// it, which would let a client change who it is between MAIL FROM and RCPT TO.
const handleAuth = (SMTPConnection.prototype as unknown as { handler_AUTH(command: Buffer, cb: () => void): void }).handler_AUTH;
(proto as unknown as { handler_AUTH(command: Buffer, cb: () => void): void }).handler_AUTH = function (
  this: SMTPConnection & { session: { envelope?: { mailFrom?: unknown } } },
  command: Buffer,
  cb: () => void,
) {
  if (this.session.envelope?.mailFrom) {
    const r = replies.authInTransaction();
    this.send(r.code, `${r.enhanced} ${r.text}`, false);
    return cb();
  }
  return handleAuth.call(this, command, cb);
};

type ServerInternals = {
  connections: Set<SMTPConnection>;
  _expectsProxyHeader(socket: net.Socket): boolean;
  _onError(err: Error): void;
  _onClientConnect(data: unknown): void;
};

const libraryHandleProxy = (SMTPServer.prototype as unknown as { _handleProxy(socket: net.Socket, callback: unknown): void })._handleProxy;

export class FerrySMTPServer extends SMTPServer {
  /** Set by drain(): new connections are refused with 421 4.3.2 and every new command gets it. */
  draining = false;

  greetingDelayFor(remoteAddress: string): number {
    return (this.options as FerryServerExtras).greetingDelay?.(remoteAddress) ?? 100;
  }

  /**
   * Starts a graceful stop while the port stays open: commands from now on get 421 4.3.2 (the
   * library answers every command so once its close timer is set), DATA already under way goes
   * on. Gateway.close() then waits for the transactions and calls close().
   */
  drain(): void {
    if (this.draining) return;
    this.draining = true;
    const self = this as unknown as { _closeTimeout?: NodeJS.Timeout | false | null };
    // The library tests only that the timer exists; it is replaced by close()'s own.
    // NB smtp-server starts with `_closeTimeout = false`, not undefined, so `??=` would never set it.
    self._closeTimeout ||= setTimeout(() => undefined, 1).unref();
  }

  /** Sends 421 4.3.2 to every open connection and closes it (after the drain). */
  closeConnections(): void {
    for (const c of (this as unknown as ServerInternals).connections) {
      c.send(421, 'Server shutting down');
      c.close();
    }
  }

  /**
   * Same as smtp-server's `_handleProxy` for a connection without a PROXY header, with the session
   * id (80 random bits, base 32, as the library makes it) from the pool of bytes for shown ids
   * instead of a randomBytes() system call per connection. A PROXY listener goes the library's way.
   */
  override _handleProxy(socket: net.Socket, callback: (err: Error | null, opts?: { id: string; ignore?: boolean }) => void): void {
    const self = this as unknown as ServerInternals;
    if (self._expectsProxyHeader(socket)) return libraryHandleProxy.call(this, socket, callback);
    const id = BigInt('0x' + shownIdBytes(10).toString('hex'))
      .toString(32)
      .padStart(16, '0');
    const ignore = this.options.ignoredHosts && this.options.ignoredHosts.includes(socket.remoteAddress ?? '');
    setImmediate(() => callback(null, { id, ignore }));
  }

  override connect(socket: net.Socket | tls.TLSSocket, socketOptions?: ConstructorParameters<typeof SMTPConnection>[2]): void {
    // Same as SMTPServer.connect, with FerryConnection in place of SMTPConnection.
    const self = this as unknown as ServerInternals;
    const connection = new FerryConnection(this, socket, socketOptions);
    self.connections.add(connection);
    connection.on('error', (err: Error) => self._onError(err));
    connection.on('connect', (data: unknown) => self._onClientConnect(data));
    connection.init();
  }
}
