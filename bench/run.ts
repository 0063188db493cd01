import fs from 'node:fs';
import path from 'node:path';
import { describeOptions, parseOptions, UsageError, type OptionSpec } from './lib/args.js';
import { ensureBuilt } from './lib/build.js';
import type { ScenarioDef } from './lib/registry.js';
import { environment, formatMarkdown, formatMetric, RESULTS_DIR, writeReport, type ScenarioReport } from './lib/report.js';
import { ensurePackages, type NEEDED } from './lib/services.js';
import { downloadsScenario } from './scenarios/downloads.js';
import { largeScenario } from './scenarios/large.js';
import { memoryScenario } from './scenarios/memory.js';
import { mixScenario } from './scenarios/mix.js';
import { smallScenario } from './scenarios/small.js';
import { s3LargeScenario } from './scenarios/s3-large.js';
import { scanScenario } from './scenarios/scan.js';
import { startupScenario } from './scenarios/startup.js';

// `npm run bench [-- <scenario>...] [options]`: runs the scenarios (all default ones without a
// name), each beside its reference systems in interleaved rounds, prints the figures and writes
// bench/results/<scenario>-<time>.json and .svg (and <scenario>-latest.*). Ferry runs as a child
// process from dist/, rebuilt first if stale. A scenario is a ScenarioDef (bench/lib/registry.ts)
// listed in SCENARIOS.

const SCENARIOS: ScenarioDef[] = [smallScenario, largeScenario, memoryScenario, downloadsScenario, mixScenario, s3LargeScenario, startupScenario, scanScenario];

function usage(): string {
  const lines = [
    'Usage: npm run bench -- [scenario ...] [options]',
    '',
    'Without a scenario, runs every default one (marked *). Options go to every scenario that knows them.',
    '',
    'Scenarios:',
  ];
  for (const s of SCENARIOS) {
    lines.push(`  ${s.inDefault ? '*' : ' '} ${s.name.padEnd(10)} ${s.summary}`);
    if (Object.keys(s.options).length) lines.push(describeOptions(s.options));
  }
  lines.push('', '  -h, --help   this text', '', 'Full-size figures (1 GiB in large, 1000 messages in mix; roughly half an hour): npm run bench -- --full (see docs/performance.md).');
  return lines.join('\n');
}

function split(argv: string[]): { names: string[]; rest: string[] } {
  const names: string[] = [];
  let i = 0;
  while (i < argv.length && !argv[i]!.startsWith('-')) names.push(argv[i++]!);
  return { names, rest: argv.slice(i) };
}

/** The options a scenario knows, out of the command line (values kept with their option). */
function optionsFor(def: ScenarioDef, rest: string[], all: Record<string, OptionSpec>[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    const name = a.replace(/^--/, '').split('=')[0]!;
    const spec = def.options[name] ?? all.map((o) => o[name]).find(Boolean);
    const takesValue = spec && spec.kind !== 'flag' && !a.includes('=');
    if (def.options[name]) out.push(a, ...(takesValue && rest[i + 1] !== undefined ? [rest[i + 1]!] : []));
    if (takesValue) i++;
  }
  return out;
}

async function main(argv: string[]): Promise<number> {
  if (argv.includes('-h') || argv.includes('--help')) {
    console.log(usage());
    return 0;
  }
  const { names, rest } = split(argv);
  for (const n of names) if (!SCENARIOS.some((s) => s.name === n)) throw new UsageError(`unknown scenario "${n}" (scenarios: ${SCENARIOS.map((s) => s.name).join(', ')})`);
  const chosen = names.length ? SCENARIOS.filter((s) => names.includes(s.name)) : SCENARIOS.filter((s) => s.inDefault);
  const specs = chosen.map((s) => s.options);
  // Every option must mean something to at least one chosen scenario, and be well-formed there.
  for (const a of rest) {
    if (!a.startsWith('--')) continue;
    const name = a.slice(2).split('=')[0]!;
    if (!specs.some((o) => o[name])) throw new UsageError(`unknown option ${a} for ${chosen.map((s) => s.name).join(', ')}`);
  }
  const parsed = chosen.map((s) => parseOptions(optionsFor(s, rest, specs), s.options, s.name));

  const t0 = Date.now();
  const log = (m: string) => console.log(`bench: ${m}`);
  await ensureBuilt(log);
  // Packages are installed before the first scenario that needs them; if that fails, the
  // scenarios that need them fail with the reason and the others still run.
  const installed = new Map<string, Promise<void>>();
  const ensure = (pkgs: (keyof typeof NEEDED)[]) =>
    Promise.all(
      pkgs.map((p) => {
        if (!installed.has(p)) installed.set(p, ensurePackages([p], log));
        return installed.get(p)!;
      }),
    );

  const reports: ScenarioReport[] = [];
  let failed = 0;
  for (const [i, s] of chosen.entries()) {
    const why = s.unavailable?.();
    if (why) {
      console.log(`\n=== ${s.name}: SKIPPED (${why})`);
      continue;
    }
    console.log(`\n=== ${s.name}: ${s.summary}`);
    const st = Date.now();
    try {
      await ensure(s.needs ?? []);
      const report = await s.run(parsed[i]!, { log: (m) => console.log(`[${s.name}] ${m}`) });
      reports.push(report);
      console.log(`\n${report.title}\n`);
      for (const m of report.metrics) console.log(`${formatMetric(m)}\n`);
      for (const t of report.printable ?? []) console.log(`${t}\n`);
      for (const n of report.notes) console.log(`  note: ${n}`);
      const files = writeReport(report);
      console.log(`  results: ${path.relative(process.cwd(), files.json)}, ${path.relative(process.cwd(), files.svg)} (${((Date.now() - st) / 1000).toFixed(0)} s)`);
    } catch (err) {
      failed++;
      console.error(`\n=== ${s.name}: FAILED: ${(err as Error).stack ?? (err as Error).message}`);
    }
  }
  if (reports.length) {
    // All figures of this run as Markdown, the form docs/performance.md quotes them in.
    const env = environment();
    const md = [
      `Run of ${new Date(t0).toISOString()}: \`npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}\`, ${env.cpus} x ${env.cpuModel ?? 'CPU'}, ${(env.totalMemBytes / 2 ** 30).toFixed(0)} GiB RAM, ${env.platform}, Node ${env.node}, commit ${env.commit ?? '?'}${env.dirty ? ' (with uncommitted changes)' : ''}${env.ferryNodeFlags ? `, Ferry started with node ${env.ferryNodeFlags}` : ''}; load average at the end ${env.loadAverage.map((x) => x.toFixed(1)).join(', ')} (a shared machine).`,
      '',
      ...reports.map(formatMarkdown),
    ].join('\n');
    fs.writeFileSync(`${RESULTS_DIR}/latest.md`, md);
    console.log(`bench: Markdown summary of this run: ${path.relative(process.cwd(), `${RESULTS_DIR}/latest.md`)}`);
  }
  console.log(`\nbench: ${reports.length} scenario(s) done, ${failed} failed, in ${((Date.now() - t0) / 60_000).toFixed(1)} min`);
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    if (err instanceof UsageError) {
      console.error(`bench: ${err.message}\n\n${usage()}`);
      process.exit(2);
    }
    console.error(`bench: ${err.stack ?? err.message}`);
    process.exit(1);
  },
);
