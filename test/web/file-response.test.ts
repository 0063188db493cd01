import contentDisposition from 'content-disposition';
import { describe, expect, it } from 'vitest';
import type { StoredFile } from '../../storage/index.js';
import { savedName as downloadName } from '../../storage/filenames.js';
import { attachmentDisposition, planFileResponse, safeContentType } from '../../web/file-response.js';

const SHA = 'a'.repeat(62) + '0f';
const CREATED = Date.UTC(2025, 10, 20, 12, 30, 15, 500);
const LAST_MODIFIED = 'Thu, 20 Nov 2025 12:30:15 GMT';

function file(over: Partial<StoredFile> = {}): StoredFile {
  return {
    transferId: 't1',
    idx: 1,
    name: 'report.pdf',
    contentType: 'application/pdf',
    size: 1000,
    sha256: SHA,
    blobKey: 't/t1/1-x',
    createdAt: CREATED,
    blocked: false,
    blockedReason: null,
    ...over,
  };
}

describe('planFileResponse', () => {
  it('describes a whole file with every header a download needs', () => {
    const plan = planFileResponse({}, file());
    expect(plan.status).toBe(200);
    expect(plan.range).toBeUndefined();
    expect(plan.headers).toEqual({
      'accept-ranges': 'bytes',
      'cache-control': 'private, no-store',
      'x-content-type-options': 'nosniff',
      'content-security-policy': "sandbox; default-src 'none'; frame-ancestors 'none'",
      'last-modified': LAST_MODIFIED,
      etag: `"${SHA}"`,
      'content-type': 'application/pdf',
      'content-disposition': 'attachment; filename="report.pdf"',
      'content-length': '1000',
      'repr-digest': `sha-256=:${Buffer.from(SHA, 'hex').toString('base64')}:`,
    });
  });

  it('answers a single range with 206 and Content-Range, without Repr-Digest', () => {
    const plan = planFileResponse({ range: 'bytes=100-199' }, file());
    expect(plan.status).toBe(206);
    expect(plan.range).toEqual({ start: 100, end: 199 });
    expect(plan.headers['content-range']).toBe('bytes 100-199/1000');
    expect(plan.headers['content-length']).toBe('100');
    expect(plan.headers['repr-digest']).toBeUndefined();
    expect(plan.headers['content-disposition']).toMatch(/^attachment;/);
  });

  it('answers an unsatisfiable range with 416 and bytes */size', () => {
    const plan = planFileResponse({ range: 'bytes=1000-' }, file());
    expect(plan.status).toBe(416);
    expect(plan.headers['content-range']).toBe('bytes */1000');
    expect(plan.headers['content-length']).toBeUndefined();
    expect(plan.headers['content-disposition']).toBeUndefined();
  });

  it('serves the whole file for multiple and malformed ranges', () => {
    for (const range of ['bytes=0-9,20-29', 'bytes=9-2', 'lines=1-2']) {
      const plan = planFileResponse({ range }, file());
      expect(plan.status, range).toBe(200);
      expect(plan.headers['content-length']).toBe('1000');
    }
  });

  it('honours If-Range only when the validator is current', () => {
    expect(planFileResponse({ range: 'bytes=0-9', 'if-range': `"${SHA}"` }, file()).status).toBe(206);
    expect(planFileResponse({ range: 'bytes=0-9', 'if-range': LAST_MODIFIED }, file()).status).toBe(206);
    // Stale entity tag, weak tag (never good enough for If-Range), other date, garbage.
    for (const ifRange of [`"${'b'.repeat(64)}"`, `W/"${SHA}"`, 'Thu, 20 Nov 2025 12:30:16 GMT', 'yesterday']) {
      const plan = planFileResponse({ range: 'bytes=0-9', 'if-range': ifRange }, file());
      expect(plan.status, ifRange).toBe(200);
      expect(plan.headers['content-length']).toBe('1000');
    }
  });

  it('answers 304 to a matching If-None-Match, weak or in a list, without content headers', () => {
    for (const inm of [`"${SHA}"`, `W/"${SHA}"`, `"x", "${SHA}"`, '*']) {
      const plan = planFileResponse({ 'if-none-match': inm }, file());
      expect(plan.status, inm).toBe(304);
      expect(plan.headers.etag).toBe(`"${SHA}"`);
      expect(plan.headers['content-length']).toBeUndefined();
      expect(plan.headers['content-type']).toBeUndefined();
    }
    expect(planFileResponse({ 'if-none-match': '"other"' }, file()).status).toBe(200);
  });

  it('answers 304 to If-Modified-Since unless If-None-Match is present', () => {
    expect(planFileResponse({ 'if-modified-since': LAST_MODIFIED }, file()).status).toBe(304);
    expect(planFileResponse({ 'if-modified-since': 'Wed, 19 Nov 2025 00:00:00 GMT' }, file()).status).toBe(200);
    expect(planFileResponse({ 'if-modified-since': LAST_MODIFIED, 'if-none-match': '"other"' }, file()).status).toBe(200);
  });

  it('answers 412 to a failed If-Match or If-Unmodified-Since', () => {
    expect(planFileResponse({ 'if-match': '"other"' }, file()).status).toBe(412);
    expect(planFileResponse({ 'if-match': `W/"${SHA}"` }, file()).status).toBe(412);
    expect(planFileResponse({ 'if-match': `"${SHA}"` }, file()).status).toBe(200);
    expect(planFileResponse({ 'if-unmodified-since': 'Wed, 19 Nov 2025 00:00:00 GMT' }, file()).status).toBe(412);
    expect(planFileResponse({ 'if-unmodified-since': LAST_MODIFIED }, file()).status).toBe(200);
  });

  it('ignores Range on HEAD, so HEAD describes the whole file', () => {
    const plan = planFileResponse({ range: 'bytes=0-9' }, file(), { method: 'HEAD' });
    expect(plan.status).toBe(200);
    expect(plan.headers).toEqual(planFileResponse({}, file(), { method: 'GET' }).headers);
  });

  it('serves an empty file whole, whatever the Range', () => {
    const empty = file({ size: 0 });
    for (const range of [undefined, 'bytes=0-', 'bytes=-10', 'bytes=5-9']) {
      const plan = planFileResponse(range ? { range } : {}, empty);
      expect(plan.status, range).toBe(200);
      expect(plan.headers['content-length']).toBe('0');
      expect(plan.headers['content-range']).toBeUndefined();
    }
  });

  it('sends no validator when the stored hash is not a SHA-256', () => {
    const plan = planFileResponse({ 'if-none-match': '"zz"', range: 'bytes=0-9', 'if-range': '"zz"' }, file({ sha256: 'zz' }));
    expect(plan.status).toBe(200);
    expect(plan.headers.etag).toBeUndefined();
    expect(plan.headers['repr-digest']).toBeUndefined();
  });
});

