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

/**
 * Every Ferry file link a recipient sees, from the decoded message (text, HTML and the text
 * parts that stand in for offloaded attachments), de-duplicated. Decoded, because in the raw
 * bytes a quoted-printable soft break can split a URL.
 */
export async function fileLinks(raw: Buffer, publicUrl: string): Promise<string[]> {
  const mail = await parse(raw);
  const texts = [mail.text ?? '', String(mail.html || ''), ...mail.attachments.filter((a) => a.contentType === 'text/plain').map((a) => a.content.toString('utf8'))];
  const esc = publicUrl.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`${esc}/t/[A-Za-z0-9_-]{27}/\\d+/[^\\s"<>]+`, 'g');
  return [...new Set(texts.flatMap((t) => t.replace(/&amp;/g, '&').match(re) ?? []))];
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
