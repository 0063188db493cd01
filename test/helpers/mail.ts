import crypto from 'node:crypto';
import { simpleParser, type ParsedMail } from 'mailparser';

export const sha256 = (b: Buffer | string) => crypto.createHash('sha256').update(b).digest('hex');

/** Deterministic pseudo-random bytes (sha256 in counter mode), so failures are reproducible. */
export function pseudoRandom(size: number, seed = 'ferry'): Buffer {
  const out = Buffer.allocUnsafe(size);
  let off = 0;
  for (let i = 0; off < size; i++) {
    const block = crypto.createHash('sha256').update(`${seed}:${i}`).digest();
    off += block.copy(out, off, 0, Math.min(32, size - off));
  }
  return out;
}

export function parse(raw: Buffer): Promise<ParsedMail> {
  return simpleParser(raw, { skipHtmlToText: true, skipTextToHtml: true, skipTextLinks: true, keepCidLinks: true });
}

/** All decoded text a recipient reads: text, HTML and the text parts standing in for offloaded attachments. */
async function readableText(raw: Buffer): Promise<string[]> {
  const mail = await parse(raw);
  return [mail.text ?? '', String(mail.html || ''), ...mail.attachments.filter((a) => a.contentType === 'text/plain').map((a) => a.content.toString('utf8'))].map((t) =>
    t.replace(/&amp;/g, '&'),
  );
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The landing-page links in a message, de-duplicated, read from the decoded message (in the raw
 * bytes a quoted-printable soft break can split a URL).
 */
export async function landingLinks(raw: Buffer, publicUrl: string): Promise<string[]> {
  const re = new RegExp(`${esc(publicUrl)}/t/[A-Za-z0-9_-]{27}(?![A-Za-z0-9_/-])`, 'g');
  return [...new Set((await readableText(raw)).flatMap((t) => t.match(re) ?? []))];
}

/** Direct file links in the message itself; Ferry puts none there (scanners fetch every link). */
export async function directFileLinks(raw: Buffer, publicUrl: string): Promise<string[]> {
  const re = new RegExp(`${esc(publicUrl)}/t/[A-Za-z0-9_-]{27}/\\d+`, 'g');
  return (await readableText(raw)).flatMap((t) => t.match(re) ?? []);
}

/**
 * What a recipient can download: follows each landing-page link in the message and collects the
 * page's file links (absolute URLs), in page order.
 */
export async function fileLinks(raw: Buffer, publicUrl: string): Promise<string[]> {
  const out: string[] = [];
  for (const landing of await landingLinks(raw, publicUrl)) {
    const r = await fetch(landing);
    if (r.status !== 200) throw new Error(`landing page ${landing} answered ${r.status}`);
    const html = await r.text();
    for (const m of html.matchAll(/href="([^"]+)"/g)) {
      const href = m[1]!.replace(/&amp;/g, '&').replace(/&#x2F;|&#47;/gi, '/');
      const abs = new URL(href, landing).toString();
      if (/\/t\/[A-Za-z0-9_-]{27}\/\d+\//.test(new URL(abs).pathname) && !out.includes(abs)) out.push(abs);
    }
  }
  return out;
}

export async function download(url: string): Promise<{ status: number; body: Buffer; headers: Headers }> {
  const r = await fetch(url);
  return { status: r.status, body: Buffer.from(await r.arrayBuffer()), headers: r.headers };
}

/** The filename a browser would save, from Content-Disposition (filename* preferred). */
export function dispositionName(header: string | null): string | undefined {
  if (!header) return undefined;
  const star = /filename\*=UTF-8''([^;]+)/i.exec(header);
  if (star) return decodeURIComponent(star[1]!);
  const plain = /filename="((?:[^"\\]|\\.)*)"/i.exec(header);
  return plain ? plain[1]!.replace(/\\(.)/g, '$1') : undefined;
}
