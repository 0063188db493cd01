import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startFerryChild, type FerryChild } from '../lib/ferry-child.js';
import { DiskSampler, sendOne } from '../lib/load.js';
import { generateMessage } from '../lib/message.js';
import { MiB, procAvailable, readTreeMemory, resetPeak } from '../lib/proc.js';
import { formatProfile, summariseProfileDir, type ProfileSummary } from '../lib/profile.js';
import { flag, num, type ScenarioDef } from '../lib/registry.js';
import { environment, summarise, type ScenarioReport } from '../lib/report.js';
import { startPostfix, startSmtpSink, type PostfixInstance, type SmtpSink } from '../lib/services.js';

// Scenario 2, one large message: a message with a 100 MiB attachment (1 GiB with --large), timed
// from the client's first byte (TCP connect) to the 250 after its data, through
//   Ferry    (filesystem driver) which stores the attachment and relays a small message, and
//   Postfix  which queues the whole message (its 250) and relays it whole to the same sink.
// Also: wire MB/s, Ferry's peak RSS (VmHWM reset per round), peak disk used above the start
// of the round (Ferry's data dir: blobs, spool, database; Postfix's queue), and for Postfix the
// time until the sink had the message. Then, unless --no-profile, one more Ferry run under
// `node --cpu-prof`, summarised by category (docs/performance.md, "where the time goes").

const MB = 1e6;

