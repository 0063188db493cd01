import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '../lib/build.js';
import { freePort } from '../lib/ferry-child.js';
import { num, type ScenarioDef } from '../lib/registry.js';
import { environment, summarise, type Metric, type ScenarioReport } from '../lib/report.js';

// Issue 16.1: how long `npm start` takes until Ferry listens, on the compiled code, with no
// source changed. Each round times, one after the other: a bare `node -e 0` (what Node itself
// costs on this machine at this moment), the prestart check (scripts/build-if-stale.mjs, which
// must not build), and `node bin/ferry.js start` until its "Ferry is running" line, with the
// default processes (one per core) and with processes: 1. The data directory is kept between
// rounds after a first untimed start, as it is on a server after its first start (the database
// exists and is migrated). `npm` itself adds its own start (about 0.2 s) on top.

const RUNNING_TIMEOUT_MS = 60_000;

function timeSync(args: string[], cwd: string): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { cwd, encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited with ${r.status}: ${r.stderr.slice(-500)}`);
  if (r.stderr.includes('building')) throw new Error(`the prestart check built the sources: ${r.stderr.trim()} (run \`npm run build\` first)`);
  return ms;
}

/** Starts Ferry and resolves with the ms until its "Ferry is running" line; stops it again. */
async function timeStart(dataDir: string, processes: number | undefined): Promise<number> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    FERRY_DATA_DIR: dataDir,
    FERRY_SMTP_HOST: '127.0.0.1',
    FERRY_SMTP_PORT: String(await freePort()),
    FERRY_WEB_HOST: '127.0.0.1',
    FERRY_WEB_PORT: String(await freePort()),
    FERRY_LOG_LEVEL: 'info',
    ...(processes ? { FERRY_PROCESSES: String(processes) } : {}),
  };
  fs.mkdirSync(dataDir, { recursive: true });
  const t0 = performance.now();
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'ferry.js'), 'start'], { cwd: dataDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  try {
    return await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "Ferry is running" within ${RUNNING_TIMEOUT_MS} ms; stderr: ${err.slice(-500)}`)), RUNNING_TIMEOUT_MS);
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        if (out.includes('"msg":"Ferry is running"')) {
          clearTimeout(timer);
          resolve(performance.now() - t0);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`ferry start exited with ${code} before it was running; stderr: ${err.slice(-500)}`));
      });
    });
  } finally {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
  }
}

export const startupScenario: ScenarioDef = {
  name: 'startup',
  summary: 'start-up: `node bin/ferry.js start` until "Ferry is running" (default processes and one), beside a bare `node -e 0`',
  inDefault: false,
  options: {
    rounds: { kind: 'int', min: 1, max: 50, help: 'rounds (default 7)' },
  },
  async run(o, ctx): Promise<ScenarioReport> {
    const started = new Date();
    const rounds = num(o, 'rounds', 7);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-startup-'));
    const series = { node: [] as number[], prestart: [] as number[], cores: [] as number[], one: [] as number[] };
    const errors: string[] = [];
    try {
      // The first start creates and migrates the database; a server's later starts do not.
      await timeStart(path.join(dir, 'data'), 1);
      for (let round = 1; round <= rounds; round++) {
        try {
          series.node.push(timeSync(['-e', '0'], dir));
          series.prestart.push(timeSync([path.join(ROOT, 'scripts', 'build-if-stale.mjs')], ROOT));
          series.cores.push(await timeStart(path.join(dir, 'data'), undefined));
          series.one.push(await timeStart(path.join(dir, 'data'), 1));
          ctx.log(`round ${round}: node ${series.node.at(-1)!.toFixed(0)} ms, prestart ${series.prestart.at(-1)!.toFixed(0)} ms, start ${series.cores.at(-1)!.toFixed(0)} ms (${os.availableParallelism()} processes), ${series.one.at(-1)!.toFixed(0)} ms (1 process)`);
        } catch (err) {
          errors.push(`round ${round}: ${(err as Error).message}`);
          ctx.log(`round ${round} FAILED: ${(err as Error).message}`);
        }
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const startMetric: Metric = {
      id: 'start',
      title: 'until "Ferry is running" (compiled code, existing data directory)',
      unit: 'ms',
      better: 'lower',
      target: 'npm start listens within 3 s (prestart check + start + npm itself)',
      series: [
        { system: `ferry start (${os.availableParallelism()} processes)`, values: series.cores },
        { system: 'ferry start (processes: 1)', values: series.one },
        { system: 'prestart check (build-if-stale)', values: series.prestart },
        { system: 'node -e 0', values: series.node },
      ],
    };
    return {
      scenario: 'startup',
      title: 'Start-up time (issue 16.1)',
      started: started.toISOString(),
      finished: new Date().toISOString(),
      environment: environment(),
      options: { rounds },
      metrics: [summarise(startMetric)],
      notes: ['Rounds interleave the four commands; the figures are wall-clock and include what else the machine does.', ...errors],
      detail: series,
    };
  },
};
