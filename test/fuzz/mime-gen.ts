import fc from 'fast-check';
import libqp from 'libqp';
import { pseudoRandom } from '../helpers/mail.js';

// Random MIME messages for the fuzz harness (test/fuzz/mime.test.ts): trees of random depth and
// width, every transfer encoding, boundaries that prefix each other, several charsets, broken
// parts (truncated base64, bad quoted-printable, missing closing delimiters), bare LF and CR in
// text bodies, and chains nested past mime.maxDepth. Each rendered message comes with what the
// gateway must do with it (the oracle).

export interface LeafSpec {
  kind: 'leaf';
  type: 'text/plain' | 'text/html' | 'application/octet-stream' | 'image/png' | 'application/pdf';
  charset: string;
  encoding: 'base64' | 'quoted-printable' | '7bit' | '8bit';
  disposition: 'attachment' | 'inline' | null;
  named: boolean;
  size: number;
  seed: number;
  broken: boolean;
  bareEnds: '\n' | '\r' | null;
}

export interface MultiSpec {
  kind: 'multi';
  subtype: 'mixed' | 'alternative' | 'related';
  children: NodeSpec[];
  boundary: 'fresh' | 'extendsParent' | 'specials';
  closeMissing: boolean;
  preamble: boolean;
  epilogue: boolean;
}

export type NodeSpec = LeafSpec | MultiSpec;

export interface MessageSpec {
  root: MultiSpec;
  /** Extra multipart levels wrapped around the root (past mime.maxDepth when deep enough). */
  wrap: number;
}

export function messageArbitrary(threshold: number): fc.Arbitrary<MessageSpec> {
  const leaf: fc.Arbitrary<LeafSpec> = fc.record({
    kind: fc.constant('leaf' as const),
    type: fc.constantFrom('text/plain', 'text/html', 'application/octet-stream', 'image/png', 'application/pdf'),
    charset: fc.constantFrom('utf-8', 'iso-8859-1', 'windows-1252', 'shift_jis', 'koi8-r', 'x-unknown-8bit'),
    encoding: fc.constantFrom('base64', 'quoted-printable', '7bit', '8bit'),
    disposition: fc.constantFrom('attachment', 'inline', null),
    named: fc.boolean(),
    // Around the threshold on purpose: one byte under, at, over.
    size: fc.oneof(fc.integer({ min: 0, max: 400 }), fc.integer({ min: threshold - 2, max: threshold + 2 }), fc.integer({ min: threshold, max: threshold * 12 })),
    seed: fc.integer({ min: 0, max: 1_000_000 }),
    broken: fc.oneof({ weight: 6, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
    bareEnds: fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.constantFrom('\n' as const, '\r' as const) }),
  });
  const tree = fc.letrec<{ node: NodeSpec; multi: MultiSpec }>((tie) => ({
    node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('multi')),
    multi: fc.record({
      kind: fc.constant('multi' as const),
      subtype: fc.constantFrom('mixed', 'alternative', 'related'),
      children: fc.array(tie('node'), { minLength: 0, maxLength: 4 }),
      boundary: fc.constantFrom('fresh', 'fresh', 'extendsParent', 'specials'),
      closeMissing: fc.oneof({ weight: 8, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
      preamble: fc.boolean(),
      epilogue: fc.boolean(),
    }),
  }));
  return fc.record({
    root: tree.multi,
    wrap: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 14 }) }),
  });
}

/** A leaf as rendered: where it sits and what a download of it must give. */
export interface RenderedLeaf {
  spec: LeafSpec;
  name: string | undefined;
  depth: number;
  /** The body bytes exactly as in the message (encoded). */
  body: Buffer;
  /** What decoding the body gives (for a broken part: undefined, it decodes as far as it goes). */
  decoded: Buffer | undefined;
  /** Ferry's attachment rule (gateway/mime-parts.ts): by disposition, by name, or a non-text leaf. */
  candidate: boolean;
}

export interface Rendered {
  raw: Buffer;
  leaves: RenderedLeaf[];
  depth: number;
  parts: number;
  /** Nothing broken anywhere and every line end CRLF. */
  clean: boolean;
  /** Line ends all CRLF. */
  canonical: boolean;
}

const CRLF = '\r\n';

function textPayload(size: number, seed: number, eightBit: boolean): Buffer {
  // Lines of at most 70 characters, none starting with "-" (so never a delimiter) or ".".
  const rnd = pseudoRandom(size, `text:${seed}`);
  const alphabet = eightBit ? 'abcdefghij klmnop qrstuvwxyz ABCDE 0123456789 \xe9\xe8\xfc\xdf\xf6' : 'abcdefghij klmnop qrstuvwxyz ABCDE 0123456789,;:!';
  let s = '';
  let col = 0;
  for (let i = 0; s.length < size; i++) {
    if (col >= 70 && size - s.length > 3) {
      s += CRLF;
      col = 0;
      continue;
    }
    let ch = alphabet[rnd[i % rnd.length]! % alphabet.length]!;
    if (col === 0 && ch === ' ') ch = 'x';
    s += ch;
    col++;
  }
  s = s.slice(0, size);
  // Never end inside a CRLF or with a space/CR: the part's last line ending belongs to the delimiter.
  if (s.endsWith('\r')) s = `${s.slice(0, -1)}x`;
  return Buffer.from(s, 'latin1');
}

