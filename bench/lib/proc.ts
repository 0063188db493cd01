import fs from 'node:fs';

// Memory figures of another process, read by Linux from /proc/<pid>/status. VmHWM is the
// kernel's own high-water mark of the resident set: the exact peak, which no amount of sampling
// from outside could guarantee to catch. Writing "5" to /proc/<pid>/clear_refs resets it, so a
// peak can be attributed to one phase (start-up, SMTP, download).

export const MiB = 1024 * 1024;

export function procAvailable(): boolean {
  return fs.existsSync('/proc/self/status');
}

export interface ProcMemory {
  /** Resident set size now, bytes. */
  rss: number;
  /** Peak resident set size since start (or since the last resetPeak), bytes. */
  hwm: number;
}

export function readProcMemory(pid: number): ProcMemory {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string) => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
    if (!m) throw new Error(`/proc/${pid}/status has no ${key} line`);
    return Number(m[1]) * 1024;
  };
  return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
}

/** The process and every process below it (a Ferry node's primary and its worker processes). */
export function processTree(pid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // The command name in (parentheses) may hold spaces: the parent pid follows its last ')'.
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      parentOf.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) for (const [child, parent] of parentOf) if (parent === tree[i]) tree.push(child);
  return tree;
}

/**
 * CPU time (user + system, ms) used so far by the process under `pid` and everything below it:
 * unlike a rate, it does not depend on what else the machine is doing. Clock ticks are taken as
 * 100 per second (USER_HZ on Linux).
 */
export function readTreeCpuMs(pid: number): number {
  let ticks = 0;
  for (const p of processTree(pid)) {
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // gone meanwhile
    }
  }
  return ticks * 10;
}

/**
 * Memory of the largest process of the tree under `pid`: the figure is the peak RSS of
 * any Ferry process, and with `processes` > 1 the workers, not the primary, hold the messages.
 */
export function readTreeMemory(pid: number): ProcMemory {
  let out: ProcMemory = readProcMemory(pid);
  for (const p of processTree(pid).slice(1)) {
    try {
      const m = readProcMemory(p);
      out = { rss: Math.max(out.rss, m.rss), hwm: Math.max(out.hwm, m.hwm) };
    } catch {
      // a worker that exited meanwhile
    }
  }
  return out;
}

/** Resets VmHWM to the current RSS, in every process of the tree. False where the kernel does not allow it. */
export function resetPeak(pid: number): boolean {
  let ok = true;
  for (const p of processTree(pid)) {
    try {
      fs.writeFileSync(`/proc/${p}/clear_refs`, '5');
    } catch {
      ok = false;
    }
  }
  return ok;
}

/**
 * Polls VmRSS for a timeline (the peak itself comes from VmHWM). Bounded: once `maxSamples` is
 * reached every other sample is dropped and the interval doubles, so a long run keeps its shape
 * in constant memory.
 */
export class RssSampler {
  readonly samples: { t: number; rss: number }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private interval: number;
  private readonly t0 = Date.now();

  constructor(
    private readonly pid: number,
    intervalMs = 50,
    private readonly maxSamples = 2000,
  ) {
    this.interval = intervalMs;
  }

  start(): this {
    const tick = () => {
      try {
        this.samples.push({ t: Date.now() - this.t0, rss: readProcMemory(this.pid).rss });
      } catch {
        return; // the process is gone; stop sampling
      }
      if (this.samples.length >= this.maxSamples) {
        let j = 0;
        for (let i = 0; i < this.samples.length; i += 2) this.samples[j++] = this.samples[i]!;
        this.samples.length = j;
        this.interval *= 2;
      }
      this.timer = setTimeout(tick, this.interval);
      this.timer.unref();
    };
    tick();
    return this;
  }

  stop(): { t: number; rss: number }[] {
    clearTimeout(this.timer);
    this.timer = undefined;
    return this.samples;
  }
}
