import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

export interface ChildFerry {
  proc: ChildProcess;
  /** Parsed JSON log lines so far. */
  logs: Record<string, any>[];
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
  /** What the process wrote to stderr so far. */
  stderrText(): string;
  waitForLog(match: (l: Record<string, any>) => boolean, timeoutMs?: number): Promise<Record<string, any>>;
}

/** Runs `ferry <command>` from the sources in a child process, settings from `env` (FERRY_*), cwd `cwd`. */
export function spawnFerry(command: string, env: Record<string, string>, cwd: string): ChildFerry {
  const proc = spawn(process.execPath, ['--import', pathToFileURL(path.join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href, path.join(ROOT, 'test/ops/run-ferry.ts'), command], {
    cwd,
    // One process unless the test asks for a node of several (test/ops/cluster.test.ts): the
    // other tests are about what one process does, and each worker would cost a start-up.
    // Receipts to senders off: they would reach the next hop beside the messages a test counts.
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', NODE_PATH: path.join(ROOT, 'node_modules'), FERRY_PROCESSES: '1', FERRY_SENDERS_RECEIPTS: 'off', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, any>[] = [];
  const waiters = new Set<() => void>();
  let buf = '';
  let errText = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        logs.push(JSON.parse(line));
      } catch {
        logs.push({ msg: line });
      }
      for (const w of waiters) w();
    }
  });
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (errText += d));
  const exited = new Promise<number | string>((resolve) => proc.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return {
    proc,
    logs,
    exited,
    stderrText: () => errText,
    waitForLog(match, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = logs.find(match);
          if (hit) {
            waiters.delete(check);
            clearTimeout(t);
            resolve(hit);
          }
        };
        const t = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no such log line within ${timeoutMs} ms; stderr: ${errText.slice(-2000)}; logs: ${JSON.stringify(logs.slice(-10))}`));
        }, timeoutMs);
        waiters.add(check);
        void exited.then(() => setTimeout(check, 50));
        check();
      });
    },
  };
}
