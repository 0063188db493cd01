import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { writeDurably } from '../storage/durable-file.js';

// The relay client: hands the finished (small) message to the next hop. One class per kind of
// next hop: SmtpRelay speaks SMTP with nodemailer's client, OutboxRelay writes files.

export interface RelayEnvelope {
  from: string;
  to: string[];
  size: number;
}

export interface RelayResult {
  accepted: string[];
  /** Recipients the next hop refused while taking the message for the others. */
  rejected: { recipient: string; code: number | undefined; response: string }[];
  response: string;
}

/** The next hop did not take the message. `permanent` when it said so with a 5xx. */
export class RelayError extends Error {
  readonly code = 'FERRY_ERR_RELAY';
  constructor(
    message: string,
    readonly permanent: boolean,
    readonly responseCode: number | undefined,
    readonly response: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RelayError';
  }
}

export interface Relay {
  readonly description: string;
  send(envelope: RelayEnvelope, message: () => Readable, id: string): Promise<RelayResult>;
  close(): Promise<void>;
}

export interface RelayOptions {
  url: string;
  /** Our name in EHLO. */
  hostname: string;
  timeoutMs: number;
  starttls: 'opportunistic' | 'required' | 'off';
  tlsVerify: boolean;
}

export function createRelay(opts: RelayOptions): Relay {
  if (opts.url.startsWith('outbox:')) return new OutboxRelay(path.resolve(opts.url.slice('outbox:'.length)));
  return new SmtpRelay(opts);
}

/**
 * Writes each message as DIR/<id>.eml (the exact bytes) and DIR/<id>.json (the envelope). Both
 * are written under a temporary name, synced and renamed, the .json last, so a program
 * watching the folder can take a message as soon as its .json appears.
 */
export class OutboxRelay implements Relay {
  readonly description: string;
  constructor(readonly dir: string) {
    this.description = `outbox ${dir}`;
  }

  async send(envelope: RelayEnvelope, message: () => Readable, id: string): Promise<RelayResult> {
    if (!/^[A-Za-z0-9_-]+$/.test(id)) throw new Error(`invalid message id ${id}`);
    try {
      await fsp.mkdir(this.dir, { recursive: true });
      await writeDurably(path.join(this.dir, `${id}.eml`), (out) => pipeline(message(), out));
      const json = JSON.stringify({ from: envelope.from, to: envelope.to, size: envelope.size }, null, 2) + '\n';
      await writeDurably(path.join(this.dir, `${id}.json`), async (out) => {
        out.end(json);
        await new Promise<void>((resolve, reject) => out.once('finish', resolve).once('error', reject));
      });
    } catch (err) {
      throw new RelayError(`cannot write to the outbox ${this.dir}: ${(err as Error).message}`, false, undefined, undefined, { cause: err });
    }
    return { accepted: [...envelope.to], rejected: [], response: `written to ${this.dir}/${id}.eml` };
  }

  async close(): Promise<void> {}
}

interface NodemailerErrorLike extends Error {
  code?: string;
  responseCode?: number;
  response?: string;
  rejected?: string[];
  rejectedErrors?: NodemailerErrorLike[];
}

/** SMTP or SMTPS next hop; a new connection per message (pooling comes with the delivery queue). */
export class SmtpRelay implements Relay {
  readonly description: string;
  private readonly host: string;
  private readonly port: number;
  private readonly secure: boolean;
  private readonly auth: { user: string; pass: string } | undefined;

  constructor(private readonly opts: RelayOptions) {
    const u = new URL(opts.url);
    this.secure = u.protocol === 'smtps:';
    this.host = u.hostname.replace(/^\[|\]$/g, '');
    this.port = u.port ? Number(u.port) : this.secure ? 465 : 25;
    this.auth = u.username ? { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) } : undefined;
    this.description = `${u.protocol}//${u.host}`;
  }

  send(envelope: RelayEnvelope, message: () => Readable, _id: string): Promise<RelayResult> {
    const conn = new SMTPConnection({
      host: this.host,
      port: this.port,
      secure: this.secure,
      name: this.opts.hostname,
      requireTLS: this.opts.starttls === 'required',
      ignoreTLS: this.opts.starttls === 'off',
      opportunisticTLS: this.opts.starttls === 'opportunistic',
      tls: { rejectUnauthorized: this.opts.tlsVerify, servername: this.host },
      connectionTimeout: Math.min(this.opts.timeoutMs, 30_000),
      greetingTimeout: Math.min(this.opts.timeoutMs, 30_000),
      socketTimeout: this.opts.timeoutMs,
    });
    return new Promise<RelayResult>((resolve, reject) => {
      let settled = false;
      const finish = (err: NodemailerErrorLike | null, result?: RelayResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) {
          conn.close();
          reject(toRelayError(err, this.description));
        } else {
          conn.quit();
          resolve(result!);
        }
      };
      // One deadline for the whole attempt, on top of nodemailer's per-step timeouts.
      const timer = setTimeout(() => finish(Object.assign(new Error(`no answer within ${Math.round(this.opts.timeoutMs / 1000)} s`), { code: 'ETIMEDOUT' })), this.opts.timeoutMs);
      conn.once('error', (err: NodemailerErrorLike) => finish(err));
      conn.connect(() => {
        const go = () =>
          conn.send({ from: envelope.from, to: envelope.to, size: envelope.size }, message(), (err, info) => {
            if (err) return finish(err as NodemailerErrorLike);
            const rejectedErrors = (info?.rejectedErrors ?? []) as NodemailerErrorLike[];
            finish(null, {
              accepted: info?.accepted ?? [],
              rejected: (info?.rejected ?? []).map((r, i) => ({
                recipient: r,
                code: rejectedErrors[i]?.responseCode,
                response: rejectedErrors[i]?.response ?? '',
              })),
              response: info?.response ?? '',
            });
          });
        if (!this.auth) return go();
        conn.login(this.auth, (err) => (err ? finish(err as NodemailerErrorLike) : go()));
      });
    });
  }

  async close(): Promise<void> {}
}

function toRelayError(err: NodemailerErrorLike, where: string): RelayError {
  // The next hop advertised SIZE and the message (after offloading) is still larger: retrying
  // cannot help, so this is permanent, worded like a 552 from the next hop.
  const tooBig = /^Message size larger than allowed (\d+)/.exec(err.message);
  if (err.code === 'EMESSAGE' && tooBig) {
    return new RelayError(`${where} accepts at most ${tooBig[1]} bytes`, true, 552, `552 5.3.4 Message still too large for the next mail server after the attachments were taken out (it accepts at most ${tooBig[1]} bytes)`, { cause: err });
  }
  // All recipients refused: permanent only if every refusal was permanent.
  if (err.code === 'EENVELOPE' && err.rejectedErrors?.length) {
    const errs = err.rejectedErrors;
    const permanent = errs.every((e) => (e.responseCode ?? 0) >= 500);
    const first = errs.find((e) => (permanent ? (e.responseCode ?? 0) >= 500 : (e.responseCode ?? 0) < 500)) ?? errs[0]!;
    return new RelayError(`${where} refused the recipients: ${first.response ?? first.message}`, permanent, first.responseCode, first.response, { cause: err });
  }
  const code = err.responseCode;
  if (code && code >= 400) {
    return new RelayError(`${where} refused the message: ${err.response ?? err.message}`, code >= 500, code, err.response ?? err.message, { cause: err });
  }
  // No SMTP reply at all: unreachable, timed out, TLS or protocol trouble. Always temporary.
  return new RelayError(`${where}: ${err.message}`, false, undefined, undefined, { cause: err });
}
