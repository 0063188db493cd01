import fs from 'node:fs';
import path from 'node:path';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeBuffers } from '../../gateway/decode-buffers.js';
import { memoryBudget, spoolCounts } from '../../gateway/spool.js';
import { startFerry, type TestFerry } from '../helpers/ferry.js';
import { download, fileLinks, pseudoRandom, sha256 } from '../helpers/mail.js';
import { stripFerryReceived } from '../helpers/received.js';
import { sendOne as send } from '../helpers/smtp-client.js';
import { Upstream } from '../helpers/upstream.js';

// An attachment candidate waits (gateway/offloader.ts) until its decoded size reaches
// offload.minAttachmentSize. What it has sent so far is held in a working copy of the spool:
// in memory up to smtp.memorySpoolLimit, on disk past it, so that many large attachments
// arriving at once do not each hold the first threshold's worth of bytes in memory. Either way a
// part that stays below the threshold is relayed byte for byte and one that reaches it is stored
// whole.

const LIMIT = 64 * 1024;
const THRESHOLD = 1_000_000;

function compose(subject: string, attachment: Buffer, text = 'The file is attached.'): Promise<Buffer> {
  return new MailComposer({
    from: 'alice@example.com',
    to: 'bob@example.net',
    subject,
    text,
    attachments: [{ filename: `${subject}.bin`, content: attachment }],
  })
    .compile()
    .build();
}

describe('attachment candidates held in the spool', () => {
  let ferry: TestFerry;
  let upstream: Upstream;
  beforeAll(async () => {
    upstream = await new Upstream().start();
    ferry = await startFerry({ relay: { url: upstream.url, poolSize: 0 }, smtp: { memorySpoolLimit: LIMIT }, offload: { minAttachmentSize: THRESHOLD } });
  });
  afterAll(async () => {
    await ferry?.stopAndClean();
    await upstream?.stop();
  });

  const relayed = (subject: string) => upstream.messages.find((m) => m.raw.includes(`Subject: ${subject}\r\n`))?.raw;

  it('a part that stays below the threshold waits on disk past smtp.memorySpoolLimit and is relayed byte for byte', async () => {
    const raw = await compose('below-threshold', pseudoRandom(THRESHOLD - 1000, 'below'));
    const before = { ...spoolCounts };
    memoryBudget.peak = memoryBudget.used;
    expect(await send(ferry.smtpPort, raw)).toMatch(/^250 /);
    // The raw copy, the pass-1 output and the held part: all three past the limit.
    expect(spoolCounts.disk - before.disk).toBe(3);
    // What stayed in memory meanwhile was within the limit per copy.
    expect(memoryBudget.peak).toBeLessThanOrEqual(3 * LIMIT);
    expect(stripFerryReceived(relayed('below-threshold')!).equals(raw)).toBe(true);
    expect(fs.readdirSync(path.join(ferry.dir, 'spool'))).toEqual([]);
    expect(memoryBudget.used).toBe(0);
  });

  it('a small part waits in memory and is relayed byte for byte', async () => {
    // A long text before it takes the message past the limit, so that the MIME pass runs.
    const raw = await compose('small-part', pseudoRandom(20_000, 'small'), 'A line of the letter.\r\n'.repeat(5000));
    expect(raw.length).toBeGreaterThan(2 * LIMIT);
    const before = { ...spoolCounts };
    expect(await send(ferry.smtpPort, raw)).toMatch(/^250 /);
    // The held part in memory; the raw copy and the pass-1 output, past the limit, on disk.
    expect(spoolCounts.memory - before.memory).toBe(1);
    expect(spoolCounts.disk - before.disk).toBe(2);
    expect(stripFerryReceived(relayed('small-part')!).equals(raw)).toBe(true);
    expect(memoryBudget.used).toBe(0);
  });

  it('a part that reaches the threshold is stored whole from the held bytes and what follows them, decoded into buffers the file store gives back', async () => {
    const file = pseudoRandom(3 * THRESHOLD + 12_345, 'above');
    // Buffers come back to gateway/decode-buffers.ts once written; without that none are kept.
    while (decodeBuffers.kept) decodeBuffers.take();
    const raw = await compose('above-threshold', file);
    expect(await send(ferry.smtpPort, raw)).toMatch(/^250 /);
    const out = relayed('above-threshold')!;
    expect(out.length).toBeLessThan(64 * 1024);
    const [link] = await fileLinks(out, ferry.publicUrl);
    const got = await download(link!);
    expect(got.status).toBe(200);
    expect(sha256(got.body)).toBe(sha256(file));
    expect(decodeBuffers.kept).toBeGreaterThan(0);
    expect(fs.readdirSync(path.join(ferry.dir, 'spool'))).toEqual([]);
    expect(memoryBudget.used).toBe(0);
  });
});
