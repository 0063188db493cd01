// What every scanner client (clamd.ts, icap.ts) gives the tee and the rescan worker.

export type EngineName = 'clamav' | 'icap';

/** The outcome of one scan. 'error' covers unreachable, timeouts and protocol trouble. */
export type ScanOutcome =
  | { verdict: 'clean' }
  | { verdict: 'infected'; signature: string }
  | { verdict: 'too_large'; detail: string }
  | { verdict: 'error'; detail: string };

export interface ScanResult {
  outcome: ScanOutcome;
  engine: EngineName;
  /** Signature version the scanner reported for this scan (null when it could not be asked). */
  version: string | null;
  at: number;
  ms: number;
}

/**
 * One scan in progress: bytes go in with write() (false = wait for 'drain' on the session, as for
 * a Writable), end() says the file is complete, `result` settles with the verdict. A session never
 * throws at its writer: when the scanner fails, writes are taken and dropped, and `result` says
 * 'error' (or 'too_large'), so the upload beside it goes on untouched.
 */
export interface ScanSession {
  write(chunk: Buffer): boolean;
  /** Resolves when the session can take more (or has failed and drops everything). */
  drained(): Promise<void>;
  end(): void;
  /** Stops the scan (message abandoned); `result` then settles with an error. */
  abort(): void;
  readonly result: Promise<ScanResult>;
}

export interface Scanner {
  readonly engine: EngineName;
  /** A display name for pages: "ClamAV", "the ICAP service". */
  readonly label: string;
  start(): ScanSession;
  /** The scanner's current signature version; throws when it cannot be asked. */
  version(): Promise<string>;
}
