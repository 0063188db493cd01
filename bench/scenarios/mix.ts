import { startFerryChild, type FerryChild } from '../lib/ferry-child.js';
import { runLoad } from '../lib/load.js';
import { generateMessage, type GeneratedMessage } from '../lib/message.js';
import { procAvailable, readTreeMemory, resetPeak } from '../lib/proc.js';
import { flag, num, type ScenarioDef } from '../lib/registry.js';
import { environment, summarise, type ScenarioReport } from '../lib/report.js';
import { startPostfix, startSmtpSink, type PostfixInstance, type SmtpSink } from '../lib/services.js';

// Scenario 5, offload mix: a realistic day of mail in miniature. 70 % of the messages have no
// attachment (2-20 KB of text), 25 % a 1-5 MB attachment (under Ferry's default 5 MB threshold
// most of these pass through whole), 5 % a 20-200 MB attachment (offloaded). The bench's own
// client sends them over 20 sessions (each session reuses its connection) to Ferry and to a
// private Postfix, both relaying to the same smtp-sink, in interleaved rounds; the clock stops
// when the sink has counted every message. The list is drawn from a fixed seed, so every round
// and every system gets the same messages in the same order.

const MB = 1e6;

/** mulberry32: a small seeded PRNG, so the mix is the same on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface MixItem {
  kind: 'text' | 'medium' | 'large';
  bytes: number;
}

/** Exactly 70/25/5 % of `n` (rounded), sizes uniform in their class, in a shuffled order. */
export function mixList(n: number, seed = 7): MixItem[] {
  const rnd = prng(seed);
  const large = Math.round(n * 0.05);
  const medium = Math.round(n * 0.25);
  const items: MixItem[] = [];
  const between = (a: number, b: number) => Math.round(a + rnd() * (b - a));
  for (let i = 0; i < large; i++) items.push({ kind: 'large', bytes: between(20 * MB, 200 * MB) });
  for (let i = 0; i < medium; i++) items.push({ kind: 'medium', bytes: between(1 * MB, 5 * MB) });
  while (items.length < n) items.push({ kind: 'text', bytes: between(2_000, 20_000) });
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

function factories(items: MixItem[]): (() => GeneratedMessage)[] {
  return items.map((it, i) => () => (it.kind === 'text' ? generateMessage({ attachmentSize: 0, textOnly: it.bytes }) : generateMessage({ attachmentSize: it.bytes, seed: `mix-${i}` })));
}

export const mixScenario: ScenarioDef = {
  name: 'mix',
  summary: 'offload mix: N messages (70 % text, 25 % 1-5 MB, 5 % 20-200 MB) over 20 sessions, Ferry vs Postfix: msgs/s and MB/s',
  inDefault: true,
  needs: ['postfix'],
  options: {
    messages: { kind: 'int', min: 20, max: 100_000, help: 'messages per round (default 200; the full figure is 1000)' },
    full: { kind: 'flag', help: 'the full figure: 1000 messages per round' },
    sessions: { kind: 'int', min: 1, max: 200, help: 'concurrent sessions (default 20)' },
    rounds: { kind: 'int', min: 1, max: 20, help: 'interleaved rounds (default 3)' },
  },
  async run(o, ctx): Promise<ScenarioReport> {
    const started = new Date();
    const n = flag(o, 'full') ? 1000 : num(o, 'messages', 200);
    const sessions = num(o, 'sessions', 20);
    const rounds = num(o, 'rounds', 3);
    const items = mixList(n);
    const wire = items.reduce((s, it) => s + (it.kind === 'text' ? it.bytes : it.bytes * 1.37), 0);
    // 5 MB/s would be a failure worth hearing about, not a wait.
    const budgetMs = 120_000 + (wire / (5 * MB)) * 1000;

    let sink: SmtpSink | undefined;
    let ferry: FerryChild | undefined;
    let postfix: PostfixInstance | undefined;
    const v = { Ferry: { rate: [] as number[], mbps: [] as number[] }, Postfix: { rate: [] as number[], mbps: [] as number[] }, ferryRss: [] as number[] };
    const errors: string[] = [];
    try {
      sink = await startSmtpSink();
      ferry = await startFerryChild({ relayUrl: `smtp://127.0.0.1:${sink.port}` });
      postfix = await startPostfix({ relayPort: sink.port, messageSizeLimit: 400_000_000 });
      const ports = { Ferry: ferry.smtpPort, Postfix: postfix.port };
      ctx.log(`${n} messages (${items.filter((i) => i.kind === 'large').length} large, ${items.filter((i) => i.kind === 'medium').length} medium), about ${(wire / MB).toFixed(0)} MB on the wire per round; ${sessions} sessions`);
      for (let r = 1; r <= rounds; r++) {
        for (const sys of ['Ferry', 'Postfix'] as const) {
          try {
            if (sys === 'Ferry') resetPeak(ferry.pid);
            const before = sink.count();
            const t0 = performance.now();
            const res = await runLoad(ports[sys], factories(items), sessions, budgetMs);
            if (res.refused.length || res.errors.length) throw new Error(`${res.refused.length} refused, ${res.errors.length} errors: ${res.refused[0]?.reply ?? res.errors[0]}`);
            await sink.waitForCount(before + res.sent, budgetMs);
            const secs = (performance.now() - t0) / 1000;
            v[sys].rate.push(res.sent / secs);
            v[sys].mbps.push(res.wireBytes / MB / secs);
            if (sys === 'Ferry') v.ferryRss.push(readTreeMemory(ferry.pid).hwm / MB);
            ctx.log(`round ${r}/${rounds} ${sys}: ${res.sent} messages in ${secs.toFixed(1)} s: ${(res.sent / secs).toFixed(1)} msg/s, ${(res.wireBytes / MB / secs).toFixed(0)} MB/s`);
          } catch (err) {
            v[sys].rate.push(NaN);
            v[sys].mbps.push(NaN);
            if (sys === 'Ferry') v.ferryRss.push(NaN);
            errors.push(`round ${r} ${sys}: ${(err as Error).message}`);
            ctx.log(`round ${r}/${rounds} ${sys} FAILED: ${(err as Error).message}`);
            if (sys === 'Ferry' && ferry.exitReason()) throw new Error(`${ferry.exitReason()}\n${ferry.logTail()}`);
          }
        }
      }
    } finally {
      await ferry?.stop();
      await postfix?.stop();
      await sink?.stop();
    }
    return {
      scenario: 'mix',
      title: `Scenario 5: offload mix, ${n} messages (70 % text, 25 % 1-5 MB, 5 % 20-200 MB), ${sessions} sessions`,
      started: started.toISOString(),
      finished: new Date().toISOString(),
      environment: environment(),
      options: { messages: n, sessions, rounds, approxWireBytes: Math.round(wire) },
      metrics: [
        summarise({
          id: 'rate',
          title: 'messages per second (until the sink has them all)',
          unit: 'msg/s',
          better: 'higher',
          subject: 'Ferry',
          series: [
            { system: 'Ferry', values: v.Ferry.rate },
            { system: 'Postfix', values: v.Postfix.rate },
          ],
        }),
        summarise({
          id: 'mbps',
          title: 'wire data accepted per second',
          unit: 'MB/s',
          better: 'higher',
          subject: 'Ferry',
          series: [
            { system: 'Ferry', values: v.Ferry.mbps },
            { system: 'Postfix', values: v.Postfix.mbps },
          ],
        }),
        summarise({ id: 'rss', title: "Ferry's peak RSS during the round", unit: 'MB', better: 'lower', series: [{ system: 'Ferry', values: v.ferryRss }] }),
      ],
      notes: [
        'Ferry offloads only the 20-200 MB attachments at its default threshold (offload.minAttachmentSize 5 MB); the rest it relays whole, as Postfix relays everything whole.',
        ...errors,
      ],
    };
  },
};
