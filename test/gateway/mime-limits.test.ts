import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/index.js';
import { startFerry, type TestFerry } from '../helpers/ferry.js';
import { download, fileLinks, pseudoRandom, sha256 } from '../helpers/mail.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { Upstream } from '../helpers/upstream.js';

// Issue 15, item 1: a message nested 10,000 levels deep (7 MB, far under the size limit) took
// 435 MB of heap in mailsplit's Splitter, and twelve at once killed the whole process. Now the
// structure is bounded (mime.maxDepth, mime.maxParts) inside the Splitter as it opens each
// part; past a limit the message gets the malformed-MIME treatment of docs/message-path.md:
// relayed exactly as it came when nothing was offloaded yet, otherwise 554 5.6.0 with the
// reason. And a process-wide guard: above smtp.heapLimit, MAIL FROM gets 451 4.3.0.

const MiB = 1024 * 1024;
const THRESHOLD = 4096;

/** `depth` multiparts inside each other (each with a preamble), a text part at the bottom. */
function nested(depth: number, innermost = 'Content-Type: text/plain\r\n\r\nhello from the bottom\r\n'): Buffer {
  const pad = 'x'.repeat(90);
  const parts: string[] = ['From: alice@example.com\r\nTo: bob@example.net\r\nSubject: nested\r\nMIME-Version: 1.0\r\n'];
  for (let i = 0; i < depth; i++) {
    parts.push(`Content-Type: multipart/mixed; boundary="b${i}${pad}"\r\n\r\npreamble ${'p'.repeat(500)}\r\n--b${i}${pad}\r\n`);
  }
  parts.push(innermost);
  return Buffer.from(parts.join(''), 'latin1');
}

function attachmentPart(name: string, body: Buffer): string {
  return `Content-Type: application/octet-stream; name="${name}"\r\nContent-Disposition: attachment; filename="${name}"\r\nContent-Transfer-Encoding: base64\r\n\r\n${body.toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n`;
}

async function send(port: number, raw: Buffer): Promise<string> {
  const c = await RawSmtp.connect(port);
  try {
    expect(await c.cmd('EHLO client.test')).toMatch(/^250/);
    const mail = await c.cmd('MAIL FROM:<alice@example.com>');
    if (!mail.startsWith('250')) return mail;
    expect(await c.cmd('RCPT TO:<bob@example.net>')).toMatch(/^250/);
    return await c.data(raw);
  } finally {
    c.close();
  }
}

/** What the next hop got, minus the trace fields Ferry puts in front (Received:, RFC 5321 4.4). */
function afterTrace(out: Buffer, original: Buffer): Buffer {
  return out.subarray(Math.max(0, out.length - original.length));
}

