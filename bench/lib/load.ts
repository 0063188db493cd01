import fs from 'node:fs';
import path from 'node:path';
import type { GeneratedMessage } from './message.js';
import { SmtpSession } from './smtp.js';

// The bench's own SMTP load for messages smtp-source cannot make (MIME with a real base64
// attachment): the same client and the same bytes go to Ferry and to Postfix, so the client's
// cost is the same on both sides of a ratio.

const MB = 1e6;

export interface SendTiming {
  /** From the TCP connect (the client's first byte) to the final reply after the data. */
  totalMs: number;
  /** From the DATA command to the final reply. */
  dataMs: number;
  reply: string;
}

function expect(reply: string, code: string, what: string): void {
  if (!reply.startsWith(code)) throw new Error(`${what}: expected ${code}, got "${reply}"`);
}

/** Budget for one message: generous (a slow shared machine), but never unbounded. */
export function sendBudgetMs(wireBytes: number): number {
  return Math.round(60_000 + (wireBytes / (2 * MB)) * 1000);
}

async function transaction(s: SmtpSession, msg: GeneratedMessage, deadline: number): Promise<{ dataMs: number; reply: string }> {
  expect(await s.command(`MAIL FROM:<bench@example.com> SIZE=${msg.wireSize}`), '250', 'MAIL FROM');
  expect(await s.command('RCPT TO:<recipient@example.net>'), '250', 'RCPT TO');
  const t0 = performance.now();
  expect(await s.command('DATA'), '354', 'DATA');
  for (const chunk of msg.chunks()) {
    if (Date.now() > deadline) throw new Error(`sending took longer than its budget`);
    await s.write(chunk, 60_000);
  }
  await s.write(Buffer.from('.\r\n'), 60_000);
  const reply = await s.reply(Math.max(1000, deadline - Date.now()));
  return { dataMs: performance.now() - t0, reply };
}

/** One message on a fresh connection, timed from the connect to the reply after the data. */
export async function sendOne(port: number, msg: GeneratedMessage): Promise<SendTiming> {
  const deadline = Date.now() + sendBudgetMs(msg.wireSize);
  const t0 = performance.now();
  const s = await SmtpSession.connect(port, 10_000);
  try {
    expect(await s.reply(10_000), '220', 'greeting');
    expect(await s.command('EHLO bench.ferry.invalid'), '250', 'EHLO');
    const { dataMs, reply } = await transaction(s, msg, deadline);
    const totalMs = performance.now() - t0;
    await s.command('QUIT', 5000).catch(() => undefined);
    return { totalMs, dataMs, reply };
  } finally {
    s.close();
  }
}

export interface LoadResult {
  ms: number;
  sent: number;
  refused: { reply: string }[];
  errors: string[];
  wireBytes: number;
}

/**
 * Sends `messages` over `sessions` connections, each session taking the next message when its
 * previous one got its reply (a connection is reused for several messages, as an MTA does). A
 * session that fails opens a new connection for its next message; the errors are reported.
 */
export async function runLoad(port: number, messages: (() => GeneratedMessage)[], sessions: number, timeoutMs: number): Promise<LoadResult> {
  const deadline = Date.now() + timeoutMs;
  let next = 0;
  const out: LoadResult = { ms: 0, sent: 0, refused: [], errors: [], wireBytes: 0 };
  const t0 = performance.now();
  const worker = async () => {
    let s: SmtpSession | undefined;
    while (next < messages.length && Date.now() < deadline) {
      const msg = messages[next++]!();
      try {
        if (!s) {
          s = await SmtpSession.connect(port, 10_000);
          expect(await s.reply(10_000), '220', 'greeting');
          expect(await s.command('EHLO bench.ferry.invalid'), '250', 'EHLO');
        }
        const { reply } = await transaction(s, msg, Math.min(deadline, Date.now() + sendBudgetMs(msg.wireSize)));
        if (reply.startsWith('250')) {
          out.sent++;
          out.wireBytes += msg.wireSize;
        } else out.refused.push({ reply });
      } catch (err) {
        if (out.errors.length < 50) out.errors.push((err as Error).message);
        s?.close();
        s = undefined;
      }
    }
    if (s) {
      await s.command('QUIT', 5000).catch(() => undefined);
      s.close();
    }
  };
  await Promise.all(Array.from({ length: sessions }, worker));
  out.ms = performance.now() - t0;
  if (next < messages.length) out.errors.push(`stopped after ${timeoutMs} ms with ${messages.length - next} messages not sent`);
  return out;
}

/**
 * Peak disk space used under some directories while a run goes on: every `intervalMs` the
 * allocated blocks of every file below are summed (bounded walk). Reported as the peak above
 * the level at start(), so files from earlier rounds do not count.
 */
export class DiskSampler {
  private timer: NodeJS.Timeout | undefined;
  private base = 0;
  peak = 0;

  constructor(
    private readonly dirs: string[],
    private readonly intervalMs = 100,
  ) {}

  static usage(dirs: string[], maxFiles = 200_000): number {
    let total = 0;
    let seen = 0;
    const walk = (dir: string) => {
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        if (++seen > maxFiles) return;
        const p = path.join(dir, e.name);
        try {
          if (e.isDirectory()) walk(p);
          else if (e.isFile()) total += fs.statSync(p).blocks * 512;
        } catch {
          /* removed while we looked */
        }
      }
    };
    for (const d of dirs) walk(d);
    return total;
  }

  start(): this {
    this.base = DiskSampler.usage(this.dirs);
    this.peak = 0;
    const tick = () => {
      this.peak = Math.max(this.peak, DiskSampler.usage(this.dirs) - this.base);
      this.timer = setTimeout(tick, this.intervalMs);
      this.timer.unref();
    };
    tick();
    return this;
  }

  /** Stops sampling (one last sample first) and returns the peak in bytes. */
  stop(): number {
    clearTimeout(this.timer);
    this.peak = Math.max(this.peak, DiskSampler.usage(this.dirs) - this.base);
    return this.peak;
  }
}
