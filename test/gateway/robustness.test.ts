import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ChunkedPassthrough, Splitter, type MimeNode } from '@zone-eu/mailsplit';
import MailComposer from 'nodemailer/lib/mail-composer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InsertAfterBodyTag } from '../../gateway/notice-inserter.js';
import { htmlAscii } from '../../gateway/notice.js';
import { Utf8OrCp1252 } from '../../gateway/utf8-repair.js';
import { displayName, savedName } from '../../storage/filenames.js';
import { startFerry, type TestFerry } from '../helpers/ferry.js';
import { dispositionName, download, fileLinks, parse, pseudoRandom, sha256 } from '../helpers/mail.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { Upstream } from '../helpers/upstream.js';
import { stripFerryReceived } from '../helpers/received.js';

// Real-world messages that stress the message path: one-line base64, Apple Mail's inline PDFs,
// Outlook's winmail.dat, forwarded messages and invites, RFC 2231/2047 names, missing names,
// SMTPUTF8 headers, huge header blocks, odd charsets and encodings, LF-only clients. Each is
// built by a real composer (Python's email package in test/fixtures/compose_robustness.py, or
// nodemailer's MailComposer), sent through a real Ferry to a real next hop, and checked: the
// reply, the relayed message parses, every offloaded file downloads byte-exact under a sensible
// name, every part not offloaded arrives byte-identical, and the notice is there to read.

const THRESHOLD = 102_400;
const KiB = 1024;
const COMPOSER = path.resolve(import.meta.dirname, '../fixtures/compose_robustness.py');
const python = spawnSync('python3', ['--version']).status === 0;
if (!python) console.warn('robustness: python3 is not installed; the Python-composed cases are skipped');

let ferry: TestFerry;
let upstream: Upstream;

beforeAll(async () => {
  upstream = await new Upstream().start();
  ferry = await startFerry({ relay: { url: upstream.url }, offload: { minAttachmentSize: THRESHOLD } });
});
afterAll(async () => {
  await ferry?.stopAndClean();
  await upstream?.stop();
});

