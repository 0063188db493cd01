import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startFerryChild, type FerryChild } from '../lib/ferry-child.js';
import { formatProfile, summariseProfileDir, type ProfileSummary } from '../lib/profile.js';
import { flag, num, type ScenarioDef } from '../lib/registry.js';
import { environment, summarise, type Metric, type ScenarioReport } from '../lib/report.js';
import { runSmtpSource, startPostfix, startSmtpSink, type PostfixInstance, type SmtpSink } from '../lib/services.js';

// Scenario 1, small messages: Postfix's smtp-source sends 10 KiB messages over 20 concurrent
// sessions; Postfix's smtp-sink counts what arrives. Three paths to the same sink, measured in
// interleaved rounds (Ferry, Postfix, raw, Ferry, Postfix, raw, ...):
//   Ferry   smtp-source -> Ferry (nothing to offload, relays to the sink) -> smtp-sink
//   Postfix smtp-source -> a private Postfix relay                         -> smtp-sink
//   raw     smtp-source -> smtp-sink (the ceiling of this load generator on this machine)
// The clock runs from smtp-source's start until the sink has counted every message, so
// Postfix's queue (it answers 250 before it delivers) is inside the figure, as Ferry's relay is.

type System = 'Ferry' | 'Postfix' | 'raw (smtp-source -> smtp-sink)';

