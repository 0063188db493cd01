import crypto from 'node:crypto';

// A message with one base64 attachment of any size, generated on the fly: the sender holds one
// chunk at a time, so sending 1 GiB costs the bench a few hundred KiB, and its exact size is
// known before the first byte (for MAIL FROM ... SIZE=). The attachment bytes are an
// AES-256-CTR keystream keyed by a seed: incompressible like real files, reproducible, and
// produced at several GB/s so the generator never is the bottleneck being measured.
//
// No line of the message starts with "." (base64 has no dot, the headers and boundary are
// ours), so the DATA stream needs no dot-stuffing; the caller only adds the final ".\r\n".

const LINE_RAW = 57; // 57 bytes -> 76 base64 characters, the RFC 2045 maximum line
const LINE_WIRE = 78; // 76 + CRLF
const LINES_PER_CHUNK = 1024; // ~57 KiB raw, ~78 KiB on the wire per chunk

export interface GeneratedMessage {
  /** Bytes of the message as sent in DATA, excluding the terminating ".\r\n". */
  wireSize: number;
  attachmentSize: number;
  filename: string;
  /** Yields the message in chunks; call once. */
  chunks(): Generator<Buffer>;
  /** SHA-256 (hex) of the attachment's decoded bytes; available once chunks() is exhausted. */
  sha256(): string;
}

export interface MessageOptions {
  attachmentSize: number;
  /** No attachment part at all: a text/plain message of about this many bytes of body (attachmentSize is then ignored). */
  textOnly?: number;
  seed?: string;
  from?: string;
  to?: string;
}

export function base64WireSize(n: number): number {
  const full = Math.floor(n / LINE_RAW);
  const rest = n % LINE_RAW;
  return full * LINE_WIRE + (rest ? Math.ceil(rest / 3) * 4 + 2 : 0);
}

export function generateMessage(opts: MessageOptions): GeneratedMessage {
  if (opts.textOnly !== undefined) return textMessage(opts.textOnly, opts);
  const size = opts.attachmentSize;
  if (!Number.isSafeInteger(size) || size < 0) throw new Error(`invalid attachment size ${size}`);
  const seed = opts.seed ?? 'ferry-bench';
  const boundary = `=_ferry_bench_${crypto.createHash('sha256').update(`b:${seed}:${size}`).digest('hex').slice(0, 24)}`;
  const filename = `bench-${size}.bin`;
  const head = Buffer.from(
    [
      `From: Ferry bench <${opts.from ?? 'bench@example.com'}>`,
      `To: <${opts.to ?? 'recipient@example.net'}>`,
      `Subject: Ferry memory bench, ${size} byte attachment`,
      `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
      `Message-ID: <${crypto.randomUUID()}@bench.ferry.invalid>`,
      'MIME-Version: 1.0',
      `Content-Type: multipart/mixed; boundary="${boundary}"`,
      '',
      `--${boundary}`,
      'Content-Type: text/plain; charset=us-ascii',
      'Content-Transfer-Encoding: 7bit',
      '',
      'Hello, the file is attached.',
      '',
      `--${boundary}`,
      `Content-Type: application/octet-stream; name="${filename}"`,
      'Content-Transfer-Encoding: base64',
      `Content-Disposition: attachment; filename="${filename}"`,
      '',
      '',
    ].join('\r\n'),
    'latin1',
  );
  const tail = Buffer.from(`--${boundary}--\r\n`, 'latin1');
  // A base64 body that does not end with CRLF gets one before the boundary line.
  const attachmentWire = base64WireSize(size);
  const wireSize = head.length + attachmentWire + tail.length;

  const hash = crypto.createHash('sha256');
  let digest: string | undefined;
  let used = false;

  function* chunks(): Generator<Buffer> {
    if (used) throw new Error('chunks() may be called once');
    used = true;
    yield head;
    const key = crypto.createHash('sha256').update(`key:${seed}`).digest();
    const cipher = crypto.createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
    const zeros = Buffer.alloc(LINE_RAW * LINES_PER_CHUNK);
    let left = size;
    while (left > 0) {
      const n = Math.min(left, zeros.length);
      const raw = cipher.update(zeros.subarray(0, n));
      hash.update(raw);
      left -= n;
      const b64 = Buffer.from(raw.toString('base64'), 'latin1');
      const out = Buffer.allocUnsafe(base64WireSize(n));
      let o = 0;
      for (let i = 0; i < b64.length; i += 76) {
        o += b64.copy(out, o, i, Math.min(i + 76, b64.length));
        out[o++] = 0x0d;
        out[o++] = 0x0a;
      }
      yield out;
    }
    digest = hash.digest('hex');
    yield tail;
  }

  return {
    wireSize,
    attachmentSize: size,
    filename,
    chunks,
    sha256() {
      if (digest === undefined) throw new Error('the attachment has not been generated to the end yet');
      return digest;
    },
  };
}

const TEXT_LINE = 'The quick brown fox jumps over the lazy dog, and the report is attached tomorrow.\r\n';

/** A plain text message (no MIME parts) with a body of about `bodyBytes`: the "no attachment" mail of a mix. */
function textMessage(bodyBytes: number, opts: MessageOptions): GeneratedMessage {
  const head = [
    `From: Ferry bench <${opts.from ?? 'bench@example.com'}>`,
    `To: <${opts.to ?? 'recipient@example.net'}>`,
    `Subject: Ferry bench, text only`,
    `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <${crypto.randomUUID()}@bench.ferry.invalid>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii',
    '',
    '',
  ].join('\r\n');
  const lines = Math.max(1, Math.round(bodyBytes / TEXT_LINE.length));
  const msg = Buffer.from(head + TEXT_LINE.repeat(lines), 'latin1');
  let used = false;
  return {
    wireSize: msg.length,
    attachmentSize: 0,
    filename: '',
    *chunks() {
      if (used) throw new Error('chunks() may be called once');
      used = true;
      yield msg;
    },
    sha256: () => crypto.createHash('sha256').update('').digest('hex'),
  };
}
