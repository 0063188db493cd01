import cluster, { type Worker } from 'node:cluster';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { AggregatorRegistry, register, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { Config } from '../config/schema.js';
import { redactUrlPassword } from '../config/redact.js';
import { stopOnSignals } from './shutdown.js';
import { workerConfigEnv } from './worker-config.js';
import { exitOnStartError, startErrorReport } from './start-errors.js';
import { metricsExposure, prepareStorage, startRoles, type Role, type RunningRoles } from './start.js';
import { bannerFields } from './banner.js';
import { startBufferCollector } from './buffer-collector.js';
import { bufferCollections } from './metrics.js';
import { SmtpDispatcher, type ConnectionClosed, type HandedConnection } from './smtp-dispatch.js';
import { implicitTlsPort } from '../gateway/tls.js';
import { releaseYoungGeneration } from './young-generation.js';
import { givenNodeFlags } from './node-flags.js';

// Every core (docs/operations.md#processes): `ferry start`, `ferry gateway` and `ferry web` run
// `processes` worker processes (default one per core) that share the SMTP and HTTP listeners
// through node:cluster; the primary accepts nothing itself. The worker role (queue runner,
// sweeper) runs once per node, in the primary, so it never races itself. The primary also
// serves metrics.port: /metrics is the node's sum over its processes, /readyz a worker's answer.
// A worker that dies is logged and replaced; SIGTERM drains every worker, then the primary ends.

type Json = MetricObjectWithValues<MetricValue<string>>[];

/** Messages between a node's primary and its workers (beside node:cluster's own). */
type Msg =
  | { ferry: 'ready'; webPort?: number }
  | { ferry: 'stop' }
  | { ferry: 'start-failed'; message: string; code: number }
  | { ferry: 'metrics' | 'readyz' | 'node-metrics'; id: number }
  | { ferry: 'metrics'; id: number; metrics: Json }
  | { ferry: 'readyz'; id: number; reason: string | null }
  | { ferry: 'node-metrics'; id: number; contentType: string; body: string }
  | HandedConnection
  | ConnectionClosed;

const isMsg = (m: unknown): m is Msg => typeof m === 'object' && m !== null && typeof (m as { ferry?: unknown }).ferry === 'string';

/** How long the primary waits for a worker's figures or readiness before leaving it out. */
const ASK_TIMEOUT_MS = 5000;

/** The configured number of processes: `processes`, or one per core. */
export function processCount(config: Config): number {
  return config.processes ?? os.availableParallelism();
}

/**
 * Runs the roles of `ferry start|gateway|web|worker` until a signal stops them: in this process
 * (processes: 1, or only the worker role, which has no listener to share), or as a node of
 * worker processes.
 */
export async function runRoles(config: Config, logger: Logger, roles: readonly Role[], argv: readonly string[]): Promise<void> {
  const served = roles.filter((r) => r !== 'worker');
  const n = processCount(config);
  if (cluster.isWorker) return runWorker(config, logger, served);
  if (n <= 1 || served.length === 0) return runInProcess(config, logger, roles);
  // The workers run the same command line (they read the same file and environment); the
  // module's path names the compiled or the TypeScript file, whichever runs now.
  const entry = new URL(`./node-worker${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url);
  cluster.setupPrimary({ exec: fileURLToPath(entry), args: [...argv], execArgv: workerExecArgv(process.execArgv, process.env.NODE_OPTIONS) });
  return runPrimary(config, logger, roles, n);
}

/**
 * V8 settings of a worker unless the admin gave their own (NODE_OPTIONS or node's command line).
 * A young generation of at most 8 MiB per semi-space instead of V8's 16: under a hundred
 * downloads or ten large messages at once a worker's nursery grew to 32 MiB and more, and the
 * smaller one took 10-20 MB off the peak with no loss of throughput in the bench (smaller still
 * cost up to a quarter on a large message); docs/performance.md, "Heap settings".
 */
const WORKER_V8_FLAGS: readonly { flag: string; value: string }[] = [{ flag: '--max-semi-space-size', value: '8' }];

/**
 * glibc's malloc arenas of a worker unless the admin chose (MALLOC_ARENA_MAX, or
 * glibc.malloc.arena_max in GLIBC_TUNABLES): 2 instead of glibc's 8 per core. Every thread that
 * allocates (V8's compiler and collector threads, libuv's pool) otherwise gets an arena of its
 * own, and each keeps the pages its freed blocks leave; with 2 a worker of the offload mix peaked
 * lower in every one of nine interleaved pairs (by 1.5-12 MB, median 4), at no measured cost in throughput
 * (docs/performance.md, "Malloc arenas"). A libc other than glibc ignores the variable.
 */
export function workerMallocEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  if (env.MALLOC_ARENA_MAX !== undefined || /glibc\.malloc\.arena_max/.test(env.GLIBC_TUNABLES ?? '')) return {};
  return { MALLOC_ARENA_MAX: '2' };
}

/** The workers' node options: the primary's without a script (withoutEval), plus WORKER_V8_FLAGS the admin did not set. */
export function workerExecArgv(execArgv: readonly string[], nodeOptions = ''): string[] {
  const given = givenNodeFlags(execArgv, nodeOptions);
  const out = withoutEval(execArgv);
  for (const { flag, value } of WORKER_V8_FLAGS) if (!given.includes(flag)) out.push(`${flag}=${value}`);
  return out;
}

/**
 * Node's options for the workers: the primary's (--import tsx, heap settings, ...) without a
 * script given on the command line (`node -e`), which would run instead of the worker's program.
 */
function withoutEval(execArgv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const a = execArgv[i]!;
    if (a === '-e' || a === '--eval' || a === '-p' || a === '--print') i++;
    else if (!/^(--eval|--print|--input-type)=/.test(a) && a !== '--input-type') out.push(a);
    else if (a === '--input-type') i++;
  }
  return out;
}

/** Starts the buffer collector of a process that serves, for its life (memory.bufferGarbage; cli/buffer-collector.ts). */
function collectBuffers(config: Config): void {
  startBufferCollector({ limit: config.memory.bufferGarbage, onCollect: () => bufferCollections.inc() });
}

async function runInProcess(config: Config, logger: Logger, roles: readonly Role[]): Promise<void> {
  // This one process does all the work: its young generation grows as V8 sees fit.
  releaseYoungGeneration();
  const running = await startRoles(config, logger, roles).catch(exitOnStartError);
  collectBuffers(config);
  // The roles' own timers are unref'd (they must not keep a test or an embedding process
  // alive); a `ferry worker` has no listening socket, so without this it would exit at once.
  const keepAlive = setInterval(() => undefined, 60 * 60 * 1000);
  stopOnSignals(() => running.stop().finally(() => clearInterval(keepAlive)), logger, config.shutdown.timeout);
}

// ---- a worker process -------------------------------------------------------------------------

async function runWorker(config: Config, logger: Logger, served: readonly Role[]): Promise<void> {
  let nextId = 0;
  const pending = new Map<number, (m: Msg) => void>();
  const send = (m: Msg) => process.connected && process.send!(m);
  // /metrics on the web port (metrics.onWebPort) answers with the node's sum, which the primary
  // composes; alone, a worker would show only the connections it happened to get.
  const nodeMetrics = () =>
    new Promise<{ contentType: string; body: string }>((resolve, reject) => {
      const id = nextId++;
      const t = setTimeout(() => {
        pending.delete(id);
        reject(new Error('the primary process did not send the metrics in time'));
      }, ASK_TIMEOUT_MS);
      pending.set(id, (m) => {
        clearTimeout(t);
        if (m.ferry === 'node-metrics' && 'body' in m) resolve({ contentType: m.contentType, body: m.body });
      });
      send({ ferry: 'node-metrics', id });
    });
  // The primary accepts SMTP connections and hands each to the least busy worker (cli/smtp-dispatch.ts).
  const running = await startRoles(config, logger, served, { metricsServer: false, metricsText: nodeMetrics, runningMessage: 'worker process ready', smtpHanded: true }).catch(reportStartError);
  collectBuffers(config);
  const stop = stopOnSignals(() => running.stop(), logger, config.shutdown.timeout);
  process.on('message', (m: unknown, handle: unknown) => {
    if (!isMsg(m)) return;
    if (m.ferry === 'smtp-connection') {
      const socket = handle as net.Socket | undefined;
      if (!socket) return;
      socket.once('close', () => send({ ferry: 'smtp-closed' }));
      return running.gateway ? running.gateway.adopt(socket, m.tls) : socket.destroy();
    }
    if (m.ferry === 'stop') return stop('the primary process asked');
    if (!('id' in m)) return;
    if (m.ferry === 'node-metrics' && 'body' in m) return pending.get(m.id)?.(m);
    if (m.ferry === 'metrics')
      return void register.getMetricsAsJSON().then(
        (metrics) => send({ ferry: 'metrics', id: m.id, metrics: metrics as Json }),
        () => send({ ferry: 'metrics', id: m.id, metrics: [] }),
      );
    if (m.ferry === 'readyz')
      return void running.readiness().then(
        (reason) => send({ ferry: 'readyz', id: m.id, reason: reason ?? null }),
        (err: Error) => send({ ferry: 'readyz', id: m.id, reason: `readiness check failed: ${err.message}` }),
      );
  });
  // The primary is gone (killed, crashed): finish what is in flight, then end.
  process.on('disconnect', () => stop('the primary process is gone'));
  send({ ferry: 'ready', webPort: running.webPort });
}

/**
 * A worker that cannot start tells the primary why instead of printing it: the workers start
 * at the same time, and a port in use would otherwise be reported once per worker. The exit
 * waits until the message is written to the channel, or it could be lost.
 */
function reportStartError(e: unknown): never {
  const report = startErrorReport(e);
  if (!report || !process.connected) return exitOnStartError(e);
  process.send!({ ferry: 'start-failed', ...report } satisfies Msg, () => process.exit(report.code));
  // Nothing may run after a failed start; the exit comes from the send's callback.
  return new Promise<never>(() => undefined) as unknown as never;
}

// ---- the primary ------------------------------------------------------------------------------

interface Child {
  worker: Worker;
  ready: boolean;
  startedAt: number;
}

async function runPrimary(config: Config, logger: Logger, roles: readonly Role[], n: number): Promise<void> {
  const children = new Map<number, Child>();
  let stopping = false;
  let running = false;
  let nextId = 0;
  const asks = new Map<number, (m: Msg) => void>();
  let exitedAll: () => void = () => undefined;
  const allExited = new Promise<void>((resolve) => (exitedAll = resolve));

  // The database is created or migrated here, once, before the workers open it side by side
  // (Kysely takes no migration lock on SQLite). The worker role (queue runner, sweeper) runs in
  // this process, once per node; it starts while the workers load their code (below).
  let local: RunningRoles | undefined;
  await prepareStorage(config).catch(exitOnStartError);
  // SMTP is bound here, before any worker starts: a port in use is said once, and connections
  // that arrive while the workers load wait for the first that is ready.
  const smtp = roles.includes('gateway') ? new SmtpDispatcher() : undefined;
  const smtpPorts = await smtp
    ?.listen({ host: config.smtp.host, port: config.smtp.port, tlsPort: implicitTlsPort(config), maxWaiting: config.smtp.maxConnections })
    .catch(exitOnStartError);

  function ask<T>(child: Child, kind: 'metrics' | 'readyz', pick: (m: Msg) => T): Promise<T | undefined> {
    return new Promise((resolve) => {
      if (!child.worker.isConnected()) return resolve(undefined);
      const id = nextId++;
      const t = setTimeout(() => {
        asks.delete(id);
        resolve(undefined);
      }, ASK_TIMEOUT_MS);
      asks.set(id, (m) => {
        clearTimeout(t);
        asks.delete(id);
        resolve(pick(m));
      });
      child.worker.send({ ferry: kind, id } satisfies Msg);
    });
  }

  /**
   * The node's metrics: this process's registry (the queue runner and sweeper count here) plus
   * every worker's, combined by prom-client's AggregatorRegistry.aggregate (each metric by its
   * aggregator: counters summed, the database gauges the same in every process). NB: not
   * clusterMetrics(): it leaves out the primary's own registry.
   */
  async function nodeMetrics(): Promise<{ contentType: string; body: string }> {
    const ready = [...children.values()].filter((c) => c.ready);
    const theirs = await Promise.all(ready.map((c) => ask(c, 'metrics', (m) => ('metrics' in m ? m.metrics : undefined))));
    const all = [(await register.getMetricsAsJSON()) as Json, ...theirs.filter((x): x is Json => !!x)];
    const agg = AggregatorRegistry.aggregate(all);
    return { contentType: agg.contentType, body: await agg.metrics() };
  }

  async function readiness(): Promise<string | undefined> {
    if (stopping) return 'shutting down';
    const ready = [...children.values()].filter((c) => c.ready);
    if (!ready.length) return 'no worker process is ready';
    // Every worker shares the storage and the listeners: the first one's view is the node's.
    const reason = await ask(ready[0]!, 'readyz', (m) => ('reason' in m ? m.reason : 'no answer'));
    if (reason === undefined) return `worker process ${ready[0]!.worker.process.pid} did not answer`;
    if (reason) return reason;
    return local ? local.readiness() : undefined;
  }

  /** The exit status of the first worker that could not start, once one has said why. */
  let startFailure: number | undefined;
  let restartDelay = 1000;
  const fork = (): Child => {
    const worker = cluster.fork({ ...workerConfigEnv(config), ...workerMallocEnv() });
    const child: Child = { worker, ready: false, startedAt: Date.now() };
    children.set(worker.id, child);
    worker.on('message', (m: unknown) => {
      if (!isMsg(m)) return;
      if (m.ferry === 'start-failed') {
        // The first reason is the one printed; the other workers most likely fail the same way.
        if (!running && startFailure === undefined) {
          startFailure = m.code;
          console.error(m.message);
        }
        return;
      }
      if (m.ferry === 'smtp-closed') return smtp?.closed(worker);
      if (m.ferry === 'ready') {
        child.ready = true;
        smtp?.add(worker);
        first ??= m;
        if (!running && [...children.values()].filter((c) => c.ready).length >= n) announce();
        return;
      }
      if (m.ferry === 'node-metrics' && !('body' in m))
        return void nodeMetrics().then(
          (r) => worker.isConnected() && worker.send({ ferry: 'node-metrics', id: m.id, ...r } satisfies Msg),
          (err: Error) => logger.warn({ err: err.message }, 'could not gather the metrics of the node'),
        );
      if ('id' in m) asks.get(m.id)?.(m);
    });
    worker.on('exit', (code, signal) => {
      children.delete(worker.id);
      smtp?.remove(worker);
      if (stopping) {
        if (!children.size) exitedAll();
        return;
      }
      if (!running) {
        // A worker that cannot start (port in use, a bad certificate) said why on stderr;
        // starting more would only repeat it.
        logger.error({ workerPid: worker.process.pid, code, signal }, 'a worker process could not start');
        for (const c of children.values()) c.worker.process.kill('SIGKILL');
        process.exit(startFailure ?? (typeof code === 'number' && code > 0 ? code : 1));
      }
      const quick = Date.now() - child.startedAt < 10_000;
      // A worker that keeps dying at once (the disk is gone, the database refuses) is restarted
      // ever more slowly instead of in a tight loop.
      restartDelay = quick ? Math.min(restartDelay * 2, 60_000) : 1000;
      logger.error({ workerPid: worker.process.pid, code, signal, restartInMs: quick ? restartDelay : 0 }, 'a worker process died; starting a new one');
      if (quick) setTimeout(() => !stopping && fork(), restartDelay).unref();
      else fork();
    });
    return child;
  };

  let first: Extract<Msg, { ferry: 'ready' }> | undefined;
  let metricsPort: number | undefined;
  let closeMetrics: (() => Promise<unknown>) | undefined;
  const announce = () => {
    running = true;
    logger.info(
      {
        roles,
        processes: n,
        pids: [...children.values()].map((c) => c.worker.process.pid),
        smtp: smtpPorts ? `${config.smtp.host}:${smtpPorts.port}` : undefined,
        smtpTls: smtpPorts?.tlsPort !== undefined ? `${config.smtp.host}:${smtpPorts.tlsPort}` : undefined,
        web: first?.webPort !== undefined ? `${config.web.host}:${first.webPort}` : undefined,
        metrics: metricsPort !== undefined ? `${config.metrics.host}:${metricsPort}` : undefined,
        publicUrl: config.web.publicUrl,
        relay: roles.includes('gateway') ? redactUrlPassword(config.relay.url) : undefined,
        blobs: config.storage.blobs,
        database: redactUrlPassword(config.storage.database),
        ...bannerFields(config, { roles, webPort: first?.webPort, metricsPort }),
      },
      'Ferry is running',
    );
    // Written now, not with the next batch (cli/logger.ts): supervisors and scripts wait for it.
    logger.flush();
    releaseYoungGeneration();
  };

  if (config.metrics.port !== undefined) {
    const { startMetricsServer } = await import('./metrics-server.js');
    const m = await startMetricsServer({ port: config.metrics.port, host: config.metrics.host, readiness, exposure: metricsExposure(config, nodeMetrics) }).catch(exitOnStartError);
    metricsPort = m.port;
    closeMetrics = () => m.app.close();
  }

  // Every worker at once: most of a worker's start is loading code, which the cores do side by
  // side (one after the other, two workers took twice as long to start). A start error (port in
  // use, a bad certificate) comes back as a message and is printed once (reportStartError).
  for (let i = 0; i < n; i++) fork();

  // A second signal, or an error, ends the primary at once: the workers must not outlive it.
  process.on('exit', (code) => {
    if (code !== 0) for (const c of children.values()) c.worker.process.kill('SIGKILL');
  });
  if (roles.includes('worker')) {
    local = await startRoles(config, logger, ['worker'], { metricsServer: false, runningMessage: 'worker role running in the primary process' }).catch(exitOnStartError);
  }
  stopOnSignals(
    async () => {
      stopping = true;
      for (const c of children.values()) if (c.worker.isConnected()) c.worker.send({ ferry: 'stop' } satisfies Msg);
      if (!children.size) exitedAll();
      await Promise.allSettled([allExited, local?.stop()]);
      // Until the last worker has gone, a new client was handed to one and got its 421 4.3.2.
      smtp?.close();
      // Last, so that its /readyz says "shutting down" during the drain.
      await closeMetrics?.();
    },
    logger,
    config.shutdown.timeout,
  );
}
