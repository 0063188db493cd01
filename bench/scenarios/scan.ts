import crypto from 'node:crypto';
import { cpuSeconds, CLAMD_BINARY, startClamd, type BenchClamd } from '../lib/clamd.js';
import { findLandingLinks } from '../lib/download.js';
import { startFerryChild, type FerryChild } from '../lib/ferry-child.js';
import { sendOne } from '../lib/load.js';
import { generateMessage } from '../lib/message.js';
import { MiB, procAvailable, processTree, readTreeMemory, resetPeak } from '../lib/proc.js';
import { num, type ScenarioDef } from '../lib/registry.js';
import { environment, summarise, type ScenarioReport } from '../lib/report.js';
import { SinkServer } from '../lib/sink.js';

// The cost of malware scanning (issue 13, docs/performance.md "Scanning cost"): the 100 MiB
// message of the "large" scenario through two Ferry processes side by side, one with
// scan.engine: off and one with scan.engine: clamd against a private clamd the bench starts
// (bench/lib/clamd.ts), in interleaved rounds (the order flips every round, so a machine that
// gets busier or quieter weighs on both alike). Figures: client first byte to 250, the CPU time
// of Ferry and of clamd per message, clamd's share of it, Ferry's peak RSS; and as a reference,
// clamd alone: the same number of bytes streamed straight to it (INSTREAM at full speed), the
// time from the last byte to its answer being what a scanned message waits for at least.

const MB = 1e6;

function treeCpu(pid: number): number {
  let s = 0;
  for (const p of processTree(pid)) {
    try {
      s += cpuSeconds(p);
    } catch {
      // a worker that exited meanwhile
    }
  }
  return s;
}

