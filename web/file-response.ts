import contentDisposition from 'content-disposition';
import { asciiName, savedName, type ByteRange, type StoredFile } from '../storage/index.js';
import { parseRange } from './range.js';

// Everything a file response says in its status line and headers, computed from the request
// headers and the file record alone. GET and HEAD both call planFileResponse(), so they cannot
// disagree, and HEAD never needs the blob.

export type RequestHeaders = Record<string, string | string[] | undefined>;

export interface FilePlan {
  status: 200 | 206 | 304 | 412 | 416;
  /** Lower-case names. */
  headers: Record<string, string>;
  /** Set only for 206: the bytes to read from the blob. */
  range?: ByteRange;
}

/** Statuses whose GET response carries the file's bytes. */
export function hasBody(status: FilePlan['status']): boolean {
  return status === 200 || status === 206;
}

/** Headers only a file response carries; the error handler strips them if a file request fails late. */
export const FILE_HEADER_NAMES = [
  'accept-ranges',
  'content-disposition',
  'content-range',
  'content-security-policy',
  'etag',
  'last-modified',
  'repr-digest',
] as const;

/** Sandboxed even if a browser ignores the attachment disposition and renders the bytes. */
export const FILE_CSP = "sandbox; default-src 'none'; frame-ancestors 'none'";

const SHA256_HEX = /^[0-9a-f]{64}$/;

export function planFileResponse(requestHeaders: RequestHeaders, file: StoredFile, opts: { method?: string } = {}): FilePlan {
  const method = (opts.method ?? 'GET').toUpperCase();
  const sha = file.sha256.toLowerCase();
  // A strong validator from the content hash: the same for every storage driver, and it makes
  // If-Range resumption safe. Without a well-formed hash there is no validator at all.
  const etag = SHA256_HEX.test(sha) ? `"${sha}"` : undefined;
  const lastModifiedSec = Math.floor(file.createdAt / 1000);

  const base: Record<string, string> = {
    'accept-ranges': 'bytes',
    'cache-control': 'private, no-store',
    'x-content-type-options': 'nosniff',
    'content-security-policy': FILE_CSP,
    'last-modified': new Date(lastModifiedSec * 1000).toUTCString(),
  };
  if (etag) base.etag = etag;

  // RFC 9110 §13.2.2: preconditions in this order.
  const ifMatch = header(requestHeaders, 'if-match');
  if (ifMatch !== undefined) {
    if (!(ifMatch.trim() === '*' || etagListIncludes(ifMatch, etag, 'strong'))) return { status: 412, headers: base };
  } else {
    const ius = parseHttpDate(header(requestHeaders, 'if-unmodified-since'));
    if (ius !== undefined && lastModifiedSec > ius) return { status: 412, headers: base };
  }
  const ifNoneMatch = header(requestHeaders, 'if-none-match');
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch.trim() === '*' || etagListIncludes(ifNoneMatch, etag, 'weak')) return { status: 304, headers: base };
  } else {
    const ims = parseHttpDate(header(requestHeaders, 'if-modified-since'));
    if (ims !== undefined && lastModifiedSec <= ims) return { status: 304, headers: base };
  }

  const full: Record<string, string> = {
    ...base,
    'content-type': safeContentType(file.contentType),
    'content-disposition': attachmentDisposition(file.name),
  };

  const range = rangeFor(requestHeaders, file.size, method, etag, lastModifiedSec);
  if (range === 'unsatisfiable') {
    return { status: 416, headers: { ...base, 'content-range': `bytes */${file.size}` } };
  }
  if (range) {
    return {
      status: 206,
      headers: {
        ...full,
        'content-range': `bytes ${range.start}-${range.end}/${file.size}`,
        'content-length': String(range.end - range.start + 1),
      },
      range,
    };
  }
  const headers: Record<string, string> = { ...full, 'content-length': String(file.size) };
  if (etag) headers['repr-digest'] = `sha-256=:${Buffer.from(sha, 'hex').toString('base64')}:`;
  return { status: 200, headers };
}

function rangeFor(
  requestHeaders: RequestHeaders,
  size: number,
  method: string,
  etag: string | undefined,
  lastModifiedSec: number,
): ByteRange | 'unsatisfiable' | undefined {
  // RFC 9110 §14.2: Range is defined for GET only; HEAD describes the whole file.
  if (method !== 'GET') return undefined;
  const rangeHeader = header(requestHeaders, 'range');
  if (rangeHeader === undefined) return undefined;
  // An empty file has no byte to point at, and "bytes 0--1/0" is not a Content-Range: the
  // whole (empty) file is the friendliest answer, and RFC 9110 lets a server ignore Range.
  if (size === 0) return undefined;
  const ifRange = header(requestHeaders, 'if-range');
  if (ifRange !== undefined && !ifRangeFresh(ifRange, etag, lastModifiedSec)) return undefined;
  const parsed = parseRange(rangeHeader, size);
  switch (parsed.kind) {
    case 'single':
      return parsed.range;
    case 'unsatisfiable':
      return 'unsatisfiable';
    case 'multiple':
    case 'malformed':
      return undefined;
  }
}

/** RFC 9110 §13.1.5: an entity tag must match strongly; a date must equal Last-Modified exactly. */
function ifRangeFresh(value: string, etag: string | undefined, lastModifiedSec: number): boolean {
  const v = value.trim();
  if (v.startsWith('"') || v.startsWith('W/')) return etag !== undefined && v === etag;
  const date = parseHttpDate(v);
  return date !== undefined && date === lastModifiedSec;
}

function etagListIncludes(list: string, etag: string | undefined, comparison: 'strong' | 'weak'): boolean {
  if (!etag) return false;
  for (const m of list.matchAll(/(W\/)?"[^"]*"/g)) {
    const weak = m[1] !== undefined;
    if (comparison === 'strong' && weak) continue;
    if (m[0].slice(weak ? 2 : 0) === etag) return true;
  }
  return false;
}

/** Seconds since the epoch, or undefined for anything that is not a date. */
function parseHttpDate(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : undefined;
}

function header(headers: RequestHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

// Types a browser would run or render with the power of a page (script, markup that can carry
// script, style sheets with XSLT). Served as opaque bytes instead.
const ACTIVE_TYPES = [
  /^text\/html$/,
  /^application\/xhtml\+xml$/,
  /^image\/svg\+xml$/,
  /^(text|application)\/xml$/,
  /\+xml$/,
  /xsl/,
  /javascript/,
  /ecmascript/,
  /^text\/jscript$/,
  /^application\/x-shockwave-flash$/,
  /^multipart\//,
  /^message\//,
];
const MIME_TOKEN = /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/;

/** The record's type when it is well formed and passive; otherwise application/octet-stream. */
export function safeContentType(raw: string): string {
  const [essence = '', ...params] = raw.toLowerCase().split(';');
  const type = essence.trim();
  if (!MIME_TOKEN.test(type) || ACTIVE_TYPES.some((re) => re.test(type))) return 'application/octet-stream';
  if (type.startsWith('text/')) {
    const charset = params.map((p) => /^\s*charset\s*=\s*"?([a-z0-9._:-]{1,40})"?\s*$/.exec(p)?.[1]).find(Boolean);
    if (charset) return `${type}; charset=${charset}`;
  }
  return type;
}


/** RFC 6266: filename* carries the real name in UTF-8; filename is an ASCII stand-in for old clients. */
export function attachmentDisposition(raw: string): string {
  const name = savedName(raw);
  const fallback = asciiName(name);
  return contentDisposition(name, { type: 'attachment', fallback });
}
