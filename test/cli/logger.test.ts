import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

// cli/logger.ts writes the JSON log in batches. What an admin relies on: every line arrives, in
// order, within a fraction of a second, also from a process that exits or crashes; and a log
// reader that stalls costs log lines (counted and reported), never the process's memory.

const CHILD = path.join(import.meta.dirname, 'log-child.ts');

interface Run {
  lines: { level: number; msg: string; i?: number; dropped?: number }[];
  code: number | null;
  stderr: string;
  /** ms from start until each line arrived. */
  at: number[];
}

function runChild(args: string[], opts: { pauseUntilStderr?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const t0 = Date.now();
    const lines: Run['lines'] = [];
    const at: number[] = [];
    let buf = '';
    let err = '';
    if (opts.pauseUntilStderr) p.stdout.pause();
    p.stdout.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        lines.push(JSON.parse(buf.slice(0, i)));
        at.push(Date.now() - t0);
        buf = buf.slice(i + 1);
      }
    });
    p.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
      if (opts.pauseUntilStderr && err.includes(opts.pauseUntilStderr)) p.stdout.resume();
    });
    p.once('error', reject);
    p.once('close', (code) => resolve({ lines, code, at, stderr: err }));
  });
}

describe('the JSON log on standard output', () => {
  it('a process that exits writes every line it logged, in order', async () => {
    const r = await runChild(['exit', '5000']);
    expect(r.code).toBe(0);
    expect(r.lines.map((l) => l.i)).toEqual([...Array(5000).keys()]);
  });

  it('a process that dies of an uncaught error still writes what it logged before', async () => {
    const r = await runChild(['throw']);
    expect(r.code).not.toBe(0);
    expect(r.lines.map((l) => l.msg)).toEqual(['before the error']);
  });

  it('a line on a quiet process arrives within the flush interval, not when the process ends', async () => {
    const r = await runChild(['linger']);
    expect(r.lines.map((l) => l.msg)).toEqual(['one line']);
    // The child lives 3 s after logging; the line must come long before (start-up under tsx included).
    expect(r.at[0]).toBeLessThan(2500);
  });

  it('a stalled reader loses lines, counted in a warning, instead of growing the process', async () => {
    // 4,000 lines of 1 KiB against a 1 MiB limit while nobody reads: most must be dropped.
    const r = await runChild(['flood', '4000'], { pauseUntilStderr: 'flooded' });
    const info = r.lines.filter((l) => l.msg === 'line');
    const warnings = r.lines.filter((l) => l.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toMatch(/^\d+ log lines were dropped: standard output did not take them/);
    expect(warnings[0]!.dropped).toBe(4000 - info.length);
    expect(r.stderr).toContain(`metric ferry_log_lines_dropped_total ${4000 - info.length}`);
    expect(info.length).toBeLessThan(2000);
    expect(info.length).toBeGreaterThan(0);
    // What arrived is whole and in order: the first lines, up to the limit.
    expect(info.map((l) => l.i)).toEqual([...Array(info.length).keys()]);
  });
});
