import { once } from 'node:events';
import { PassThrough, Transform, type Readable, type TransformCallback, type Writable } from 'node:stream';
import libbase64 from 'libbase64';
import libmime from 'libmime';
import libqp from 'libqp';
import type { MimeNode } from '@zone-eu/mailsplit';
import { noticeTargetKind, PLACEHOLDER_HEADER, usableCharset } from './mime-parts.js';
import { lookupCharset } from './charsets.js';
import { stuffFlowed } from './notice.js';
import { placeholderBody } from './offloader.js';
import { STAGE_OBJECTS } from './stage-queues.js';
import { Utf8OrCp1252 } from './utf8-repair.js';

// Pass 2 of the rewrite, run over the small message that pass 1 left (attachments are gone).
// It puts the notice at the top of the first text/plain body and after <body> in the first
// text/html body, streaming (a text body can be large too), keeping each part's charset and
// transfer encoding where the notice fits them. When the message has no such body and its root
// is multipart/mixed, a notice part is added as the first part. Parts that are not touched
// pass byte for byte.
//
// With a link per recipient this pass runs once per copy: each copy's notice and placeholder
// parts carry that copy's link. The placeholders pass 1 wrote are replaced as whole parts (their
// headers say what they are), never by searching encoded bytes for a token.

type SplitObject = MimeNode | { type: 'body' | 'data'; node: MimeNode; value: Buffer };

export interface NoticeInserterOptions {
  /** Plain-text notice (CRLF line ends). */
  text: string;
  /** HTML notice, ASCII only. */
  html: string;
  /** Add a notice part when no body takes the notice. */
  addPart: boolean;
  /** Header set on the root, e.g. X-Ferry-Offloaded. */
  rootHeader?: { key: string; value: string };
  /**
   * Placeholder text by file index: the body of each part pass 1 turned into a placeholder
   * (X-Ferry-Offloaded-File: <idx>) is written again with this text.
   */
  placeholders?: ReadonlyMap<number, string>;
  /** A new Subject field value for the root (already encoded for the header), e.g. without the password tag. */
  subject?: string;
}

interface Rewrite {
  node: MimeNode;
  head: Writable;
  tail: Readable;
  ended: Promise<unknown>;
}

// Outlook/Word HTML can carry a <head> of style definitions well over 64 KiB before <body>.
const HTML_SEARCH_LIMIT = 512 * 1024;

export class NoticeInserter extends Transform {
  private plainDone = false;
  private htmlDone = false;
  private partAdded = false;
  private rootBoundary: string | undefined;
  private current: Rewrite | undefined;
  /** A placeholder part whose new body has been written: its old body is dropped. */
  private replacing: MimeNode | undefined;
  private pausedTail: Readable | undefined;
  private readonly opts: NoticeInserterOptions;

  constructor(opts: NoticeInserterOptions) {
    super({ objectMode: true, highWaterMark: STAGE_OBJECTS });
    this.opts = opts;
  }

  override _read(size: number): void {
    const t = this.pausedTail;
    this.pausedTail = undefined;
    t?.resume();
    super._read(size);
  }

  override _transform(obj: SplitObject, _enc: BufferEncoding, cb: TransformCallback): void {
    this.handle(obj).then(() => cb(), cb);
  }

  override _flush(cb: TransformCallback): void {
    this.finishCurrent().then(() => cb(), cb);
  }

  private async handle(obj: SplitObject): Promise<void> {
    if (this.replacing) {
      if (obj.type === 'body' && obj.node === this.replacing) return;
      this.replacing = undefined;
    }
    if (this.current && !(obj.type === 'body' && obj.node === this.current.node)) await this.finishCurrent();

    if (obj.type === 'node') {
      const node = obj as MimeNode;
      if (node.root) {
        if (this.opts.rootHeader && node.headers) node.headers.update(this.opts.rootHeader.key, this.opts.rootHeader.value);
        if (this.opts.subject !== undefined && node.headers) node.headers.update('Subject', this.opts.subject);
        if (node.multipart === 'mixed' && node.headers) {
          this.rootBoundary = libmime.parseHeaderValue(node.headers.getFirst('content-type')).params.boundary;
        }
      }
      const placeholder = this.placeholderFor(node);
      if (placeholder !== undefined) {
        this.push(node);
        this.push({ type: 'body', node, value: placeholderBody(placeholder, !!node.root) });
        this.replacing = node;
        return;
      }
      const kind = noticeTargetKind(node);
      if (kind === 'plain' && !this.plainDone) {
        this.plainDone = true;
        this.current = this.startPlain(node);
      } else if (kind === 'html' && !this.htmlDone) {
        this.htmlDone = true;
        this.current = this.startHtml(node);
      }
      this.push(node);
      return;
    }

    if (obj.type === 'body' && this.current && obj.node === this.current.node) {
      const head = this.current.head;
      if (!head.write(obj.value)) await once(head, 'drain');
      return;
    }

    // mailsplit attributes the first delimiter line to the child it opens, so match the root's boundary, not the node.
    if (obj.type === 'data' && this.opts.addPart && !this.partAdded && this.rootBoundary) {
      const at = firstDelimiterEnd(obj.value, this.rootBoundary);
      if (at >= 0) {
        this.partAdded = true;
        this.push({ ...obj, value: obj.value.subarray(0, at) });
        this.push(Buffer.from(noticePart(this.opts.text, this.rootBoundary), 'latin1'));
        if (at < obj.value.length) this.push({ ...obj, value: obj.value.subarray(at) });
        return;
      }
    }
    this.push(obj);
  }

