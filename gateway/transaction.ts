import type { PassThrough, Readable, Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { Joiner } from '@zone-eu/mailsplit';
import libmime from 'libmime';
import type { Logger } from 'pino';
import type { SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import type { Config } from '../config/schema.js';
import {
  addFile,
  createTransfer,
  discardTransfer,
  hashToken,
  landingUrl,
  markLive,
  markLiveQueued,
  newBlobKey,
  newId,
  newQueueId,
  newToken,
  enqueue,
  backoff,
  queueBlobKey,
  type BlobStore,
  type Db,
  type QueueRecipient,
} from '../storage/index.js';
import { Intake } from './intake.js';
import { countTransaction } from './metrics.js';
import { CrlfNormalizer } from './line-ends.js';
import { mimeLimits } from './mime-limits.js';
import { BulkChunker, BulkSplitter } from './bulk-splitter.js';
import { NoticeInserter } from './notice-inserter.js';
import { noticeHtml, noticeText, placeholderText } from './notice.js';
import { Offloader, type OffloadedFile, type OffloadSink } from './offloader.js';
import { deliver, queueNotice } from './queue-delivery.js';
import type { Relay } from './relay.js';
import { nextHopReply, replies, type Reply } from './replies.js';
import { Spool, type SpoolFile } from './spool.js';
import { ScanGate } from './scan/gate.js';
import { queueScanNotices } from './scan/notice.js';
import { checkOriginalWhileReceiving, outgoingPrefix, signingFor, withPrefix } from './outgoing.js';
import type { OriginalAuth } from './arc.js';
import { decideRetention, retentionBounds } from '../storage/retention.js';

export interface GatewayContext {
  config: Config;
  db: Db;
  blobs: BlobStore;
  relay: Relay;
  logger: Logger;
  spoolDir: string;
}

/** What the SMTP layer does with the outcome: send `reply`; `hangUp` means drop the connection after it. */
export interface Outcome {
  reply: Reply;
  hangUp?: boolean;
}

const SPLITTER_OPTIONS = {
  // Forwarded messages stay whole: they are one attachment, never rewritten inside.
  ignoreEmbedded: true,
  maxHeadSize: 2 * 1024 * 1024,
  maxChildNodes: 10_000,
};

/** Input chunk of the MIME pass: large, so leaf bodies move in few, large objects (gateway/bulk-splitter.ts). */
const BULK_CHUNK = 256 * 1024;

class StorageFailure extends Error {
  constructor(cause: unknown) {
    super(`storage failed: ${(cause as Error)?.message ?? cause}`, { cause });
    this.name = 'StorageFailure';
  }
}

/**
 * One message, from the first DATA byte to the reply: size policy, pass 1 (offload), pass 2
 * (notice), relay, and the records' pending -> live. On every failure path, everything it
 * uploaded or recorded is removed before the reply goes out.
 */
export class MessageTransaction implements OffloadSink {
  readonly queueId = newQueueId();
  readonly transferId = newId();
  private readonly token = newToken();
  /** Set from retention.default here, then by the retention rules when the transfer record is made. */
  private expiresAt: number;
  private readonly started = Date.now();
  private readonly abort = new AbortController();
  private readonly files: OffloadedFile[] = [];
  /** Malware scanning beside each upload (gateway/scan/); a no-op when scan.engine is off. */
  private readonly scanGate: ScanGate;
  /** Files held in quarantine (scan.onInfected: quarantine), for the notices. */
  private scanHeld: { idx: number; name: string; signature: string }[] = [];
  private readonly blobKeys: string[] = [];
  private transferCreated: Promise<void> | undefined;
  private nextIdx = 1;
  private storageError: unknown;
  private offloader!: Offloader;
  private intake!: Intake;
  private spool!: Spool;
  private rawDone: Promise<void> = Promise.resolve();
  /** The incoming DKIM/ARC results, checked on the original bytes as they arrive (for the ARC seal). */
  private originalAuth: Promise<OriginalAuth | undefined> | undefined;
  private log: Logger;

  constructor(
    private readonly ctx: GatewayContext,
    private readonly session: SMTPServerSession,
  ) {
    this.expiresAt = this.started + ctx.config.retention.default;
    this.log = ctx.logger.child({ queueId: this.queueId });
    this.scanGate = new ScanGate(ctx.config.scan);
  }

  private get sender(): string {
    const from = this.session.envelope.mailFrom;
    return from ? from.address : '';
  }

  private get recipients(): string[] {
    return this.session.envelope.rcptTo.map((r) => r.address);
  }

  /** Stops whatever is in flight (client gone, shutdown). Cleanup follows in run(). */
  cancel(reason: string): void {
    if (!this.abort.signal.aborted) this.abort.abort(new Error(reason));
  }

  async run(stream: SMTPServerDataStream): Promise<Outcome> {
    const cfg = this.ctx.config;
    this.spool = await Spool.open(this.ctx.spoolDir, this.queueId, { memoryLimit: cfg.smtp.memorySpoolLimit, memoryBudget: cfg.smtp.memorySpoolBudget });
    let hardLimitHit!: () => void;
    const hardLimit = new Promise<'hard'>((resolve) => (hardLimitHit = () => resolve('hard')));

    const pass1 = this.startPass1(() => hardLimitHit());
    pass1.catch(() => undefined); // observed below, after the data has been read
    stream.pipe(this.intake);

    const dataEnd = new Promise<'end' | 'gone'>((resolve) => {
      this.intake.once('finish', () => resolve('end'));
      stream.once('error', () => resolve('gone'));
      stream.once('close', () => {
        if (!stream.readableEnded) resolve('gone');
      });
      this.abort.signal.addEventListener('abort', () => resolve('gone'), { once: true });
    });

    const first = await Promise.race([dataEnd, hardLimit]);
    if (first === 'hard') {
      stream.unpipe(this.intake);
      await this.fail(pass1);
      stream.destroy();
      this.summary('rejected', 'hard limit');
      return { reply: replies.hardLimit(cfg.smtp.maxMessageSize), hangUp: true };
    }
    if (first === 'gone') {
      await this.fail(pass1);
      const shutdown = (this.abort.signal.reason as Error | undefined)?.message === 'shutting down';
      this.summary('aborted', shutdown ? 'shutting down' : 'client went away during DATA');
      return { reply: replies.localError() };
    }
    if (this.intake.oversize) {
      await this.fail(pass1);
      this.summary('rejected', 'over size limit');
      return { reply: replies.tooBig(this.intake.bytes, cfg.smtp.maxMessageSize) };
    }

    const result = await pass1.then(
      () => 'ok' as const,
      (err: unknown) => err,
    );
    try {
      if (result !== 'ok') {
        // A disk or system fault (spool write failed, out of space) is temporary: the sender must
        // retry, never receive a permanent "malformed" bounce for it.
        if (this.storageError || result instanceof StorageFailure || isSystemError(result)) {
          this.log.error({ err: this.storageError ?? result }, 'storage failed while receiving the message');
          await this.cleanup();
          this.summary('deferred', 'storage error');
          return { reply: replies.localError() };
        }
        if (this.files.length === 0 && this.blobKeys.length === 0) {
          // Nothing was offloaded yet, so the raw copy is complete: relay the message as it came.
          this.log.warn({ err: result }, 'MIME structure could not be parsed; relaying the message unchanged');
          return await this.relayRaw();
        }
        this.log.warn({ err: result }, 'MIME structure could not be parsed after an attachment was offloaded');
        await this.cleanup();
        this.summary('rejected', 'malformed MIME');
        return { reply: replies.malformed(describeParseError(result)) };
      }
      // Nothing offloaded: relay the raw copy, so the message arrives byte for byte as it came.
      if (this.files.length === 0) return await this.relayRaw();
      // Every verdict is in before the reply: an infected file under scan.onInfected: reject, or a
      // scanner failure under scan.onError: tempfail, refuses the whole message and keeps nothing.
      const scan = await this.scanGate.conclude(this.ctx.db, this.transferId, this.files, this.log);
      if (scan.kind === 'refuse') {
        await this.cleanup();
        this.summary('rejected', scan.detail);
        return { reply: scan.reply };
      }
      this.scanHeld = scan.held;
      if (scan.held.length) {
        await queueScanNotices(
          { db: this.ctx.db, blobs: this.ctx.blobs, logger: this.log, hostname: this.ctx.config.smtp.hostname },
          { kind: 'quarantine', sender: this.sender, admins: this.ctx.config.scan.notify, transferId: this.transferId, queueId: this.queueId, files: scan.held },
        );
      }
      await this.spool.remove('raw');
      const final = await this.pass2();
      return await this.relay(final, this.files.length);
    } catch (err) {
      this.log.error({ err }, 'message processing failed');
      await this.cleanup();
      this.summary('deferred', 'local error');
      return { reply: replies.localError() };
    } finally {
      await this.spool.removeAll();
    }
  }

  /** Pass 1: DATA -> intake -> (raw copy) + (splitter -> offloader -> joiner -> spool "a"). */
  private startPass1(onHardLimit: () => void): Promise<void> {
    const cfg = this.ctx.config;
    const raw = this.spool.writer('raw');
    const rawDone = finished(raw);
    rawDone.catch(() => undefined);
    const chunker = new BulkChunker(BULK_CHUNK);
    this.intake = new Intake({
      maxSize: cfg.smtp.maxMessageSize,
      hardLimit: cfg.smtp.hardLimit,
      onOversize: () => {
        raw.destroy();
        chunker.destroy(new Error('over size limit'));
      },
      onHardLimit: () => {
        raw.destroy();
        chunker.destroy(new Error('over hard limit'));
        onHardLimit();
      },
    });
    this.intake.attach('raw', raw, { canonicalLineEnds: true });
    this.offloader = new Offloader({ minSize: cfg.offload.minAttachmentSize, signed: cfg.offload.signed, sink: this });
    this.rawDone = rawDone;
    this.intake.attach('mime', chunker as unknown as Writable);
    this.originalAuth = checkOriginalWhileReceiving(this.intake, cfg);
    return pipeline(chunker, new BulkSplitter(SPLITTER_OPTIONS, mimeLimits(cfg)), this.offloader, new Joiner(), new CrlfNormalizer(), this.spool.writer('a'));
  }

  /** Pass 2: spool "a" -> notice into the text bodies -> spool "b". */
  private async pass2(): Promise<SpoolFile> {
    // A file held in quarantine is named so in the notice (gateway/scan/, scan.onInfected: quarantine).
    const held = new Set(this.scanHeld.map((h) => h.idx));
    const files = this.files.map((f) => (held.has(f.idx) ? { ...f, name: `${f.name} [held for review: malware found]` } : f));
    const n = { files, landingUrl: this.landingUrl(), expiresAt: this.expiresAt };
    const total = this.files.reduce((s, f) => s + f.size, 0);
    const out = this.spool.writer('b');
    await pipeline(
      this.spool.get('a').open(),
      new BulkChunker(BULK_CHUNK),
      new BulkSplitter(SPLITTER_OPTIONS, mimeLimits(this.ctx.config)),
      new NoticeInserter({
        text: noticeText(n),
        html: noticeHtml(n),
        addPart: !this.offloader.hasNoticeTarget,
        rootHeader: { key: 'X-Ferry-Offloaded', value: `${this.files.length} file${this.files.length === 1 ? '' : 's'}; ${total} bytes` },
      }),
      new Joiner(),
      new CrlfNormalizer(),
      out,
    );
    return out;
  }

  private async relayRaw(): Promise<Outcome> {
    await this.rawDone;
    return this.relay(this.spool.get('raw'), 0);
  }

  /**
   * End of DATA: one attempt at the next hop, bounded by relay.attemptTimeout. Delivered: 250.
   * Refused permanently for every recipient: that reply goes back and everything is removed.
   * Otherwise (unreachable, timeout, 4xx for some or all): the small message is stored durably
   * in the blob store with a queue record, and the client gets 250 with the queue id; the queue
   * runner retries. Recipients refused permanently while others were taken get a DSN.
   */
  private async relay(copy: SpoolFile, offloaded: number): Promise<Outcome> {
    // Ferry's Received field (and DKIM/ARC fields when configured) go in front; the rest streams
    // from the working copy (in memory when small, gateway/spool.ts). Signing reads the message
    // from a file path, so with signing configured the copy is written out first.
    const signing = signingFor(this.ctx.config);
    const file = signing.dkim.length || signing.arc.length ? await copy.toFile() : '';
    const prefix = await outgoingPrefix({ config: this.ctx.config, session: this.session, queueId: this.queueId, file, modified: offloaded > 0, original: this.originalAuth, log: this.log });
    const open = () => withPrefix(prefix, () => copy.open());
    const size = copy.size + prefix.length;
    const t0 = Date.now();
    const outcome = await deliver(this.ctx.relay, {
      id: this.queueId,
      sender: this.sender,
      recipients: this.queueRecipients(),
      dsnRet: this.dsnRet,
      dsnEnvid: this.dsnEnvid,
      size,
      open,
      deadline: t0 + this.ctx.config.relay.attemptTimeout,
    });
    const relayMs = Date.now() - t0;
    const delivered = outcome.recipients.filter((r) => r.state === 'delivered');
    const pending = outcome.recipients.filter((r) => r.state === 'pending');
    const failed = outcome.recipients.filter((r) => r.state === 'failed');

    if (delivered.length === 0 && pending.length === 0) {
      // Refused permanently for everyone: the client's server bounces it with the next hop's words.
      await this.cleanup();
      const f = failed[0]!;
      this.summary('bounced', f.response ?? '', { size, relayMs });
      return { reply: nextHopReply(f.code ?? 550, f.response ?? '') };
    }

    if (pending.length) {
      try {
        await this.enqueue(open, size, outcome.recipients, outcome.lastError);
      } catch (err) {
        this.log.error({ err }, 'the message could not be queued');
        if (delivered.length === 0) {
          await this.cleanup();
          this.summary('deferred', 'queue write failed', { size, relayMs });
          return { reply: replies.localError() };
        }
        // Some recipients already have it (with working links): keep the transfer. The client
        // retries the whole message, so those get a second copy; losing the others would be worse.
        if (this.transferCreated) await markLive(this.ctx.db, this.transferId).catch(() => undefined);
        this.summary('deferred', 'queue write failed after partial delivery', { size, relayMs, delivered: delivered.map((r) => r.address) });
        return { reply: replies.localError() };
      }
    } else if (this.transferCreated) {
      await markLive(this.ctx.db, this.transferId);
    }

    if (failed.length) {
      this.log.warn({ rejected: failed.map((r) => ({ to: r.address, response: r.response })) }, 'next hop refused some recipients permanently');
      await queueNotice(
        { db: this.ctx.db, blobs: this.ctx.blobs, logger: this.log, hostname: this.ctx.config.smtp.hostname, remoteMta: (this.ctx.relay as { remoteHost?: string }).remoteHost },
        {
          kind: 'failure',
          queueId: this.queueId,
          sender: this.sender,
          envid: this.dsnEnvid,
          arrivalDate: this.started,
          recipients: failed,
          openOriginal: async () => copy.open(),
          fallbackStatus: '5.0.0',
          now: Date.now(),
        },
      ).catch((err: Error) => this.log.error({ err }, 'could not queue the failure notice for refused recipients'));
    }

    if (pending.length) {
      this.summary('queued', outcome.lastError ?? 'next hop unavailable', { size, offloaded, relayMs, pending: pending.map((r) => r.address) });
      return { reply: replies.queued(this.queueId, offloaded) };
    }
    this.summary('sent', outcome.response, { size, offloaded, relayMs });
    return { reply: replies.accepted(this.queueId, offloaded) };
  }

  /**
   * Stores the message in the blob store (synced before put() resolves) and records the queue
   * entry and the transfer's pending -> live in one database transaction, all before the 250.
   */
  private async enqueue(open: () => Readable, size: number, recipients: QueueRecipient[], lastError: string | null): Promise<void> {
    const blobKey = queueBlobKey(this.queueId);
    await this.ctx.blobs.put(blobKey, open(), { contentType: 'message/rfc822' });
    const now = Date.now();
    try {
      await this.ctx.db.transaction().execute(async (trx) => {
        await enqueue(trx, {
          id: this.queueId,
          kind: 'message',
          transferId: this.transferCreated ? this.transferId : null,
          sender: this.sender,
          recipients,
          dsnRet: this.dsnRet,
          dsnEnvid: this.dsnEnvid,
          blobKey,
          size,
          createdAt: this.started,
          nextAttemptAt: now + backoff(this.ctx.config.queue.retrySchedule, 1),
          attempts: 1,
          lastError,
        });
        // link_issued only for recipients the next hop took; the rest are audited as queued.
        if (this.transferCreated) await markLiveQueued(trx, this.transferId, { queueId: this.queueId, recipients });
      });
    } catch (err) {
      await this.ctx.blobs.delete(blobKey).catch(() => undefined);
      throw err;
    }
  }

  /** Envelope recipients with their RFC 3461 parameters (smtp-server has decoded the xtext; nodemailer encodes it again). */
  private queueRecipients(): QueueRecipient[] {
    return this.session.envelope.rcptTo.map((r) => {
      const dsn = (r as { dsn?: { notify?: string[]; orcpt?: string } }).dsn;
      return {
        address: r.address,
        state: 'pending' as const,
        ...(dsn?.notify?.length ? { notify: dsn.notify.map((n) => n.toUpperCase()) } : {}),
        ...(dsn?.orcpt ? { orcpt: dsn.orcpt } : {}),
      };
    });
  }

  private get dsnRet(): 'FULL' | 'HDRS' | null {
    const ret = (this.session.envelope as { dsn?: { ret?: string } }).dsn?.ret;
    return ret === 'FULL' || ret === 'HDRS' ? ret : null;
  }

  private get dsnEnvid(): string | null {
    const envid = (this.session.envelope as { dsn?: { envid?: string } }).dsn?.envid;
    return envid ? envid.slice(0, 100) : null;
  }

  // ---- OffloadSink: called by the offloader ----

  async begin(meta: { name: string; contentType: string }): Promise<{ idx: number; blobKey: string }> {
    if (this.abort.signal.aborted) throw this.abort.signal.reason;
    // From the first offload on, the raw copy can no longer be what is relayed: stop writing it.
    if (this.nextIdx === 1) this.intake.detach('raw', true);
    const idx = this.nextIdx++;
    const blobKey = newBlobKey(this.transferId, idx);
    this.blobKeys.push(blobKey);
    this.transferCreated ??= this.createTransferRecord();
    try {
      await this.transferCreated;
    } catch (err) {
      this.storageError = err;
      throw new StorageFailure(err);
    }
    void meta;
    return { idx, blobKey };
  }

  async store(blobKey: string, body: PassThrough, contentType: string): Promise<void> {
    try {
      await this.ctx.blobs.put(blobKey, this.scanGate.tee(blobKey, body), { contentType, signal: this.abort.signal });
    } catch (err) {
      this.storageError ??= err;
      throw new StorageFailure(err);
    }
  }

  async complete(file: OffloadedFile): Promise<string> {
    try {
      await addFile(this.ctx.db, { ...file, transferId: this.transferId });
    } catch (err) {
      this.storageError = err;
      throw new StorageFailure(err);
    }
    this.files.push(file);
    this.log.debug({ idx: file.idx, size: file.size }, 'attachment offloaded');
    return placeholderText(file, this.landingUrl(), this.expiresAt);
  }

  // ---- helpers ----

  private landingUrl(): string {
    return landingUrl(this.ctx.config.web.publicUrl, this.token);
  }

  private async createTransferRecord(): Promise<void> {
    const root = this.offloader.rootNode;
    const header = (k: string) => {
      const v = root?.headers ? root.headers.getFirst(k) : '';
      return v ? v.slice(0, 998) : null;
    };
    let subject = header('subject');
    if (subject) {
      try {
        subject = libmime.decodeWords(subject);
      } catch {
        /* keep it as it came */
      }
    }
    // The rules are read when the first attachment is offloaded, before any notice text is
    // written, so the date in the notice is the stored expiry (storage/retention.ts).
    const retention = await decideRetention(this.ctx.db, { sender: this.sender, recipients: this.recipients, at: this.started }, retentionBounds(this.ctx.config));
    this.expiresAt = retention.expiresAt;
    await createTransfer(this.ctx.db, {
      id: this.transferId,
      tokenHash: hashToken(this.token),
      queueId: this.queueId,
      sender: this.sender,
      recipients: this.recipients,
      subject,
      messageId: header('message-id'),
      createdAt: this.started,
      expiresAt: this.expiresAt,
      retentionRule: retention.ruleId,
      maxDownloads: retention.downloadLimit,
    });
  }

  /** Waits for pass 1 to stop (after aborting it), then removes everything. */
  private async fail(pass1: Promise<void>): Promise<void> {
    this.cancel('transaction failed');
    this.offloader.destroy(new Error('transaction failed'));
    await pass1.catch(() => undefined);
    await this.cleanup();
    await this.spool.removeAll();
  }

  private async cleanup(): Promise<void> {
    this.cancel('cleanup');
    this.scanGate.abort();
    try {
      await this.transferCreated?.catch(() => undefined);
      // An upload still finishing (its source already read) would store its blob after the delete.
      await this.offloader?.settled();
      if (this.transferCreated) await discardTransfer(this.ctx.db, this.ctx.blobs, this.transferId);
      for (const key of this.blobKeys) await this.ctx.blobs.delete(key);
    } catch (err) {
      // The sweeper removes pending transfers it finds later; the client still gets its answer.
      this.log.error({ err }, 'cleanup after a failed message was incomplete');
    }
  }

  private summary(result: string, detail: string, extra: Record<string, unknown> = {}): void {
    const line = {
      client: this.session.remoteAddress,
      // The SMTP AUTH name, when the client logged in.
      user: typeof this.session.user === 'string' ? this.session.user : undefined,
      from: this.sender,
      to: this.recipients,
      bytes: this.intake?.bytes,
      offloaded: this.files.length,
      offloadedBytes: this.files.reduce((s, f) => s + f.size, 0),
      result,
      detail,
      ms: Date.now() - this.started,
      ...extra,
    };
    this.log.info(line, `${this.queueId}: ${result}`);
    countTransaction({
      result,
      detail,
      bytes: line.bytes ?? 0,
      offloaded: line.offloaded,
      offloadedBytes: line.offloadedBytes,
      relayMs: typeof extra.relayMs === 'number' ? extra.relayMs : undefined,
    });
  }
}

/** Errors Node raises for system calls (ENOSPC, EIO, EMFILE...) carry `syscall`; parser errors do not. */
function isSystemError(err: unknown): boolean {
  return typeof (err as { syscall?: unknown } | null)?.syscall === 'string';
}

function describeParseError(err: unknown): string {
  const e = err as { code?: string; message?: string };
  if (e?.code === 'EMIMELIMIT') return (err as { reason: string }).reason;
  if (e?.code === 'EMAXLEN') return 'a header block or the number of parts is over the limit';
  return 'the MIME structure is broken';
}


