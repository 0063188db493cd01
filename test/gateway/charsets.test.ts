import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lookupCharset } from '../../gateway/charsets.js';
import { startFerry, type TestFerry } from '../helpers/ferry.js';
import { dispositionName, download, fileLinks, parse, pseudoRandom, sha256 } from '../helpers/mail.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { Upstream } from '../helpers/upstream.js';

// Chinese, Japanese and Korean mail as Python's email package writes it (test/fixtures/
// compose_cjk.py): bodies and file names under the codec names Python uses (gb2312 headers as
// "eucgb2312_cn", cp936, iso2022_jp, ks_c_5601-1987...), through a real Ferry to a real next
// hop. Each file downloads under its real name, and the notice sits readable above the body.

const COMPOSER = path.resolve(import.meta.dirname, '../fixtures/compose_cjk.py');
const python = spawnSync('python3', ['--version']).status === 0;
if (!python) console.warn('test/gateway/charsets.test.ts: python3 is not installed; the Python-composed cases are skipped');
const cases: Record<string, { body: string; name: string }> = python ? JSON.parse(spawnSync('python3', [COMPOSER, '--list']).stdout.toString()) : {};

describe('charset labels', () => {
  it('resolves the names Python and older mailers write, and nothing that is not a charset', () => {
    const names = (l: string) => lookupCharset(l)?.name;
    expect(names('iso2022_jp')).toBe('iso-2022-jp');
    expect(names('ISO-2022-JP')).toBe('iso-2022-jp');
    expect(lookupCharset('iso-2022-jp')!.canEncode).toBe(false);
    expect(names('eucgb2312_cn')).toBe('gbk');
    expect(names('euc_jp')).toBeDefined();
    expect(names('x-euc-jp')).toBeDefined();
    expect(names('ks_c_5601-1987')).toBeDefined();
    expect(names('big5hkscs')).toBeDefined();
    expect(names('csiso2022jp')).toBe('iso-2022-jp');
    for (const bad of ['utf-7', 'UTF7', 'base64', 'hex', 'no-such-charset', '']) expect(lookupCharset(bad), bad).toBeUndefined();
    // A character split across stream chunks is decoded whole.
    const bytes = Buffer.from('1b2442245124472b1b2842', 'hex'); // ISO-2022-JP "おぉ" then back to ASCII
    const [dec] = lookupCharset('iso-2022-jp')!.toUtf8();
    const out: Buffer[] = [];
    dec!.on('data', (c: Buffer) => out.push(c));
    for (const b of bytes) dec!.write(Buffer.from([b]));
    dec!.end();
    expect(Buffer.concat(out).toString('utf8')).toBe(new TextDecoder('iso-2022-jp').decode(bytes));
  });
});

describe.skipIf(!python)('CJK mail written by Python email', () => {
  let ferry: TestFerry;
  let upstream: Upstream;

  beforeAll(async () => {
    upstream = await new Upstream().start();
    ferry = await startFerry({ relay: { url: upstream.url }, offload: { minAttachmentSize: 100 * 1024 } });
  });
  afterAll(async () => {
    await ferry?.stopAndClean();
    await upstream?.stop();
  });

  async function relay(raw: Buffer): Promise<Buffer> {
    const c = await RawSmtp.connect(ferry.smtpPort);
    try {
      await c.cmd('EHLO client.test');
      await c.cmd('MAIL FROM:<alice@example.com>');
      await c.cmd('RCPT TO:<bob@example.net>');
      const before = upstream.messages.length;
      expect(await c.data(raw)).toMatch(/^250 2\.0\.0 .*1 attachment/);
      expect(upstream.messages.length).toBe(before + 1);
      return upstream.messages.at(-1)!.raw;
    } finally {
      c.close();
    }
  }

  for (const [name, want] of Object.entries(cases)) {
    it(`${name}: ${want.name}`, async () => {
      const r = spawnSync('python3', [COMPOSER, name]);
      expect(r.status, r.stderr.toString()).toBe(0);
      const out = await relay(r.stdout);
      const mail = await parse(out);
      // The notice, then the sender's own words, both readable.
      const text = mail.text ?? '';
      expect(text).toMatch(/1 attachment was sent as a download link/);
      expect(text).toContain(`* ${want.name} (`);
      expect(text).toContain(want.body);
      expect(text.indexOf('download link')).toBeLessThan(text.indexOf(want.body));
      // The file downloads byte for byte under its real name.
      const links = await fileLinks(out, ferry.publicUrl);
      expect(links).toHaveLength(1);
      const d = await download(links[0]!);
      expect(d.status).toBe(200);
      expect(sha256(d.body)).toBe(sha256(pseudoRandom(200 * 1024, name)));
      expect(dispositionName(d.headers.get('content-disposition'))).toBe(want.name);
    });
  }
});