export function render(spec: MessageSpec): Rendered {
  const leaves: RenderedLeaf[] = [];
  let clean = true;
  let canonical = true;
  let parts = 0;
  let maxDepth = 0;
  let counter = 0;
  let nameCounter = 0;

  const boundaryFor = (mode: MultiSpec['boundary'], parent: string | undefined): string => {
    const n = counter++;
    if (mode === 'extendsParent' && parent) return `${parent}${n % 2 ? '_' : '=x'}`.slice(0, 70);
    if (mode === 'specials') return `=_ (Part)+,./:=?${n}`;
    return `b${n}`;
  };

  const renderLeaf = (l: LeafSpec, depth: number): string => {
    parts++;
    maxDepth = Math.max(maxDepth, depth);
    const isText = l.type.startsWith('text/');
    const identity = l.encoding === '7bit' || l.encoding === '8bit';
    const payload = isText || identity ? textPayload(l.size, l.seed, l.encoding === '8bit' || (!identity && l.charset !== 'utf-8')) : pseudoRandom(l.size, `bin:${l.seed}`);
    const name = l.named || (!isText && l.disposition !== null) ? `p${nameCounter++}.${isText ? 'txt' : 'bin'}` : undefined;
    let body: string;
    let decoded: Buffer | undefined = payload;
    if (l.encoding === 'base64') {
      body = payload.toString('base64').replace(/.{76}(?=.)/g, `$&${CRLF}`);
      if (l.broken && body.length > 8) {
        body = body.slice(0, -5);
        decoded = undefined;
        clean = false;
      }
    } else if (l.encoding === 'quoted-printable') {
      body = isText && identityLines(payload) ? libqp.wrap(libqp.encode(payload), 76).replace(/\r?\n/g, CRLF) : binaryQp(payload);
      if (l.broken) {
        body = `=Z${body}=`;
        decoded = undefined;
        clean = false;
      }
    } else {
      body = payload.toString('latin1');
    }
    // Bare line ends only in text bodies that stay in the message (their bytes go out normalised).
    const candidate = l.disposition === 'attachment' || !!name || !isText;
    if (l.bareEnds && !candidate) {
      // A lone dot line and a command after it: what SMTP smuggling sends.
      body = `${body}${CRLF}.${CRLF}MAIL FROM:<mallory@evil.example>`.split(CRLF).join(l.bareEnds);
      canonical = false;
      clean = false;
      decoded = undefined;
    }
    const ct = `Content-Type: ${l.type}${isText ? `; charset=${l.charset}` : ''}${name ? `; name="${name}"` : ''}`;
    const cd = l.disposition ? `${CRLF}Content-Disposition: ${l.disposition}${name ? `; filename="${name}"` : ''}` : '';
    const bodyBuf = Buffer.from(body, 'latin1');
    leaves.push({ spec: l, name, depth, body: bodyBuf, decoded, candidate });
    return `${ct}${CRLF}Content-Transfer-Encoding: ${l.encoding}${cd}${CRLF}${CRLF}${body}`;
  };

  const renderMulti = (m: MultiSpec, depth: number, parentBoundary: string | undefined, header: string): string => {
    parts++;
    maxDepth = Math.max(maxDepth, depth);
    const b = boundaryFor(m.boundary, parentBoundary);
    const firstLeaf = leaves.length;
    let s = `${header}Content-Type: multipart/${m.subtype}; boundary="${b}"${CRLF}${CRLF}`;
    if (m.preamble) s += `This is a multi-part message in MIME format.${CRLF}`;
    for (const c of m.children) {
      s += `--${b}${CRLF}`;
      s += c.kind === 'leaf' ? renderLeaf(c, depth + 1) : renderMulti(c, depth + 1, b, '');
      s += CRLF;
    }
    if (m.closeMissing) {
      clean = false;
      // Without its closing delimiter the last part runs on to the next delimiter of an
      // ancestor, taking the line ends in between: its exact bytes are no longer known.
      const last = leaves.at(-1);
      if (last && leaves.length > firstLeaf) last.decoded = undefined;
    } else s += `--${b}--${CRLF}`;
    if (m.epilogue && !m.closeMissing) s += `epilogue text${CRLF}`;
    return s;
  };

  const top = `From: alice@example.com${CRLF}To: bob@example.net${CRLF}Subject: fuzz${CRLF}MIME-Version: 1.0${CRLF}`;
  let root: MultiSpec = spec.root;
  for (let i = 0; i < spec.wrap; i++) root = { kind: 'multi', subtype: 'mixed', children: [root], boundary: 'fresh', closeMissing: false, preamble: false, epilogue: false };
  const raw = Buffer.from(renderMulti(root, 0, undefined, top), 'latin1');
  return { raw, leaves, depth: maxDepth, parts, clean, canonical };
}

/** True when every CR and LF in `b` is part of a CRLF (libqp keeps those as line breaks). */
function identityLines(b: Buffer): boolean {
  return !/\r(?!\n)|(?<!\r)\n/.test(b.toString('latin1'));
}

/** Quoted-printable with every byte outside printable ASCII (CR and LF included) as =XX, soft breaks at 76. */
function binaryQp(b: Buffer): string {
  const lines: string[] = [];
  let line = '';
  for (const c of b) {
    const t = c >= 33 && c <= 126 && c !== 61 ? String.fromCharCode(c) : `=${c.toString(16).toUpperCase().padStart(2, '0')}`;
    if (line.length + t.length > 75) {
      lines.push(`${line}=`);
      line = '';
    }
    line += t;
  }
  lines.push(line);
  return lines.join(CRLF);
}

/** The bytes with every bare CR and LF made CRLF (what Ferry's CrlfNormalizer does). */
export function canonicalize(b: Buffer): Buffer {
  return Buffer.from(b.toString('latin1').replace(/\r\n|\r|\n/g, CRLF), 'latin1');
}
