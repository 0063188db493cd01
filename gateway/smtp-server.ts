import type net from 'node:net';
import type tls from 'node:tls';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { carriesEnhancedCode, replies } from './replies.js';

// smtp-server with Ferry's reply rules. Two things the library cannot be configured to do:
// 1. give a reply its own RFC 3463 code (it derives one from the reply code, so "552" always
//    becomes 5.2.2 "mailbox full" and "452" 4.2.2): catalogue replies carry their code in front
//    of the text and send() passes them through verbatim;
// 2. word the SIZE refusal at MAIL FROM: its text is fixed inside the library.
// Both reach into smtp-server internals (send, _validateMailParams, connect), so the version is
// pinned with ~ and test/smtp-replies.test.ts checks the exact reply lines.

type ConnectionInternals = {
  _server: { options: SMTPServerOptions };
  _validateMailParams(parsed: { address: string; args: Record<string, string | boolean> | false }): {
    code: number;
    message: string;
    enhancedCode: string | null;
  } | null;
};

class FerryConnection extends SMTPConnection {
  override send(code: number, data?: string | string[] | null, context?: string | false): void {
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
    return { code: r.code, message: `${r.enhanced} ${r.text}`, enhancedCode: null };
  }
  return error;
};

type ServerInternals = {
  connections: Set<SMTPConnection>;
  _onError(err: Error): void;
  _onClientConnect(data: unknown): void;
};

export class FerrySMTPServer extends SMTPServer {
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
