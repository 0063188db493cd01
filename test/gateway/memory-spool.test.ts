import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryBudget, spoolCounts } from '../../gateway/spool.js';
import { queueBlobKey } from '../../storage/index.js';
import { startFerry, type TestFerry } from '../helpers/ferry.js';
import { stripFerryReceived } from '../helpers/received.js';
import { sendOne as send } from '../helpers/smtp-client.js';
import { Upstream } from '../helpers/upstream.js';

// Small mail never touches the disk before its 250 (issue 11.2, gateway/spool.ts): a working copy
// up to smtp.memorySpoolLimit stays in memory within the process's smtp.memorySpoolBudget, and
// spills to a spool file past either. Either way the message is relayed byte for byte, and a
// queued one is stored durably before its 250.

const LIMIT = 64 * 1024;

/** A plain-text message of exactly `size` bytes (CRLF lines, none starting with a dot). */
function message(size: number, id: string): Buffer {
  const head = `From: alice@example.com\r\nTo: bob@example.net\r\nSubject: ${id}\r\nMessage-ID: <${id}@example.com>\r\n\r\n`;
  let body = '';
  const line = `${'abcdefghij'.repeat(7)}xyzw\r\n`;
  while (head.length + body.length + line.length <= size) body += line;
  const rest = size - head.length - body.length;
  if (rest >= 2) body += `${'q'.repeat(rest - 2)}\r\n`;
  else if (rest === 1) body = `${body.slice(0, -line.length)}${'abcdefghij'.repeat(7)}xyzwQ\r\n`;
  const out = Buffer.from(head + body, 'latin1');
  if (out.length !== size) throw new Error(`built ${out.length} bytes, wanted ${size}`);
  return out;
}

function relayedBySubject(upstream: Upstream, id: string): Buffer | undefined {
  return upstream.messages.find((m) => m.raw.includes(`Subject: ${id}\r\n`))?.raw;
}

describe('working copies in memory up to smtp.memorySpoolLimit', () => {
  let ferry: TestFerry;
  let upstream: Upstream;
  beforeAll(async () => {
    upstream = await new Upstream().start();
    ferry = await startFerry({ relay: { url: upstream.url, poolSize: 0 }, smtp: { memorySpoolLimit: LIMIT } });
  });
  afterAll(async () => {
    await ferry?.stopAndClean();
    await upstream?.stop();
  });

  it('a message of exactly the limit stays in memory (no spool folder is even made); one byte more goes to disk; both relay byte for byte', async () => {
    const spoolDir = path.join(ferry.dir, 'spool');
    const at = message(LIMIT, 'at-the-limit');
    const before = { ...spoolCounts };
    expect(await send(ferry.smtpPort, at)).toMatch(/^250 /);
    // Two copies per message: the raw one and the pass-1 output.
    expect(spoolCounts.memory - before.memory).toBe(2);
    expect(spoolCounts.disk - before.disk).toBe(0);
    expect(fs.existsSync(spoolDir)).toBe(false);
    expect(stripFerryReceived(relayedBySubject(upstream, 'at-the-limit')!).equals(at)).toBe(true);

    const over = message(LIMIT + 1, 'one-byte-over');
    const mid = { ...spoolCounts };
    expect(await send(ferry.smtpPort, over)).toMatch(/^250 /);
    expect(spoolCounts.disk - mid.disk).toBe(2);
    expect(spoolCounts.memory - mid.memory).toBe(0);
    expect(stripFerryReceived(relayedBySubject(upstream, 'one-byte-over')!).equals(over)).toBe(true);
    // The spool files are gone once the message is answered.
    expect(fs.readdirSync(spoolDir)).toEqual([]);
    expect(memoryBudget.used).toBe(0);
  });

  it('a message from memory that has to be queued (next hop down) is stored in the blob store before its 250', async () => {
    const port = upstream.port;
    await upstream.stop();
    try {
      const raw = message(10_000, 'queued-from-memory');
      const before = { ...spoolCounts };
      const reply = await send(ferry.smtpPort, raw);
      expect(reply).toMatch(/^250 .*queued as ([0-9A-F]+)/);
      // Below offload.minAttachmentSize pass 1 never starts: the raw copy is the only one.
      expect(spoolCounts.memory - before.memory).toBe(1);
      const id = /queued as ([0-9A-F]+)/.exec(reply)![1]!;
      const stored = await ferry.storage.blobs.openRead(queueBlobKey(id));
      const chunks: Buffer[] = [];
      for await (const c of stored) chunks.push(c as Buffer);
      expect(stripFerryReceived(Buffer.concat(chunks)).equals(raw)).toBe(true);
    } finally {
      await upstream.start(port);
    }
  });
});

describe('the process-wide budget', () => {
  let ferry: TestFerry;
  let upstream: Upstream;
  beforeAll(async () => {
    upstream = await new Upstream().start();
    ferry = await startFerry({ relay: { url: upstream.url }, smtp: { memorySpoolLimit: '256KiB', memorySpoolBudget: '1MiB' } });
  });
  afterAll(async () => {
    await ferry?.stopAndClean();
    await upstream?.stop();
  });

  it('50 messages at once that need more than the budget: the rest spill to disk, and all are relayed byte for byte', async () => {
    const before = { ...spoolCounts };
    const msgs = Array.from({ length: 50 }, (_, i) => message(200_000 + i, `burst-${i}`));
    const replies = await Promise.all(msgs.map((m) => send(ferry.smtpPort, m)));
    for (const r of replies) expect(r).toMatch(/^250 /);
    // 50 copies of about 200 KB do not fit in 1 MiB at once: some went to disk. One copy each:
    // a message below offload.minAttachmentSize skips pass 1 and its working copy.
    expect(spoolCounts.disk - before.disk).toBeGreaterThan(0);
    expect(memoryBudget.peak).toBeLessThanOrEqual(1024 * 1024);
    expect(spoolCounts.memory - before.memory + spoolCounts.disk - before.disk).toBe(50);
    msgs.forEach((m, i) => expect(stripFerryReceived(relayedBySubject(upstream, `burst-${i}`)!).equals(m), `burst-${i}`).toBe(true));
    expect(memoryBudget.used).toBe(0);
  }, 120_000);
});
