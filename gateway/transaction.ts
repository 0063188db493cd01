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
  manageUrl,
  markLive,
  markLiveQueued,
  newBlobKey,
  newId,
  newLinkId,
  newQueueId,
  newToken,
  enqueue,
  backoff,
  queueBlobKey,
  removeEmptyTransferDir,
  setCopyBlobKey,
  type BlobStore,
  type Db,
  type QueueRecipient,
} from '../storage/index.js';
import { DeferredPass } from './deferred-pass.js';
import { Intake } from './intake.js';
import { countTransaction } from './metrics.js';
import { CrlfNormalizer } from './line-ends.js';
import { mimeLimits } from './mime-limits.js';
import { BulkChunker, BulkSplitter } from './bulk-splitter.js';
import { NoticeInserter } from './notice-inserter.js';
import { queueObjects } from './stage-queues.js';
import { noticeHtml, noticeText, placeholderText } from './notice.js';
import { Offloader, type OffloadedFile, type OffloadSink } from './offloader.js';
import { deliver, queueNotice } from './queue-delivery.js';
import type { Relay } from './relay.js';
import { nextHopReply, replies, type Reply } from './replies.js';
import { Spool, type SpoolFile } from './spool.js';
import { ScanGate } from './scan/gate.js';
import { queueHeldNotices } from './scan/notice.js';
import { checkOriginalWhileReceiving, outgoingPrefix, signingFor } from './outgoing.js';
import type { OriginalAuth } from './arc.js';
import { decideRetention, retentionBounds } from '../storage/retention.js';
import { hashTransferPassword, newTransferPassword } from '../storage/transfer-passwords.js';
import { takePasswordTag } from './password-tag.js';
import { queueReceipt } from './senders/receipt.js';

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

/**
 * One relayed copy of an offloaded message and the link it carries: one per envelope recipient
 * (offload.linkPerRecipient), or one shared by every recipient.
 */
interface Copy {
  linkId: string;
  /** The link's recipient; '' for the link all recipients share. */
  recipient: string;
  token: string;
  recipients: QueueRecipient[];
}

/** A copy after its delivery attempt at end of DATA. */
interface Attempted {
  copy: Copy;
  /** Where the exact bytes relayed (Ferry's fields included) are kept for the sender's "send again". */
  blobKey: string;
  size: number;
  recipients: QueueRecipient[];
  lastError: string | null;
  response: string;
}

const SPLITTER_OPTIONS = {
  // Forwarded messages stay whole: they are one attachment, never rewritten inside.
  ignoreEmbedded: true,
  maxHeadSize: 2 * 1024 * 1024,
  maxChildNodes: 10_000,
};

/** Input chunk of the MIME pass: large, so leaf bodies move in few, large objects (gateway/bulk-splitter.ts). */
const BULK_CHUNK = 256 * 1024;
/**
 * The same during DATA, where the socket already gives 64 KiB chunks: those pass on as they are.
 * Joining them into 256 KiB pieces was one more copy of every byte, and each copy is memory the
 * process keeps until V8 collects it: ten 100 MiB messages at once peaked 35 MB lower per worker
 * without it, at the same CPU per message (docs/performance.md, "Why ten messages at once...").
 */