  /** This copy's text for a placeholder part pass 1 wrote (text/plain, quoted-printable, marked), or undefined. */
  private placeholderFor(node: MimeNode): string | undefined {
    const map = this.opts.placeholders;
    const h = node.headers;
    if (!map?.size || !h || !h.hasHeader(PLACEHOLDER_HEADER)) return undefined;
    if (node.contentType !== 'text/plain' || String(node.encoding || '').toLowerCase() !== 'quoted-printable') return undefined;
    const idx = Number(h.getFirst(PLACEHOLDER_HEADER));
    return Number.isInteger(idx) ? map.get(idx) : undefined;
  }

  private async finishCurrent(): Promise<void> {
    const c = this.current;
    if (!c) return;
    this.current = undefined;
    c.head.end();
    await c.ended;
  }

  /** Wires head -> ... -> tail and forwards the tail's bytes as body objects of `node`. */
  private chain(node: MimeNode, stages: (Transform | PassThrough)[]): Rewrite {
    const head = stages[0]!;
    for (let i = 0; i < stages.length - 1; i++) {
      stages[i]!.pipe(stages[i + 1]!);
      stages[i]!.on('error', (err) => stages[i + 1]!.destroy(err));
    }
    const tail = stages[stages.length - 1]!;
    tail.on('data', (value: Buffer) => {
      if (!this.push({ type: 'body', node, value })) {
        tail.pause();
        this.pausedTail = tail;
      }
    });
    const ended = once(tail, 'end');
    return { node, head, tail, ended };
  }

  private startPlain(node: MimeNode): Rewrite {
    const cs = usableCharset(node)!;
    const codec = lookupCharset(cs)!;
    const enc = (node.encoding || '7bit').toLowerCase();
    const text = node.flowed ? stuffFlowed(this.opts.text) : this.opts.text;
    // us-ascii bodies are relabelled utf-8 when the notice needs it: ASCII bytes are valid UTF-8.
    const asciiBody = cs === 'us-ascii' || cs === 'ascii';
    // A charset Ferry reads but cannot write (ISO-2022-JP) takes the notice as UTF-8: transcoded.
    let noticeBytes = asciiBody || !codec.canEncode ? Buffer.from(text, 'utf8') : codec.encode(text);
    const fits = asciiBody ? true : codec.canEncode && codec.decode(noticeBytes) === text;
    const transcode = !fits;
    if (transcode) noticeBytes = Buffer.from(text, 'utf8');
    if ((transcode || asciiBody) && !isAscii(noticeBytes)) node.setCharset('utf-8');
    // A "us-ascii" body relabelled UTF-8 may hold undeclared 8-bit text: keep it readable
    // (gateway/utf8-repair.ts); a quoted-printable one is decoded and encoded again for that.
    const repair = asciiBody && !isAscii(noticeBytes);

    const stages: (Transform | PassThrough)[] = [];
    const decodeCte = enc === 'base64' ? new libbase64.Decoder() : enc === 'quoted-printable' ? new libqp.Decoder() : undefined;
    let outEnc = enc;
    if ((enc === '7bit') && !isAscii(noticeBytes)) outEnc = 'quoted-printable';
    const reencode = transcode || outEnc !== enc || enc === 'base64' || (repair && enc === 'quoted-printable');

    if (!reencode) {
      // The notice is written in the part's own encoding and the original bytes follow untouched.
      const pre = enc === 'quoted-printable' ? Buffer.from(qpLines(noticeBytes), 'latin1') : noticeBytes;
      if (repair) stages.push(new Utf8OrCp1252());
      stages.push(new Prepend(pre));
      return this.chain(node, stages);
    }
    if (outEnc !== enc && node.headers) node.headers.update('Content-Transfer-Encoding', outEnc);
    if (decodeCte) stages.push(decodeCte);
    if (repair) stages.push(new Utf8OrCp1252());
    if (transcode) stages.push(...codec.toUtf8());
    stages.push(new Prepend(noticeBytes));
    stages.push(encoderFor(outEnc));
    if (stages.length === 1) stages.unshift(new PassThrough());
    return this.chain(node, stages);
  }