describe('MIME structure limits (outbox next hop)', () => {
  let ferry: TestFerry;
  beforeAll(async () => {
    ferry = await startFerry({ offload: { minAttachmentSize: THRESHOLD } });
  });
  afterAll(async () => ferry?.stopAndClean());

  const outboxMessage = (reply: string) => {
    const id = /queued as ([A-Z0-9]+)/.exec(reply)?.[1];
    expect(id, reply).toBeTruthy();
    return fs.readFileSync(path.join(ferry.outbox, `${id}.eml`));
  };

  it('twelve messages nested 10,000 levels deep at once: each relayed unchanged, memory stays bounded', async () => {
    const raw = nested(10_000);
    expect(raw.length).toBeGreaterThan(6 * MiB);
    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    try {
      const replies = await Promise.all(Array.from({ length: 12 }, () => send(ferry.smtpPort, raw)));
      for (const r of replies) {
        expect(r).toMatch(/^250 2\.0\.0 /);
        // Nothing was offloaded, so the message went on exactly as it came.
        expect(afterTrace(outboxMessage(r), raw).equals(raw)).toBe(true);
      }
    } finally {
      clearInterval(sampler);
    }
    // Before the limits: about 415 MiB more per message (1.8 GiB for four); the twelve messages
    // themselves are 84 MiB in this process's buffers.
    expect((peak - before) / MiB).toBeLessThan(400);
  }, 120_000);

  it('more than mime.maxParts parts: relayed unchanged', async () => {
    const f = await startFerry({ mime: { maxParts: 20 }, offload: { minAttachmentSize: THRESHOLD } });
    try {
      const parts = Array.from({ length: 30 }, (_, i) => `--flat\r\nContent-Type: text/plain\r\n\r\npart ${i}\r\n`).join('');
      const raw = Buffer.from(`From: alice@example.com\r\nTo: bob@example.net\r\nSubject: many\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="flat"\r\n\r\n${parts}--flat--\r\n`);
      const reply = await send(f.smtpPort, raw);
      expect(reply).toMatch(/^250 2\.0\.0 /);
      const id = /queued as ([A-Z0-9]+)/.exec(reply)![1];
      expect(afterTrace(fs.readFileSync(path.join(f.outbox, `${id}.eml`)), raw).equals(raw)).toBe(true);
    } finally {
      await f.stopAndClean();
    }
  });

  it('an attachment already offloaded, then nesting past mime.maxDepth: 554 5.6.0 naming the limit, nothing kept', async () => {
    const f = await startFerry({ mime: { maxDepth: 5 }, offload: { minAttachmentSize: THRESHOLD } });
    try {
      const file = pseudoRandom(64 * 1024, 'limits');
      const deep = nested(10).toString('latin1').split('\r\n\r\n').slice(1).join('\r\n\r\n');
      const raw = Buffer.from(
        'From: alice@example.com\r\nTo: bob@example.net\r\nSubject: late\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="top"\r\n\r\n' +
          `--top\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--top\r\n${attachmentPart('data.bin', file)}--top\r\nContent-Type: multipart/mixed; boundary="b0${'x'.repeat(90)}"\r\n\r\n${deep}--top--\r\n`,
        'latin1',
      );
      const reply = await send(f.smtpPort, raw);
      expect(reply).toMatch(/^554 5\.6\.0 .*nested more than 5 levels deep/);
      expect(fs.existsSync(f.outbox) ? fs.readdirSync(f.outbox) : []).toEqual([]);
      const blobs = path.join(f.dir, 'blobs');
      const stored = fs.existsSync(blobs) ? fs.readdirSync(blobs, { recursive: true }).filter((p) => fs.statSync(path.join(blobs, String(p))).isFile()) : [];
      expect(stored).toEqual([]);
    } finally {
      await f.stopAndClean();
    }
  });

  it('a message exactly at mime.maxDepth is processed as usual: its attachment is offloaded and downloads byte-exact', async () => {
    const upstream = await new Upstream().start();
    const f = await startFerry({ mime: { maxDepth: 5 }, relay: { url: upstream.url }, offload: { minAttachmentSize: THRESHOLD } });
    try {
      const file = pseudoRandom(50_000, 'at-limit');
      // Depth 0 is the message itself; the attachment is the child of the fifth multipart: depth 5.
      const raw = nested(5, attachmentPart('deep.bin', file));
      const reply = await send(f.smtpPort, raw);
      expect(reply).toMatch(/^250 2\.0\.0 .*1 attachment turned into download links/);
      const out = upstream.messages.at(-1)!.raw;
      const [link] = await fileLinks(out, f.publicUrl);
      const got = await download(link!);
      expect(got.status).toBe(200);
      expect(sha256(got.body)).toBe(sha256(file));
    } finally {
      await f.stopAndClean();
      await upstream.stop();
    }
  });
});

describe('heap guard (smtp.heapLimit)', () => {
  it('above the limit MAIL FROM gets 451 4.3.0 with a sentence; the session stays open', async () => {
    // Any running Node process uses more than 16 MiB of heap: the guard is on from the start.
    const f = await startFerry({ smtp: { heapLimit: '16MiB' } });
    try {
      const c = await RawSmtp.connect(f.smtpPort);
      expect(await c.cmd('EHLO client.test')).toMatch(/^250/);
      expect(await c.cmd('MAIL FROM:<alice@example.com>')).toMatch(/^451 4\.3\.0 The gateway is short of memory right now and takes no new messages; nothing was kept\. Please try again in a few minutes\.$/);
      expect(await c.cmd('NOOP')).toMatch(/^250/);
      c.close();
    } finally {
      await f.stopAndClean();
    }
  });

  it('with the default (80% of the heap limit) the same message is taken', async () => {
    const f = await startFerry({});
    try {
      const reply = await send(f.smtpPort, Buffer.from('From: alice@example.com\r\nTo: bob@example.net\r\nSubject: hi\r\n\r\nhello\r\n'));
      expect(reply).toMatch(/^250 2\.0\.0 /);
    } finally {
      await f.stopAndClean();
    }
  });
});

describe('configuration of the limits', () => {
  it('takes a share or a size for smtp.heapLimit and names key, value and fix when wrong', () => {
    expect(loadConfig({ env: { FERRY_SMTP_HEAP_LIMIT: '85%' }, overrides: {} }).smtp.heapLimit).toBe(0.85);
    expect(loadConfig({ env: {}, overrides: { smtp: { heapLimit: '1.5GB' } } }).smtp.heapLimit).toBe(1_500_000_000);
    expect(() => loadConfig({ env: { FERRY_SMTP_HEAP_LIMIT: 'lots' }, overrides: {} })).toThrow(/smtp\.heapLimit = "lots" .*expected a share of the heap limit such as 80% or 0\.8, or a size/);
    expect(() => loadConfig({ env: { FERRY_MIME_MAX_DEPTH: '0' }, overrides: {} })).toThrow(/mime\.maxDepth = "0" .*expected a whole number from 1 to 1000/);
    expect(() => loadConfig({ env: {}, overrides: { smtp: { maxConnections: 10, reservedConnections: 10 } } })).toThrow(/smtp\.reservedConnections = 10 .*fewer reserved connections than smtp\.maxConnections/);
  });
});
