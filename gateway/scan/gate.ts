import { pipeline, type Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import { recordScan, type Db, type ScanRecord } from '../../storage/index.js';
import { replies, type Reply } from '../replies.js';
import { scanSeconds, scansTotal } from './metrics.js';
import { scannerFor } from './index.js';
import { ScanTee } from './tee.js';
import type { ScanResult, ScanSession, Scanner } from './types.js';

/** What the gate needs to know about each stored file. */
export interface GateFile {
  idx: number;
  name: string;
  blobKey: string;
}

export type GateDecision =
  | { kind: 'pass'; held: { idx: number; name: string; signature: string }[] }
  | { kind: 'refuse'; reply: Reply; detail: string };

/**
 * The scanning side of one message: tee() puts a scanner beside each file's upload, conclude()
 * waits for every verdict (all are known before the reply to DATA), applies scan.onInfected,
 * scan.onError and scan.tooLarge, and records the verdicts with the files.
 */
export class ScanGate {
  private readonly sessions = new Map<string, ScanSession>();
  private readonly scanner: Scanner | undefined;

  constructor(private readonly cfg: Config['scan']) {
    this.scanner = scannerFor(cfg);
  }

  get enabled(): boolean {
    return this.scanner !== undefined;
  }

  /** The stream the blob store should read: `body` itself when scanning is off, else through a tee. */
  tee(blobKey: string, body: Readable): Readable {
    if (!this.scanner) return body;
    const session = this.scanner.start();
    this.sessions.set(blobKey, session);
    const tee = new ScanTee(session);
    pipeline(body, tee, () => {
      /* errors reach the blob store through the destroyed tee */
    });
    return tee;
  }

  /** Stops every scan in flight (message abandoned). */
  abort(): void {
    for (const s of this.sessions.values()) s.abort();
  }

  async conclude(db: Db, transferId: string, files: GateFile[], log: Logger): Promise<GateDecision> {
    if (!this.scanner) return { kind: 'pass', held: [] };
    const results: { file: GateFile; r: ScanResult }[] = [];
    for (const file of files) {
      const s = this.sessions.get(file.blobKey);
      const r: ScanResult = s
        ? await s.result
        : { outcome: { verdict: 'error', detail: 'no scan was started' }, engine: this.scanner.engine, version: null, at: Date.now(), ms: 0 };
      results.push({ file, r });
      scansTotal.inc({ verdict: r.outcome.verdict, engine: r.engine, kind: 'intake' });
      scanSeconds.observe({ engine: r.engine, kind: 'intake' }, r.ms / 1000);
    }

    const infected = results.filter((x) => x.r.outcome.verdict === 'infected');
    if (infected.length && this.cfg.onInfected === 'reject') {
      const first = infected[0]!;
      const sig = (first.r.outcome as { signature: string }).signature;
      log.warn({ files: infected.map((x) => ({ name: x.file.name, signature: (x.r.outcome as { signature: string }).signature })) }, 'malware found; message refused');
      return { kind: 'refuse', reply: replies.malwareFound(first.file.name, sig, infected.length), detail: `malware: ${sig}` };
    }
    const tooLarge = results.find((x) => x.r.outcome.verdict === 'too_large');
    if (tooLarge && this.cfg.tooLarge === 'reject') {
      return { kind: 'refuse', reply: replies.tooLargeToScan(tooLarge.file.name), detail: 'too large to scan' };
    }
    const failed = results.find((x) => x.r.outcome.verdict === 'error');
    if (failed && this.cfg.onError === 'tempfail') {
      log.error({ file: failed.file.name, detail: (failed.r.outcome as { detail: string }).detail }, 'malware scan failed; message deferred');
      return { kind: 'refuse', reply: replies.scanUnavailable(), detail: 'scanner unavailable' };
    }

    const held: { idx: number; name: string; signature: string }[] = [];
    for (const { file, r } of results) {
      const o = r.outcome;
      const rec: ScanRecord = {
        verdict: o.verdict === 'error' ? 'unscanned' : o.verdict,
        engine: r.engine,
        version: r.version,
        signature: o.verdict === 'infected' ? o.signature : null,
        at: r.at,
      };
      if (o.verdict === 'error') log.warn({ file: file.name, detail: o.detail }, 'malware scan failed; file accepted unscanned (scan.onError: accept)');
      const hold = o.verdict === 'infected';
      await recordScan(db, transferId, file.idx, rec, hold ? { actor: 'system:scan' } : undefined);
      if (hold) held.push({ idx: file.idx, name: file.name, signature: o.signature });
    }
    if (held.length) log.warn({ held }, 'malware found; files held in quarantine');
    return { kind: 'pass', held };
  }
}
