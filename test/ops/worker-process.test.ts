import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueue, newQueueId, openStorage, queueBlobKey } from '../../storage/index.js';
import { tempDir } from '../helpers/ferry.js';
import { Upstream } from '../helpers/upstream.js';
import { spawnFerry } from './child.js';

// `ferry worker` on its own has no listening socket; it must stay up and do its work (here: the
// delivery queue) until it is told to stop, and then exit cleanly.

describe('ferry worker as its own process', () => {
  const dir = tempDir('ferry-worker-');
  let upstream: Upstream;

  beforeAll(async () => {
    upstream = await new Upstream().start();
  });
  afterAll(async () => {
    await upstream?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('stays up, delivers what is queued, and exits 0 on SIGTERM', async () => {
    // A message a gateway queued (the next hop was down), due now.
    const storage = await openStorage({ blobs: `file:${path.join(dir, 'blobs')}`, database: `sqlite:${path.join(dir, 'ferry.db')}` });
    const id = newQueueId();
    const raw = Buffer.from('From: alice@example.com\r\nTo: bob@example.net\r\nSubject: queued\r\n\r\nHello.\r\n');
    await storage.blobs.put(queueBlobKey(id), Readable.from([raw]));
    await enqueue(storage.db, {
      id,
      kind: 'message',
      transferId: null,
      sender: 'alice@example.com',
      recipients: [{ address: 'bob@example.net', state: 'pending' }],
      blobKey: queueBlobKey(id),
      size: raw.length,
      createdAt: Date.now(),
      nextAttemptAt: Date.now() + 3000,
      attempts: 1,
    });
    await storage.close();

    const worker = spawnFerry('worker', { FERRY_DATA_DIR: dir, FERRY_RELAY_URL: upstream.url, FERRY_RELAY_STARTTLS: 'off', FERRY_QUEUE_POLL_INTERVAL: '500ms', FERRY_LOG_LEVEL: 'info' }, dir);
    try {
      await worker.waitForLog((l) => l.msg === 'Ferry is running');
      // Still running well after start-up, with nothing listening to keep it alive.
      const early = await Promise.race([worker.exited, new Promise((r) => setTimeout(() => r('running'), 1500))]);
      expect(early).toBe('running');
      const deadline = Date.now() + 20_000;
      while (!upstream.messages.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      expect(upstream.messages.map((m) => m.to)).toEqual([['bob@example.net']]);
      worker.proc.kill('SIGTERM');
      expect(await worker.exited).toBe(0);
    } finally {
      worker.proc.kill('SIGKILL');
    }
  });
});