export const smallScenario: ScenarioDef = {
  name: 'small',
  summary: 'small messages: 10 KiB x N over 20 sessions from smtp-source, counted at smtp-sink (Ferry vs Postfix vs raw)',
  inDefault: true,
  needs: ['postfix'],
  options: {
    messages: { kind: 'int', min: 100, max: 1_000_000, help: 'messages per round (default 5000)' },
    sessions: { kind: 'int', min: 1, max: 500, help: 'concurrent SMTP sessions (default 20)' },
    size: { kind: 'int', min: 100, max: 10_000_000, help: 'payload bytes per message (default 10240)' },
    rounds: { kind: 'int', min: 1, max: 50, help: 'interleaved rounds (default 3)' },
    warmup: { kind: 'int', min: 0, max: 1_000_000, help: 'messages each system takes before the rounds, not counted (default 3000)' },
    reuse: { kind: 'flag', help: 'reuse each connection for many messages (smtp-source -d) instead of one connection per message' },
    profile: { kind: 'flag', help: "run Ferry under node --cpu-prof and print where its time went (slows Ferry: its figures are then not comparable)" },
  },
  async run(o, ctx): Promise<ScenarioReport> {
    const started = new Date();
    const messages = num(o, 'messages', 5000);
    const sessions = num(o, 'sessions', 20);
    const size = num(o, 'size', 10_240);
    const rounds = num(o, 'rounds', 3);
    const reuse = flag(o, 'reuse');
    // NB V8 compiles Ferry's hot code with its optimising compiler only after a few thousand
    // messages: up to then Ferry runs at about two thirds of its steady rate (with --max-opt=2 it
    // stays there; docs/performance.md, "Warm-up"). A node in the mail path runs for weeks, so
    // the rounds measure the steady state; Postfix's rate is the same before and after.
    const warmup = num(o, 'warmup', 3000);
    const warmupRates: string[] = [];
    // 100 msg/s would be a failure worth hearing about, not a wait.
    const budgetMs = 60_000 + (messages / 100) * 1000;

    let sink: SmtpSink | undefined;
    let ferry: FerryChild | undefined;
    let postfix: PostfixInstance | undefined;
    const values: Record<System, number[]> = { Ferry: [], Postfix: [], 'raw (smtp-source -> smtp-sink)': [] };
    const errors: string[] = [];
    const profDir = flag(o, 'profile') ? fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-prof-')) : undefined;
    let profile: ProfileSummary | undefined;
    try {
      sink = await startSmtpSink();
      ferry = await startFerryChild({ relayUrl: `smtp://127.0.0.1:${sink.port}`, nodeFlags: profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [] });
      postfix = await startPostfix({ relayPort: sink.port, messageSizeLimit: 50_000_000 });
      const ports: Record<System, number> = { Ferry: ferry.smtpPort, Postfix: postfix.port, 'raw (smtp-source -> smtp-sink)': sink.port };
      ctx.log(`sink :${sink.port}, Ferry :${ferry.smtpPort} (pid ${ferry.pid}), Postfix :${postfix.port}; ${messages} x ${size} B, ${sessions} sessions, ${reuse ? 'connections reused' : 'one connection per message'}`);

      const one = async (system: System, count: number): Promise<number> => {
        const before = sink!.count();
        const t0 = performance.now();
        await runSmtpSource({ port: ports[system], sessions, messages: count, length: size, reuse, timeoutMs: budgetMs });
        await sink!.waitForCount(before + count, budgetMs);
        return count / ((performance.now() - t0) / 1000);
      };
      // Warm-up (V8's compilers, Postfix spawning its daemons, the sink's first sessions): not counted.
      if (warmup > 0) {
        for (const s of Object.keys(ports) as System[]) {
          const rate = await one(s, warmup);
          warmupRates.push(`${s} ${rate.toFixed(0)}`);
          ctx.log(`warm-up ${s}: ${rate.toFixed(0)} msg/s (not counted)`);
        }
      }
      for (let r = 1; r <= rounds; r++) {
        for (const s of Object.keys(ports) as System[]) {
          try {
            const rate = await one(s, messages);
            values[s].push(rate);
            ctx.log(`round ${r}/${rounds} ${s}: ${rate.toFixed(0)} msg/s`);
          } catch (err) {
            values[s].push(NaN);
            errors.push(`round ${r} ${s}: ${(err as Error).message}`);
            ctx.log(`round ${r}/${rounds} ${s}: FAILED ${(err as Error).message}`);
            if (s === 'Ferry' && ferry.exitReason()) throw new Error(`${ferry.exitReason()}\n${ferry.logTail()}`);
          }
        }
      }
    } finally {
      await ferry?.stop();
      await postfix?.stop();
      await sink?.stop();
      if (profDir) {
        profile = summariseProfileDir(profDir);
        if (!profile) errors.push('profile: the profiled Ferry wrote no .cpuprofile');
        fs.rmSync(profDir, { recursive: true, force: true });
      }
    }
    const metric: Metric = {
      id: 'rate',
      title: `${messages} messages of ${size} B, ${sessions} sessions${reuse ? ', connections reused' : ', a connection per message'}`,
      unit: 'msg/s',
      better: 'higher',
      subject: 'Ferry',
      target: reuse ? 'Ferry >= 5x Postfix' : 'Ferry >= 2x Postfix',
      series: (Object.keys(values) as System[]).map((s) => ({ system: s, values: values[s] })),
    };
    return {
      scenario: 'small',
      title: 'Scenario 1: small messages relayed (smtp-source -> system -> smtp-sink)',
      started: started.toISOString(),
      finished: new Date().toISOString(),
      environment: environment(),
      options: { messages, sessions, size, rounds, warmup, reuse, profiled: !!profDir },
      metrics: [summarise(metric)],
      notes: [
        `msg/s = messages / (time from smtp-source start until smtp-sink counted them all); a warm-up of ${warmup} messages per system is not counted${warmupRates.length ? ` (its msg/s: ${warmupRates.join(', ')})` : ''}.`,
        'Ferry: default settings (trusted networks 127.0.0.0/8), relay to smtp-sink; Postfix: stock settings, relayhost = the same smtp-sink.',
        ...(profDir ? ['Ferry ran under the CPU profiler: its rate here is lower than without it.'] : []),
        ...errors,
      ],
      detail: { profile },
      printable: profile ? [formatProfile(profile)] : [],
    };
  },
};
