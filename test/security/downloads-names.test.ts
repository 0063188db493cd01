import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { displayName, listFiles, savedName, storedName } from '../../storage/index.js';
import { buildWebApp } from '../../web/app.js';
import { addTransfer, makeEnv, PUBLIC_URL, type Env } from '../web/helpers.js';
import { bufferReader, listZip } from '../web/zip-reader.js';

// Issue 15 items 7 and 8: the mailto: link of the 410 pages, and file names with invisible or
// control characters and without a length cap.

let env: Env;
let app: FastifyInstance;

beforeAll(async () => {
  env = await makeEnv();
  app = await buildWebApp({ publicUrl: PUBLIC_URL, db: env.db, blobs: env.blobs, rateLimit: false, maxDownloads: 1 });
});

afterAll(async () => {
  await app.close();
  await env.close();
});

function mailtoHrefs(body: string): string[] {
  return [...body.matchAll(/href="(mailto:[^"]*)"/g)].map((m) => m[1]!.replace(/&amp;/g, '&').replace(/&#39;/g, "'").replace(/&quot;/g, '"'));
}

describe('the mailto: link on the 410 pages', () => {
  const senders = [
    'reply?cc=attacker%40evil.example&subject=Urgent@example.org',
    'a&body=click-here@example.org',
    'x%3Fcc%3Devil@example.org',
    "o'hara+tag=1!#$*@example.org",
  ];

  for (const sender of senders) {
    it(`carries ${JSON.stringify(sender)} as one address and nothing else`, async () => {
      const expired = await addTransfer(env, { sender, state: 'expired', files: [{ name: 'a.txt', data: Buffer.from('a') }] });
      const limited = await addTransfer(env, { sender, files: [{ name: 'b.txt', data: Buffer.from('b') }] });
      expect((await app.inject(`/t/${limited.token}/1/b.txt`)).statusCode).toBe(200);
      const pages = [await app.inject(`/t/${expired.token}`)];
      // The limit page, once the one allowed download is recorded.
      for (let i = 0; i < 50; i++) {
        const r = await app.inject(`/t/${limited.token}/1/b.txt`);
        if (r.statusCode === 410) {
          pages.push(r);
          break;
        }
        await new Promise((res) => setTimeout(res, 20));
      }
      expect(pages.map((p) => p.statusCode)).toEqual([410, 410]);
      for (const page of pages) {
        const hrefs = mailtoHrefs(page.body);
        expect(hrefs).toHaveLength(1);
        const href = hrefs[0]!;
        // RFC 6068: no header fields ("?", "&"), and the address decodes back to the sender.
        expect(href).not.toMatch(/[?&#]/);
        const uri = new URL(href);
        expect(uri.search).toBe('');
        expect(decodeURIComponent(uri.pathname)).toBe(sender);
      }
    });
  }
});

describe('file names', () => {
  const invisible = ['\u202e', '\u202d', '\u2066', '\u2069', '\u206a', '\u206b', '\u206c', '\u206d', '\u206e', '\u206f', '\u200d', '\u200c', '\u200b', '\u00ad', '\ufeff', '\u061c', '\u180e', '\u{e0041}', '\u2028', '\u2029', '\u0000', '\r', '\n', '\u0085', '\u007f', '\u3164'];

  it('stores names at most 255 bytes of UTF-8 long, on a character boundary, keeping the extension', async () => {
    const fx = await addTransfer(env, {
      files: [
        { name: `${'a'.repeat(1024 * 1024)}.pdf`, data: Buffer.from('1') },
        { name: `${'\u{1F600}'.repeat(100)}.tar.gz`, data: Buffer.from('2') },
        { name: `${'\u00e9'.repeat(200)}`, data: Buffer.from('3') },
        { name: 'short name.txt', data: Buffer.from('4') },
      ],
    });
    const stored = await listFiles(env.db, fx.transferId);
    for (const f of stored) {
      expect(Buffer.byteLength(f.name, 'utf8')).toBeLessThanOrEqual(255);
      expect(f.name).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])/);
    }
    expect(stored[0]!.name.endsWith('\u2026.pdf')).toBe(true);
    expect(stored[1]!.name.endsWith('\u2026.gz')).toBe(true);
    expect(stored[1]!.name.startsWith('\u{1F600}')).toBe(true);
    expect(Buffer.byteLength(stored[2]!.name)).toBeGreaterThan(240);
    expect(stored[3]!.name).toBe('short name.txt');
  });

  it('strips every invisible format and control character from stored names, pages, filename* and zip entries', async () => {
    const names = invisible.map((c, i) => `inv${c}oice${i}${c}fdp.exe`);
    const fx = await addTransfer(env, { subject: `subject\u202e\u206a${'\u0000'}`, files: names.map((name, i) => ({ name, data: Buffer.from(`f${i}`) })) });
    const isClean = (s: string) => !invisible.some((c) => s.includes(c)) && !/[\p{Cc}\p{Cf}]/u.test(s);

    const stored = await listFiles(env.db, fx.transferId);
    expect(stored.map((f) => f.name)).toEqual(names.map((_, i) => `invoice${i}fdp.exe`));

    const page = await app.inject(`/t/${fx.token}`);
    expect(page.statusCode).toBe(200);
    expect(isClean(page.body.replace(/\n/g, ''))).toBe(true);
    expect(page.body).toContain('invoice0fdp.exe');

    for (const f of stored) {
      const res = await app.inject({ method: 'HEAD', url: `/t/${fx.token}/${f.idx}/x` });
      const cd = String(res.headers['content-disposition']);
      expect(isClean(decodeURIComponent(cd.replace(/^.*filename\*=UTF-8''/, '')))).toBe(true);
    }

    const zip = await app.inject(`/t/${fx.token}/zip`);
    expect(zip.statusCode).toBe(200);
    const entries = listZip(bufferReader(zip.rawPayload)).entries.map((e) => e.name);
    expect(entries).toHaveLength(names.length);
    for (const e of entries) expect(isClean(e), JSON.stringify(e)).toBe(true);
  });

  it('applies the same rule to names stored before the cap (displayName, savedName)', () => {
    for (const c of invisible) {
      expect(displayName(`a${c}b.pdf`)).toBe('ab.pdf');
      expect(savedName(`a${c}b.pdf`)).toBe('ab.pdf');
      expect(storedName(`a${c}b.pdf`)).toBe('ab.pdf');
    }
    expect(storedName('')).toBe('');
    expect(displayName('\u202e\u200d')).toBe('attachment');
  });
});
