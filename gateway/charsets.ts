import { Transform, type TransformCallback } from 'node:stream';
import { TextDecoder } from 'node:util';
import iconv from 'iconv-lite';

// Charset labels as messages carry them, resolved to a codec. Python's email package and older
// mailers write codec names rather than registered labels ("iso2022_jp", "euc_jp", "cp936",
// "ks_c_5601-1987", "big5hkscs"...), and iconv-lite knows some of them and not others (it has no
// ISO-2022-JP at all). A label is looked up: as iconv-lite knows it; else through Python's codec
// aliases (encodings/aliases.py, the CJK part) and the WHATWG Encoding Standard's labels (Node's
// TextDecoder, which knows every label browsers do); a codec iconv-lite lacks is decoded with
// TextDecoder (ISO-2022-JP), which cannot encode: such a body is converted to UTF-8 to take text.

/** Python codec names (normalised: lower case, "_" for "-" and " ") and what they are. */
const PYTHON_ALIASES: Record<string, string> = {
  // Japanese
  euc_jp: 'euc-jp', eucjp: 'euc-jp', ujis: 'euc-jp', u_jis: 'euc-jp', euc_jis_2004: 'euc-jp', euc_jisx0213: 'euc-jp',
  shift_jis: 'shift_jis', sjis: 'shift_jis', s_jis: 'shift_jis', shiftjis: 'shift_jis', csshiftjis: 'shift_jis',
  shift_jis_2004: 'shift_jis', shift_jisx0213: 'shift_jis', sjis_2004: 'shift_jis',
  cp932: 'windows-31j', ms932: 'windows-31j', mskanji: 'windows-31j', ms_kanji: 'windows-31j', '932': 'windows-31j',
  iso2022_jp: 'iso-2022-jp', iso2022jp: 'iso-2022-jp', iso_2022_jp: 'iso-2022-jp', csiso2022jp: 'iso-2022-jp',
  iso2022_jp_1: 'iso-2022-jp', iso2022_jp_2: 'iso-2022-jp', iso2022_jp_2004: 'iso-2022-jp', iso2022_jp_3: 'iso-2022-jp', iso2022_jp_ext: 'iso-2022-jp',
  // Chinese (simplified)
  gb2312: 'gbk', chinese: 'gbk', csiso58gb231280: 'gbk', euc_cn: 'gbk', euccn: 'gbk', eucgb2312_cn: 'gbk', gb2312_1980: 'gbk', gb2312_80: 'gbk', iso_ir_58: 'gbk',
  gbk: 'gbk', '936': 'gbk', cp936: 'gbk', ms936: 'gbk',
  gb18030: 'gb18030', gb18030_2000: 'gb18030',
  hz: 'hz-gb-2312', hzgb: 'hz-gb-2312', hz_gb: 'hz-gb-2312', hz_gb_2312: 'hz-gb-2312',
  // Chinese (traditional)
  big5: 'big5', big5_tw: 'big5', csbig5: 'big5', cp950: 'big5', ms950: 'big5', '950': 'big5',
  big5hkscs: 'big5-hkscs', big5_hkscs: 'big5-hkscs', hkscs: 'big5-hkscs',
  // Korean
  euc_kr: 'euc-kr', euckr: 'euc-kr', korean: 'euc-kr', ksc5601: 'euc-kr', ks_c_5601: 'euc-kr', ks_c_5601_1987: 'euc-kr', ksx1001: 'euc-kr', ks_x_1001: 'euc-kr',
  cp949: 'euc-kr', '949': 'euc-kr', ms949: 'euc-kr', uhc: 'euc-kr',
  // What the rest of Python's aliases most often write in mail.
  utf_8: 'utf-8', u8: 'utf-8', utf: 'utf-8', utf8_ucs2: 'utf-8', utf8_ucs4: 'utf-8', cp65001: 'utf-8',
  latin_1: 'iso-8859-1', latin1: 'iso-8859-1', l1: 'iso-8859-1', iso8859_1: 'iso-8859-1', iso8859_15: 'iso-8859-15', latin_9: 'iso-8859-15',
  ascii: 'us-ascii', us_ascii: 'us-ascii', '646': 'us-ascii',
};

