import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, tempDir } from '../helpers/ferry.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { Upstream } from '../helpers/upstream.js';
import { spawnFerry, type ChildFerry } from './child.js';

// A node of two worker processes (`processes: 2`, cli/cluster.ts) as a real `ferry start`: both
// workers take connections at once and relay; /metrics (on metrics.port and, with the token, on
// the web port) shows the node's totals; a worker killed with SIGKILL is replaced and no message
// that got a 250 is lost or doubled; SIGTERM drains both workers. The workers are told apart by
// the pid in their log lines (the summary line of each transaction). The node reads a
// configuration file; a worker started later (the replacement of a killed one) runs with what the
// primary read at start, not with the file as it is by then (cli/worker-config.ts).

const METRICS_TOKEN = 'metrics-token-0123456789abcdef';
let upstream: Upstream;
let child: ChildFerry;
let dir: string;
let smtpPort: number;
let webPort: number;
let metricsPort: number;
let workerPids: number[];
let configFile: string;

beforeAll(async () => {
  upstream = await new Upstream().start();
  dir = tempDir('ferry-cluster-');
  [smtpPort, webPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  configFile = path.join(dir, 'ferry.yaml');
  fs.writeFileSync(configFile, 'smtp:\n  hostname: ferry.test\n');
  child = spawnFerry(
    'start',
    {
      FERRY_PROCESSES: '2',
      FERRY_DATA_DIR: dir,
      FERRY_SMTP_HOST: '127.0.0.1',
      FERRY_SMTP_PORT: String(smtpPort),
      FERRY_CONFIG: configFile,
      FERRY_WEB_HOST: '127.0.0.1',
      FERRY_WEB_PORT: String(webPort),
      FERRY_WEB_PUBLIC_URL: `http://127.0.0.1:${webPort}`,
      FERRY_RELAY_URL: upstream.url,
      FERRY_METRICS_PORT: String(metricsPort),
      FERRY_METRICS_HOST: '127.0.0.1',
      FERRY_METRICS_ON_WEB_PORT: 'true',
      FERRY_METRICS_TOKEN: METRICS_TOKEN,
      FERRY_SHUTDOWN_TIMEOUT: '20s',
      FERRY_LOG_LEVEL: 'info',
    },
    dir,
  );
  // Each worker compiles the TypeScript sources on its own start (tsx): generous on a busy machine.
  const running = await child.waitForLog((l) => l.msg === 'Ferry is running', 170_000);
  workerPids = running.pids;
}, 180_000);

afterAll(async () => {
  if (child && child.proc.exitCode === null) {
    child.proc.kill('SIGKILL');
    await child.exited;
  }
  await upstream?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

let serial = 0;
/** A small message with a unique Message-ID, so that deliveries can be counted per message. */
function message(): { id: string; body: string } {
  const id = `<m${++serial}.${process.pid}@cluster.test>`;
  return { id, body: `From: alice@example.com\r\nTo: bob@example.net\r\nSubject: cluster ${serial}\r\nMessage-ID: ${id}\r\n\r\nHello.\r\n` };
}

/** Opens a connection and a transaction, and sends all of the data but the final dot. */
async function openTransaction(): Promise<{ c: RawSmtp; id: string }> {
  const m = message();
  const c = await RawSmtp.connect(smtpPort);
  expect(await c.cmd('EHLO client.test')).toMatch(/^250/);
  expect(await c.cmd('MAIL FROM:<alice@example.com>')).toMatch(/^250 /);
  expect(await c.cmd('RCPT TO:<bob@example.net>')).toMatch(/^250 /);
  expect(await c.cmd('DATA')).toMatch(/^354 /);
  c.write(m.body);
  return { c, id: m.id };
}

/** One message on a connection of its own; resolves with the final reply ('' when the connection broke). */
async function sendOne(): Promise<{ id: string; reply: string }> {
  const m = message();
  try {
    const c = await RawSmtp.connect(smtpPort);
    await c.cmd('EHLO client.test');
    await c.cmd('MAIL FROM:<alice@example.com>');
    await c.cmd('RCPT TO:<bob@example.net>');
    const reply = await c.data(m.body);
    c.close();
    return { id: m.id, reply };
  } catch {
    return { id: m.id, reply: '' };
  }
}

const deliveredIds = () => upstream.messages.map((m) => /^Message-ID: (\S+)/im.exec(m.raw.toString('latin1'))?.[1]);
const summaryPids = (queueIds: string[]) => new Set(child.logs.filter((l) => queueIds.includes(l.queueId) && typeof l.result === 'string').map((l) => l.pid as number));
/**
 * summaryPids once every one of these messages has its summary line: a worker writes that line
 * after its 250, and under load it can reach this process later than the reply did.
 */
async function summaryPidsOnceLogged(queueIds: string[]): Promise<Set<number>> {
  for (const id of queueIds) await child.waitForLog((l) => l.queueId === id && typeof l.result === 'string');
  return summaryPids(queueIds);
}
const queueIdOf = (reply: string) => /queued as (\w+)/.exec(reply)?.[1] ?? '';

/** The first line a new connection gets. */
function rawGreeting(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      buf += d;
      if (buf.includes('\r\n')) {
        resolve(buf.split('\r\n')[0]!);
        s.destroy();
      }
    });
    s.on('error', (err) => resolve(`error: ${err.message}`));
    s.on('close', () => resolve(buf || 'closed without a reply'));
  });
}

