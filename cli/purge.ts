import type { Config } from '../config/schema.js';
import { newWorkerId, sweepOnce, type SweepPhase, type SweepProgress, type SweepSummary } from '../worker/sweeper.js';
import { bytes, openAdminStorage, parseFlags, UsageError } from './admin-output.js';

// `ferry purge [--dry-run] [--json]`: one retention sweep now, the same as the worker runs on
// its schedule, with a progress bar when stderr is a terminal (none otherwise) and a summary at
// the end.

export const PURGE_USAGE = `Usage: ferry purge [--dry-run] [--json] [--config FILE]

  Runs one retention sweep now: deletes the files of expired, revoked and deleted transfers,
  removes records older than retention.keepRecords, removes transfers left pending by a crash,
  and aborts incomplete uploads. Transfers on legal hold are skipped.
  --dry-run   count what would be done, change nothing
  --json      print the summary as JSON`;

const PHASE_NAMES: Record<SweepPhase, string> = {
  files: 'expired files',
  records: 'old records',
  abandoned: 'abandoned transfers',
  uploads: 'incomplete uploads',
};

export function progressLine(p: SweepProgress, width = 30): string {
  const frac = p.total > 0 ? Math.min(1, p.done / p.total) : 1;
  const filled = Math.round(frac * width);
  return `${PHASE_NAMES[p.phase].padEnd(20)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.done}/${p.total}`;
}

export function summaryText(s: SweepSummary): string {
  const would = s.dryRun ? 'would be ' : '';
  const rows: [string, string][] = [
    [`expired transfers ${would}cleared`, String(s.expired)],
    [`revoked or deleted transfers ${would}cleared`, String(s.revokedOrDeleted)],
    [`files ${would}deleted`, `${s.blobsDeleted} (${bytes(s.bytesFreed)})`],
    [`records ${would}removed`, String(s.recordsRemoved)],
    [`abandoned transfers ${would}removed`, String(s.abandoned)],
  ];
  if (s.uploadsAborted !== null) rows.push(['incomplete uploads aborted', String(s.uploadsAborted)]);
  rows.push(['kept because of a legal hold', String(s.heldSkipped)]);
  if (s.claimedElsewhere) rows.push(['left to another worker', String(s.claimedElsewhere)]);
  const width = Math.max(...rows.map(([l]) => l.length)) + 1;
  const lines = [s.dryRun ? 'Dry run: nothing was changed.' : 'Sweep done.', ...rows.map(([l, v]) => `  ${`${l}:`.padEnd(width)} ${v}`)];
  for (const e of s.errors) lines.push(`  error (${e.step}${e.transferId ? ` ${e.transferId}` : ''}): ${e.message}`);
  return lines.join('\n');
}

export async function purgeCommand(
  config: Config,
  args: string[],
  io: { out: (s: string) => void; err: (s: string) => void; tty?: boolean } = { out: console.log, err: console.error, tty: process.stderr.isTTY },
): Promise<number> {
  let flags;
  try {
    flags = parseFlags('purge', args, { 'dry-run': { type: 'boolean' }, json: { type: 'boolean' } });
    if (flags.positionals.length) throw new UsageError(`ferry purge: unexpected "${flags.positionals[0]}"`);
  } catch (err) {
    io.err(`${(err as Error).message}\n\n${PURGE_USAGE}`);
    return 2;
  }
  const storage = await openAdminStorage(config);
  try {
    let lastPhase: SweepPhase | undefined;
    let lastDrawn = 0;
    const onProgress = (p: SweepProgress) => {
      if (flags.values.json) return;
      if (io.tty) {
        // Redraw at most ten times a second, and always at the end of a phase.
        const now = Date.now();
        if (p.done < p.total && p.phase === lastPhase && now - lastDrawn < 100) return;
        lastDrawn = now;
        if (lastPhase && p.phase !== lastPhase) process.stderr.write('\n');
        process.stderr.write(`\r${progressLine(p)}`);
      }
      // Not a terminal (a pipe, a log, cron's mail): no bars; the summary on stdout says it all.
      lastPhase = p.phase;
    };
    const summary = await sweepOnce(storage.db, storage.blobs, {
      keepRecordsMs: config.retention.keepRecords,
      dryRun: !!flags.values['dry-run'],
      workerId: `purge:${newWorkerId()}`,
      onProgress,
    });
    if (io.tty && lastPhase && !flags.values.json) process.stderr.write('\n');
    io.out(flags.values.json ? JSON.stringify(summary, null, 2) : summaryText(summary));
    return summary.errors.length ? 1 : 0;
  } finally {
    await storage.close();
  }
}
