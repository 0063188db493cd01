import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { arc as verifyArc } from 'mailauth/lib/arc/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/index.js';
import { checkConfigFiles } from '../../cli/check-files.js';
import { startFerry, tempDir, type TestFerry } from '../helpers/ferry.js';
import { pseudoRandom } from '../helpers/mail.js';
import { stripFerryReceived } from '../helpers/received.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { Upstream } from '../helpers/upstream.js';
import { hasTool } from '../ops/helpers.js';

// DKIM signing and ARC sealing of what Ferry relays, checked by verifiers that share no code
// with Ferry's signer: Python's dkimpy (Debian python3-dkim, through test/gateway/dkim_tools.py,
// which points its dnsfunc at the test's keys) and mailauth's verifier; OpenDKIM's
// opendkim-testmsg signs as an upstream server. The test's public keys are served by a small
// DNS server on loopback (dkim_tools.py serve), which Ferry reaches through arc.dnsServers.

const PY = '/usr/bin/python3';
const TOOLS = path.join(import.meta.dirname, 'dkim_tools.py');
const hasDkimpy = (() => {
  try {
    execFileSync(PY, ['-c', 'import dkim, dns.message, nacl'], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
})();
const missing = [...(hasDkimpy ? [] : ['python3-dkim, python3-dnspython, python3-nacl']), ...['openssl', 'opendkim-testmsg'].filter((t) => !hasTool(t))];
if (missing.length) console.warn(`test/gateway/dkim.test.ts: skipped, missing ${missing.join(', ')} (Debian packages python3-dkim, opendkim-tools, openssl)`);

const dir = tempDir('ferry-dkim-');
const key = (name: string, alg: 'rsa' | 'ed25519') => {
  const file = path.join(dir, `${name}.pem`);
  execFileSync('openssl', alg === 'rsa' ? ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', file] : ['genpkey', '-algorithm', 'ed25519', '-out', file], { stdio: 'pipe' });
  const der = execFileSync('openssl', ['pkey', '-in', file, '-pubout', '-outform', 'DER']);
  // RFC 8463: an ed25519 record holds the bare 32-byte key, an RSA record the whole SubjectPublicKeyInfo.
  const p = (alg === 'rsa' ? der : der.subarray(der.length - 32)).toString('base64');
  return { file, record: `v=DKIM1; k=${alg}; p=${p}` };
};

function py(args: string[], input: Buffer): string {
  return execFileSync(PY, [TOOLS, ...args], { input, maxBuffer: 64 * 1024 * 1024 }).toString();
}

interface PySig { d: string; s: string; a: string; h: string; l: boolean; ok: boolean }

describe.skipIf(missing.length > 0)('DKIM signing and ARC sealing', () => {
  let ferry: TestFerry;
  let signAllFerry: TestFerry;
  let upstream: Upstream;
  let dnsServer: ChildProcess;
  let zoneFile: string;
  let zone: Record<string, string>;
  const keys: Record<string, { file: string; record: string }> = {};
  const resolver = async (name: string) => {
    const txt = zone[name.toLowerCase()];
    if (!txt) throw Object.assign(new Error(`no ${name}`), { code: 'ENOTFOUND' });
    return [[txt]];
  };

  beforeAll(async () => {
    keys.up = key('upstream', 'rsa');
    keys.ferry = key('ferry', 'rsa');
    keys.ed = key('ferry-ed', 'ed25519');
    zone = {
      'up._domainkey.upstream.example': keys.up.record,
      'up._domainkey.example.com': keys.up.record,
      'ferry._domainkey.example.com': keys.ferry.record,
      'fed._domainkey.ed.example': keys.ed.record,
    };
    zoneFile = path.join(dir, 'zone.json');
    fs.writeFileSync(zoneFile, JSON.stringify(zone));
    dnsServer = spawn(PY, [TOOLS, 'serve', zoneFile], { stdio: ['pipe', 'pipe', 'inherit'] });
    const port = await new Promise<number>((resolve, reject) => {
      dnsServer.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
      dnsServer.once('exit', (code) => reject(new Error(`the test DNS server ended (${code})`)));
    });
    upstream = await new Upstream().start();
    const common = {
      relay: { url: upstream.url },
      offload: { minAttachmentSize: '100KB' },
      arc: { dnsServers: [`127.0.0.1:${port}`] },
    };
    ferry = await startFerry({
      ...common,
      dkim: {
        keys: [
          { domain: 'example.com', selector: 'ferry', privateKeyFile: keys.ferry.file, algorithm: 'rsa-sha256' },
          { domain: 'ed.example', selector: 'fed', privateKeyFile: keys.ed.file, algorithm: 'ed25519-sha256' },
        ],
      },
    });
    signAllFerry = await startFerry({
      ...common,
      // Nothing is offloaded here: every message passes untouched.
      offload: { minAttachmentSize: '50MB' },
      dkim: { signAll: true, keys: [{ domain: '*', selector: 'ferry', privateKeyFile: keys.ferry.file }] },
    });
  }, 120_000);
  afterAll(async () => {
    await ferry?.stopAndClean();
    await signAllFerry?.stopAndClean();
    await upstream?.stop();
    dnsServer?.stdin?.end();
    dnsServer?.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function send(f: TestFerry, raw: Buffer, from = 'alice@example.com'): Promise<Buffer> {
    const c = await RawSmtp.connect(f.smtpPort);
    try {
      await c.cmd('EHLO client.test');
      await c.cmd(`MAIL FROM:<${from}>`);
      await c.cmd('RCPT TO:<bob@example.net>');
      const before = upstream.messages.length;
      const reply = await c.data(raw);
      expect(reply).toMatch(/^250 2\.0\.0 /);
      expect(upstream.messages.length).toBe(before + 1);
      return upstream.messages.at(-1)!.raw;
    } finally {
      c.close();
    }
  }

  const withAttachment = (from: string, subject: string) =>
    Buffer.from(
      [
        `From: Alice <${from}>`,
        'To: Bob <bob@example.net>',
        `Subject: ${subject}`,
        'Date: Wed, 02 Dec 2026 06:00:00 +0000',
        `Message-ID: <${subject.replace(/\W/g, '')}@example.com>`,
        'MIME-Version: 1.0',
        'Content-Type: multipart/mixed; boundary="b1"',
        '',
        '--b1',
        'Content-Type: text/plain; charset=utf-8',
        '',
        'The plan is attached.',
        '--b1',
        'Content-Type: application/pdf; name="plan.pdf"',
        'Content-Disposition: attachment; filename="plan.pdf"',
        'Content-Transfer-Encoding: base64',
        '',
        pseudoRandom(300_000, subject).toString('base64').replace(/.{76}/g, '$&\r\n'),
        '--b1--',
        '',
      ].join('\r\n'),
    );

  const pySigs = (raw: Buffer): PySig[] => JSON.parse(py(['verify', zoneFile], raw));

  /**
   * dkimpy's ARC verdict on `raw`. A chain that does not pass keeps the message in test/artifacts
   * and the failure names dkimpy's reason, so a rare failure can be read after the run.
   */
  function expectArcPass(raw: Buffer, name: string): { cv: string; instances: unknown[] } {
    const arc = JSON.parse(py(['arc', zoneFile], raw)) as { cv: string; reason: string; instances: unknown[] };
    if (arc.cv !== 'pass') {
      const file = path.join(import.meta.dirname, '..', 'artifacts', `dkim-arc-${name}.eml`);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, raw);
      expect.fail(`dkimpy's ARC verdict is ${arc.cv} (${arc.reason}; instances ${JSON.stringify(arc.instances)}); the message is in ${file}`);
    }
    return arc;
  }

  it('a message signed upstream, rewritten by Ferry: Ferry\'s rsa-sha256 signature verifies, and the ARC chain carries the original dkim=pass', async () => {
    const signed = Buffer.from(py(['sign', 'example.com', 'up', keys.up.file], withAttachment('alice@example.com', 'Rewritten RSA')), 'latin1');
    expect(pySigs(signed)).toMatchObject([{ s: 'up', ok: true }]);
    const out = await send(ferry, signed);
    expect(out.toString('latin1')).toMatch(/^X-Ferry-Offloaded: 1 file/m);

    // dkimpy: Ferry's signature holds, the upstream one is broken by the rewrite (as expected).
    const sigs = pySigs(out);
    const mine = sigs.find((s) => s.s === 'ferry')!;
    expect(mine).toMatchObject({ d: 'example.com', a: 'rsa-sha256', l: false, ok: true });
    for (const f of ['from', 'subject', 'date', 'to', 'message-id', 'mime-version', 'content-type', 'x-ferry-offloaded']) expect(mine.h.toLowerCase()).toContain(f);
    expect(sigs.find((s) => s.s === 'up')!.ok).toBe(false);

    // dkimpy's ARC check: Ferry's seal (i=1) validates.
    const arc = expectArcPass(out, 'rewritten-rsa');
    expect(arc.instances).toHaveLength(1);
    const text = out.toString('latin1');
    const aar = /^ARC-Authentication-Results: ([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)/m.exec(text)![1]!.replace(/\s+/g, ' ');
    expect(aar).toMatch(/^i=1; ferry\.test; dkim=pass header\.i=@example\.com header\.s=up /);
    expect(text).toMatch(/^ARC-Seal: i=1; a=rsa-sha256; t=\d+; cv=none; d=example\.com; s=ferry;/m);

    // mailauth's verifier agrees on both.
    const m = await dkimVerify(out, { resolver } as never);
    const mr = m.results as { signingDomain: string; selector: string; status: { result: string } }[];
    expect(mr.find((r) => r.selector === 'ferry')!.status.result).toBe('pass');
    const chain = await verifyArc((m as unknown as { arc: unknown }).arc as never, { resolver } as never);
    expect((chain as { status: { result: string } }).status.result).toBe('pass');
  });

  it('an original signature that does not verify is sealed as dkim=fail', async () => {
    const signed = py(['sign', 'example.com', 'up', keys.up.file], withAttachment('alice@example.com', 'Tampered'));
    const tampered = Buffer.from(signed.replace('Subject: Tampered', 'Subject: Tampered!'), 'latin1');
    const out = (await send(ferry, tampered)).toString('latin1');
    expect(/^ARC-Authentication-Results: [^\r\n]*\r\n\tdkim=fail/m.test(out) || /^ARC-Authentication-Results: .*dkim=fail/m.test(out)).toBe(true);
    expectArcPass(Buffer.from(out, 'latin1'), 'tampered');
  });

  it('ed25519-sha256: a rewritten message from a domain with an ed25519 key verifies with dkimpy and mailauth', async () => {
    const out = await send(ferry, withAttachment('carol@ed.example', 'Rewritten Ed25519'), 'carol@ed.example');
    const mine = pySigs(out).find((s) => s.s === 'fed')!;
    expect(mine).toMatchObject({ d: 'ed.example', a: 'ed25519-sha256', ok: true });
    const m = await dkimVerify(out, { resolver } as never);
    expect((m.results as { selector: string; status: { result: string } }[]).find((r) => r.selector === 'fed')!.status.result).toBe('pass');
    // Unsigned on arrival: nothing to seal.
    expect(out.toString('latin1')).not.toMatch(/^ARC-Seal:/m);
  });

  it('a passthrough message keeps its original (OpenDKIM, simple body) signature valid after the Received field, and Ferry does not sign it by default', async () => {
    const msg = Buffer.from('From: dave@upstream.example\r\nTo: bob@example.net\r\nSubject: untouched\r\nDate: Wed, 02 Dec 2026 06:00:00 +0000\r\nMessage-ID: <u1@upstream.example>\r\n\r\nNo attachment here.  \r\nTrailing spaces and all.\r\n\r\n');
    const signed = execFileSync('opendkim-testmsg', ['-d', 'upstream.example', '-k', keys.up.file, '-s', 'up', '-C'], { input: msg });
    expect(pySigs(signed)).toMatchObject([{ d: 'upstream.example', ok: true }]);
    const out = await send(ferry, signed, 'dave@upstream.example');
    expect(stripFerryReceived(out).equals(signed)).toBe(true);
    expect(pySigs(out)).toMatchObject([{ d: 'upstream.example', ok: true }]);
    const m = await dkimVerify(out, { resolver } as never);
    expect((m.results as { status: { result: string } }[]).map((r) => r.status.result)).toEqual(['pass']);
  });

  it('dkim.signAll with a "*" key: an untouched message of several MB is signed as its From domain and still passes byte for byte', async () => {
    const body = pseudoRandom(3_000_000, 'signall').toString('base64').replace(/.{76}/g, '$&\r\n');
    const msg = Buffer.from(`From: alice@example.com\r\nTo: bob@example.net\r\nSubject: big but kept\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n${body}\r\n`);
    const out = await send(signAllFerry, msg);
    const sigs = pySigs(out);
    expect(sigs).toMatchObject([{ d: 'example.com', s: 'ferry', a: 'rsa-sha256', ok: true, l: false }]);
    // Ferry's Received field, then its signature, then the message as it came.
    const rest = stripFerryReceived(out);
    expect(rest.toString('latin1')).toMatch(/^DKIM-Signature: /);
    expect(rest.subarray(rest.indexOf('\r\nFrom: ') + 2).equals(msg)).toBe(true);
  });

  it('check-config names an unreadable key, a key that is not PEM and an algorithm that does not match the key', () => {
    const junk = path.join(dir, 'junk.pem');
    fs.writeFileSync(junk, 'not a key');
    const config = loadConfig({
      env: {},
      overrides: {
        dataDir: dir,
        dkim: {
          keys: [
            { domain: 'a.example', selector: 's', privateKeyFile: path.join(dir, 'missing.pem') },
            { domain: 'b.example', selector: 's', privateKeyFile: junk },
            { domain: 'c.example', selector: 's', privateKeyFile: keys.ed.file, algorithm: 'rsa-sha256' },
            { domain: 'd.example', selector: 's', privateKeyFile: keys.ferry.file, algorithm: 'rsa-sha256' },
          ],
        },
        arc: { keys: [{ domain: 'e.example', selector: 's', privateKeyFile: keys.ed.file, algorithm: 'ed25519-sha256' }] },
      },
    });
    const problems = checkConfigFiles(config);
    expect(problems).toEqual([
      expect.stringMatching(/^dkim\.keys\[0\]\.privateKeyFile = ".*missing\.pem" cannot be read \(ENOENT\)/),
      expect.stringMatching(/^dkim\.keys\[1\]\.privateKeyFile = ".*junk\.pem" is not a PEM private key: make one with "openssl genpkey/),
      expect.stringMatching(/^dkim\.keys\[2\]\.privateKeyFile = ".*ferry-ed\.pem" is an ed25519 key but dkim\.keys\[2\]\.algorithm is rsa-sha256: set algorithm to ed25519-sha256/),
      expect.stringMatching(/^arc\.keys\[0\]\.algorithm = "ed25519-sha256" is not allowed: ARC \(RFC 8617\) seals with rsa-sha256 only/),
    ]);
  });
});
