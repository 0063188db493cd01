import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Joiner } from '@zone-eu/mailsplit';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import { describe, expect, it } from 'vitest';
import { BulkChunker, BulkSplitter } from '../../gateway/bulk-splitter.js';
import { queueObjects, STAGE_OBJECTS } from '../../gateway/stage-queues.js';
import { pseudoRandom } from '../helpers/mail.js';

// A message's pipeline waits for its slowest stage, usually a file write. What it holds in
// memory meanwhile is what every stage queues; with Node's default of 16 objects a side, about
// 3 MB per message, and ten or twenty messages at once made that the largest part of a worker's
// live buffers (gateway/stage-queues.ts).

const LIMITS = { maxDepth: 50, maxParts: 1000, maxHeadChain: 1000 };
const CHUNK = 64 * 1024;

async function composed(): Promise<Buffer> {
  return new MailComposer({
    from: 'alice@example.com',
    to: 'bob@example.net',
    subject: 'large',
    text: 'The file is attached.',
    attachments: [{ filename: 'large.bin', content: pseudoRandom(12 * 1024 * 1024, 'stage-queues') }],
  })
    .compile()
    .build();
}

/** The message in socket-sized chunks, counting what the pipeline has taken. */
function source(message: Buffer, taken: { bytes: number }): Readable {
  let at = 0;
  return new Readable({
    highWaterMark: CHUNK,
    read() {
      if (at >= message.length) return void this.push(null);
      const chunk = message.subarray(at, at + CHUNK);
      at += chunk.length;
      taken.bytes = at;
      this.push(chunk);
    },
  });
}

describe('bytes a message holds while its file write is slow', () => {
  it('the MIME pass takes less than a megabyte from the socket while the disk does not take its first write', async () => {
    const message = await composed();
    const taken = { bytes: 0 };
    let release: (() => void) | undefined;
    let written = 0;
    // The disk: its first write does not complete until the test says so.
    const disk = new Writable({
      write(chunk: Buffer, _enc, cb) {
        written += chunk.length;
        if (!release) release = cb;
        else cb();
      },
    });
    const done = pipeline(source(message, taken), new BulkChunker(32 * 1024), new BulkSplitter({ ignoreEmbedded: true }, LIMITS), queueObjects(new Joiner(), 'writable'), disk);
    await new Promise((r) => setTimeout(r, 300));
    // Node's default (16 objects a side) took 1.25 MiB here; four a side take 0.5 MiB.
    expect(taken.bytes).toBeLessThan(1024 * 1024);
    expect(taken.bytes).toBeGreaterThan(0);
    release!();
    await done;
    // Nothing lost to the waiting: the message arrives whole.
    expect(written).toBe(message.length);
  });

  it('sets the queue of a stream whose options are fixed by its library', () => {
    const joiner = queueObjects(new Joiner(), 'writable');
    const splitter = new BulkSplitter({}, LIMITS);
    expect(joiner.writableHighWaterMark).toBe(STAGE_OBJECTS);
    expect(splitter.readableHighWaterMark).toBe(STAGE_OBJECTS);
    expect(() => queueObjects(new Readable({ read() {} }), 'writable')).toThrow(/no writable side/);
  });
});