const AUTH = { authorization: `Bearer ${METRICS_TOKEN}` };

async function metricValue(url: string, name: string, headers: Record<string, string> = AUTH): Promise<number> {
  const res = await fetch(url, { headers });
  expect(res.status).toBe(200);
  const line = (await res.text()).split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.split(' ')[1]);
}

describe('a node of two worker processes (processes: 2)', () => {
  it('starts two workers; both take connections at the same time and relay', async () => {
    expect(workerPids).toHaveLength(2);
    expect(new Set(workerPids).size).toBe(2);
    // Six transactions open at once: the primary hands each connection to the worker with the
    // fewest open sessions (cli/smtp-dispatch.ts), so each worker gets three of them.
    const open = await Promise.all(Array.from({ length: 6 }, () => openTransaction()));
    const replies = await Promise.all(
      open.map(async ({ c }) => {
        c.write('\r\n.\r\n');
        const r = await c.reply();
        c.close();
        return r;
      }),
    );
    for (const r of replies) expect(r).toMatch(/^250 2\.0\.0 /);
    const ids = deliveredIds();
    for (const { id } of open) expect(ids.filter((x) => x === id)).toHaveLength(1);
    const queueIds = replies.map(queueIdOf);
    // The summary lines of the six transactions come from both workers, three from each.
    expect([...(await summaryPidsOnceLogged(queueIds))].sort()).toEqual([...workerPids].sort());
    const perWorker = (pid: number) => child.logs.filter((l) => queueIds.includes(l.queueId) && typeof l.result === 'string' && l.pid === pid).length;
    expect(workerPids.map(perWorker)).toEqual([3, 3]);
    // Each worker runs with the smaller young generation (cli/cluster.ts WORKER_V8_FLAGS).
    for (const pid of workerPids) expect(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')).toContain('--max-semi-space-size=8');
    // ... and at most two malloc arenas (cli/cluster.ts workerMallocEnv), set before glibc starts.
    for (const pid of workerPids) expect(fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')).toContain('MALLOC_ARENA_MAX=2');
  });

  it('/metrics shows the node: totals across both workers, on metrics.port and (with the token) on the web port', async () => {
    const before = await metricValue(`http://127.0.0.1:${metricsPort}/metrics`, 'ferry_messages_accepted_total');
    const sent = await Promise.all(Array.from({ length: 8 }, () => sendOne()));
    for (const s of sent) expect(s.reply).toMatch(/^250 /);
    expect((await summaryPidsOnceLogged(sent.map((s) => queueIdOf(s.reply)))).size).toBe(2);
    const accepted = await metricValue(`http://127.0.0.1:${metricsPort}/metrics`, 'ferry_messages_accepted_total');
    expect(accepted).toBe(before + 8);
    // Every message of this file so far was accepted, and the upstream got each of them.
    expect(accepted).toBe(upstream.messages.length);
    // The web port's /metrics is answered by one worker, with the node's figures.
    const viaWeb = await metricValue(`http://127.0.0.1:${webPort}/metrics`, 'ferry_messages_accepted_total');
    expect(viaWeb).toBe(accepted);
    // metrics.token guards /metrics on both listeners.
    expect((await fetch(`http://127.0.0.1:${webPort}/metrics`)).status).toBe(401);
    expect((await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).status).toBe(401);
    expect((await fetch(`http://127.0.0.1:${webPort}/metrics`, { headers: { authorization: 'Bearer wrong-token-0123456789abcdef' } })).status).toBe(401);
    // One set of series, not one per process.
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { headers: AUTH })).text();
    expect(text.split('\n').filter((l) => l.startsWith('ferry_messages_accepted_total ')).length).toBe(1);
    expect((await fetch(`http://127.0.0.1:${webPort}/healthz`)).status).toBe(200);
  });

  it('a worker killed with SIGKILL is replaced (and logged); every message that got a 250 is delivered exactly once', async () => {
    const victim = workerPids[0]!;
    // Edited while the node runs: takes effect only when Ferry is restarted, in every process at once.
    fs.writeFileSync(configFile, 'smtp:\n  hostname: edited.test\n');
    const results: { id: string; reply: string }[] = [];
    let killed = false;
    // Three senders, one message after another each, while one worker is killed mid-way.
    await Promise.all(
      [0, 1, 2].map(async (k) => {
        for (let i = 0; i < 12; i++) {
          if (k === 0 && i === 4) {
            process.kill(victim, 'SIGKILL');
            killed = true;
          }
          results.push(await sendOne());
        }
      }),
    );
    expect(killed).toBe(true);
    const died = await child.waitForLog((l) => l.msg === 'a worker process died; starting a new one' && l.workerPid === victim);
    expect(died.signal).toBe('SIGKILL');
    const replacement = await child.waitForLog((l) => l.msg === 'worker process ready' && !workerPids.includes(l.pid), 170_000);
    // After the replacement, every message gets its 250 again, and the new worker takes its share.
    const after = await Promise.all(Array.from({ length: 8 }, () => sendOne()));
    for (const s of after) expect(s.reply).toMatch(/^250 /);
    results.push(...after);
    const ok = results.filter((r) => r.reply.startsWith('250'));
    expect(ok.length).toBeGreaterThan(results.length / 2);
    const ids = deliveredIds();
    for (const r of ok) expect(ids.filter((x) => x === r.id), `${r.id} delivered once`).toHaveLength(1);
    // A message cut by the kill (no 250) was never relayed twice either.
    for (const r of results) expect(ids.filter((x) => x === r.id).length).toBeLessThanOrEqual(1);
    workerPids = [workerPids[1]!, replacement.pid as number];
    expect(await summaryPidsOnceLogged(after.map((s) => queueIdOf(s.reply)))).toContain(replacement.pid);
    // The replacement took part of these, with the settings the rest of the node has.
    for (const s of after) {
      const relayed = upstream.messages.find((m) => m.raw.toString('latin1').includes(`Message-ID: ${s.id}`))!.raw.toString('latin1');
      expect(relayed).toMatch(/\tby ferry\.test \(Ferry\)/);
    }
  }, 240_000);

  it('SIGTERM drains both workers: transactions in flight on each finish with 250, then every process ends (exit 0)', async () => {
    const open = await Promise.all(Array.from({ length: 6 }, () => openTransaction()));
    const before = upstream.messages.length;
    child.proc.kill('SIGTERM');
    await child.waitForLog((l) => l.signal === 'SIGTERM');
    // Whichever worker a new client reaches, it is draining: 421 4.3.2 at once.
    for (let i = 0; i < 4; i++) expect(await rawGreeting(smtpPort)).toBe('421 4.3.2 The gateway is shutting down; please try again shortly.');
    const replies = await Promise.all(
      open.map(async ({ c }) => {
        c.write('\r\n.\r\n');
        const r = await c.reply();
        c.close();
        return r;
      }),
    );
    for (const r of replies) expect(r).toMatch(/^250 2\.0\.0 /);
    expect(await child.exited).toBe(0);
    expect(upstream.messages.length).toBe(before + 6);
    // Both workers finished transactions during the drain, and each said it stopped.
    expect([...summaryPids(replies.map(queueIdOf))].sort()).toEqual([...workerPids].sort());
    const stopped = new Set(child.logs.filter((l) => l.msg === 'stopped').map((l) => l.pid));
    for (const pid of workerPids) expect(stopped.has(pid)).toBe(true);
  }, 120_000);
});

