import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { ROOT } from '../lib/build.js';
import { MiB, procAvailable } from '../lib/proc.js';
import { runLargeMessage, type LargeMessageResult, type RelayKind } from '../lib/scenario.js';
import { showSpread, spread, table, type Spread } from '../lib/stats.js';

// "Memory flatness": the requirement is that Ferry's memory does not grow with the attachment.
// The same message shape is sent with attachments of very different sizes, each through a
// fresh Ferry process, and the peak RSS of each is compared. Flat means the largest/smallest
// ratio stays near 1; the absolute bound (peak < 200 MiB with a 300 MiB attachment) is checked
// too.

export const PEAK_BOUND = 200 * MiB;
const BOUND_AT = 300 * MiB;

export interface MemoryArgs {
  sizesMiB: number[];
  runs: number;
  relay: RelayKind;
  probe: boolean;
}

interface SizeSummary {
  attachmentMiB: number;
  wireBytes: number;
  peakRss: Spread;
  smtpPeakRss: Spread;
  downloadPeakRss: Spread;
  startupRss: Spread;
  sendSeconds: Spread;
  sendMBps: Spread;
  downloadMBps: Spread;
  failures: number;
}

export async function memoryScenario(args: MemoryArgs): Promise<number> {
  if (!procAvailable()) {
    console.error('bench memory: /proc is not available here (Linux only): peak RSS cannot be read');
    return 2;
  }
  const started = new Date();
  const runs: ({ run: number; attachmentMiB: number } & (LargeMessageResult | { error: string }))[] = [];
  console.log(`memory flatness: attachments of ${args.sizesMiB.map((s) => `${s} MiB`).join(', ')}; ${args.runs} run${args.runs === 1 ? '' : 's'} each; next hop: ${args.relay}\n`);

  // Sizes are interleaved within each run so that a machine slowing down over time (another job,
  // thermal throttling) shifts every size alike instead of skewing the largest.
  for (let run = 1; run <= args.runs; run++) {
    for (const sizeMiB of args.sizesMiB) {
      const label = `[run ${run}/${args.runs}, ${sizeMiB} MiB]`;
      try {
        const r = await runLargeMessage({
          attachmentSize: Math.round(sizeMiB * MiB),
          relay: args.relay,
          probe: args.probe,
          seed: `bench-${run}`,
          log: (m) => console.log(`${label} ${m}`),
        });
        if (!r.intact) console.error(`${label} DOWNLOAD MISMATCH: sent ${r.sha256Sent}, got ${r.sha256Downloaded} (${r.download.bytes} bytes, HTTP ${r.download.status})`);
        runs.push({ run, attachmentMiB: sizeMiB, ...r });
      } catch (err) {
        console.error(`${label} FAILED: ${(err as Error).message}`);
        runs.push({ run, attachmentMiB: sizeMiB, error: (err as Error).message });
      }
    }
  }

  const ok = (r: (typeof runs)[number]): r is { run: number; attachmentMiB: number } & LargeMessageResult => !('error' in r) && r.intact;
  const summary: SizeSummary[] = args.sizesMiB.map((sizeMiB) => {
    const all = runs.filter((r) => r.attachmentMiB === sizeMiB);
    const good = all.filter(ok);
    return {
      attachmentMiB: sizeMiB,
      wireBytes: good[0]?.wireSize ?? NaN,
      peakRss: spread(good.map((r) => r.memory.peak)),
      smtpPeakRss: spread(good.map((r) => r.memory.smtp.peak)),
      downloadPeakRss: spread(good.map((r) => r.memory.download.peak)),
      startupRss: spread(good.map((r) => r.memory.startup.end)),
      sendSeconds: spread(good.map((r) => r.sendMs / 1000)),
      sendMBps: spread(good.map((r) => r.sendMBps)),
      downloadMBps: spread(good.map((r) => r.download.MBps)),
      failures: all.length - good.length,
    };
  });

  const m = (x: number) => (x / MiB).toFixed(1);
  const f1 = (x: number) => x.toFixed(1);
  const f0 = (x: number) => x.toFixed(0);
  console.log(
    `\n${table(
      ['attachment', 'wire MiB', 'peak RSS MiB', 'SMTP peak', 'download peak', 'start-up RSS', 'send s', 'send MB/s', 'download MB/s', 'failed'],
      summary.map((s) => [
        `${s.attachmentMiB} MiB`,
        Number.isNaN(s.wireBytes) ? '-' : m(s.wireBytes),
        showSpread(s.peakRss, m),
        showSpread(s.smtpPeakRss, m),
        showSpread(s.downloadPeakRss, m),
        showSpread(s.startupRss, m),
        showSpread(s.sendSeconds, f1),
        showSpread(s.sendMBps, f0),
        showSpread(s.downloadMBps, f0),
        String(s.failures),
      ]),
    )}`,
  );
  console.log(
    '\npeak RSS: VmHWM of the Ferry process over its life (start-up, SMTP, download); SMTP/download peak: VmHWM reset at the start of that phase.' +
      '\nsend: DATA command to the final 250 (Ferry has stored the attachment and relayed the rewritten message); MB = 10^6 bytes of wire data.' +
      (args.runs > 1 ? '\nfigures are median (min-max) over the runs.' : ''),
  );

  const measured = summary.filter((s) => s.peakRss.n);
  const smallest = measured[0];
  const largest = measured.at(-1);
  const ratio = smallest && largest ? largest.peakRss.median / smallest.peakRss.median : NaN;
  const smtpRatio = smallest && largest ? largest.smtpPeakRss.median / smallest.smtpPeakRss.median : NaN;
  if (smallest && largest && smallest !== largest) {
    console.log(`\nflatness: peak RSS ${largest.attachmentMiB} MiB / ${smallest.attachmentMiB} MiB = ${ratio.toFixed(2)} (SMTP phase alone: ${smtpRatio.toFixed(2)})`);
  }
  let boundOk = true;
  for (const s of measured.filter((x) => x.attachmentMiB * MiB >= BOUND_AT)) {
    const pass = s.peakRss.max < PEAK_BOUND;
    boundOk &&= pass;
    console.log(`requirement: ${s.attachmentMiB} MiB attachment, peak RSS ${m(s.peakRss.max)} MiB (worst run) < ${m(PEAK_BOUND)} MiB: ${pass ? 'PASS' : 'FAIL'}`);
  }

  const failures = runs.filter((r) => !ok(r)).length;
  const out = {
    scenario: 'memory',
    started: started.toISOString(),
    finished: new Date().toISOString(),
    environment: environment(),
    options: args,
    bound: { peakRssBytes: PEAK_BOUND, atAttachmentBytes: BOUND_AT, pass: boundOk },
    flatness: { largestOverSmallestPeak: ratio, largestOverSmallestSmtpPeak: smtpRatio },
    summary,
    runs,
  };
  const file = writeResults('memory', started, out);
  console.log(`\nresults: ${path.relative(process.cwd(), file)}`);
  return failures || !boundOk ? 1 : 0;
}

function environment() {
  let commit: string | undefined;
  let dirty: boolean | undefined;
  try {
    commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8', timeout: 5000 }).trim();
    dirty = execFileSync('git', ['status', '--porcelain'], { cwd: ROOT, encoding: 'utf8', timeout: 5000 }).trim() !== '';
  } catch {
    /* not a git checkout */
  }
  return {
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    totalMemBytes: os.totalmem(),
    commit,
    dirty,
  };
}

/** bench/results/<name>-<UTC date and time>.json, written under .tmp and renamed so a reader never sees half a file. */
function writeResults(name: string, when: Date, data: unknown): string {
  const dir = path.join(ROOT, 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  const stamp = when.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
  const file = path.join(dir, `${name}-${stamp}.json`);
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(data, null, 2) + '\n');
  fs.renameSync(`${file}.tmp`, file);
  return file;
}
