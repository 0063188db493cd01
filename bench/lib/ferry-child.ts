import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from './build.js';
import { waitForGreeting } from './smtp.js';

// Ferry as a separate process, started the way an admin starts it (`node bin/ferry.js start`,
// settings in FERRY_* variables). A separate process is the point: its peak RSS is Ferry's
// alone, without the bench's generator, sink or test runner in the figure.

export interface FerryChildOptions {
  /** Next hop: an smtp:// URL, or undefined for outbox:<dir>/outbox. */
  relayUrl?: string;
  /** FERRY_SMTP_MAX_MESSAGE_SIZE; the hard limit follows (3x). */
  maxMessageSize?: number;
  /** FERRY_OFFLOAD_MIN_ATTACHMENT_SIZE; Ferry's default when undefined. */
  minAttachmentSize?: number;
  /** Extra FERRY_* settings. */
  env?: Record<string, string>;
  /** Preload bench/lib/probe.mjs to report process.memoryUsage() (heap vs Buffers). */
  probe?: boolean;
  /** Extra node flags for the child, e.g. --heapsnapshot-signal=SIGUSR2. */
  nodeFlags?: string[];
  startTimeoutMs?: number;
}

export interface ProbeSample {
  t: number;
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

export interface FerryChild {
  pid: number;
  dir: string;
  smtpPort: number;
  webPort: number;
  publicUrl: string;
  outboxDir: string;
  blobsDir: string;
  /** Why the child is gone, if it is; checked by every wait so a crash fails fast. */
  exitReason(): string | undefined;
  /** The last lines the child wrote (logs), for error messages. */
  logTail(): string;
  /** Parsed JSON log lines whose msg matches, most recent last (bounded). */
  logs(match: RegExp): Record<string, unknown>[];
  /** Probe samples since the last call (bounded). */
  takeProbe(): ProbeSample[];
  stop(): Promise<void>;
}

const LOG_LINES = 400;

// Children still running, killed if the bench itself exits without stopping them (an uncaught
// error, Ctrl-C): a forgotten Ferry would keep its ports and temp dir.
const live = new Map<ChildProcess, string>();
let exitHookInstalled = false;
function track(proc: ChildProcess, dir: string) {
  live.set(proc, dir);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const [p, d] of live) {
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
      fs.rmSync(d, { recursive: true, force: true });
    }
  });
}
const PROBE_SAMPLES = 20_000;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** The parent's environment minus anything that would change how the child behaves. */
function childBaseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    // Ferry settings of the caller's shell would silently change what is measured, and a
    // loader in NODE_OPTIONS (vitest, tsx) would add its own memory to the child's.
    if (k.startsWith('FERRY_') || k === 'NODE_OPTIONS' || k.startsWith('VITEST') || k.startsWith('npm_')) continue;
    env[k] = v;
  }
  return env;
}

/**
 * BENCH_FERRY_ENV: Ferry settings for every child of a run, as `FERRY_KEY=value` pairs separated
 * by spaces (e.g. FERRY_MEMORY_BUFFER_GARBAGE=0), to compare a setting against its default in
 * the same conditions; only FERRY_ keys, since the caller's own FERRY_ variables are dropped.
 */
function benchSettings(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (process.env.BENCH_FERRY_ENV ?? '').split(/\s+/).filter(Boolean)) {
    const m = /^(FERRY_[A-Z0-9_]+)=(.*)$/.exec(pair);
    if (!m) throw new Error(`BENCH_FERRY_ENV: expected FERRY_KEY=value pairs separated by spaces, got "${pair}"`);
    out[m[1]!] = m[2]!;
  }
  return out;
}