export interface Codec {
  /** The name the codec goes by (iconv-lite's, or the WHATWG name for TextDecoder codecs). */
  name: string;
  /** False when Ferry can read the charset but not write it (ISO-2022-JP): text is added as UTF-8. */
  canEncode: boolean;
  decode(bytes: Buffer): string;
  encode(text: string): Buffer;
  /** Stream stages that turn bytes in this charset into UTF-8 bytes. */
  toUtf8(): Transform[];
}

const cache = new Map<string, Codec | null>();

/** The codec for a charset label from a message, or undefined if none is known. */
export function lookupCharset(label: string | false | undefined | null): Codec | undefined {
  const raw = (label || '').toString().trim().replace(/^["']|["']$/g, '').toLowerCase();
  if (!raw) return undefined;
  let hit = cache.get(raw);
  if (hit === undefined) {
    hit = resolve(raw) ?? null;
    if (cache.size < 1000) cache.set(raw, hit);
  }
  return hit ?? undefined;
}

/** The label's codec name, for places that hand the name on (e.g. to iconv-lite); undefined if unknown. */
export function charsetName(label: string | false | undefined | null): string | undefined {
  return lookupCharset(label)?.name;
}

function resolve(label: string): Codec | undefined {
  // UTF-7 passes markup past filters, base64/hex are transfer encodings: never charsets here.
  if (/^(utf-?7|unicode-1-1-utf-7|csunicode11utf7|base64|hex)$/.test(label)) return undefined;
  if (iconv.encodingExists(label)) return iconvCodec(label);
  // NB iconv-lite types encodingExists() as a type guard, which narrows `label` to never here.
  const py = PYTHON_ALIASES[(label as string).replace(/[-\s]/g, '_')];
  const candidates = [py, whatwgName(py ?? label), whatwgName(label)].filter((x): x is string => !!x);
  for (const name of candidates) if (iconv.encodingExists(name)) return iconvCodec(name);
  for (const name of candidates) if (whatwgName(name)) return textDecoderCodec(whatwgName(name)!);
  return undefined;
}

function whatwgName(label: string | undefined): string | undefined {
  if (!label) return undefined;
  try {
    const name = new TextDecoder(label).encoding;
    // "replacement" is the WHATWG stand-in for charsets it refuses to decode (ISO-2022-KR, HZ...).
    return name === 'replacement' ? undefined : name;
  } catch {
    return undefined;
  }
}

function iconvCodec(name: string): Codec {
  return {
    name,
    canEncode: true,
    decode: (b) => iconv.decode(b, name),
    encode: (t) => iconv.encode(t, name),
    toUtf8: () => [iconv.decodeStream(name) as unknown as Transform, iconv.encodeStream('utf-8') as unknown as Transform],
  };
}

/**
 * A codec iconv-lite lacks, decoded by TextDecoder. Hand-written stream glue only: TextDecoder
 * does the decoding, and its `stream: true` keeps a character split across chunks whole.
 */
function textDecoderCodec(name: string): Codec {
  return {
    name,
    canEncode: false,
    decode: (b) => new TextDecoder(name).decode(b),
    encode: () => {
      throw new Error(`cannot write ${name}`);
    },
    toUtf8: () => [new TextDecoderStream(name)],
  };
}

/** Bytes in a TextDecoder charset in, UTF-8 out (what iconv-lite's decodeStream + encodeStream('utf-8') do). */
class TextDecoderStream extends Transform {
  private readonly decoder: TextDecoder;
  constructor(name: string) {
    super();
    this.decoder = new TextDecoder(name);
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const s = this.decoder.decode(chunk, { stream: true });
    cb(null, s ? Buffer.from(s, 'utf8') : undefined);
  }
  override _flush(cb: TransformCallback): void {
    const s = this.decoder.decode();
    cb(null, s ? Buffer.from(s, 'utf8') : undefined);
  }
}

interface HeaderSource {
  headers?: { getFirst(key: string): string } | false | null;
}

/**
 * A part's file name read from its raw header with the labels above, for names in a charset
 * the MIME parser's own decoder does not know (it falls back to UTF-8 and the name turns into
 * mojibake): RFC 2231 (filename*=gb2312''%C4%E3, continuations too) and the RFC 2047 encoded
 * words old mailers put inside the quotes. Undefined when the header has no such name or a
 * charset here does not know it either; the parser's name is used then.
 */
export function decodeFileName(node: HeaderSource): string | undefined {
  if (!node.headers) return undefined;
  for (const [header, param] of [
    ['content-disposition', 'filename'],
    ['content-type', 'name'],
  ] as const) {
    let value: string;
    try {
      value = node.headers.getFirst(header) || '';
    } catch {
      continue;
    }
    if (!value) continue;
    const name = rfc2231Param(value, param) ?? encodedWordsParam(value, param);
    if (name !== undefined) return name;
  }
  return undefined;
}

function rfc2231Param(value: string, param: string): string | undefined {
  const re = new RegExp(`;\\s*${param}\\*(\\d+)?(\\*)?\\s*=\\s*("[^"]*"|[^;\\s]*)`, 'gi');
  const parts: { n: number; encoded: boolean; text: string }[] = [];
  for (let m; (m = re.exec(value)); ) parts.push({ n: m[1] === undefined ? 0 : Number(m[1]), encoded: m[1] === undefined || m[2] === '*', text: m[3]!.replace(/^"|"$/g, '') });
  if (!parts.length || !parts.some((p) => p.encoded)) return undefined;
  parts.sort((a, b) => a.n - b.n);
  const first = /^([^']*)'[^']*'(.*)$/.exec(parts[0]!.text);
  if (!first) return undefined;
  const codec = lookupCharset(first[1]);
  if (!codec) return undefined;
  parts[0] = { ...parts[0]!, text: first[2]! };
  const bytes = Buffer.concat(parts.map((p) => (p.encoded ? percentBytes(p.text) : Buffer.from(p.text, 'latin1'))));
  return clean(codec.decode(bytes));
}

function encodedWordsParam(value: string, param: string): string | undefined {
  const m = new RegExp(`;\\s*${param}\\s*=\\s*("((?:[^"\\\\]|\\\\.)*)"|[^;\\s]*)`, 'i').exec(value);
  const raw = m ? (m[2] ?? m[1]!) : '';
  if (!/=\?[^?]+\?[bq]\?/i.test(raw)) return undefined;
  // Adjacent words of one charset are joined as bytes first: encoders split them anywhere,
  // even inside a multi-byte character (RFC 2047 forbids it; Python's Header and others do it).
  const words = [...raw.matchAll(/=\?([^?*]+)(?:\*[^?]*)?\?([bq])\?([^?]*)\?=|([^=]+|=)/gi)];
  let out = '';
  let pending: { cs: string; bytes: Buffer[] } | undefined;
  const flush = (): boolean => {
    if (!pending) return true;
    const codec = lookupCharset(pending.cs);
    if (!codec) return false;
    out += codec.decode(Buffer.concat(pending.bytes));
    pending = undefined;
    return true;
  };
  for (const w of words) {
    if (w[1]) {
      const bytes = w[2]!.toLowerCase() === 'b' ? Buffer.from(w[3]!, 'base64') : qBytes(w[3]!);
      if (pending && pending.cs.toLowerCase() !== w[1].toLowerCase() && !flush()) return undefined;
      pending ??= { cs: w[1], bytes: [] };
      pending.bytes.push(bytes);
    } else if (!/^\s+$/.test(w[4]!)) {
      // Text between encoded words; white space between two words is not part of the name.
      if (!flush()) return undefined;
      out += w[4];
    }
  }
  if (!flush()) return undefined;
  return clean(out);
}

function percentBytes(s: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '%' && /^[0-9a-f]{2}$/i.test(s.slice(i + 1, i + 3))) {
      out.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else out.push(s.charCodeAt(i) & 0xff);
  }
  return Buffer.from(out);
}

function qBytes(s: string): Buffer {
  return percentBytes(s.replace(/_/g, ' ').replace(/=/g, '%'));
}

/** A name that still holds U+FFFD did not decode: the caller keeps the parser's. */
function clean(name: string): string | undefined {
  return name && !name.includes('\ufffd') ? name : undefined;
}
