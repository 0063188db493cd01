import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { writeDurably } from '../storage/durable-file.js';
import { stuffDataInBulk } from './dot-stuffing.js';

// The relay client: hands a finished (small) message to the next hop in one SMTP transaction.
// One class per kind of next hop: SmtpRelay speaks SMTP with nodemailer's client and keeps a
// few idle connections for reuse; OutboxRelay writes files. Deciding what to do with the
// outcome (reply, queue, DSN) is delivery.ts's job.

/** RFC 3461 parameters for one transaction (nodemailer takes NOTIFY/ORCPT per envelope, not per recipient). */
export interface RelayDsn {
  ret?: 'FULL' | 'HDRS';
  envid?: string;
  notify?: string[];
  orcpt?: string;
}

export interface RelayEnvelope {
  from: string;
  to: string[];
  size: number;
  dsn?: RelayDsn;
}

export interface Refusal {
  recipient: string;
  code: number | undefined;
  response: string;
}

export interface RelayResult {
  accepted: string[];
  /** Recipients the next hop refused while taking the message for the others. */
  rejected: Refusal[];
  response: string;
}

/**
 * The next hop did not take the message for anyone. `permanent` when it said so with a 5xx
 * (for every recipient); `rejected` lists the per-recipient refusals when it got that far.
 */
export class RelayError extends Error {
  readonly code = 'FERRY_ERR_RELAY';
  constructor(
    message: string,
    readonly permanent: boolean,
    readonly responseCode: number | undefined,
    readonly response: string | undefined,
    options?: { cause?: unknown; rejected?: Refusal[] },
  ) {
    super(message, options);
    this.name = 'RelayError';
    this.rejected = options?.rejected ?? [];
  }
  readonly rejected: Refusal[];
  /** True once message data began to flow to the next hop (a retry then risks a duplicate). */
  dataStarted = false;
}

export interface Relay {
  readonly description: string;
  /** One transaction. `id` names the message (the outbox uses it as the file name). */
  send(envelope: RelayEnvelope, message: () => Readable, id: string): Promise<RelayResult>;
  close(): Promise<void>;
}

export interface RelayOptions {
  url: string;
  /** Our name in EHLO. */
  hostname: string;
  /** The whole attempt, connect to the reply after the data (relay.attemptTimeout). */
  timeoutMs: number;
  starttls: 'opportunistic' | 'required' | 'off';
  tlsVerify: boolean;
  /** Idle connections kept for reuse (relay.poolSize); 0 = a new connection every time. */
  poolSize?: number;
  /**
   * How long an idle connection is kept. Default 5 s: like Postfix's connection cache
   * (smtp_connection_cache_time_limit, 2 s), long enough for the next message of a burst, short
   * enough that a quiet gateway holds no connection (and no smtpd process) at the next hop.
   */
  idleMs?: number;
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
      // The messages carry working download links: no other account on the host may read them.
      // Group-readable, so a pickup program can run as another user of Ferry's group.
      await fsp.mkdir(this.dir, { recursive: true, mode: 0o750 });
      await writeDurably(path.join(this.dir, `${id}.eml`), (out) => pipeline(message(), out), '.tmp', 0o640);
      const json = JSON.stringify({ from: envelope.from, to: envelope.to, size: envelope.size, ...(envelope.dsn ? { dsn: envelope.dsn } : {}) }, null, 2) + '\n';
      await writeDurably(path.join(this.dir, `${id}.json`), async (out) => {
        out.end(json);
        await new Promise<void>((resolve, reject) => out.once('finish', resolve).once('error', reject));
      }, '.tmp', 0o640);
    } catch (err) {
      throw new RelayError(`cannot write to the outbox ${this.dir}: ${(err as Error).message}`, false, undefined, undefined, { cause: err });
    }
    return { accepted: [...envelope.to], rejected: [], response: `written to ${this.dir}/${id}.eml` };
  }

  async close(): Promise<void> {}
}

interface NodemailerErrorLike extends Error {
  code?: string;
  command?: string;
  responseCode?: number;
  response?: string;
  recipient?: string;
  rejected?: string[];
  rejectedErrors?: NodemailerErrorLike[];
}

interface PooledConnection {
  conn: SMTPConnection;
  idleTimer?: NodeJS.Timeout;
  onIdleEnd?: () => void;
}

/**
 * SMTP or SMTPS next hop. Connections are reused: after a message went through, the connection
 * waits (at most `idleMs`, at most `poolSize` of them) for the next one, which then skips the
 * TCP, TLS, EHLO and AUTH round trips. A reused connection the server has meanwhile closed is
 * noticed before MAIL FROM was answered and replaced by a fresh one, so nothing is sent twice.
 * nodemailer's own pool (createTransport({pool:true})) is not used: it hides the per-recipient
 * replies behind sendMail and has no per-attempt deadline.
 */