function compose(name: string): Buffer {
  const r = spawnSync('python3', [COMPOSER, name], { maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`compose_robustness.py ${name}: ${r.stderr.toString()}`);
  return r.stdout;
}

async function relay(raw: Buffer, mailFrom = '<alice@example.com>'): Promise<{ reply: string; out: Buffer }> {
  const before = upstream.messages.length;
  const c = await RawSmtp.connect(ferry.smtpPort);
  try {
    expect(await c.cmd('EHLO client.test')).toMatch(/^250/);
    expect(await c.cmd(`MAIL FROM:${mailFrom}`)).toMatch(/^250/);
    expect(await c.cmd('RCPT TO:<bob@example.net>')).toMatch(/^250/);
    const reply = await c.data(raw);
    return { reply, out: upstream.messages.length > before ? upstream.messages.at(-1)!.raw : Buffer.alloc(0) };
  } finally {
    c.close();
  }
}

interface Leaf {
  contentType: string;
  filename: string;
  disposition: string;
  /** The part's header block and encoded body, exactly as in the message. */
  bytes: Buffer;
  decoded: Buffer;
  /** The part's charset parameter, lower case ('' if none). */
  charset: string;
}

/** The leaf parts of a message (mailsplit's reading, forwarded messages as one leaf), with their exact bytes. */
async function leaves(raw: Buffer): Promise<Leaf[]> {
  const out: Leaf[] = [];
  const pending = new Map<MimeNode, { head: Buffer; body: Buffer[] }>();
  const splitter = new Splitter({ ignoreEmbedded: true, maxHeadSize: 2 * 1024 * 1024 });
  const order: MimeNode[] = [];
  Readable.from([raw]).pipe(new ChunkedPassthrough({ chunkSize: 64 * 1024 })).pipe(splitter);
  for await (const obj of splitter) {
    if (obj.type === 'node') {
      const node = obj as MimeNode;
      if (node.multipart) continue;
      pending.set(node, { head: node.getHeaders(), body: [] });
      order.push(node);
    } else if (obj.type === 'body' && pending.has(obj.node)) pending.get(obj.node)!.body.push(obj.value);
  }
  for (const node of order) {
    const p = pending.get(node)!;
    const body = Buffer.concat(p.body);
    const dec = node.getDecoder();
    const chunks: Buffer[] = [];
    dec.on('data', (c: Buffer) => chunks.push(c));
    const done = new Promise((r) => dec.on('end', r));
    dec.end(body);
    await done;
    out.push({ contentType: node.contentType || 'text/plain', filename: String(node.filename || ''), disposition: String(node.disposition || ''), bytes: Buffer.concat([p.head, body]), decoded: Buffer.concat(chunks), charset: String(node.charset || '').toLowerCase() });
  }
  return out;
}

const crlf = (b: Buffer) => Buffer.from(b.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');

interface Expectation {
  /** Decoded contents expected as download links, with the name each must be saved under. */
  offloaded: { data: Buffer; name: string }[];
  /** Text the recipient must still read in the body (decoded). */
  bodyText?: string;
  bodyHtml?: string;
}

/**
 * The checks every case runs: 250 reply, the message parses, X-Ferry-Offloaded, the notice,
 * every offloaded file downloads byte-exact under the expected name, every other leaf arrives
 * byte-identical (the text bodies that took the notice keep their original text).
 */
async function check(raw: Buffer, exp: Expectation, mailFrom?: string): Promise<{ out: Buffer; mail: Awaited<ReturnType<typeof parse>> }> {
  const { reply, out } = await relay(raw, mailFrom);
  const n = exp.offloaded.length;
  expect(reply).toMatch(new RegExp(`^250 2\\.0\\.0 Ok: queued as [0-9A-F]{16}, ${n} attachments? turned into download links`));
  const mail = await parse(out);
  const total = exp.offloaded.reduce((s, f) => s + f.data.length, 0);
  expect(mail.headers.get('x-ferry-offloaded')).toBe(`${n} file${n === 1 ? '' : 's'}; ${total} bytes`);

  // The notice is readable where a mail program shows the body.
  const notice = `${mail.text ?? ''}\n${String(mail.html || '')}`;
  expect(notice).toMatch(new RegExp(`${n} attachments? (was sent as a download link|were sent as download links)`));
  // Each file is listed by name: in the plain-text notice, or (HTML-only mail) in the HTML one.
  for (const f of exp.offloaded) {
    const listed = (mail.text ?? '').includes(`* ${displayName(f.name)} (`) || String(mail.html || '').includes(`${htmlAscii(displayName(f.name))} <span`);
    expect(listed, `${f.name} listed in the notice`).toBe(true);
  }
  if (exp.bodyText) expect(mail.text ?? '').toContain(exp.bodyText);
  if (exp.bodyHtml) expect(String(mail.html || '')).toContain(exp.bodyHtml);

  // Every link downloads the exact bytes, under the expected name.
  const links = await fileLinks(out, ferry.publicUrl);
  expect(links).toHaveLength(n);
  const got: { sha: string; name: string }[] = [];
  for (const link of links) {
    const r = await download(link);
    expect(r.status).toBe(200);
    got.push({ sha: sha256(r.body), name: dispositionName(r.headers.get('content-disposition')) ?? '' });
  }
  const want = exp.offloaded.map((f) => ({ sha: sha256(f.data), name: savedName(f.name) }));
  const key = (x: { sha: string; name: string }) => `${x.sha} ${x.name}`;
  expect(got.map(key).sort()).toEqual(want.map(key).sort());

  // Everything not offloaded is still there, byte for byte.
  const offloadedSha = new Set(want.map((w) => w.sha));
  const outText = out.toString('latin1');
  const outLeaves = await leaves(out);
  let noticeTargets = 0;
  for (const leaf of await leaves(crlf(raw))) {
    if (offloadedSha.has(sha256(leaf.decoded))) continue;
    if (outText.includes(leaf.bytes.toString('latin1'))) continue;
    // Only the first text/plain and text/html body may change: the notice goes on top.
    const isBody = (leaf.contentType === 'text/plain' || leaf.contentType === 'text/html') && !leaf.filename && leaf.disposition !== 'attachment';
    expect(isBody, `part ${leaf.contentType} ${leaf.filename} arrives unchanged`).toBe(true);
    noticeTargets++;
    // (Compared as Latin-1 bytes; a us-ascii body with undeclared 8-bit text that became UTF-8
    // is compared as the text it was read as.)
    const decoded = leaf.decoded.toString('latin1').replace(/\r\n/g, '\n');
    // A body in a charset Ferry can read but not write (ISO-2022-JP) is converted to UTF-8 to
    // take the notice: compared as the text it was read as.
    const readAs = (o: Leaf) => (o.charset && o.charset !== 'us-ascii' ? new TextDecoder(o.charset).decode(o.decoded) : '\u0000').replace(/\r\n/g, '\n');
    const asUtf8 = (o: Leaf) => o.decoded.toString('utf8').replace(/<div style="border:1px solid #c9d3e0[\s\S]*?<\/div>\r\n/, '').replace(/\r\n/g, '\n');
    // The HTML notice is one <div> put right after <body>; without it the original text must be whole.
    const withoutNotice = (o: Leaf) => o.decoded.toString('latin1').replace(/<div style="border:1px solid #c9d3e0[\s\S]*?<\/div>\r\n/, '').replace(/\r\n/g, '\n');
    expect(
      outLeaves.some((o) => o.contentType === leaf.contentType && (withoutNotice(o).includes(decoded) || asUtf8(o).includes(decoded) || asUtf8(o).includes(readAs(leaf)))),
      `${leaf.contentType} body keeps its text`,
    ).toBe(true);
  }
  expect(noticeTargets).toBeLessThanOrEqual(2);
  // Nothing in the relayed message carries a bare LF (SMTP smuggling) or a line over 998 characters.
  expect(/(^|[^\r])\n/.test(outText)).toBe(false);
  return { out, mail };
}

const data = (seed: string, size: number) => pseudoRandom(size, seed);

describe.skipIf(!python)('real-world messages (Python email package)', () => {
  it('base64 written as one line with no line breaks (1.2 MiB)', async () => {
    await check(compose('oneline-base64'), { offloaded: [{ data: data('oneline-base64', 1200 * KiB), name: 'scan-oneline.pdf' }], bodyText: 'The scan is attached.' });
  });

  it('base64 with 4096-character lines', async () => {
    await check(compose('base64-4096'), { offloaded: [{ data: data('base64-4096', 700 * KiB), name: 'scan-4096.pdf' }], bodyText: 'The scan is attached.' });
  });

  it('one-line base64 over the 64 KiB line cap but under the threshold stays byte for byte; the large one beside it is offloaded', async () => {
    const { mail } = await check(compose('oneline-base64-small'), { offloaded: [{ data: data('oneline-base64-small:big', 300 * KiB), name: 'big.pdf' }], bodyText: 'Two scans, both on one line.' });
    expect(sha256(mail.attachments.find((a) => a.filename === 'small.pdf')!.content)).toBe(sha256(data('oneline-base64-small:small', 90 * KiB)));
  });

  it('base64 lines that end in a space', async () => {
    await check(compose('base64-trailing-space'), { offloaded: [{ data: data('base64-trailing-space', 200 * KiB), name: 'spaced.bin' }], bodyText: 'The file is attached.' });
  });

  it('an HTML body that is one 200 KiB base64 line gets the notice and keeps its text', async () => {
    const { mail } = await check(compose('html-oneline-base64'), { offloaded: [{ data: data('html-oneline-base64', 200 * KiB), name: 'news.pdf' }] });
    const html = String(mail.html);
    expect(html.indexOf('sent as a download link')).toBeLessThan(html.indexOf('All the news that fits.'));
  });

  it('Outlook/Word HTML with a <head> over 64 KiB: the notice still goes right after <body ...>', async () => {
    const raw = compose('word-html-big-head');
    const { mail } = await check(raw, { offloaded: [{ data: data('word-html-big-head', 200 * KiB), name: 'figures.xls' }], bodyText: 'Please find the figures attached.' });
    const html = String(mail.html);
    expect(html.indexOf('<body')).toBeGreaterThan(64 * KiB);
    expect(html).toMatch(/<body lang=EN-GB [^>]*><div style="border:1px solid #c9d3e0/);
  });

  it("Apple Mail's layout: alternative(text, mixed(html, inline PDF, html))", async () => {
    const { mail } = await check(compose('apple-alternative'), {
      offloaded: [{ data: data('apple-alternative:pdf', 300 * KiB), name: 'Contract.pdf' }],
      bodyText: 'Here is the contract:',
      bodyHtml: 'Here is the contract:',
    });
    expect(mail.text).toMatch(/^-{60}/);
  });

  it('a text body that comes after the attachment still gets the notice', async () => {
    const { mail } = await check(compose('attachments-first'), { offloaded: [{ data: data('attachments-first', 200 * KiB), name: 'first.bin' }], bodyText: 'The text comes after the file.' });
    const text = mail.text ?? '';
    expect(text.indexOf('1 attachment was sent as a download link')).toBeLessThan(text.indexOf('The text comes after the file.'));
  });

  it('no text body and a boundary full of regular-expression characters: the notice part is added first', async () => {
    const { out, mail } = await check(compose('special-boundary-no-body'), { offloaded: [{ data: data('special-boundary-no-body', 200 * KiB), name: 'only.zip' }] });
    expect(mail.text).toMatch(/^-{60}/);
    expect(out.toString('latin1').split("\r\n--=_(a+b)?.c:/,'d\r\n")[1]).toMatch(/^Content-Type: text\/plain; charset=utf-8\r\n/);
  });

  it('Apple Mail: an inline PDF between two HTML parts is offloaded; the notice goes into the first HTML part', async () => {
    const { mail } = await check(compose('apple-inline-pdf'), { offloaded: [{ data: data('apple-inline-pdf:pdf', 400 * KiB), name: 'Contract signed.pdf' }] });
    expect(String(mail.html)).toContain('Here is the signed contract:');
    expect(String(mail.html)).toContain('Talk soon, Alice');
  });

  it('multipart/alternative inside multipart/mixed inside multipart/related', async () => {
    const { mail } = await check(compose('related-mixed-alternative'), {
      offloaded: [{ data: data('related-mixed-alternative:zip', 300 * KiB), name: 'plans.zip' }],
      bodyText: 'Plain: the plans are attached.',
      bodyHtml: 'HTML: the plans are attached.',
    });
    expect(String(mail.html)).toContain('sent as a download link');
  });

  it('Outlook: a large application/ms-tnef winmail.dat is offloaded', async () => {
    await check(compose('tnef'), { offloaded: [{ data: data('tnef', 300 * KiB), name: 'winmail.dat' }], bodyText: 'See the attached files.' });
  });

  it('a forwarded message attached as message/rfc822 (no name) is offloaded whole as an .eml', async () => {
    const raw = compose('forward-attached');
    const inner = (await leaves(crlf(raw))).find((l) => l.contentType === 'message/rfc822')!;
    expect(inner.decoded.length).toBeGreaterThan(600 * KiB);
    await check(raw, { offloaded: [{ data: inner.decoded, name: 'Survey data.eml' }], bodyText: 'Forwarding the survey mail.' });
  });

  it('a large message/rfc822 part with no disposition and no name is a non-body leaf: offloaded whole', async () => {
    const raw = compose('forward-inline');
    const inner = (await leaves(crlf(raw))).find((l) => l.contentType === 'message/rfc822')!;
    await check(raw, { offloaded: [{ data: inner.decoded, name: 'Survey data.eml' }], bodyText: 'Forwarding the survey mail.' });
  });

  it('Outlook invite: the unnamed text/calendar stays in the message; the named invite.ics over the threshold is offloaded', async () => {
    const raw = compose('calendar');
    const ics = (await leaves(crlf(raw))).filter((l) => l.contentType === 'text/calendar');
    expect(ics).toHaveLength(2);
    expect(ics[0]!.decoded.length).toBeGreaterThan(THRESHOLD);
    const { out } = await check(raw, { offloaded: [{ data: ics[1]!.decoded, name: 'invite.ics' }], bodyText: 'You are invited' });
    expect(out.toString('latin1')).toContain(ics[0]!.bytes.toString('latin1'));
  });

  it('Exchange invite: a named, base64 text/calendar in multipart/alternative stays (it is the invite); the PDF beside it is offloaded', async () => {
    const raw = compose('calendar-named-alternative');
    const [ics] = (await leaves(crlf(raw))).filter((l) => l.contentType === 'text/calendar');
    expect(ics!.filename).toBe('invite.ics');
    expect(ics!.decoded.length).toBeGreaterThan(THRESHOLD);
    const { out, mail } = await check(raw, { offloaded: [{ data: data('calendar-named-alternative:pdf', 200 * KiB), name: 'agenda.pdf' }], bodyText: 'You are invited to the review.' });
    expect(out.toString('latin1')).toContain(ics!.bytes.toString('latin1'));
    expect(mail.attachments.some((a) => a.contentType === 'text/calendar' && a.content.equals(ics!.decoded))).toBe(true);
  });

  it('a non-ASCII name in RFC 2231 continuations (filename*0*=, filename*1*=)', async () => {
    const raw = compose('rfc2231-continuation');
    expect(raw.toString('latin1')).toMatch(/filename\*0\*=utf-8''[\s\S]*filename\*1\*=/);
    await check(raw, { offloaded: [{ data: data('rfc2231-continuation', 200 * KiB), name: 'Überweisungsbestätigung für das Geschäftsjahr 2024 – Zusammenfassung und Anhänge.pdf' }] });
  });

  it('an RFC 2047 encoded word in name= only, no Content-Disposition', async () => {
    await check(compose('rfc2047-name-only'), { offloaded: [{ data: data('rfc2047-name-only', 200 * KiB), name: 'Preisübersicht März.xls' }], bodyText: 'Anbei die Preisliste.' });
  });

  it('parts with no name get one from their type: attachment-1.pdf, attachment-2.jpg, attachment-3.bin', async () => {
    await check(compose('no-names'), {
      offloaded: [
        { data: data('no-names:pdf', 150 * KiB), name: 'attachment-1.pdf' },
        { data: data('no-names:jpg', 150 * KiB), name: 'attachment-2.jpg' },
        { data: data('no-names:bin', 150 * KiB), name: 'attachment-3.bin' },
      ],
      bodyText: 'Three unnamed parts follow.',
    });
  });

  it('SMTPUTF8: raw UTF-8 in the Subject, the file name and the envelope sender', async () => {
    const { out, mail } = await check(
      compose('smtputf8'),
      { offloaded: [{ data: data('smtputf8', 200 * KiB), name: 'Größe 📄 Übersicht.pdf' }], bodyText: 'die Übersicht ist im Anhang' },
      '<zoë@example.com> SMTPUTF8',
    );
    expect(upstream.messages.at(-1)!.from).toBe('zoë@example.com');
    expect(mail.subject).toBe('Größenübersicht 📄 für Zoë');
    expect(mail.from?.value[0]?.name).toBe('Zoë');
    // The landing page shows the subject as it was written.
    const [landing] = (await fileLinks(out, ferry.publicUrl)).map((l) => l.replace(/\/\d+\/[^/]*$/, ''));
    const page = await (await fetch(landing!)).text();
    expect(page.replace(/&#x([0-9a-f]+);/gi, (_m, h: string) => String.fromCodePoint(parseInt(h, 16)))).toContain('Größenübersicht 📄 für Zoë');
  });

  it('a message whose first text part is empty gets the notice in it', async () => {
    const { mail } = await check(compose('empty-first-text'), { offloaded: [{ data: data('empty-first-text', 200 * KiB), name: 'data.bin' }] });
    expect(mail.text).toMatch(/^-{60}/);
  });

  for (const cs of ['unknown-8bit', 'unknown-charset']) {
    it(`a text body in a charset Ferry cannot use (${cs}) is left alone and the notice comes as a first part`, async () => {
      const raw = compose(cs);
      const { out } = await check(raw, { offloaded: [{ data: data(cs === 'unknown-8bit' ? 'unknown-8bit' : 'x-no-such-charset', 200 * KiB), name: 'data.bin' }] });
      const parts = out.toString('latin1').split(/\r\n--=+\d+==\r\n/);
      expect(parts[1]).toMatch(/^Content-Type: text\/plain; charset=utf-8\r\n/);
      expect(out.toString('latin1')).toContain('Gr\xfc\xdfe aus K\xf6ln, die Datei ist angeh\xe4ngt.');
    });
  }

  it('ISO-2022-JP HTML mail in multipart/related with a large screenshot: the notice goes into the HTML', async () => {
    const raw = compose('iso2022jp-related');
    expect(raw.toString('latin1')).toContain('charset="iso-2022-jp"');
    const { out } = await check(raw, { offloaded: [{ data: data('iso2022jp-related', 300 * KiB), name: 'attachment-1.png' }] });
    const html = (await leaves(out)).find((l) => l.contentType === 'text/html')!.decoded.toString('latin1');
    expect(html).toMatch(/^<html><head><\/head><body><div style=[^>]*><p[^>]*>1 attachment was sent as a download link/);
  });

  for (const cte of ['8bit', '7bit', 'qp']) {
    it(`a Latin-1 body with no charset (${cte}) and a notice that needs UTF-8: the body text stays readable`, async () => {
      const raw = compose(`latin1-no-charset-${cte}`);
      expect(raw.toString('latin1')).toContain(cte === 'qp' ? 'Gr=FC=DFe=20aus=20K=F6ln' : 'Gr\xfc\xdfe aus K\xf6ln');
      const { mail } = await check(raw, { offloaded: [{ data: data(`latin1-no-charset-${cte}`, 200 * KiB), name: 'Präsentation.pdf' }] });
      expect(mail.text).toContain('* Präsentation.pdf (');
      expect(mail.text).toContain('Grüße aus Köln, die Präsentation ist angehängt.');
    });
  }

  it('Content-Transfer-Encoding in upper case with trailing spaces', async () => {
    const raw = compose('upper-cte');
    expect(raw.toString('latin1')).toContain('Content-Transfer-Encoding: BASE64   \r\n');
    await check(raw, { offloaded: [{ data: data('upper-cte', 200 * KiB), name: 'report.pdf' }], bodyText: 'The report is attached.' });
  });

  it('a quoted boundary with special characters', async () => {
    await check(compose('special-boundary'), { offloaded: [{ data: data('special-boundary', 200 * KiB), name: 'archive.zip' }], bodyText: 'The archive is attached.' });
  });

  it('the same large file attached three times (twice under the same name): every copy downloads', async () => {
    const d = data('duplicates', 250 * KiB);
    await check(compose('duplicates'), {
      offloaded: [
        { data: d, name: 'copy.bin' },
        { data: d, name: 'copy.bin' },
        { data: d, name: 'other.bin' },
      ],
    });
  });

  it('a part exactly at the threshold is offloaded, one byte below stays attached byte for byte', async () => {
    const { mail } = await check(compose('threshold-edge'), { offloaded: [{ data: data('threshold-edge:at', 102400), name: 'at.bin' }], bodyText: 'Two files at the edge.' });
    const below = mail.attachments.find((a) => a.filename === 'below.bin');
    expect(sha256(below!.content)).toBe(sha256(data('threshold-edge:below', 102399)));
  });

  it('a header block over 64 KiB (900 Received lines)', async () => {
    const raw = compose('big-header');
    const { out } = await check(raw, { offloaded: [{ data: data('big-header', 200 * KiB), name: 'long-way.bin' }] });
    const head = raw.subarray(0, raw.indexOf('\r\n\r\n')).toString('latin1');
    expect(head.length).toBeGreaterThan(64 * KiB);
    // All 900 kept, after Ferry's own Received field at the top.
    expect(stripFerryReceived(out).toString('latin1').match(/^Received: /gm)).toHaveLength(900);
  });

  it('a To: header of 100 KiB on one line (never folded)', async () => {
    const raw = compose('unfolded-long-header');
    const to = /^To: .*$/m.exec(raw.toString('latin1'))![0];
    expect(to.length).toBeGreaterThan(100 * KiB);
    const { out, mail } = await check(raw, { offloaded: [{ data: data('unfolded-long-header', 200 * KiB), name: 'minutes.pdf' }], bodyText: 'the minutes are attached' });
    expect(out.toString('latin1')).toContain(`${to}\r\n`);
    expect((mail.to as { value: unknown[] }).value).toHaveLength(3500);
  });

  it('headers folded with bare LF in a CRLF message', async () => {
    const { mail } = await check(compose('lf-folded-headers'), { offloaded: [{ data: data('lf-folded-headers', 200 * KiB), name: 'folded.bin' }], bodyText: 'The folded headers use bare LF.' });
    expect(mail.subject).toBe('A subject long enough that the generator has to fold it onto a second line, and a third one too');
  });

  it('a client that sends LF-only line ends through raw SMTP', async () => {
    const raw = compose('lf-only');
    expect(raw.includes('\r\n')).toBe(false);
    const { mail } = await check(raw, { offloaded: [{ data: data('lf-only', 300 * KiB), name: 'lf.bin' }], bodyText: 'Lines end in LF here.\nSecond line.', bodyHtml: '<p>Lines end in LF here.</p>' });
    expect(sha256(mail.attachments.find((a) => a.filename === 'small.bin')!.content)).toBe(sha256(data('lf-only:small', 3 * KiB)));
  });
});

describe('real-world messages (nodemailer MailComposer)', () => {
  const build = (mail: ConstructorParameters<typeof MailComposer>[0]) =>
    new MailComposer({ from: 'alice@example.com', to: 'bob@example.net', date: new Date(Date.UTC(2024, 2, 14)), messageId: '<nm@robustness.ferry.test>', ...mail }).compile().build();

  it('an attachment given as raw MIME with one-line base64 (how API clients pass pre-encoded files)', async () => {
    const d = data('nm-oneline', 900 * KiB);
    const raw = await build({
      subject: 'API upload',
      text: 'Uploaded by the API.',
      attachments: [{ raw: `Content-Type: application/pdf; name="api.pdf"\r\nContent-Disposition: attachment; filename="api.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n${d.toString('base64')}\r\n` }],
    });
    await check(raw, { offloaded: [{ data: d, name: 'api.pdf' }], bodyText: 'Uploaded by the API.' });
  });

  it('an invite made with icalEvent: the text/calendar alternative stays, the named invite.ics attachment over the threshold is offloaded', async () => {
    const ics = ['BEGIN:VCALENDAR', 'METHOD:REQUEST', 'VERSION:2.0', 'BEGIN:VEVENT', 'UID:nm-ical', 'SUMMARY:Kick-off', 'DESCRIPTION:' + 'agenda '.repeat(20_000), 'END:VEVENT', 'END:VCALENDAR', ''].join('\r\n');
    const raw = await build({ subject: 'Kick-off', text: 'You are invited to the kick-off.', html: '<p>You are invited to the kick-off.</p>', icalEvent: { method: 'REQUEST', filename: 'invite.ics', content: ics } });
    const cal = (await leaves(raw)).filter((l) => l.contentType === 'text/calendar' || l.contentType === 'application/ics');
    expect(cal.map((l) => l.contentType).sort()).toEqual(['application/ics', 'text/calendar']);
    const attached = cal.find((l) => l.contentType === 'application/ics')!;
    const inAlternative = cal.find((l) => l.contentType === 'text/calendar')!;
    const { out } = await check(raw, { offloaded: [{ data: attached.decoded, name: 'invite.ics' }], bodyText: 'You are invited to the kick-off.' });
    expect(out.toString('latin1')).toContain(inAlternative.bytes.toString('latin1'));
  });

  it('a forwarded message without a name is named after its encoded, long Subject (cut at 150 characters)', async () => {
    const subject = `Größe 📄 ${'Bericht '.repeat(17)}📄📄 Ende`;
    const inner = await build({ subject, text: 'inner text', attachments: [{ filename: 'inner.bin', content: data('nm-fwd-inner', 300 * KiB) }] });
    const raw = await build({ subject: 'Fwd', text: 'Forwarded as attachment.', attachments: [{ content: inner, contentType: 'message/rfc822' }] });
    const rfc822 = (await leaves(raw)).find((l) => l.contentType === 'message/rfc822')!;
    expect(rfc822.filename).toBe('');
    expect(rfc822.decoded.equals(inner)).toBe(true);
    await check(raw, { offloaded: [{ data: inner, name: `${[...subject].slice(0, 150).join('')}.eml` }], bodyText: 'Forwarded as attachment.' });
  });

  it('a name made only of invisible characters counts as no name', async () => {
    const d = data('nm-invisible', 150 * KiB);
    const raw = await build({ subject: 'invisible', text: 'A file with an invisible name.', attachments: [{ filename: '\u202e\u200b ', content: d, contentType: 'application/zip' }] });
    await check(raw, { offloaded: [{ data: d, name: 'attachment-1.zip' }], bodyText: 'A file with an invisible name.' });
  });

  it('Apple-style inline PDF with contentDisposition inline and a cid', async () => {
    const d = data('nm-inline-pdf', 300 * KiB);
    const raw = await build({
      subject: 'inline pdf',
      html: '<html><body><p>see below</p></body></html>',
      attachments: [{ filename: 'Offer.pdf', content: d, contentType: 'application/pdf', contentDisposition: 'inline', cid: 'offer@x' }],
    });
    await check(raw, { offloaded: [{ data: d, name: 'Offer.pdf' }], bodyHtml: '<p>see below</p>' });
  });
});

describe('bare LF around the end-of-data dot', () => {
  it('LF . LF does not end DATA: the dot line and what follows stay content (no smuggled second message)', async () => {
    const before = upstream.messages.length;
    const c = await RawSmtp.connect(ferry.smtpPort);
    try {
      await c.cmd('EHLO client.test');
      await c.cmd('MAIL FROM:<alice@example.com>');
      await c.cmd('RCPT TO:<bob@example.net>');
      expect(await c.cmd('DATA')).toMatch(/^354/);
      c.write('From: alice@example.com\nSubject: lf dot\n\nhello\n.\nMAIL FROM:<mallory@example.com>\nRCPT TO:<victim@example.net>\nDATA\nsmuggled\n');
      c.write('\r\n.\r\n');
      expect(await c.reply()).toMatch(/^250 2\.0\.0 Ok: queued as [0-9A-F]{16}$/);
    } finally {
      c.close();
    }
    expect(upstream.messages.length).toBe(before + 1);
    const got = upstream.messages.at(-1)!;
    expect(got.to).toEqual(['bob@example.net']);
    expect(got.raw.toString('latin1')).toContain('hello\r\n.\r\nMAIL FROM:<mallory@example.com>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\nsmuggled');
  });
});

describe('undeclared 8-bit text in a us-ascii body (gateway/utf8-repair.ts)', () => {
  async function repair(chunks: Buffer[]): Promise<Buffer> {
    const s = new Utf8OrCp1252();
    const out: Buffer[] = [];
    s.on('data', (c: Buffer) => out.push(c));
    const done = new Promise((r) => s.on('end', r));
    for (const c of chunks) s.write(c);
    s.end();
    await done;
    return Buffer.concat(out);
  }

  it('passes ASCII and valid UTF-8 byte for byte, however the chunks split the sequences', async () => {
    const text = Buffer.from('Grüße, 日本語, emoji 📄, plain ASCII.\r\n', 'utf8');
    for (let cut = 0; cut <= text.length; cut++) {
      expect((await repair([text.subarray(0, cut), text.subarray(cut)])).equals(text)).toBe(true);
    }
  });

  it('reads bytes that are not UTF-8 as windows-1252, including one cut off at the end', async () => {
    const mixed = Buffer.concat([Buffer.from('caf\xe9 \x80 5 ', 'latin1'), Buffer.from('ü', 'utf8'), Buffer.from(' \x93q\x94 \xc3', 'latin1')]);
    for (let cut = 0; cut <= mixed.length; cut++) {
      expect((await repair([mixed.subarray(0, cut), mixed.subarray(cut)])).toString('utf8')).toBe('café € 5 ü “q” Ã');
    }
  });
});

describe('where the HTML notice goes (gateway/notice-inserter.ts InsertAfterBodyTag)', () => {
  async function insert(chunks: string[]): Promise<string> {
    const s = new InsertAfterBodyTag(Buffer.from('[N]'));
    const out: Buffer[] = [];
    s.on('data', (c: Buffer) => out.push(c));
    const done = new Promise((r) => s.on('end', r));
    for (const c of chunks) s.write(Buffer.from(c, 'latin1'));
    s.end();
    await done;
    return Buffer.concat(out).toString('latin1');
  }

  it('finds <body ...> however the chunks cut it, after a long head', async () => {
    const html = `<html><head><style>${'p { margin: 0 }\n'.repeat(8000)}</style></head><BODY class="x" style='a:b'><p>text</p></body></html>`;
    const want = html.replace(`style='a:b'>`, `style='a:b'>[N]`);
    const at = html.indexOf('<BODY');
    for (const cut of [at - 3, at, at + 1, at + 3, at + 5, at + 12, html.indexOf('>', at)]) {
      expect(await insert([html.slice(0, 64 * 1024), html.slice(64 * 1024, cut), html.slice(cut)])).toBe(want);
    }
  });

  it('puts the notice first when there is no <body> tag', async () => {
    expect(await insert(['<p>just a fragment</p>'])).toBe('[N]<p>just a fragment</p>');
  });
});
