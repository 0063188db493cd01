import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { rescanBacklogGauge, scanSeconds, scansTotal } from '../gateway/scan/metrics.js';
import { queueScanNotices } from '../gateway/scan/notice.js';
import { scannerFor } from '../gateway/scan/index.js';
import type { Scanner } from '../gateway/scan/types.js';
import { recordRescan, rescanBacklog, rescanCandidates, type BlobStore, type Db, type ScanVerdict } from '../storage/index.js';

// Background rescans (docs/scanning.md): the worker asks the scanner for its signature version
// every scan.versionCheckInterval; live files last scanned with other signatures (or marked by
// `ferry scan rescan`) are read back from the blob store (S3 included) and scanned again, at most
// scan.rescanPerMinute a minute so a signature update never floods the scanner. A file found
// infected is blocked at once (storage/scan.ts recordRescan: its links answer "blocked after a
// new check" from then on), audited, and the sender and the admins in scan.notify are told.
//
// Several workers may rescan the same file at the same moment; that costs a scan, not
// correctness: blocking is a conditional update and only the call that blocks sends notices.

export interface RescanContext {
  db: Db;
  blobs: BlobStore;
  scanner: Scanner;
  logger: Logger;
  hostname: string;
  notify: string[];
}

export interface RescanPass {
  version: string;
  scanned: number;
  blocked: number;
  errors: number;
  backlog: number;
}

/** Scans up to `limit` files whose verdict predates the scanner's current signatures. */
export async function rescanOnce(ctx: RescanContext, limit: number): Promise<RescanPass> {
  const version = await ctx.scanner.version();
  const engine = ctx.scanner.engine;
  const list = await rescanCandidates(ctx.db, engine, version, limit);
  let blocked = 0;
  let errors = 0;
  for (const c of list) {
    const session = ctx.scanner.start();
    try {
      const body = await ctx.blobs.openRead(c.blobKey);
      for await (const chunk of body as AsyncIterable<Buffer>) {
        if (!session.write(chunk)) await session.drained();
      }
      session.end();
    } catch (err) {
      session.abort();
      ctx.logger.warn({ err, transferId: c.transferId, idx: c.idx }, 'rescan could not read the file; tried again later');
    }
    const r = await session.result;
    scansTotal.inc({ verdict: r.outcome.verdict, engine: r.engine, kind: 'rescan' });
    scanSeconds.observe({ engine: r.engine, kind: 'rescan' }, r.ms / 1000);
    if (r.outcome.verdict === 'error') {
      errors++;
      continue;
    }
    const verdict: ScanVerdict = r.outcome.verdict;
    const signature = r.outcome.verdict === 'infected' ? r.outcome.signature : null;
    const didBlock = await recordRescan(ctx.db, c, { verdict, engine: r.engine, version: r.version ?? version, signature, at: r.at });
    if (didBlock) {
      blocked++;
      ctx.logger.warn({ transferId: c.transferId, idx: c.idx, name: c.name, signature }, 'rescan found malware in a live file; it is blocked');
      await queueScanNotices(
        { db: ctx.db, blobs: ctx.blobs, logger: ctx.logger, hostname: ctx.hostname },
        { kind: 'rescan', sender: c.sender, admins: ctx.notify, transferId: c.transferId, files: [{ name: c.name, signature: signature ?? 'unknown' }] },
      );
    }
  }
  const backlog = await rescanBacklog(ctx.db, engine, version);
  rescanBacklogGauge.set(backlog);
  return { version, scanned: list.length, blocked, errors, backlog };
}

/** How often the loop wakes at most; each wake rescans its share of scan.rescanPerMinute. */
const TICK_MS = 10_000;

/**
 * The worker's rescan loop. The version is asked every scan.versionCheckInterval; while files
 * are due, every tick (10 s, or the version check interval when that is shorter, at least 1 s) a
 * batch of the tick's share of rescanPerMinute is scanned. Returns the stop function.
 */
export function startRescanner(config: Config, db: Db, blobs: BlobStore, logger: Logger): () => Promise<void> {
  const scanner = scannerFor(config.scan);
  if (!scanner || config.scan.rescanPerMinute === 0) return async () => undefined;
  const ctx: RescanContext = { db, blobs, scanner, logger, hostname: config.smtp.hostname, notify: config.scan.notify };
  // NB a check interval shorter than the tick would otherwise wait for the tick: a signature
  // update is noticed within max(interval, 1 s), not 10 s.
  const tickMs = Math.max(1000, Math.min(TICK_MS, config.scan.versionCheckInterval));
  const batch = Math.max(1, Math.ceil((config.scan.rescanPerMinute * tickMs) / 60_000));
  let lastVersion: string | null = null;
  let lastCheck = 0;
  let due = true;
  let running: Promise<void> | null = null;
  let stopped = false;
  const tick = () => {
    if (running || stopped) return;
    const now = Date.now();
    if (!due && now - lastCheck < config.scan.versionCheckInterval) return;
    running = (async () => {
      const pass = await rescanOnce(ctx, batch);
      lastCheck = now;
      if (lastVersion !== null && pass.version !== lastVersion) logger.info({ from: lastVersion, to: pass.version, backlog: pass.backlog }, 'scanner signatures changed; rescanning live files');
      lastVersion = pass.version;
      // Keep going every tick while files are due; otherwise wait for the next version check.
      due = pass.backlog > 0 && pass.errors < pass.scanned;
      if (pass.scanned) logger.info({ rescan: pass }, 'rescan pass');
    })()
      .catch((err: Error) => {
        due = false;
        lastCheck = now;
        logger.warn({ err }, 'rescan failed (scanner unreachable?); tried again at the next version check');
      })
      .finally(() => {
        running = null;
      });
  };
  tick();
  const timer = setInterval(tick, tickMs);
  timer.unref();
  return async () => {
    stopped = true;
    clearInterval(timer);
    await running;
  };
}