export class SmtpRelay implements Relay {
  readonly description: string;
  private readonly host: string;
  private readonly port: number;
  private readonly secure: boolean;
  private readonly auth: { user: string; pass: string } | undefined;
  private readonly idle: PooledConnection[] = [];
  private closed = false;

  constructor(private readonly opts: RelayOptions) {
    const u = new URL(opts.url);
    this.secure = u.protocol === 'smtps:';
    this.host = u.hostname.replace(/^\[|\]$/g, '');
    this.port = u.port ? Number(u.port) : this.secure ? 465 : 25;
    this.auth = u.username ? { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) } : undefined;
    this.description = `${u.protocol}//${u.host}`;
  }

  private get requireTls(): boolean {
    return this.opts.starttls === 'required' || (this.opts.starttls === 'opportunistic' && !!this.auth && !this.secure);
  }

  /** The next hop's host name, for DSNs (Remote-MTA). */
  get remoteHost(): string {
    return this.host;
  }

  async send(envelope: RelayEnvelope, message: () => Readable, _id: string): Promise<RelayResult> {
    const deadline = Date.now() + this.opts.timeoutMs;
    const pooled = this.takeIdle();
    if (pooled) {
      try {
        return await this.transact(pooled, envelope, message, deadline);
      } catch (err) {
        // The server dropped the idle connection before the message data began to flow and
        // without an SMTP reply: nothing was delivered, so a fresh connection may try again
        // within the same deadline. Once data has flowed, a retry could deliver twice.
        const e = err as RelayError;
        const stale = e instanceof RelayError && !e.dataStarted && e.responseCode === undefined;
        if (!stale || Date.now() >= deadline) throw err;
      }
    }
    const fresh = await this.connect(deadline);
    return this.transact(fresh, envelope, message, deadline);
  }

  private takeIdle(): PooledConnection | undefined {
    for (;;) {
      const p = this.idle.pop();
      if (!p) return undefined;
      clearTimeout(p.idleTimer);
      if (p.onIdleEnd) {
        p.conn.removeListener('end', p.onIdleEnd);
        p.conn.removeListener('error', p.onIdleEnd);
      }
      if ((p.conn as unknown as { _destroyed?: boolean })._destroyed) continue;
      return p;
    }
  }

  private connect(deadline: number): Promise<PooledConnection> {
    const remaining = Math.max(1, deadline - Date.now());
    const stepMs = Math.min(remaining, 30_000);
    const conn = new SMTPConnection({
      host: this.host,
      port: this.port,
      secure: this.secure,
      name: this.opts.hostname,
      // With a password in relay.url, "opportunistic" means required: otherwise anyone on the
      // path who strips STARTTLS from the EHLO reply gets the password (nodemailer logs in over
      // plaintext without complaint). Only an explicit `off` sends it in clear.
      requireTLS: this.requireTls,
      ignoreTLS: this.opts.starttls === 'off',
      opportunisticTLS: this.opts.starttls === 'opportunistic' && !this.requireTls,
      tls: { rejectUnauthorized: this.opts.tlsVerify, servername: this.host },
      connectionTimeout: stepMs,
      greetingTimeout: stepMs,
      // Idle time in any later step (each reply, each write of the data).
      socketTimeout: this.opts.timeoutMs,
    });
    stuffDataInBulk(conn);
    // An 'error' with no listener would end the process; one can come at any time (an idle
    // connection timing out, a late socket error after quit()). The listeners below act on them.
    conn.on('error', () => undefined);
    return new Promise<PooledConnection>((resolve, reject) => {
      let settled = false;
      const fail = (err: NodemailerErrorLike) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        conn.removeListener('error', fail);
        conn.close();
        reject(toRelayError(err, this.description));
      };
      const timer = setTimeout(() => fail(Object.assign(new Error(`no answer within ${Math.round(this.opts.timeoutMs / 1000)} s`), { code: 'ETIMEDOUT', command: 'CONN' })), remaining);
      conn.once('error', fail);
      conn.connect(() => {
        // Our commands are small and pipelined; without this, Nagle's algorithm holds the
        // last segment back for a delayed ACK. nodemailer has no option for it.
        (conn as unknown as { _socket?: { setNoDelay?: (v: boolean) => void } })._socket?.setNoDelay?.(true);
        const done = (err?: NodemailerErrorLike | null) => {
          if (err) return fail(err);
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          conn.removeListener('error', fail);
          resolve({ conn });
        };
        if (!this.auth) return done();
        conn.login(this.auth, (err) => done(err as NodemailerErrorLike | null));
      });
    });
  }

  private transact(p: PooledConnection, envelope: RelayEnvelope, message: () => Readable, deadline: number): Promise<RelayResult> {
    const { conn } = p;
    return new Promise<RelayResult>((resolve, reject) => {
      let settled = false;
      const source = message();
      let dataStarted = false;
      // pipe() resumes the source only once the next hop said 354.
      source.once('resume', () => (dataStarted = true));
      const finish = (err: NodemailerErrorLike | null, result?: RelayResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        conn.removeListener('error', onError);
        if (err) {
          // After any error the session state is uncertain: never reuse the connection.
          conn.close();
          source.destroy();
          const re = toRelayError(err, this.description);
          re.dataStarted = dataStarted;
          reject(re);
        } else {
          this.release(p);
          resolve(result!);
        }
      };
      const onError = (err: NodemailerErrorLike) => finish(err);
      // One deadline for the whole attempt, on top of nodemailer's per-step timeouts.
      const timer = setTimeout(
        () => finish(Object.assign(new Error(`no answer within ${Math.round(this.opts.timeoutMs / 1000)} s`), { code: 'ETIMEDOUT', command: 'DATA' })),
        Math.max(1, deadline - Date.now()),
      );
      conn.on('error', onError);
      const dsn = envelope.dsn && (envelope.dsn.ret || envelope.dsn.envid || envelope.dsn.notify?.length || envelope.dsn.orcpt) ? envelope.dsn : undefined;
      conn.send(
        { from: envelope.from, to: envelope.to, size: envelope.size, ...(dsn ? { dsn: { ret: dsn.ret, envid: dsn.envid, notify: dsn.notify, orcpt: dsn.orcpt } } : {}) } as never,
        source,
        (err, info) => {
          if (err) return finish(err as NodemailerErrorLike);
          const rejectedErrors = (info?.rejectedErrors ?? []) as NodemailerErrorLike[];
          finish(null, {
            accepted: info?.accepted ?? [],
            rejected: (info?.rejected ?? []).map((r, i) => {
              const e = rejectedErrors.find((x) => x.recipient === r) ?? rejectedErrors[i];
              return { recipient: r, code: e?.responseCode, response: e?.response ?? '' };
            }),
            response: info?.response ?? '',
          });
        },
      );
    });
  }

  private release(p: PooledConnection): void {
    const max = this.opts.poolSize ?? 16;
    if (this.closed || this.idle.length >= max) {
      p.conn.quit();
      return;
    }
    const drop = () => {
      clearTimeout(p.idleTimer);
      const i = this.idle.indexOf(p);
      if (i >= 0) this.idle.splice(i, 1);
      p.conn.close();
    };
    p.onIdleEnd = drop;
    p.conn.once('end', drop);
    p.conn.once('error', drop);
    p.idleTimer = setTimeout(() => {
      const i = this.idle.indexOf(p);
      if (i >= 0) this.idle.splice(i, 1);
      p.conn.quit();
    }, this.opts.idleMs ?? 5_000);
    p.idleTimer.unref();
    this.idle.push(p);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.idle.splice(0)) {
      clearTimeout(p.idleTimer);
      p.conn.quit();
    }
  }
}

