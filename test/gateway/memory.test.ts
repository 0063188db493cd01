import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../../bench/lib/build.js';
import { MiB, procAvailable } from '../../bench/lib/proc.js';
import { mib, runLargeMessage, type LargeMessageResult } from '../../bench/lib/scenario.js';

// The product requirement "memory stays bounded whatever the attachment size", checked the way
// an admin would see it: a real `ferry start` process (from dist/, rebuilt if stale), one
// message with a 300 MiB attachment over SMTP, and the kernel's own peak-RSS figure (VmHWM) of
// that process, which includes start-up, the SMTP transaction and the download of the file.
// Sending, relaying and downloading all stream, so the test's own memory stays small; the same
// code runs `npm run bench`, which reports the figures for several sizes.

const HAS_PROC = procAvailable();
const ATTACHMENT = 300 * MiB;
const PEAK_BOUND = 200 * MiB;

if (!HAS_PROC) console.warn('test/memory.test.ts: skipped, /proc/self/status does not exist here (peak RSS is read from /proc, Linux only)');

/** Everything measured, for the failure message: which phase peaked tells where to look. */
function explain(r: LargeMessageResult): string {
  const p = r.probe?.atRssPeak;
  return [
    `peak RSS ${mib(r.memory.peak)} (start-up ${mib(r.memory.startup.peak)}, SMTP phase ${mib(r.memory.smtp.peak)}, download phase ${mib(r.memory.download.peak)}${r.memory.perPhase ? '' : ', phases not separable here'})`,
    p ? `at the peak: heapUsed ${mib(p.heapUsed)}, heapTotal ${mib(p.heapTotal)}, external ${mib(p.external)}, arrayBuffers ${mib(p.arrayBuffers)}` : '',
    `send ${(r.sendMs / 1000).toFixed(1)} s (${r.sendMBps.toFixed(0)} MB/s), relayed ${r.relayedBytes} bytes, download HTTP ${r.download.status} ${r.download.bytes} bytes`,
  ]
    .filter(Boolean)
    .join('\n');
}

describe('memory stays bounded whatever the attachment size', () => {
  beforeAll(async () => {
    if (HAS_PROC) await ensureBuilt();
  }, 180_000);

  it.skipIf(!HAS_PROC)(
    `a 300 MiB attachment passes through a Ferry process whose peak RSS stays under 200 MiB${HAS_PROC ? '' : ' (skipped: no /proc, Linux only)'}`,
    async () => {
      const r = await runLargeMessage({ attachmentSize: ATTACHMENT, relay: 'sink', probe: true, seed: 'memory-test' });

      expect(r.smtpReply).toMatch(/^250 /);
      // The attachment left the message: what the next hop got is a few KiB, not 400 MiB.
      expect(r.relayedBytes).toBeLessThan(64 * 1024);
      expect(r.links).toHaveLength(1);
      expect(r.download.status).toBe(200);
      expect(r.download.bytes).toBe(ATTACHMENT);
      expect(r.sha256Downloaded).toBe(r.sha256Sent);
      expect(r.memory.peak, explain(r)).toBeLessThan(PEAK_BOUND);
    },
    240_000,
  );
});