export const scanScenario: ScenarioDef = {
  name: 'scan',
  summary: 'the 100 MiB message with scanning off and on (a private clamd), interleaved: time to 250, CPU of Ferry and clamd',
  inDefault: false,
  unavailable: () => (!procAvailable() ? 'no /proc: CPU and RSS cannot be read (Linux only)' : !CLAMD_BINARY ? 'clamd is not installed (apt-get install clamav-daemon)' : undefined),
  options: {
    'attachment-mib': { kind: 'number', min: 1, max: 4096, help: 'attachment size in MiB (default 100)' },
    rounds: { kind: 'int', min: 1, max: 50, help: 'interleaved rounds (default 5)' },
  },
  async run(o, ctx): Promise<ScenarioReport> {
    const started = new Date();
    const mib = num(o, 'attachment-mib', 100);
    const rounds = num(o, 'rounds', 5);
    const attachment = Math.round(mib * MiB);
    const wire = generateMessage({ attachmentSize: attachment }).wireSize;
    const maxSize = Math.ceil(wire * 1.2);
    const v = {
      offSeconds: [] as number[],
      onSeconds: [] as number[],
      offCpu: [] as number[],
      onCpu: [] as number[],
      clamdCpu: [] as number[],
      clamdShare: [] as number[],
      offRss: [] as number[],
      onRss: [] as number[],
      directAfterLast: [] as number[],
      directTotal: [] as number[],
    };
    const errors: string[] = [];
    let sink: SinkServer | undefined;
    let clamd: BenchClamd | undefined;
    let off: FerryChild | undefined;
    let on: FerryChild | undefined;
    let verdict = '';
    try {
      sink = await new SinkServer().start();
      clamd = await startClamd(attachment);
      const common = { relayUrl: sink.url, maxMessageSize: maxSize };
      off = await startFerryChild({ ...common, env: { FERRY_SCAN_ENGINE: 'off' } });
      on = await startFerryChild({ ...common, env: { FERRY_SCAN_ENGINE: 'clamd', FERRY_SCAN_CLAMD: clamd.address, FERRY_SCAN_TIMEOUT: '600s', FERRY_SCAN_RESCAN_PER_MINUTE: '0' } });
      ctx.log(`${mib} MiB attachment, ${(wire / MB).toFixed(1)} MB on the wire; Ferry scan off :${off.smtpPort} (pid ${off.pid}), scan on :${on.smtpPort} (pid ${on.pid}), clamd pid ${clamd.pid}`);

      const one = async (f: FerryChild, scanning: boolean, r: number) => {
        const label = scanning ? 'on ' : 'off';
        try {
          resetPeak(f.pid);
          const cpu0 = treeCpu(f.pid);
          const clamd0 = cpuSeconds(clamd!.pid);
          const before = sink!.messages.length;
          const t = await sendOne(f.smtpPort, generateMessage({ attachmentSize: attachment, seed: `scan-${r}` }));
          if (!t.reply.startsWith('250')) throw new Error(`Ferry answered ${t.reply}`);
          const cpu = treeCpu(f.pid) - cpu0;
          const clamdCpu = cpuSeconds(clamd!.pid) - clamd0;
          (scanning ? v.onSeconds : v.offSeconds).push(t.totalMs / 1000);
          (scanning ? v.onCpu : v.offCpu).push(cpu);
          (scanning ? v.onRss : v.offRss).push(readTreeMemory(f.pid).hwm / MB);
          if (scanning) {
            v.clamdCpu.push(clamdCpu);
            v.clamdShare.push((100 * clamdCpu) / (clamdCpu + cpu));
          }
          ctx.log(`round ${r}/${rounds} scan ${label}: ${(t.totalMs / 1000).toFixed(2)} s, Ferry CPU ${cpu.toFixed(2)} s${scanning ? `, clamd CPU ${clamdCpu.toFixed(2)} s` : ''}`);
          // Once: the file really was scanned (not "too large", not "unscanned"), as the landing page says.
          if (scanning && !verdict) {
            await sink!.waitFor(before + 1, 10_000);
            const [landing] = await findLandingLinks(sink!.messages[before]!.head, f.publicUrl);
            const page = landing ? await (await fetch(landing)).text() : '';
            verdict = /<p class="verdict[^"]*" data-verdict="([a-z_]+)">([^<]*)</.exec(page)?.slice(1).join(': ') ?? 'no verdict line';
            ctx.log(`landing page of the scanned message: ${verdict}`);
            if (!verdict.startsWith('clean')) throw new Error(`the scanned file was not checked whole: ${verdict}`);
          }
        } catch (err) {
          (scanning ? v.onSeconds : v.offSeconds).push(NaN);
          errors.push(`round ${r} scan ${label}: ${(err as Error).message}`);
          ctx.log(`round ${r}/${rounds} scan ${label} FAILED: ${(err as Error).message}`);
          if (f.exitReason()) throw new Error(`${f.exitReason()}\n${f.logTail()}`);
        }
      };
      // One message of the full size to each first (not measured): the first message of a
      // process pays for lazy imports and JIT warm-up, and clamd's first large stream for its
      // own allocations (2-3x the CPU of the next ones), which is not the steady cost of scanning.
      for (const f of [off, on]) {
        const w = await sendOne(f.smtpPort, generateMessage({ attachmentSize: attachment, seed: 'scan-warm-up' }));
        if (!w.reply.startsWith('250')) throw new Error(`warm-up: Ferry answered ${w.reply}\n${f.logTail()}`);
      }
      const direct = async (r: number) => {
        const d = await clamd!.scanDirect(crypto.randomBytes(attachment));
        if (!/OK$/.test(d.answer)) throw new Error(`clamd alone answered "${d.answer}"`);
        v.directAfterLast.push(d.answerS - d.sentS);
        v.directTotal.push(d.answerS);
        ctx.log(`round ${r}/${rounds} clamd alone: last byte sent after ${d.sentS.toFixed(2)} s, answer after ${d.answerS.toFixed(2)} s`);
      };
      for (let r = 1; r <= rounds; r++) {
        if (r % 2) {
          await one(off, false, r);
          await one(on, true, r);
        } else {
          await one(on, true, r);
          await one(off, false, r);
        }
        await direct(r).catch((err: Error) => errors.push(`round ${r} clamd alone: ${err.message}`));
      }
    } finally {
      await off?.stop();
      await on?.stop();
      await clamd?.stop();
      await sink?.stop();
    }

    return {
      scenario: 'scan',
      title: `Scanning cost: one message with a ${mib} MiB attachment (${(wire / MB).toFixed(0)} MB on the wire), scan.engine clamd vs off`,
      started: started.toISOString(),
      finished: new Date().toISOString(),
      environment: environment(),
      options: { attachmentMiB: mib, rounds, wireBytes: wire },
      metrics: [
        summarise({
          id: 'seconds',
          title: 'client first byte to 250',
          unit: 's',
          better: 'lower',
          subject: 'scan on (clamd)',
          series: [
            { system: 'scan on (clamd)', values: v.onSeconds },
            { system: 'scan off', values: v.offSeconds },
          ],
        }),
        summarise({
          id: 'cpu',
          title: 'CPU time per message (user + system)',
          unit: 's',
          better: 'lower',
          series: [
            { system: 'Ferry, scan on', values: v.onCpu },
            { system: 'clamd', values: v.clamdCpu },
            { system: 'Ferry, scan off', values: v.offCpu },
          ],
        }),
        summarise({
          id: 'clamd-alone',
          title: `clamd alone: ${mib} MiB streamed straight to it (INSTREAM, 64 KiB frames)`,
          unit: 's',
          better: 'lower',
          series: [
            { system: 'last byte to answer', values: v.directAfterLast },
            { system: 'first byte to answer', values: v.directTotal },
          ],
          note: 'clamd scans a stream only once it has all of it, so the first figure is the least a scanned message waits after its last byte',
        }),
        summarise({ id: 'clamd-share', title: "clamd's share of the CPU time of a scanned message (clamd / (clamd + Ferry))", unit: '%', better: 'lower', series: [{ system: 'clamd', values: v.clamdShare }] }),
        summarise({
          id: 'rss',
          title: "Ferry's peak RSS during the message",
          unit: 'MB',
          better: 'lower',
          series: [
            { system: 'scan on', values: v.onRss },
            { system: 'scan off', values: v.offRss },
          ],
        }),
      ],
      notes: [
        `clamd with a one-signature database written by the bench (no signature download here); with the full ClamAV database (millions of signatures) its scan costs more CPU per byte and about 1 GB more RAM. Verdict shown on the landing page of a scanned message: ${verdict || 'not read'}.`,
        'The scanner reads the file while it streams into the blob store; the 250 waits for its verdict.',
        ...errors,
      ],
      detail: { rounds: v },
    };
  },
};
