import crypto from 'node:crypto';
import { simpleParser } from 'mailparser';

// Checks the other end of the promise: what the recipient can download from the relayed
// message is the file that was attached. The mail links to the transfer's landing page only
// (scanner-safe, DESIGN/docs), so the file links are read from that page, as a recipient's
// click would. The download is hashed as it streams, so verifying 1 GiB costs the bench one
// chunk of memory, like sending it did.

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const TOKEN = '[A-Za-z0-9_-]{20,64}';
const PAGE_LIMIT = 2 * 1024 * 1024;

/** Decoded text of a (small) message: in the raw bytes a quoted-printable soft break can split a URL. */
async function readableText(message: Buffer): Promise<string[]> {
  const mail = await simpleParser(message, { skipHtmlToText: true, skipTextToHtml: true, skipTextLinks: true });
  return [mail.text ?? '', String(mail.html || ''), ...mail.attachments.filter((a) => a.contentType === 'text/plain').map((a) => a.content.toString('utf8'))].map((t) =>
    t.replace(/&amp;/g, '&'),
  );
}

/** Landing-page links (/t/<token>) in the message, de-duplicated. */
export async function findLandingLinks(message: Buffer, publicUrl: string): Promise<string[]> {
  const re = new RegExp(`${esc(publicUrl.replace(/\/+$/, ''))}/t/${TOKEN}(?![A-Za-z0-9_/-])`, 'g');
  return [...new Set((await readableText(message)).flatMap((t) => t.match(re) ?? []))];
}

/** The file links (/t/<token>/<n>/<name>) a recipient finds by following the message's landing links. */
export async function findFileLinks(message: Buffer, publicUrl: string, timeoutMs = 15_000): Promise<string[]> {
  const out: string[] = [];
  for (const landing of await findLandingLinks(message, publicUrl)) {
    const r = await fetch(landing, { signal: AbortSignal.timeout(timeoutMs) });
    const html = await r.text();
    if (r.status !== 200) throw new Error(`landing page ${landing} answered ${r.status}`);
    if (html.length > PAGE_LIMIT) throw new Error(`landing page ${landing} is over ${PAGE_LIMIT} characters`);
    for (const m of html.matchAll(/href="([^"]+)"/g)) {
      const href = m[1]!.replace(/&amp;/g, '&').replace(/&#x2F;|&#47;/gi, '/');
      const abs = new URL(href, landing).toString();
      if (new RegExp(`/t/${TOKEN}/\\d+/`).test(new URL(abs).pathname) && !out.includes(abs)) out.push(abs);
    }
  }
  return out;
}

export interface DownloadResult {
  status: number;
  bytes: number;
  sha256: string;
  ms: number;
}

/** GET url, hashing the body as it arrives. Rejects when the whole download takes over timeoutMs. */
export async function downloadAndHash(url: string, timeoutMs: number): Promise<DownloadResult> {
  const t0 = Date.now();
  const res = await fetch(url, { signal: AbortSignal.timeout(Math.round(timeoutMs)) });
  const hash = crypto.createHash('sha256');
  let bytes = 0;
  if (res.body) {
    for await (const chunk of res.body) {
      hash.update(chunk);
      bytes += chunk.length;
    }
  }
  return { status: res.status, bytes, sha256: hash.digest('hex'), ms: Date.now() - t0 };
}