  private startHtml(node: MimeNode): Rewrite {
    const enc = (node.encoding || '7bit').toLowerCase();
    const notice = Buffer.from(this.opts.html, 'latin1');
    const stages: (Transform | PassThrough)[] = [];
    if (enc === 'base64' || enc === 'quoted-printable') {
      stages.push(enc === 'base64' ? new libbase64.Decoder() : new libqp.Decoder());
      stages.push(new InsertAfterBodyTag(notice));
      stages.push(encoderFor(enc));
    } else {
      // 7bit/8bit: the ASCII notice goes straight into the bytes, nothing else changes.
      stages.push(new InsertAfterBodyTag(notice));
    }
    return this.chain(node, stages);
  }
}

function isAscii(b: Buffer): boolean {
  for (const c of b) if (c > 0x7e || (c < 0x20 && c !== 0x0d && c !== 0x0a && c !== 0x09)) return false;
  return true;
}

function qpLines(bytes: Buffer): string {
  return libqp.wrap(libqp.encode(bytes), 76).replace(/\r?\n/g, '\r\n');
}

function encoderFor(enc: string): Transform {
  if (enc === 'base64') return new libbase64.Encoder() as unknown as Transform;
  if (enc === 'quoted-printable') return new libqp.Encoder({ lineLength: 76 }) as unknown as Transform;
  return new PassThrough();
}

/** The notice as a MIME part, placed after the root's first delimiter, followed by a new delimiter. */
function noticePart(text: string, boundary: string): string {
  return (
    'Content-Type: text/plain; charset=utf-8\r\n' +
    'Content-Transfer-Encoding: quoted-printable\r\n' +
    'Content-Disposition: inline\r\n' +
    '\r\n' +
    qpLines(Buffer.from(text, 'utf8')) +
    `\r\n--${boundary}\r\n`
  );
}

/** Offset just past the first opening delimiter line "--B" + line end in `buf`, or -1. */
function firstDelimiterEnd(buf: Buffer, boundary: string): number {
  const s = buf.toString('latin1');
  const re = new RegExp(`(^|\\n)--${escapeRe(boundary)}[ \\t]*\\r?\\n`, 'g');
  const m = re.exec(s);
  return m ? m.index + m[0].length : -1;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Writes `prefix` before the first byte (or at the end if the body is empty). */
class Prepend extends Transform {
  private done = false;
  constructor(private readonly prefix: Buffer) {
    super();
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    if (!this.done) {
      this.done = true;
      this.push(this.prefix);
    }
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    if (!this.done) this.push(this.prefix);
    cb();
  }
}

/**
 * Inserts `notice` right after the first <body ...> tag within the first 512 KiB, or at the
 * start if there is none. Searches a latin1 view of the bytes, which keeps every byte as it is
 * and finds ASCII markup in any ASCII-compatible charset.
 */
export class InsertAfterBodyTag extends Transform {
  private pending: Buffer[] = [];
  private pendingLen = 0;
  /** Latin-1 view of the pending bytes, and where the next search starts in it. */
  private text = '';
  private from = 0;
  private done = false;
  constructor(private readonly notice: Buffer) {
    super();
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    if (this.done) return cb(null, chunk);
    this.pending.push(chunk);
    this.pendingLen += chunk.length;
    this.text += chunk.toString('latin1');
    const re = /<body\b[^>]*>/gi;
    re.lastIndex = this.from;
    const m = re.exec(this.text);
    if (m) {
      this.release(Buffer.concat(this.pending), m.index + m[0].length);
    } else if (this.pendingLen > HTML_SEARCH_LIMIT) {
      this.release(Buffer.concat(this.pending), 0);
    } else {
      // Search again from an unclosed "<body" or the last few characters, not from the start:
      // each chunk is looked at about once.
      const open = this.text.slice(this.from).toLowerCase().lastIndexOf('<body');
      this.from = open >= 0 ? this.from + open : Math.max(this.from, this.text.length - 5);
    }
    cb();
  }
  override _flush(cb: TransformCallback): void {
    if (!this.done) this.release(Buffer.concat(this.pending), 0);
    cb();
  }
  private release(buf: Buffer, at: number) {
    this.done = true;
    this.pending = [];
    this.text = '';
    this.push(buf.subarray(0, at));
    this.push(this.notice);
    this.push(buf.subarray(at));
  }
}
