import { once } from 'node:events';
import { PassThrough, type Readable, Transform, type TransformCallback, type Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import libmime from 'libmime';
import libqp from 'libqp';
import type { MimeNode } from '@zone-eu/mailsplit';
import { displayName } from '../storage/filenames.js';
import { decodeFileName } from './charsets.js';
import type { NewFile } from '../storage/records.js';
import { drainOrClose } from './backpressure.js';
import { HashCounter } from './hash-counter.js';
import { DECODED_QUEUE_BYTES, STAGE_OBJECTS } from './stage-queues.js';
import { Base64Decoder } from './decode-base64.js';
import { decodeBuffers } from './decode-buffers.js';
import { QuotedPrintableDecoder } from './decode-qp.js';
import { isUuencoded, UuDecoder } from './uudecode.js';
import { fallbackName, isAttachmentCandidate, isEmbeddedMessage, noticeTargetKind, PLACEHOLDER_HEADER, type SignedPolicy } from './mime-parts.js';

// Pass 1 of the rewrite, between mailsplit's Splitter and Joiner (object mode both sides).
//
// An attachment candidate is held back (node and encoded body) until its decoded size reaches
// the threshold. A part that ends below it is released unchanged, byte for byte. A part that
// reaches it is decoded on the fly, hashed and streamed into the blob store, with backpressure
// from the store back to the SMTP socket; when it ends, its node is rewritten in place into a
// short text part with the link, so no MIME boundary is ever removed. The held bytes go to a
// working copy of the transaction's spool (HoldStore): in memory within smtp.memorySpoolLimit
// and the process's smtp.memorySpoolBudget, on disk past either. Held in memory, the first
// 5 MB (the default threshold, about 6.7 MB of base64) of every large attachment arriving at
// once were most of what a process held (docs/performance.md, "Why ten messages at once take
// 240 MB"). Memory per message is bounded by stream buffers, whatever the attachment size.
//
// mailsplit's own Rewriter/Streamer are not used: they decide at header time (before the size
// is known), re-encode parts that must stay byte-exact, and buffer format=flowed parts whole.

type SplitObject = MimeNode | { type: 'body' | 'data'; node: MimeNode; value: Buffer };

export type OffloadedFile = Omit<NewFile, 'transferId'>;

/** What the offloader needs from the transaction that owns it. */
export interface OffloadSink {
  /** Called when a part reaches the threshold: reserve its index and blob key (and the transfer record). */
  begin(meta: { name: string; contentType: string }): Promise<{ idx: number; blobKey: string }>;
  /**
   * Streams decoded bytes into the blob store; resolves once durable. `written` is for the
   * store's put() (BlobStore PutOptions): it gives the decoder's buffers back.
   */
  store(blobKey: string, body: PassThrough, contentType: string, written: (chunk: Buffer) => void): Promise<void>;
  /** Called when a part is stored: record it and return the text that replaces it. */
  complete(file: OffloadedFile): Promise<string>;
}

/** A working copy the held bytes of a part go into (gateway/spool.ts SpoolFile). */
export interface HeldCopy extends Writable {
  /** The bytes written, as a stream; call after the copy has finished. */
  open(): Readable;
}

/** Where held parts wait until their size is known: the transaction's spool. */
export interface HoldStore {
  create(name: string): HeldCopy;
  /** Frees the copy's memory or file. */
  remove(name: string): Promise<void>;
}

export interface OffloaderOptions {
  minSize: number;
  signed: SignedPolicy;
  sink: OffloadSink;
  hold: HoldStore;
}

interface Held {
  kind: 'held';
  node: MimeNode;
  /** The name of its copy in the hold store. */
  name: string;
  copy: HeldCopy;
  /** The first bytes of a forwarded message sent as is, for its subject (embeddedSubjectName); undefined for any other part. */
  head: Buffer[] | undefined;
  headBytes: number;
  decoded: number;
  counter: Transform | PassThrough;
}

interface Active {
  kind: 'active';
  node: MimeNode;
  decoder: Writable;
  hasher: HashCounter;
  idx: number;
  blobKey: string;
  name: string;
  contentType: string;
  /** Settles when the bytes are stored; rejects on any failure along the way. */
  stored: Promise<void>;
}

export class Offloader extends Transform {
  /** Number of parts stored so far. */
  offloaded = 0;
  /** Whether the message has a text/plain or text/html body the notice can go into. */
  hasNoticeTarget = false;
  rootNode: MimeNode | undefined;
  private current: Held | Active | undefined;
  private heldParts = 0;
  /** Uploads not yet settled; cleanup waits for them, or a late rename would outlive its delete. */
  private readonly uploads = new Set<Promise<void>>();
  private readonly opts: OffloaderOptions;

  constructor(opts: OffloaderOptions) {
    super({ objectMode: true, highWaterMark: STAGE_OBJECTS });
    this.opts = opts;
  }

  override _transform(obj: SplitObject, _enc: BufferEncoding, cb: TransformCallback): void {
    this.handle(obj).then(() => cb(), cb);
  }

  override _flush(cb: TransformCallback): void {
    this.finishCurrent().then(() => cb(), cb);
  }

  /** Resolves once every upload started has finished or failed. */
  async settled(): Promise<void> {
    await Promise.all([...this.uploads]);
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    const cur = this.current;
    this.current = undefined;
    if (cur?.kind === 'active') cur.decoder.destroy(err ?? new Error('offload aborted'));
    if (cur?.kind === 'held') {
      cur.counter.destroy();
      // Its memory is freed now; a file is removed with the rest of the spool.
      cur.copy.destroy();
    }
    cb(err);
  }

  private async handle(obj: SplitObject): Promise<void> {
    const cur = this.current;
    if (cur && !(obj.type === 'body' && obj.node === cur.node)) await this.finishCurrent();

    if (obj.type === 'node') {
      const node = obj as MimeNode;
      if (node.root) this.rootNode = node;
      if (!this.hasNoticeTarget && noticeTargetKind(node)) this.hasNoticeTarget = true;
      if (isAttachmentCandidate(node, this.opts.signed)) {
        const counter = decoderFor(node);
        const name = `held-${++this.heldParts}`;
        const copy = this.opts.hold.create(name);
        // Its failure (disk full) reaches the message through holdBytes(), not as an 'error' event.
        copy.on('error', () => undefined);
        const held: Held = { kind: 'held', node, name, copy, head: namedBySubject(node) ? [] : undefined, headBytes: 0, decoded: 0, counter };
        counter.on('data', (c: Buffer) => {
          held.decoded += c.length;
          // Only counted: its buffer goes straight back.
          decodeBuffers.release(c);
        });
        counter.on('error', () => {
          /* a broken encoding is measured as far as it decodes */
        });
        this.current = held;
        return;
      }
      this.push(node);
      return;
    }

    if (obj.type === 'body' && this.current && obj.node === this.current.node) {
      const c = this.current;
      if (c.kind === 'held') {
        c.counter.write(obj.value);
        if (c.head && c.headBytes < SUBJECT_SEARCH_LIMIT) {
          c.head.push(obj.value);
          c.headBytes += obj.value.length;
        }
        await holdBytes(c.copy, obj.value);
        if (c.decoded >= this.opts.minSize) await this.startOffload(c);
        return;
      }
      await writeOrFail(c.decoder, obj.value, c.stored);
      return;
    }
    this.push(obj);
  }

  private async finishCurrent(): Promise<void> {
    const c = this.current;
    if (!c) return;
    if (c.kind === 'held') {
      c.counter.end();
      await once(c.counter, 'end').catch(() => undefined);
      if (c.decoded >= this.opts.minSize) {
        await this.startOffload(c);
        return this.finishCurrent();
      }
      this.current = undefined;
      // Below the threshold: the part goes on exactly as it came.
      this.push(c.node);
      await this.replayHeld(c, (value) => void this.push({ type: 'body', node: c.node, value }));
      return;
    }
    this.current = undefined;
    c.decoder.end();
    await c.stored;
    const file: OffloadedFile = {
      idx: c.idx,
      name: c.name,
      contentType: c.contentType,
      size: c.hasher.bytes,
      sha256: c.hasher.digest(),
      blobKey: c.blobKey,
    };
    const text = await this.opts.sink.complete(file);
    this.offloaded++;
    rewriteAsPlaceholder(c.node, file.idx);
    this.push(c.node);
    this.push({ type: 'body', node: c.node, value: placeholderBody(text, !!c.node.root) });
  }

  private async startOffload(held: Held): Promise<void> {
    held.counter.destroy();
    const node = held.node;
    const contentType = node.contentType || 'application/octet-stream';
    // A name that is nothing but spaces or control characters counts as none.
    // Names in charsets the parser does not know (gb2312 as Python labels it, ...): gateway/charsets.ts.
    const filename = node.filename ? (decodeFileName(node) ?? String(node.filename)) : '';
    const given = filename && displayName(filename, '') ? filename : '';
    const { idx, blobKey } = await this.opts.sink.begin({ name: given, contentType });
    // A part without a name still needs one people can open: a forwarded message is named after
    // its subject, anything else after its type ("attachment-2.pdf").
    const name = given || embeddedSubjectName(held) || fallbackName(contentType, idx);

    const decoder = decoderFor(node);
    const hasher = new HashCounter();
    const body = new PassThrough({ highWaterMark: DECODED_QUEUE_BYTES });
    const piped = pipeline(decoder, hasher, body);
    const put = this.opts.sink.store(blobKey, body, contentType, (chunk) => decodeBuffers.release(chunk));
    const stored = Promise.all([piped, put]).then(() => undefined);
    stored.catch(() => {
      /* observed by whoever awaits it; never an unhandled rejection */
    });
    // Both halves: the decoder side may fail at once while the store is still renaming its file.
    const settled: Promise<void> = Promise.allSettled([piped, put]).then(() => void this.uploads.delete(settled));
    this.uploads.add(settled);
    const active: Active = { kind: 'active', node, decoder, hasher, idx, blobKey, name, contentType, stored };
    this.current = active;
    await this.replayHeld(held, (chunk) => writeOrFail(decoder, chunk, stored));
  }

  /** Ends the held copy, hands its bytes to `each` in order, then frees the copy. */
  private async replayHeld(held: Held, each: (chunk: Buffer) => unknown): Promise<void> {
    held.copy.end();
    await finished(held.copy);
    for await (const chunk of held.copy.open()) await each(chunk as Buffer);
    await this.opts.hold.remove(held.name);
  }
}

/**
 * The part's transfer decoder: base64 and quoted-printable in bulk (gateway/decode-*.ts, not
 * mailsplit's per-character libbase64/libqp), uuencode, and identity for 7bit/8bit/binary.
 */
function decoderFor(node: MimeNode): Transform | PassThrough {
  const enc = typeof node.encoding === 'string' ? node.encoding.toLowerCase().trim() : '';
  if (enc === 'base64') return new Base64Decoder(decodeBuffers);
  if (enc === 'quoted-printable') return new QuotedPrintableDecoder();
  return isUuencoded(enc) ? new UuDecoder() : new PassThrough();
}

const SUBJECT_SEARCH_LIMIT = 64 * 1024;

/** A forwarded message sent as is (7bit/8bit/binary): named after its subject when offloaded. */
function namedBySubject(node: MimeNode): boolean {
  return isEmbeddedMessage(node) && ['', '7bit', '8bit', 'binary'].includes(String(node.encoding || '').toLowerCase());
}

/**
 * "<Subject>.eml" for a forwarded message sent as is (namedBySubject), read from the header
 * block at the start of the held bytes (at most 64 KiB are looked at); undefined otherwise.
 */
function embeddedSubjectName(held: Held): string | undefined {
  if (!held.head) return undefined;
  // UTF-8 because message/global headers may carry it raw; encoded words are decoded below.
  const text = Buffer.concat(held.head, held.headBytes).subarray(0, SUBJECT_SEARCH_LIMIT).toString('utf8');
  const end = text.search(/\r?\n\r?\n/);
  const head = (end >= 0 ? text.slice(0, end) : text).replace(/\r?\n[ \t]+/g, ' ');
  const m = /^subject:[ \t]*(.*)$/im.exec(head);
  if (!m) return undefined;
  let subject = m[1]!.trim();
  try {
    subject = libmime.decodeWords(subject).trim();
  } catch {
    /* keep it as it came */
  }
  // Cut by code point: half a surrogate pair would break the name wherever it is encoded.
  return subject ? `${[...subject].slice(0, 150).join('')}.eml` : undefined;
}

/** Writes to a held copy with backpressure; throws what made the copy fail (a disk fault). */
async function holdBytes(copy: Writable, chunk: Buffer): Promise<void> {
  if (!copy.write(chunk) && !copy.destroyed) await drainOrClose(copy);
  if (copy.errored) throw copy.errored;
  if (copy.destroyed) throw new Error('the working copy of a held part was closed');
}

/** Writes with backpressure; if the store fails, the pipeline destroys the decoder and the store's error is what the caller gets. */
async function writeOrFail(stream: Writable, chunk: Buffer, failure: Promise<void>): Promise<void> {
  if (!stream.destroyed && stream.write(chunk)) return;
  if (!stream.destroyed) await drainOrClose(stream);
  if (stream.destroyed) {
    await failure;
    throw new Error('offload stream closed before the attachment was stored');
  }
}

/**
 * The body of a placeholder part as rewriteAsPlaceholder() labels it (quoted-printable UTF-8).
 * Pass 2 writes each copy's own text with it (gateway/notice-inserter.ts). A message that is
 * nothing but the attachment has the placeholder as its root, whose body needs its own line end.
 */
export function placeholderBody(text: string, root: boolean): Buffer {
  const body = libqp.wrap(libqp.encode(Buffer.from(text, 'utf8')), 76).replace(/\r?\n/g, '\r\n');
  return Buffer.from(root ? `${body}\r\n` : body, 'latin1');
}

function rewriteAsPlaceholder(node: MimeNode, idx: number): void {
  const h = node.headers;
  if (!h) return;
  h.update('Content-Type', 'text/plain; charset=utf-8');
  h.update('Content-Transfer-Encoding', 'quoted-printable');
  h.update('Content-Disposition', 'inline');
  for (const k of ['Content-Length', 'Content-MD5', 'Content-Description', 'Content-Location']) h.remove(k);
  h.update(PLACEHOLDER_HEADER, String(idx));
  node.contentType = 'text/plain';
  node.encoding = 'quoted-printable';
  node.disposition = 'inline';
  node.filename = false;
}