export const largeScenario: ScenarioDef = {
  name: 'large',
  summary: 'one message with a 100 MiB attachment (--large: 1 GiB), first byte to 250: Ferry (fs) vs Postfix; RSS, disk, CPU profile',
  inDefault: true,
  needs: ['postfix'],
  unavailable: () => (procAvailable() ? undefined : 'no /proc: peak RSS cannot be read (Linux only)'),
  options: {
    large: { kind: 'flag', help: 'a 1 GiB attachment instead of 100 MiB' },
    full: { kind: 'flag', help: 'the full figures: same as --large for this scenario' },
    'attachment-mib': { kind: 'number', min: 1, max: 4096, help: 'attachment size in MiB (default 100)' },
    rounds: { kind: 'int', min: 1, max: 50, help: 'interleaved rounds (default 5)' },
    'no-profile': { kind: 'flag', help: 'skip the profiled Ferry run' },
  },
  async run(o, ctx): Promise<ScenarioReport> {
    const started = new Date();
    const mib = flag(o, 'large') || flag(o, 'full') ? 1024 : num(o, 'attachment-mib', 100);
    const rounds = num(o, 'rounds', 5);
    const attachment = Math.round(mib * MiB);
    const wire = generateMessage({ attachmentSize: attachment }).wireSize;
    const maxSize = Math.ceil(wire * 1.2);

    let sink: SmtpSink | undefined;
    let ferry: FerryChild | undefined;
    let postfix: PostfixInstance | undefined;
    const v = {
      ferrySeconds: [] as number[],
      postfixSeconds: [] as number[],
      postfixDeliveredSeconds: [] as number[],
      ferryRss: [] as number[],
      ferryDisk: [] as number[],
      postfixDisk: [] as number[],
    };
    const errors: string[] = [];
    let ferrySummary: unknown;
    let profile: ProfileSummary | undefined;
    try {
      sink = await startSmtpSink();
      ferry = await startFerryChild({ relayUrl: `smtp://127.0.0.1:${sink.port}`, maxMessageSize: maxSize });
      postfix = await startPostfix({ relayPort: sink.port, messageSizeLimit: maxSize + 1_000_000 });
      ctx.log(`${mib} MiB attachment, ${(wire / MB).toFixed(1)} MB on the wire; Ferry :${ferry.smtpPort} (pid ${ferry.pid}), Postfix :${postfix.port}, sink :${sink.port}`);
      const dataDir = path.join(ferry.dir, 'data');

      for (let r = 1; r <= rounds; r++) {
        // Ferry
        try {
          resetPeak(ferry.pid);
          const disk = new DiskSampler([dataDir]).start();
          const t = await sendOne(ferry.smtpPort, generateMessage({ attachmentSize: attachment, seed: `large-${r}` }));
          const peakDisk = disk.stop();
          if (!t.reply.startsWith('250')) throw new Error(`Ferry answered ${t.reply}`);
          v.ferrySeconds.push(t.totalMs / 1000);
          v.ferryRss.push(readTreeMemory(ferry.pid).hwm / MB);
          v.ferryDisk.push(peakDisk / MB);
          ctx.log(`round ${r}/${rounds} Ferry: ${(t.totalMs / 1000).toFixed(2)} s, peak RSS ${v.ferryRss.at(-1)!.toFixed(0)} MB, peak disk +${(peakDisk / MB).toFixed(0)} MB`);
        } catch (err) {
          v.ferrySeconds.push(NaN);
          v.ferryRss.push(NaN);
          v.ferryDisk.push(NaN);
          errors.push(`round ${r} Ferry: ${(err as Error).message}`);
          ctx.log(`round ${r}/${rounds} Ferry FAILED: ${(err as Error).message}`);
          if (ferry.exitReason()) throw new Error(`${ferry.exitReason()}\n${ferry.logTail()}`);
        }
        // Postfix
        try {
          const before = sink.count();
          const disk = new DiskSampler([postfix.queueDir]).start();
          const t0 = performance.now();
          const t = await sendOne(postfix.port, generateMessage({ attachmentSize: attachment, seed: `large-${r}` }));
          if (!t.reply.startsWith('250')) throw new Error(`Postfix answered ${t.reply}`);
          await sink.waitForCount(before + 1, 120_000 + (wire / (5 * MB)) * 1000);
          const delivered = (performance.now() - t0) / 1000;
          const peakDisk = disk.stop();
          v.postfixSeconds.push(t.totalMs / 1000);
          v.postfixDeliveredSeconds.push(delivered);
          v.postfixDisk.push(peakDisk / MB);
          ctx.log(`round ${r}/${rounds} Postfix: 250 after ${(t.totalMs / 1000).toFixed(2)} s, at the sink after ${delivered.toFixed(2)} s, peak disk +${(peakDisk / MB).toFixed(0)} MB`);
        } catch (err) {
          v.postfixSeconds.push(NaN);
          v.postfixDeliveredSeconds.push(NaN);
          v.postfixDisk.push(NaN);
          errors.push(`round ${r} Postfix: ${(err as Error).message}\n${postfix.logTail()}`);
          ctx.log(`round ${r}/${rounds} Postfix FAILED: ${(err as Error).message}`);
        }
      }
      ferrySummary = ferry.logs(/: sent$/).at(-1);
      await ferry.stop();
      ferry = undefined;

      if (!flag(o, 'no-profile')) {
        const profDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-prof-'));
        try {
          ferry = await startFerryChild({ relayUrl: `smtp://127.0.0.1:${sink.port}`, maxMessageSize: maxSize, nodeFlags: ['--cpu-prof', '--cpu-prof-dir', profDir] });
          const message = generateMessage({ attachmentSize: attachment, seed: 'large-profile' });
          const fromUs = Number(process.hrtime.bigint() / 1000n);
          const t = await sendOne(ferry.smtpPort, message);
          const toUs = Number(process.hrtime.bigint() / 1000n);
          await ferry.stop();
          ferry = undefined;
          profile = summariseProfileDir(profDir, { fromUs, toUs });
          if (!profile) throw new Error('the profiled Ferry wrote no .cpuprofile');
          profile.fromMessage = true;
          profile.sendSeconds = t.totalMs / 1000;
          ctx.log(`profile: ${(t.totalMs / 1000).toFixed(2)} s under the profiler; CPU by category written to the report`);
        } catch (err) {
          errors.push(`profile: ${(err as Error).message}`);
        } finally {
          fs.rmSync(profDir, { recursive: true, force: true });
        }
      }
    } finally {
      await ferry?.stop();
      await postfix?.stop();
      await sink?.stop();
    }

    const mbps = (secs: number[]) => secs.map((s) => wire / MB / s);
    return {
      scenario: 'large',
      title: `Scenario 2: one message with a ${mib} MiB attachment (${(wire / MB).toFixed(0)} MB on the wire)`,
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
          subject: 'Ferry',
          target: 'Ferry faster than Postfix (ratio < 1)',
          series: [
            { system: 'Ferry', values: v.ferrySeconds },
            { system: 'Postfix (250 = queued)', values: v.postfixSeconds },
            { system: 'Postfix (at the sink)', values: v.postfixDeliveredSeconds },
          ],
        }),
        summarise({
          id: 'mbps',
          title: 'wire data rate, first byte to 250',
          unit: 'MB/s',
          better: 'higher',
          subject: 'Ferry',
          series: [
            { system: 'Ferry', values: mbps(v.ferrySeconds) },
            { system: 'Postfix (250 = queued)', values: mbps(v.postfixSeconds) },
          ],
        }),
        summarise({ id: 'rss', title: "Ferry's peak RSS during the message (VmHWM reset before it)", unit: 'MB', better: 'lower', series: [{ system: 'Ferry', values: v.ferryRss }] }),
        summarise({
          id: 'disk',
          title: 'peak disk used during the message',
          unit: 'MB',
          better: 'lower',
          subject: 'Ferry',
          series: [
            { system: 'Ferry', values: v.ferryDisk },
            { system: 'Postfix', values: v.postfixDisk },
          ],
          note: 'Ferry keeps the attachment (that is its job); Postfix only until it has relayed the message',
        }),
      ],
      notes: [
        'Ferry answers 250 after the attachment is stored and the rewritten message relayed; Postfix answers 250 once the whole message is in its queue (fsync), and relays it afterwards.',
        ...errors,
      ],
      detail: { ferrySummary, profile },
      printable: profile ? [formatProfile(profile)] : [],
    };
  },
};