const DATA_CHUNK = 32 * 1024;

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
  // The transfer's id and tokens are drawn when the first attachment is offloaded: most mail has
  // none, and three random draws per message were 2-3 % of a small message's CPU.
  private transferIdDrawn: string | undefined;
  private tokenDrawn: string | undefined;
  private manageTokenDrawn: string | undefined;
  get transferId(): string {
    return (this.transferIdDrawn ??= newId());
  }
  /**
   * The transfer's own token (transfers.token_hash): the shared link's, or, with a link per
   * recipient, one nobody is given (pass 1's placeholders carry it until pass 2 writes each copy's).
   */
  private get token(): string {
    return (this.tokenDrawn ??= newToken());
  }
  /** The sender's credential for the management page (/m/<token>), only in the receipt. */
  private get manageToken(): string {
    return (this.manageTokenDrawn ??= newToken());
  }
  /** The copies to relay, planned with the transfer record (at the first offload). */
  private copies: Copy[] = [];
  /** The transfer's password in clear, only for the sender's receipt; never logged. */
  private password: string | undefined;
  /** The Subject field relayed when the sender's password tag was taken out of it. */
  private relayedSubject: string | undefined;
  /** The subject as stored (decoded, without the password tag). */
  private storedSubject: string | null = null;
  /** Whether the matching retention rule asks for a receipt (null: senders.receipts decides). */
  private receiptsByRule: boolean | null = null;
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
  /** Made when pass 1 starts; a message that skips it has none. */
  private offloader: Offloader | undefined;
  private mimePass: DeferredPass | undefined;
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
      await this.spool.remove('raw');
      const outcome = await this.relayCopies();
      await queueHeldNotices({ db: this.ctx.db, blobs: this.ctx.blobs, logger: this.log, hostname: this.ctx.config.smtp.hostname }, { sender: this.sender, admins: this.ctx.config.scan.notify, transferId: this.transferId, queueId: this.queueId, files: scan.held }, outcome.reply);
      return outcome;
    } catch (err) {
      this.log.error({ err }, 'message processing failed');
      await this.cleanup();
      this.summary('deferred', 'local error');
      return { reply: replies.localError() };
    } finally {
      await this.spool.removeAll();
    }
  }

  /**
   * Pass 1: DATA -> intake -> (raw copy) + (splitter -> offloader -> joiner -> spool "a"), the
   * second branch only once the message could hold a part to offload (gateway/deferred-pass.ts).
   */
  private startPass1(onHardLimit: () => void): Promise<void> {
    const cfg = this.ctx.config;
    const raw = this.spool.writer('raw');
    const rawDone = finished(raw);
    rawDone.catch(() => undefined);
    const mime = new DeferredPass(Math.min(cfg.offload.minAttachmentSize, cfg.smtp.memorySpoolLimit), () => {
      const chunker = new BulkChunker(DATA_CHUNK);
      const hold = { create: (name: string) => this.spool.writer(name), remove: (name: string) => this.spool.remove(name) };
      this.offloader = new Offloader({ minSize: cfg.offload.minAttachmentSize, signed: cfg.offload.signed, sink: this, hold });
      const done = pipeline(chunker, new BulkSplitter(SPLITTER_OPTIONS, mimeLimits(cfg)), this.offloader, queueObjects(new Joiner(), 'writable'), new CrlfNormalizer(), this.spool.writer('a'));
      return { input: chunker as unknown as Writable, done };
    });
    this.mimePass = mime;
    this.intake = new Intake({
      maxSize: cfg.smtp.maxMessageSize,
      hardLimit: cfg.smtp.hardLimit,
      onOversize: () => {
        raw.destroy();
        mime.destroy(new Error('over size limit'));
      },
      onHardLimit: () => {
        raw.destroy();
        mime.destroy(new Error('over hard limit'));
        onHardLimit();
      },
    });
    this.intake.attach('raw', raw, { canonicalLineEnds: true });
    this.rawDone = rawDone;
    this.intake.attach('mime', mime);
    this.originalAuth = checkOriginalWhileReceiving(this.intake, cfg);
    return mime.done;
  }

  /**
   * Pass 2, once per copy: spool "a" -> that copy's notice into the text bodies and its link into
   * the placeholder parts -> spool "b" (the previous copy's "b" is gone by then).
   */
  private async pass2(copy: Copy): Promise<SpoolFile> {
    // A file held in quarantine is named so in the notice (gateway/scan/, scan.onInfected: quarantine).
    const held = new Set(this.scanHeld.map((h) => h.idx));
    const files = this.files.map((f) => (held.has(f.idx) ? { ...f, name: `${f.name} [held for review: malware found]` } : f));
    const url = this.landingUrl(copy.token);
    const n = { files, landingUrl: url, expiresAt: this.expiresAt };
    const total = this.files.reduce((s, f) => s + f.size, 0);
    await this.spool.remove('b');
    const out = this.spool.writer('b');
    await pipeline(
      this.spool.get('a').open(),
      new BulkChunker(BULK_CHUNK),
      new BulkSplitter(SPLITTER_OPTIONS, mimeLimits(this.ctx.config)),
      new NoticeInserter({
        text: noticeText(n),
        html: noticeHtml(n),
        addPart: !this.offloader!.hasNoticeTarget,
        rootHeader: { key: 'X-Ferry-Offloaded', value: `${this.files.length} file${this.files.length === 1 ? '' : 's'}; ${total} bytes` },
        placeholders: new Map(this.files.map((f) => [f.idx, placeholderText(f, url, this.expiresAt)])),
        subject: this.relayedSubject,
      }),
      queueObjects(new Joiner(), 'writable'),
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
   * Messages with nothing offloaded go here, whole, to all recipients; the others: relayCopies().
   */
  private async relay(copy: SpoolFile, offloaded: number): Promise<Outcome> {
    // Ferry's Received field (and DKIM/ARC fields when configured) go in front; the rest streams
    // from the working copy (in memory when small, gateway/spool.ts). Signing reads the message
    // from a file path, so with signing configured the copy is written out first.
    const signing = signingFor(this.ctx.config);
    const file = signing.dkim.length || signing.arc.length ? await copy.toFile() : '';
    const prefix = await outgoingPrefix({ config: this.ctx.config, session: this.session, queueId: this.queueId, file, modified: offloaded > 0, original: this.originalAuth, log: this.log });
    const open = () => copy.open(prefix);
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
      await this.queueFailureNotice(failed, async () => copy.open());
    }

    if (pending.length) {
      this.summary('queued', outcome.lastError ?? 'next hop unavailable', { size, offloaded, relayMs, pending: pending.map((r) => r.address) });
      return { reply: replies.queued(this.queueId, offloaded) };
    }
    this.summary('sent', outcome.response, { size, offloaded, relayMs });
    return { reply: replies.accepted(this.queueId, offloaded) };
  }

  /**
   * End of DATA for a message with offloaded files: each copy (one per recipient, or one for all)
   * gets pass 2, Ferry's fields, its blob for "send again", and one attempt at the next hop,
   * within relay.attemptTimeout altogether. Then, over all copies, the same outcome as relay():
   * refused permanently for every recipient: that reply, nothing kept; any recipient still
   * pending: each undelivered copy is its own queue entry and the client gets "queued"; refused
   * recipients beside delivered or queued ones: one DSN for all of them.
   */
  private async relayCopies(): Promise<Outcome> {
    const cfg = this.ctx.config;
    const t0 = Date.now();
    const deadline = t0 + cfg.relay.attemptTimeout;
    const attempted: Attempted[] = [];
    // Set when a copy got no SMTP reply at all: the next hop is down, the other copies are queued untried.
    let unreachable: string | null = null;
    try {
      for (const [i, copy] of this.copies.entries()) {
        const file = await this.pass2(copy);
        const prefix = await this.prefixFor(file, copy.recipients);
        const open = () => file.open(prefix);
        const size = file.size + prefix.length;
        const blobKey = copyBlobKey(this.transferId, copy.linkId);
        this.blobKeys.push(blobKey);
        await this.ctx.blobs.put(blobKey, open(), { contentType: 'message/rfc822', signal: this.abort.signal });
        await setCopyBlobKey(this.ctx.db, copy.linkId, blobKey);
        if (unreachable === null && (i === 0 || Date.now() < deadline)) {
          const outcome = await deliver(this.ctx.relay, {
            // With an outbox next hop each copy is its own <id>.eml.
            id: i === 0 ? this.queueId : `${this.queueId}-${i + 1}`,
            sender: this.sender,
            recipients: copy.recipients,
            dsnRet: this.dsnRet,
            dsnEnvid: this.dsnEnvid,
            size,
            open,
            deadline,
          });
          if (outcome.recipients.some((r) => r.state === 'pending' && r.code === undefined)) unreachable = outcome.lastError ?? 'next hop unavailable';
          attempted.push({ copy, blobKey, size, recipients: outcome.recipients, lastError: outcome.lastError, response: outcome.response });
        } else {
          const lastError = unreachable ?? `not tried: relay.attemptTimeout (${cfg.relay.attemptTimeout} ms) was used up by the other copies`;
          attempted.push({ copy, blobKey, size, recipients: copy.recipients.map((r) => ({ ...r })), lastError, response: '' });
        }
      }
    } catch (err) {
      if (!attempted.some((a) => a.recipients.some((r) => r.state === 'delivered'))) throw err;
      // Some recipients already have their copy (with working links): keep the transfer. The
      // client retries the whole message, so those get a second one; losing the others would be worse.
      this.log.error({ err }, 'message processing failed after some copies were delivered');
      await markLive(this.ctx.db, this.transferId).catch(() => undefined);
      this.summary('deferred', 'local error after partial delivery', { copies: this.copies.length, delivered: delivered(attempted) });
      return { reply: replies.localError() };
    } finally {
      await this.spool.remove('b');
    }

    const relayMs = Date.now() - t0;
    const offloaded = this.files.length;
    const all = attempted.flatMap((a) => a.recipients);
    const pending = all.filter((r) => r.state === 'pending');
    const failed = all.filter((r) => r.state === 'failed');
    const size = attempted.reduce((n, a) => Math.max(n, a.size), 0);
    const copies = attempted.length;

    if (failed.length === all.length) {
      // Refused permanently for everyone: the client's server bounces it with the next hop's words.
      await this.cleanup();
      const f = failed[0]!;
      this.summary('bounced', f.response ?? '', { size, relayMs, copies });
      return { reply: nextHopReply(f.code ?? 550, f.response ?? '') };
    }

    if (pending.length) {
      try {
        await this.enqueueCopies(attempted.filter((a) => a.recipients.some((r) => r.state === 'pending')), all);
      } catch (err) {
        this.log.error({ err }, 'the message could not be queued');
        if (delivered(attempted).length === 0) {
          await this.cleanup();
          this.summary('deferred', 'queue write failed', { size, relayMs, copies });
          return { reply: replies.localError() };
        }
        await markLive(this.ctx.db, this.transferId).catch(() => undefined);
        this.summary('deferred', 'queue write failed after partial delivery', { size, relayMs, copies, delivered: delivered(attempted) });
        return { reply: replies.localError() };
      }
    } else {
      await markLive(this.ctx.db, this.transferId);
    }

    if (failed.length) {
      this.log.warn({ rejected: failed.map((r) => ({ to: r.address, response: r.response })) }, 'next hop refused some recipients permanently');
      // Every copy has the same header block but Ferry's trace; the first refused copy's is returned.
      const refused = attempted.find((a) => a.recipients.some((r) => r.state === 'failed'))!;
      await this.queueFailureNotice(failed, () => this.ctx.blobs.openRead(refused.blobKey));
    }

    await this.sendReceipt();
    if (pending.length) {
      const lastError = attempted.find((a) => a.lastError)?.lastError ?? 'next hop unavailable';
      this.summary('queued', lastError, { size, offloaded, relayMs, copies, pending: pending.map((r) => r.address) });
      return { reply: replies.queued(this.queueId, offloaded) };
    }
    this.summary('sent', attempted.at(-1)!.response, { size, offloaded, relayMs, copies });
    return { reply: replies.accepted(this.queueId, offloaded) };
  }

  /**
   * Ferry's fields for one copy. The Received field names the copy's recipient only when it is
   * the only one (gateway/received.ts), so no copy shows another envelope recipient.
   */
  private async prefixFor(file: SpoolFile, recipients: QueueRecipient[]): Promise<Buffer> {
    const signing = signingFor(this.ctx.config);
    // Signing reads the message from a file path, so with signing configured the copy is written out first.
    const path = signing.dkim.length || signing.arc.length ? await file.toFile() : '';
    const session = Object.create(this.session, { envelope: { value: { ...this.session.envelope, rcptTo: recipients.map((r) => ({ address: r.address, args: false })) } } }) as SMTPServerSession;
    return outgoingPrefix({ config: this.ctx.config, session, queueId: this.queueId, file: path, modified: true, original: this.originalAuth, log: this.log });
  }

  /**
   * Each copy not yet delivered becomes its own queue entry: the first `<queueId>` (the id the
   * client was given), then `<queueId>-2`, ... Their bytes are the stored copies; the entries and
   * the transfer's pending -> live go in one database transaction, all before the reply.
   */
  private async enqueueCopies(undelivered: Attempted[], all: QueueRecipient[]): Promise<void> {
    const entries = undelivered.map((a, n) => ({ a, id: n === 0 ? this.queueId : `${this.queueId}-${n + 1}` }));
    const keys: string[] = [];
    try {
      for (const e of entries) {
        const key = queueBlobKey(e.id);
        keys.push(key);
        await this.ctx.blobs.put(key, await this.ctx.blobs.openRead(e.a.blobKey), { contentType: 'message/rfc822' });
      }
      const now = Date.now();
      await this.ctx.db.transaction().execute(async (trx) => {
        for (const e of entries) {
          await enqueue(trx, {
            id: e.id,
            kind: 'message',
            transferId: this.transferId,
            sender: this.sender,
            recipients: e.a.recipients,
            dsnRet: this.dsnRet,
            dsnEnvid: this.dsnEnvid,
            blobKey: queueBlobKey(e.id),
            size: e.a.size,
            createdAt: this.started,
            nextAttemptAt: now + backoff(this.ctx.config.queue.retrySchedule, 1),
            attempts: 1,
            lastError: e.a.lastError,
          });
        }
        // link_issued only for recipients the next hop took; the rest are audited as queued.
        await markLiveQueued(trx, this.transferId, { queueId: this.queueId, recipients: all });
      });
    } catch (err) {
      for (const key of keys) await this.ctx.blobs.delete(key).catch(() => undefined);
      throw err;
    }
  }

  /** The sender's receipt with the management link (and the password, if any), once the message is accepted. */
  private async sendReceipt(): Promise<void> {
    const perRecipientLink = this.copies.some((c) => c.recipient !== '');
    await queueReceipt(
      { config: this.ctx.config, db: this.ctx.db, blobs: this.ctx.blobs, logger: this.log },
      {
        transferId: this.transferId,
        queueId: this.queueId,
        sender: this.sender,
        subject: this.storedSubject,
        files: this.files.map((f) => ({ name: f.name, size: f.size, sha256: f.sha256 })),
        expiresAt: this.expiresAt,
        recipients: this.recipients.map((address) => ({ address, perRecipientLink })),
        manageUrl: manageUrl(this.ctx.config.web.publicUrl, this.manageToken),
        ...(this.password ? { password: this.password } : {}),
        receiptsByRule: this.receiptsByRule,
      },
    );
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

  /** One failure DSN to the sender for the recipients the next hop refused permanently; a failure to queue it is logged, never thrown. */
  private async queueFailureNotice(failed: QueueRecipient[], openOriginal: () => Promise<Readable>): Promise<void> {
    await queueNotice(
      { db: this.ctx.db, blobs: this.ctx.blobs, logger: this.log, hostname: this.ctx.config.smtp.hostname, remoteMta: (this.ctx.relay as { remoteHost?: string }).remoteHost },
      {
        kind: 'failure',
        queueId: this.queueId,
        sender: this.sender,
        envid: this.dsnEnvid,
        arrivalDate: this.started,
        recipients: failed,
        openOriginal,
        fallbackStatus: '5.0.0',
        now: Date.now(),
      },
    ).catch((err: Error) => this.log.error({ err }, 'could not queue the failure notice for refused recipients'));
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

  async store(blobKey: string, body: PassThrough, contentType: string, written: (chunk: Buffer) => void): Promise<void> {
    const read = this.scanGate.tee(blobKey, body);
    // NB a scanner beside the store may still be sending a chunk the store has written: the
    // decoder's buffers come back only when the store is the one reader.
    const opts = { contentType, signal: this.abort.signal, ...(read === body ? { written } : {}) };
    try {
      await this.ctx.blobs.put(blobKey, read, opts);
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

  private landingUrl(token = this.token): string {
    return landingUrl(this.ctx.config.web.publicUrl, token);
  }

  private async createTransferRecord(): Promise<void> {
    const root = this.offloader?.rootNode;
    const header = (k: string) => {
      const v = root?.headers ? root.headers.getFirst(k) : '';
      return v ? v.slice(0, 998) : null;
    };
    const cfg = this.ctx.config;
    let subject = header('subject');
    if (subject) {
      try {
        subject = libmime.decodeWords(subject);
      } catch {
        /* keep it as it came */
      }
    }
    // The sender's password tag: out of the relayed Subject (pass 2 writes it again, the rest of
    // the header block untouched) and out of the stored subject.
    if (subject && cfg.offload.passwordTag) {
      const taken = takePasswordTag(subject, cfg.offload.passwordTag);
      if (taken.tagged) {
        const bare = taken.subject;
        subject = bare;
        this.relayedSubject = /^[\x20-\x7e\t]*$/.test(bare) ? bare : libmime.encodeWords(bare, 'Q', 52);
      }
    }
    this.storedSubject = subject;
    // The rules are read when the first attachment is offloaded, before any notice text is
    // written, so the date in the notice is the stored expiry (storage/retention.ts).
    const retention = await decideRetention(this.ctx.db, { sender: this.sender, recipients: this.recipients, at: this.started }, retentionBounds(cfg));
    this.expiresAt = retention.expiresAt;
    this.receiptsByRule = retention.receipts;
    let passwordHash: string | null = null;
    if (this.relayedSubject !== undefined || retention.requirePassword) {
      this.password = newTransferPassword();
      passwordHash = await hashTransferPassword(this.password);
    }
    this.copies = this.planCopies();
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
      links: this.copies.map((c) => ({ id: c.linkId, recipient: c.recipient, tokenHash: hashToken(c.token) })),
      manageTokenHash: hashToken(this.manageToken),
      passwordHash,
    });
  }

  /**
   * One copy per envelope recipient with a token of its own (a single recipient too, so the
   * management page names it), unless offload.linkPerRecipient is off or there are more than
   * offload.maxPerRecipientLinks recipients: then one copy for all, with the shared link.
   */
  private planCopies(): Copy[] {
    const { linkPerRecipient, maxPerRecipientLinks } = this.ctx.config.offload;
    const recipients = this.queueRecipients();
    if (linkPerRecipient && recipients.length <= maxPerRecipientLinks) {
      return recipients.map((r) => ({ linkId: newLinkId(), recipient: r.address, token: newToken(), recipients: [r] }));
    }
    return [{ linkId: newLinkId(), recipient: '', token: this.token, recipients }];
  }

  /** Waits for pass 1 to stop (after aborting it), then removes everything. */
  private async fail(pass1: Promise<void>): Promise<void> {
    this.cancel('transaction failed');
    this.mimePass?.destroy(new Error('transaction failed'));
    this.offloader?.destroy(new Error('transaction failed'));
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
      // The relayed copies lived beside the files (copyBlobKey): their folder goes with them.
      if (this.transferCreated) await removeEmptyTransferDir(this.ctx.blobs, this.transferId);
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

/** Where the exact bytes relayed to one link's recipient(s) are kept (removed with the transfer's files). */
function copyBlobKey(transferId: string, linkId: string): string {
  return `t/${transferId}/copy-${linkId}`;
}

function delivered(attempted: Attempted[]): string[] {
  return attempted.flatMap((a) => a.recipients.filter((r) => r.state === 'delivered').map((r) => r.address));
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


