import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWebApp } from '../../web/app.js';
import { LANGUAGES, MESSAGES } from '../../web/i18n.js';
import { recordRescan, recordScan } from '../../storage/index.js';
import { addTransfer, makeEnv, PUBLIC_URL, type Env, type Fixture } from './helpers.js';

// The malware check in the recipient's language (issue 13): the verdict line of each file on
// the landing page and the page any URL of a blocked file answers, in every language of
// web/i18n.ts, picked the way every page picks it (?lang=, then Accept-Language).

const VERSION = 'ClamAV 1.4.6/27471/Wed Dec  2 09:25:02 2026';

let env: Env;
let app: FastifyInstance;
let t: Fixture;

beforeAll(async () => {
  env = await makeEnv();
  app = await buildWebApp({ publicUrl: PUBLIC_URL, db: env.db, blobs: env.blobs, rateLimit: false, logger: false });
  t = await addTransfer(env, {
    sender: 'alice@example.org',
    files: [
      { name: 'clean.pdf', data: Buffer.from('clean') },
      { name: 'held.exe', data: Buffer.from('held') },
      { name: 'later.zip', data: Buffer.from('later') },
      { name: 'big.iso', data: Buffer.from('big') },
    ],
  });
  const at = Date.UTC(2026, 11, 2, 10);
  await recordScan(env.db, t.transferId, 1, { verdict: 'clean', engine: 'clamav', version: VERSION, signature: null, at });
  await recordScan(env.db, t.transferId, 2, { verdict: 'infected', engine: 'clamav', version: VERSION, signature: 'Ferry-Test-Custom', at }, { actor: 'system:scan' });
  await recordScan(env.db, t.transferId, 3, { verdict: 'clean', engine: 'clamav', version: VERSION, signature: null, at });
  await recordRescan(env.db, { transferId: t.transferId, idx: 3 }, { verdict: 'infected', engine: 'clamav', version: VERSION.replace('27471', '27472'), signature: 'Ferry-Test-Late', at });
  await recordScan(env.db, t.transferId, 4, { verdict: 'too_large', engine: 'clamav', version: VERSION, signature: null, at });
});
afterAll(async () => {
  await app?.close();
  await env?.close();
});

const landing = async (lang: string) => (await app.inject({ url: `/t/${t.token}?lang=${lang}` })).body;
/** The text of the verdict line of each file, in page order. */
const verdicts = (body: string) => [...body.matchAll(/<p class="verdict[^"]*" data-verdict="([a-z_]+)">([^<]*)<\/p>/g)].map((m) => [m[1], m[2]]);

describe('the verdict line and the blocked page in every language', () => {
  it('English says it in plain words, with the date of the signatures', async () => {
    expect(verdicts(await landing('en'))).toEqual([
      ['clean', 'Checked for malware by ClamAV, signatures of 2 Dec 2026.'],
      ['held', 'Held for review: ClamAV found malware in this file. It cannot be downloaded until an administrator has checked it.'],
      ['blocked', 'Blocked after a new check: ClamAV found malware in this file with newer signatures. It can no longer be downloaded.'],
      ['too_large', 'Not checked for malware: the file is too large for the scanner.'],
    ]);
  });

  it('each other language has its own words for every verdict, and the date in its own form', async () => {
    const english = verdicts(await landing('en')).map((v) => v[1]);
    for (const lang of LANGUAGES.filter((l) => l !== 'en')) {
      const lines = verdicts(await landing(lang));
      expect(lines.map((v) => v[0]), lang).toEqual(['clean', 'held', 'blocked', 'too_large']);
      for (const [i, [, text]] of lines.entries()) expect(text, `${lang} line ${i + 1}`).not.toBe(english[i]);
      expect(lines[0]![1], lang).toContain(new Date(Date.UTC(2026, 11, 2)).toLocaleDateString(MESSAGES[lang].locale, { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' }));
      expect(lines[0]![1], lang).toContain('ClamAV');
    }
    expect(verdicts(await landing('de'))[0]![1]).toBe('Auf Schadsoftware geprüft (ClamAV, Signaturen vom 2. Dez. 2026).');
  });

  it('the page a blocked file answers is in the language Accept-Language asks for', async () => {
    const titles = { held: new Set<string>(), rescan: new Set<string>() };
    for (const lang of LANGUAGES) {
      for (const [idx, name, kind] of [
        [2, 'held.exe', 'held'],
        [3, 'later.zip', 'rescan'],
      ] as const) {
        const res = await app.inject({ url: `/t/${t.token}/${idx}/${name}`, headers: { 'accept-language': `${lang};q=0.9` } });
        expect(res.statusCode).toBe(403);
        const w = MESSAGES[lang].scan;
        const title = kind === 'held' ? w.heldTitle : w.rescanTitle;
        expect(res.body).toContain(`<h1>${title}</h1>`);
        expect(res.body).toContain(`<html lang="${lang}"`);
        expect(res.body).toContain('mailto:alice@example.org');
        titles[kind].add(title);
      }
    }
    // Four languages, four different titles for each kind of block.
    expect(titles.held.size).toBe(LANGUAGES.length);
    expect(titles.rescan.size).toBe(LANGUAGES.length);
  });
});
