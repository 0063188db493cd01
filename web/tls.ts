import fs from 'node:fs';

/** web.tls: PEM certificate chain and private key, each as PEM text or as the path of a PEM file. */
export interface TlsInput {
  cert: string | Buffer;
  key: string | Buffer;
}

export class TlsConfigError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TlsConfigError';
  }
}

function load(what: 'cert' | 'key', v: string | Buffer): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (v.includes('-----BEGIN ')) return Buffer.from(v);
  try {
    return fs.readFileSync(v);
  } catch (err) {
    throw new TlsConfigError(`web.tls.${what}: cannot read ${v}: ${(err as Error).message}`, { cause: err });
  }
}

export function loadTls(input: TlsInput): { cert: Buffer; key: Buffer } {
  const cert = load('cert', input.cert);
  const key = load('key', input.key);
  if (!cert.includes('-----BEGIN ')) throw new TlsConfigError('web.tls.cert: not a PEM file (no -----BEGIN line)');
  if (!key.includes('-----BEGIN ')) throw new TlsConfigError('web.tls.key: not a PEM file (no -----BEGIN line)');
  return { cert, key };
}