function toRelayError(err: NodemailerErrorLike, where: string): RelayError {
  if (err instanceof RelayError) return err;
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
    const rejected = errs.map((e, i) => ({ recipient: e.recipient ?? err.rejected?.[i] ?? '', code: e.responseCode, response: e.response ?? e.message }));
    return new RelayError(`${where} refused the recipients: ${first.response ?? first.message}`, permanent, first.responseCode, first.response, { cause: err, rejected });
  }
  // A login the next hop refuses is Ferry's configuration problem, not the sender's: queue and
  // retry (as Postfix's smtp_sasl_auth_soft_bounce does) instead of bouncing the sender's mail.
  if (err.code === 'EAUTH') {
    return new RelayError(`${where} refused Ferry's login (check the user and password in relay.url): ${err.response ?? err.message}`, false, undefined, undefined, { cause: err });
  }
  // Likewise TLS trouble (relay.starttls: required and no STARTTLS, a certificate that does not
  // verify): a 5xx to STARTTLS says nothing about the message.
  if (err.code === 'ETLS') {
    return new RelayError(`${where}: TLS failed (relay.starttls, relay.tlsVerify): ${err.response ?? err.message}`, false, undefined, undefined, { cause: err });
  }
  const code = err.responseCode;
  if (code && code >= 400) {
    return new RelayError(`${where} refused the message: ${err.response ?? err.message}`, code >= 500, code, err.response ?? err.message, { cause: err });
  }
  // No SMTP reply at all: unreachable, timed out, TLS or protocol trouble. Always temporary.
  return new RelayError(`${where}: ${err.message}`, false, undefined, undefined, { cause: err });
}