describe('safeContentType', () => {
  it('serves active types as opaque bytes', () => {
    for (const t of [
      'text/html',
      'TEXT/HTML; charset=utf-8',
      'application/xhtml+xml',
      'image/svg+xml',
      'text/xml',
      'application/xml',
      'application/rss+xml',
      'text/javascript',
      'application/javascript',
      'application/x-javascript',
      'application/ecmascript',
      'text/xsl',
      'multipart/x-mixed-replace; boundary=x',
    ]) {
      expect(safeContentType(t), t).toBe('application/octet-stream');
    }
  });

  it('keeps passive types and a clean charset, and rejects garbage', () => {
    expect(safeContentType('application/pdf')).toBe('application/pdf');
    expect(safeContentType('image/PNG')).toBe('image/png');
    expect(safeContentType('text/plain; charset="UTF-8"')).toBe('text/plain; charset=utf-8');
    expect(safeContentType('text/csv; charset=<x>')).toBe('text/csv');
    expect(safeContentType('not a type')).toBe('application/octet-stream');
    expect(safeContentType('text/plain\r\nSet-Cookie: a=b')).toBe('application/octet-stream');
    expect(safeContentType('')).toBe('application/octet-stream');
  });
});

describe('Content-Disposition', () => {
  const hostile = [
    '../../etc/passwd',
    '..\\..\\windows\\system32\\evil.dll',
    'say "hello".txt',
    'line\r\nbreak.txt',
    'invoice\u202Efdp.exe',
    '<script>alert(1)</script>.html',
    '.hidden',
    '...',
    'résumé – final.pdf',
    '数据报告.xlsx',
    'a%20b.txt',
    'x'.repeat(300) + '.pdf',
  ];

  for (const raw of hostile) {
    it(`is safe for ${JSON.stringify(raw.slice(0, 40))}`, () => {
      const header = attachmentDisposition(raw);
      expect(header).not.toMatch(/[\r\n\u0000-\u001f\u007f\u202e]/);
      const parsed = contentDisposition.parse(header);
      expect(parsed.type).toBe('attachment');
      // The plain filename parameter is what old clients use: ASCII, no quotes, no path.
      const fallback = /; filename="([^"\\]*)"/.exec(header)?.[1];
      expect(fallback).toBeDefined();
      expect(fallback).toMatch(/^[\x20-\x7e]+$/);
      expect(fallback).not.toMatch(/[/%]|\.\./);
      expect(fallback!.startsWith('.')).toBe(false);
      // parse() prefers filename*: this is the name a current browser saves.
      const name = downloadName(raw);
      expect(name).not.toMatch(/[/\\\u202e\r\n]|\.\./);
      expect(parsed.parameters.filename).toBe(name);
      const extended = /filename\*=UTF-8''(\S+)$/.exec(header)?.[1];
      if (extended !== undefined) expect(decodeURIComponent(extended)).toBe(name);
      else expect(fallback).toBe(name);
    });
  }

  it('keeps the real name in filename* and an ASCII stand-in in filename', () => {
    expect(attachmentDisposition('résumé – final.pdf')).toBe(
      `attachment; filename="resume _ final.pdf"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%E2%80%93%20final.pdf`,
    );
    expect(attachmentDisposition('say "hello".txt')).toBe(`attachment; filename="say _hello_.txt"; filename*=UTF-8''say%20%22hello%22.txt`);
    expect(attachmentDisposition('invoice\u202Efdp.exe')).toBe('attachment; filename="invoicefdp.exe"');
    // A path keeps only its last component, with either separator, as browsers save it.
    expect(attachmentDisposition('../../etc/passwd')).toBe('attachment; filename="passwd"');
    expect(attachmentDisposition('C:\\Users\\x\\Desktop\\f.pdf')).toBe('attachment; filename="f.pdf"');
    expect(attachmentDisposition('..\\..\\f.pdf')).toBe('attachment; filename="f.pdf"');
  });

  it('caps a 300-character name and keeps its extension', () => {
    const name = downloadName('x'.repeat(300) + '.pdf');
    expect([...name].length).toBe(200);
    expect(name.endsWith('\u2026.pdf')).toBe(true);
  });
});