export async function startFerryChild(opts: FerryChildOptions = {}): Promise<FerryChild> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-'));
  const dataDir = path.join(dir, 'data');
  const outboxDir = path.join(dir, 'outbox');
  let child: ChildProcess | undefined;
  try {
    const [smtpPort, webPort] = [await freePort(), await freePort()];
    const publicUrl = `http://127.0.0.1:${webPort}`;
    const env: NodeJS.ProcessEnv = {
      ...childBaseEnv(),
      FERRY_DATA_DIR: dataDir,
      FERRY_SMTP_HOST: '127.0.0.1',
      FERRY_SMTP_PORT: String(smtpPort),
      FERRY_SMTP_HOSTNAME: 'ferry.bench.invalid',
      FERRY_WEB_HOST: '127.0.0.1',
      FERRY_WEB_PORT: String(webPort),
      FERRY_WEB_PUBLIC_URL: publicUrl,
      FERRY_RELAY_URL: opts.relayUrl ?? `outbox:${outboxDir}`,
      FERRY_RELAY_STARTTLS: 'off',
      // info: the per-message summary line (its ms and bytes) goes into the report.
      FERRY_LOG_LEVEL: 'info',
      ...(opts.maxMessageSize !== undefined ? { FERRY_SMTP_MAX_MESSAGE_SIZE: String(opts.maxMessageSize) } : {}),
      ...(opts.minAttachmentSize !== undefined ? { FERRY_OFFLOAD_MIN_ATTACHMENT_SIZE: String(opts.minAttachmentSize) } : {}),
      ...benchSettings(),
      ...opts.env,
    };
    // BENCH_FERRY_NODE_FLAGS: node flags for every Ferry child of a run (e.g. V8 heap settings),
    // to measure Ferry as an admin would start it with NODE_OPTIONS.
    const flags = [...(process.env.BENCH_FERRY_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean), ...(opts.nodeFlags ?? [])];
    if (opts.probe) flags.push('--import', pathToFileURL(path.join(ROOT, 'bench', 'lib', 'probe.mjs')).href);
    // cwd is the temp dir so that a ferry.yaml in the repository is not picked up.
    child = spawn(process.execPath, [...flags, path.join(ROOT, 'bin', 'ferry.js'), 'start'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const proc = child;
    const pid = proc.pid;
    if (pid === undefined) throw new Error('could not start the Ferry process');
    track(proc, dir);

    const tail: string[] = [];
    let probe: ProbeSample[] = [];
    let exited: string | undefined;
    // A node answers on the SMTP port as soon as its first worker is ready; the bench measures
    // it once every worker is (cli/cluster.ts logs this line then; a single process likewise).
    let markRunning: () => void = () => undefined;
    const running = new Promise<void>((resolve) => (markRunning = resolve));
    const onLine = (line: string) => {
      if (line.includes('"msg":"Ferry is running"')) markRunning();
      if (line.startsWith('BENCH_PROBE ')) {
        try {
          if (probe.length < PROBE_SAMPLES) probe.push(JSON.parse(line.slice(12)) as ProbeSample);
        } catch {
          /* a torn line */
        }
        return;
      }
      tail.push(line.length > 4000 ? `${line.slice(0, 4000)}...` : line);
      if (tail.length > LOG_LINES) tail.shift();
    };
    // Both pipes are always read: a child blocked on a full pipe would stall mid-message.
    for (const stream of [proc.stdout!, proc.stderr!]) {
      let buf = '';
      stream.setEncoding('utf8');
      stream.on('data', (d: string) => {
        buf += d;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          onLine(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
        if (buf.length > 64 * 1024) buf = buf.slice(-64 * 1024);
      });
    }
    const exitedPromise = new Promise<void>((resolve) => {
      proc.once('exit', (code, signal) => {
        exited = `the Ferry process exited (${signal ?? `code ${code}`})`;
        resolve();
      });
    });
    const logTail = () => tail.slice(-30).join('\n');

    try {
      await waitForGreeting(smtpPort, opts.startTimeoutMs ?? 30_000, () => (exited ? `${exited} while starting:\n${logTail()}` : undefined));
      await waitForHttp(`${publicUrl}/healthz`, 10_000);
      await Promise.race([
        running,
        exitedPromise.then(() => Promise.reject(new Error(`${exited} while starting`))),
        new Promise((_, reject) => setTimeout(() => reject(new Error('the Ferry node answered, but did not log "Ferry is running" within 30 s')), 30_000).unref()),
      ]);
    } catch (err) {
      (err as Error).message += `\n--- Ferry log ---\n${logTail()}`;
      throw err;
    }

    return {
      pid,
      dir,
      smtpPort,
      webPort,
      publicUrl,
      outboxDir,
      blobsDir: path.join(dataDir, 'blobs'),
      exitReason: () => exited,
      logTail,
      logs(match) {
        const out: Record<string, unknown>[] = [];
        for (const l of tail) {
          if (!l.startsWith('{')) continue;
          try {
            const o = JSON.parse(l) as Record<string, unknown>;
            if (typeof o.msg === 'string' && match.test(o.msg)) out.push(o);
          } catch {
            /* not a log line */
          }
        }
        return out;
      },
      takeProbe() {
        const p = probe;
        probe = [];
        return p;
      },
      async stop() {
        await stopProcess(proc, exitedPromise);
        fs.rmSync(dir, { recursive: true, force: true });
        live.delete(proc);
      },
    };
  } catch (err) {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (child) live.delete(child);
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** SIGTERM (Ferry closes its servers and database), SIGKILL if it has not exited within 10 s. */
async function stopProcess(proc: ChildProcess, exited: Promise<void>): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill('SIGTERM');
  const inTime = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 10_000).unref())]);
  if (!inTime) {
    proc.kill('SIGKILL');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000).unref())]);
  }
}

async function waitForHttp(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(Math.max(100, Math.min(2000, deadline - Date.now()))) });
      await r.arrayBuffer();
      if (r.ok) return;
      last = `HTTP ${r.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms (last: ${last})`);
}
