/**
 * A counting semaphore whose waiters can give up (AbortSignal). Used to cap concurrent uploads
 * per process: a caller waiting for a slot does not read its body, so backpressure reaches
 * whoever feeds it (for the gateway, the SMTP client's socket).
 */
export class Semaphore {
  private active = 0;
  private readonly queue: { grant: () => void; signal?: AbortSignal; onAbort?: () => void }[] = [];

  constructor(private max: number) {
    if (!(max >= 1)) throw new Error(`semaphore size must be at least 1, got ${max}`);
  }

  get limit(): number {
    return this.max;
  }

  get inUse(): number {
    return this.active;
  }

  get waiting(): number {
    return this.queue.length;
  }

  /** Changes the limit; waiters are let in at once if it grew. */
  resize(max: number): void {
    if (!(max >= 1)) throw new Error(`semaphore size must be at least 1, got ${max}`);
    this.max = max;
    this.drain();
  }

  /** Resolves with a release function once a slot is free; rejects if `signal` aborts first. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    return new Promise((resolve, reject) => {
      const entry: (typeof this.queue)[number] = {
        signal,
        grant: () => {
          if (entry.onAbort) signal?.removeEventListener('abort', entry.onAbort);
          resolve(this.releaser());
        },
      };
      if (signal) {
        entry.onAbort = () => {
          const i = this.queue.indexOf(entry);
          if (i >= 0) this.queue.splice(i, 1);
          reject(abortReason(signal));
        };
        signal.addEventListener('abort', entry.onAbort, { once: true });
      }
      this.queue.push(entry);
      this.drain();
    });
  }

  private releaser(): () => void {
    this.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
      this.drain();
    };
  }

  private drain(): void {
    while (this.active < this.max && this.queue.length) this.queue.shift()!.grant();
  }
}

export function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  if (r instanceof Error && r.name === 'AbortError') return r;
  const err = new Error(r instanceof Error ? `aborted: ${r.message}` : 'aborted', { cause: r });
  err.name = 'AbortError';
  return err;
}