describe('a node that cannot start', () => {
  /**
   * Starts a node of three processes with `which` port taken by another program; resolves with
   * the node once it has exited (status 1) having printed the reason once, naming the port.
   */
  async function withPortTaken(which: 'smtp' | 'web'): Promise<ReturnType<typeof spawnFerry>> {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as net.AddressInfo).port;
    const [smtp, web] = which === 'smtp' ? [port, await freePort()] : [await freePort(), port];
    const d = tempDir(`ferry-cluster-busy-${which}-`);
    try {
      const c = spawnFerry(
        'start',
        { FERRY_PROCESSES: '3', FERRY_DATA_DIR: d, FERRY_SMTP_HOST: '127.0.0.1', FERRY_SMTP_PORT: String(smtp), FERRY_WEB_HOST: '127.0.0.1', FERRY_WEB_PORT: String(web), FERRY_RELAY_URL: 'smtp://127.0.0.1:9', FERRY_LOG_LEVEL: 'info' },
        d,
      );
      expect(await c.exited).toBe(1);
      const said = c.stderrText().split('\n').filter((l) => l.includes('another program uses the port'));
      expect(said).toHaveLength(1);
      expect(said[0]).toContain(`127.0.0.1:${port}`);
      return c;
    } finally {
      taken.close();
      fs.rmSync(d, { recursive: true, force: true });
    }
  }

  it('the SMTP port in use: the primary, which accepts SMTP for the node, says so once and exits with status 1 before starting workers', async () => {
    const c = await withPortTaken('smtp');
    expect(c.logs.filter((l) => l.msg === 'worker process ready' || l.msg === 'a worker process could not start')).toHaveLength(0);
  }, 180_000);

  it('the web port in use: the workers start side by side, the reason is printed once, and the node exits with status 1', async () => {
    const c = await withPortTaken('web');
    // Three workers were started, not one after the other.
    expect(c.logs.filter((l) => l.msg === 'a worker process could not start').length).toBeGreaterThanOrEqual(1);
  }, 180_000);
});
