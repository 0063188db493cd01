import { addressGroup } from '../config/ip-ranges.js';

// Failed SMTP AUTH attempts per client address, across connections. The per-connection limit
// (gateway.ts) alone lets a guesser reconnect and go on for ever, at three guesses a connection,
// and each guess costs the server one password hash (scrypt: about 100 ms of a libuv thread and
// 32 MiB, the same threads that do all file I/O). Past `max` failures in the window, the address
// is refused at once, right password included, until the window ends: guessing is cut off
// without the server hashing anything, and without telling the guesser whether a guess was right.
// Like the admin side's limiter (admin/auth-limit.ts), which the gateway may not import.

export interface SmtpAuthLimitOptions {
  /** Failed logins per client address per window. Default 20 (as for admin logins). */
  max?: number;
  /** Default 10 minutes. */
  windowMs?: number;
  now?: () => number;
}

/** Addresses tracked at most; the oldest go first (an attacker with many addresses cannot grow memory). */
const MAX_TRACKED = 10_000;

/** The key of a client: its address group (config/ip-ranges.ts: IPv4 address, or IPv6 /64). */
export function authClientKey(address: string | undefined): string {
  return addressGroup(address ?? '');
}

export class SmtpAuthLimiter {
  private readonly failures = new Map<string, { count: number; windowEnd: number }>();
  private readonly max: number;
  private readonly windowMs: number;
  private readonly now: () => number;

  constructor(opts: SmtpAuthLimitOptions = {}) {
    this.max = opts.max ?? 20;
    this.windowMs = opts.windowMs ?? 10 * 60_000;
    this.now = opts.now ?? Date.now;
  }

  /** Whether this address has used up its failed logins for the current window. */
  blocked(address: string | undefined): boolean {
    const key = authClientKey(address);
    const f = this.failures.get(key);
    if (!f) return false;
    if (f.windowEnd <= this.now()) {
      this.failures.delete(key);
      return false;
    }
    return f.count >= this.max;
  }

  /** Counts one failed login. */
  fail(address: string | undefined): void {
    const key = authClientKey(address);
    const now = this.now();
    let f = this.failures.get(key);
    if (!f || f.windowEnd <= now) {
      this.failures.delete(key);
      if (this.failures.size >= MAX_TRACKED) this.failures.delete(this.failures.keys().next().value!);
      f = { count: 0, windowEnd: now + this.windowMs };
      this.failures.set(key, f);
    }
    f.count++;
  }
}
