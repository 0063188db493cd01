import { startFerryChild, type FerryChild } from '../lib/ferry-child.js';
import { sendOne } from '../lib/load.js';
import { generateMessage } from '../lib/message.js';
import { MiB, procAvailable, readTreeMemory } from '../lib/proc.js';
import { num, type ScenarioDef } from '../lib/registry.js';
import { environment, summarise, type Metric, type ScenarioReport } from '../lib/report.js';
import { runLargeMessage } from '../lib/scenario.js';
import { SinkServer } from '../lib/sink.js';

// Scenario 3, memory flatness: Ferry's memory must not grow with the attachment. The same
// message shape goes through a fresh Ferry process with attachments of 10 MiB, 100 MiB and
// 1 GiB (each end to end: SMTP in, relay, then the download checked byte for byte), and ten
// 100 MiB messages at once through another; the figure is the kernel's peak RSS (VmHWM) of the
// process over its whole life, and the ratio of the largest to the smallest. No reference
// system: the comparison is Ferry with itself.

export const PEAK_TARGET_MB = 150;
export const RATIO_TARGET = 1.3;

export const memoryScenario: ScenarioDef = {
  name: 'memory',
  summary: 'memory flatness: peak RSS for 10 MiB, 100 MiB, 1 GiB attachments and 10 concurrent 100 MiB messages',
  inDefault: true,
  unavailable: () => (procAvailable() ? undefined : 'no /proc: peak RSS cannot be read (Linux only)'),
  options: {
    sizes: { kind: 'string', help: 'attachment sizes in MiB, comma-separated (default 10,100,1024)' },
    concurrent: { kind: 'int', min: 0, max: 100, help: 'messages sent at once in the concurrent case (default 10, 0 to skip)' },
    'concurrent-mib': { kind: 'number', min: 1, max: 2048, help: 'attachment MiB of each concurrent message (default 100)' },
    runs: { kind: 'int', min: 1, max: 20, help: 'runs of each case (default 1)' },
  },
  async run(o, ctx): Promise<ScenarioReport> {
    const started = new Date();
    const sizes = typeof o.sizes === 'string' ? o.sizes.split(',').map((s) => Number(s.trim())) : [10, 100, 1024];
    if (!sizes.length || sizes.some((s) => !Number.isFinite(s) || s <= 0 || s > 16 * 1024)) throw new Error('--sizes expects MiB values such as 10,100,1024');
    sizes.sort((a, b) => a - b);
    const concurrent = num(o, 'concurrent', 10);
    const concMiB = num(o, 'concurrent-mib', 100);
    const runs = num(o, 'runs', 1);
    const peaks = new Map<string, number[]>();
    const push = (k: string, x: number) => peaks.set(k, [...(peaks.get(k) ?? []), x]);
    const errors: string[] = [];
    const detail: unknown[] = [];
    const concLabel = `${concurrent} x ${concMiB} MiB at once`;

    for (let run = 1; run <= runs; run++) {
      for (const size of sizes) {
        const label = `${size} MiB`;
        try {
          const r = await runLargeMessage({ attachmentSize: Math.round(size * MiB), relay: 'sink', probe: true, seed: `memory-${run}`, log: (m) => ctx.log(`[${label}] ${m}`) });
          if (!r.intact) throw new Error(`the downloaded file differs from the attachment (HTTP ${r.download.status}, ${r.download.bytes} bytes)`);
          push(label, r.memory.peak / 1e6);
          detail.push({ case: label, run, peak: r.memory.peak, startup: r.memory.startup, smtp: r.memory.smtp, download: r.memory.download, sendMs: r.sendMs, downloadMBps: r.download.MBps, probeAtPeak: r.probe?.atRssPeak });
        } catch (err) {
          push(label, NaN);
          errors.push(`${label} run ${run}: ${(err as Error).message}`);
          ctx.log(`[${label}] FAILED: ${(err as Error).message}`);
        }
      }
      if (concurrent > 0) {
        try {
          const peak = await concurrentPeak(concurrent, Math.round(concMiB * MiB), ctx.log);
          push(concLabel, peak / 1e6);
          detail.push({ case: concLabel, run, peak });
        } catch (err) {
          push(concLabel, NaN);
          errors.push(`${concLabel} run ${run}: ${(err as Error).message}`);
          ctx.log(`[${concLabel}] FAILED: ${(err as Error).message}`);
        }
      }
    }

    const median = (xs: number[] | undefined) => {
      const f = (xs ?? []).filter(Number.isFinite).sort((a, b) => a - b);
      return f.length ? f[Math.floor(f.length / 2)]! : NaN;
    };
    const small = `${sizes[0]} MiB`;
    const big = `${sizes.at(-1)} MiB`;
    const ratio = median(peaks.get(big)) / median(peaks.get(small));
    const rss: Metric = {
      id: 'peak-rss',
      title: "Ferry's peak RSS over the process's life (start-up, SMTP, relay, download)",
      unit: 'MB',
      better: 'lower',
      target: `every case < ${PEAK_TARGET_MB} MB`,
      series: [...peaks].map(([system, values]) => ({ system, values })),
    };
    const flat: Metric = {
      id: 'ratio',
      title: `flatness: peak RSS ${big} / ${small}`,
      unit: 'ratio',
      better: 'lower',
      target: `< ${RATIO_TARGET}`,
      series: [{ system: `${big} / ${small}`, values: [ratio] }],
    };
    return {
      scenario: 'memory',
      title: 'Scenario 3: memory flatness (Ferry peak RSS by attachment size)',
      started: started.toISOString(),
      finished: new Date().toISOString(),
      environment: environment(),
      options: { sizesMiB: sizes, concurrent, concurrentMiB: concMiB, runs },
      metrics: [summarise(rss), summarise(flat)],
      notes: [
        'Each case runs in a fresh Ferry process; the single-message cases include the download of the file (checked by SHA-256), the concurrent case the SMTP phase only.',
        ...errors,
      ],
      detail,
    };
  },
};

/** Peak RSS of a fresh Ferry while `n` messages with `size`-byte attachments arrive at the same time. */
async function concurrentPeak(n: number, size: number, log: (m: string) => void): Promise<number> {
  const sink = await new SinkServer(64 * 1024).start();
  let ferry: FerryChild | undefined;
  try {
    ferry = await startFerryChild({ relayUrl: sink.url });
    const t0 = performance.now();
    const results = await Promise.all(Array.from({ length: n }, (_, i) => sendOne(ferry!.smtpPort, generateMessage({ attachmentSize: size, seed: `concurrent-${i}` }))));
    const bad = results.filter((r) => !r.reply.startsWith('250'));
    if (bad.length) throw new Error(`${bad.length} of ${n} refused: ${bad[0]!.reply}`);
    await sink.waitFor(n, 30_000);
    const big = sink.messages.filter((m) => m.bytes > 1024 * 1024);
    if (big.length) throw new Error(`${big.length} relayed messages still carry their attachment`);
    const peak = readTreeMemory(ferry.pid).hwm;
    log(`[${n} x ${(size / MiB).toFixed(0)} MiB] all 250 after ${((performance.now() - t0) / 1000).toFixed(1)} s; peak RSS ${(peak / MiB).toFixed(1)} MiB`);
    return peak;
  } finally {
    await ferry?.stop();
    await sink.stop();
  }
}

