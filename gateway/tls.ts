import fs from 'node:fs';
import tls from 'node:tls';
import type { Config } from '../config/schema.js';

// smtp.tls: the certificate for STARTTLS on smtp.port and for the implicit-TLS listener
// (smtp.tlsPort). The same rules as web/tls.ts (which gateway/ may not import): PEM text or the
// path of a PEM file. Loaded once at start, and checked by building a SecureContext, so a key that
// does not match the certificate stops start-up instead of failing every handshake.

export class SmtpTlsConfigError extends Error {
  readonly code = 'FERRY_ERR_SMTP_TLS';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SmtpTlsConfigError';
  }
}

function load(what: 'cert' | 'key', v: string): Buffer {
  const buf = v.includes('-----BEGIN ') ? Buffer.from(v) : readFile(what, v);
  if (!buf.includes('-----BEGIN ')) throw new SmtpTlsConfigError(`smtp.tls.${what}: ${v} is not a PEM file (no -----BEGIN line)`);
  return buf;
}

function readFile(what: string, file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new SmtpTlsConfigError(`smtp.tls.${what}: cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

export function loadSmtpTls(input: { cert: string; key: string }): { cert: Buffer; key: Buffer } {
  const cert = load('cert', input.cert);
  const key = load('key', input.key);
  try {
    tls.createSecureContext({ cert, key });
  } catch (err) {
    throw new SmtpTlsConfigError(`smtp.tls: the key does not fit the certificate or cannot be read (${(err as Error).message})`, { cause: err });
  }
  return { cert, key };
}

/**
 * The implicit-TLS port the gateway serves: smtp.tlsPort, when smtp.tls has a certificate and key
 * (without them there is nothing to serve it with). One decision for the Gateway's listener and
 * for a node's primary, which binds the port for its workers (cli/smtp-dispatch.ts).
 */
export function implicitTlsPort(config: Pick<Config, 'smtp'>): number | undefined {
  return config.smtp.tls.cert && config.smtp.tls.key ? config.smtp.tlsPort : undefined;
}
