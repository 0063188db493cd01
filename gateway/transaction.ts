import fs from 'node:fs';
import fsp from 'node:fs/promises';
import type { PassThrough, Readable, Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { ChunkedPassthrough, Joiner, Splitter } from '@zone-eu/mailsplit';
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
  newBlobKey,
  newId,
  newQueueId,
  newToken,
  type BlobStore,
  type Db,
} from '../storage/index.js';
import { Intake } from './intake.js';
import { CrlfNormalizer } from './line-ends.js';
import { NoticeInserter } from './notice-inserter.js';
import { noticeHtml, noticeText, placeholderText } from './notice.js';
import { Offloader, type OffloadedFile, type OffloadSink } from './offloader.js';
import { RelayError, type Relay } from './relay.js';
import { nextHopReply, replies, type Reply } from './replies.js';
import { Spool } from './spool.js';

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
  private readonly expiresAt: number;
  private readonly started = Date.now();
  private readonly abort = new AbortController();
  private readonly files: OffloadedFile[] = [];
  private readonly blobKeys: string[] = [];
  private transferCreated: Promise<void> | undefined;
  private nextIdx = 1;
  private storageError: unknown;
  private offloader!: Offloader;
  private intake!: Intake;
  private spool!: Spool;
  private rawDone: Promise<void> = Promise.resolve();
  private log: Logger;

  constructor(
    private readonly ctx: GatewayContext,
    private readonly session: SMTPServerSession,
  ) {
    this.expiresAt = this.started + ctx.config.retention.default;
    this.log = ctx.logger.child({ queueId: this.queueId });
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
    this.spool = await Spool.open(this.ctx.spoolDir, this.queueId);
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
      this.summary('aborted', 'client went away during DATA');
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
        if (this.storageError || result instanceof StorageFailure) {
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
    const chunker = new ChunkedPassthrough({ chunkSize: 64 * 1024 });
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
    this.intake.attach('raw', raw);
    this.offloader = new Offloader({ minSize: cfg.offload.minAttachmentSize, signed: cfg.offload.signed, sink: this });
    this.rawDone = rawDone;
    this.intake.attach('mime', chunker as unknown as Writable);
    return pipeline(chunker, new Splitter(SPLITTER_OPTIONS), this.offloader, new Joiner(), new CrlfNormalizer(), this.spool.writer('a'));
  }

  /** Pass 2: spool "a" -> notice into the text bodies -> spool "b". */
  private async pass2(): Promise<string> {
    const n = { files: this.files, landingUrl: this.landingUrl(), expiresAt: this.expiresAt };
    const total = this.files.reduce((s, f) => s + f.size, 0);
    const out = this.spool.path('b');
    await pipeline(
      fs.createReadStream(this.spool.path('a'), { highWaterMark: 64 * 1024 }),
      new ChunkedPassthrough({ chunkSize: 64 * 1024 }),
      new Splitter(SPLITTER_OPTIONS),
      new NoticeInserter({
        text: noticeText(n),
        html: noticeHtml(n),
        addPart: !this.offloader.hasNoticeTarget,
        rootHeader: { key: 'X-Ferry-Offloaded', value: `${this.files.length} file${this.files.length === 1 ? '' : 's'}; ${total} bytes` },
      }),
      new Joiner(),
      new CrlfNormalizer(),
      fs.createWriteStream(out),
    );
    return out;
  }

  private async relayRaw(): Promise<Outcome> {
    await this.rawDone;
    return this.relay(this.spool.path('raw'), 0);
  }

  private async relay(file: string, offloaded: number): Promise<Outcome> {
    const { size } = await fsp.stat(file);
    const envelope = { from: this.sender, to: this.recipients, size };
    const t0 = Date.now();
    try {
      const res = await this.ctx.relay.send(envelope, () => fs.createReadStream(file, { highWaterMark: 64 * 1024 }) as Readable, this.queueId);
      if (this.transferCreated) await markLive(this.ctx.db, this.transferId);
      if (res.rejected.length) {
        // TODO(delivery queue): a DSN to the sender for these; until then they are logged.
        this.log.warn({ rejected: res.rejected }, 'next hop refused some recipients; the others got the message');
      }
      this.summary('sent', res.response, { size, offloaded, relayMs: Date.now() - t0 });
      return { reply: replies.accepted(this.queueId, offloaded) };
    } catch (err) {
      await this.cleanup();
      if (err instanceof RelayError && err.permanent && err.responseCode) {
        this.summary('bounced', err.message, { size, relayMs: Date.now() - t0 });
        return { reply: nextHopReply(err.responseCode, err.response ?? '') };
      }
      this.summary('deferred', (err as Error).message, { size, relayMs: Date.now() - t0 });
      const detail = err instanceof RelayError && err.responseCode ? `it answered ${err.responseCode}` : shortReason(err as Error);
      return { reply: replies.nextHopUnavailable(detail) };
    }
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
      await this.ctx.blobs.put(blobKey, body, { contentType, signal: this.abort.signal });
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
    try {
      await this.transferCreated?.catch(() => undefined);
      if (this.transferCreated) await discardTransfer(this.ctx.db, this.ctx.blobs, this.transferId);
      for (const key of this.blobKeys) await this.ctx.blobs.delete(key);
    } catch (err) {
      // The sweeper removes pending transfers it finds later; the client still gets its answer.
      this.log.error({ err }, 'cleanup after a failed message was incomplete');
    }
  }

  private summary(result: string, detail: string, extra: Record<string, unknown> = {}): void {
    this.log.info(
      {
        client: this.session.remoteAddress,
        from: this.sender,
        to: this.recipients,
        bytes: this.intake?.bytes,
        offloaded: this.files.length,
        offloadedBytes: this.files.reduce((s, f) => s + f.size, 0),
        result,
        detail,
        ms: Date.now() - this.started,
        ...extra,
      },
      `${this.queueId}: ${result}`,
    );
  }
}

function describeParseError(err: unknown): string {
  const e = err as { code?: string; message?: string };
  if (e?.code === 'EMAXLEN') return 'a header block or the number of parts is over the limit';
  return 'the MIME structure is broken';
}

function shortReason(err: Error): string {
  const m = String(err.message ?? err);
  return m.length > 120 ? `${m.slice(0, 117)}...` : m;
}

