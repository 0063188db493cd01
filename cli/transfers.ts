import type { Config } from '../config/schema.js';
import { AdminActionError, BadCursorError, shownState, transferJson, type RecipientStatus, type Transfer } from '../storage/index.js';
import { AdminApiClient, AdminApiError } from './admin-client.js';
import { bytes, parseDate, parseFlags, parseNumber, printable, table, UsageError, when } from './admin-output.js';
import { localTransfers, remoteTransfers, type TransfersSource } from './transfers-source.js';

// `ferry transfers list|show|revoke|extend|hold|release|delete` against the configured
// database and blob store (a running Ferry need not be stopped), or with --server against a
// running Ferry's admin API (cli/transfers-source.ts). Every change is recorded in the audit
// log: as cli:USER, or as admin:NAME of the token.

export const TRANSFERS_USAGE = `Usage: ferry transfers <command> [options] [--config FILE | --server URL]

  list [--sender S] [--recipient R] [--file NAME] [--from DATE] [--to DATE]
       [--state live|expired|revoked|deleted|pending|held] [--limit N] [--cursor C] [--json]
                               newest first; text filters match any part, case-insensitively
  show ID [--json]             files, expiry, rule, hold, password, each recipient's downloads
                               and the download log
  revoke ID [--reason TEXT]    links answer 410 at once; files go at the next sweep
  revoke ID --recipient ADDR   only that recipient's link answers 410; the others keep working
  extend ID --until DATE       set the expiry (within retention.minimum..maximum of creation)
  extend ID --by DAYS          move the expiry by DAYS (negative to shorten)
  hold ID [--reason TEXT]      legal hold: never swept until released
  release ID                   lift the hold
  delete ID --yes              delete the files now; links answer 404

  DATE is 2026-12-01 or 2026-12-01T10:00:00Z (UTC). --from and --to include a day given as a
  date: --from 2026-12-01 --to 2026-12-01 lists that day's transfers.

  --server https://ferry.example.org: through that Ferry's admin API, with the token in
  FERRY_CLI_TOKEN (a read-only token may list and show; docs/admin.md).`;

const STATES = ['live', 'expired', 'revoked', 'deleted', 'pending', 'held'] as const;

/** "unlimited downloads per file", as the admin UI says, never "0 (0 = unlimited)". */
export function downloadLimit(n: number): string {
  return n > 0 ? `${n} download${n === 1 ? '' : 's'} per file` : 'unlimited downloads per file';
}

/** What a change left the transfer as, in words: an expiry only where one still means something. */
export function stateLine(t: Transfer, now = Date.now()): string {
  const hold = t.held ? ', on legal hold' : '';
  switch (shownState(t, now)) {
    case 'live':
      return `live${hold}; expires ${when(t.expiresAt)}`;
    case 'expired':
      return `expired ${when(t.expiresAt)}${hold}${t.purgedAt ? '; files deleted' : t.held ? '; files kept while held' : '; files go at the next sweep'}`;
    case 'revoked':
      return `revoked${hold}; links answer 410${t.purgedAt ? '; files deleted' : t.held ? '; files kept while held' : '; files go at the next sweep'}`;
    case 'deleted':
      return `deleted${hold}; links answer 404${t.purgedAt ? '; files deleted' : ''}`;
    default:
      return `${t.state}${hold}`;
  }
}

/**
 * Per recipient and file: when it was first downloaded completely, how often, and the scanner
 * and partial fetches kept apart (storage/recipient-status.ts). One line per file; the
 * recipient and its link only on the first.
 */
export function recipientsTable(recipients: RecipientStatus[]): string {
  if (recipients.length === 0) return 'No links recorded.';
  const rows: (string | number)[][] = [];
  for (const r of recipients) {
    const who = r.recipient || '(shared link)';
    const link = r.revokedAt === null ? 'active' : `revoked ${when(r.revokedAt)}`;
    const files = r.files.length ? r.files : [null];
    files.forEach((f, i) =>
      rows.push([i === 0 ? who : '', i === 0 ? link : '', f ? f.name : '-', f ? when(f.completeAt) : '-', f?.completeCount ?? 0, f?.scannerFetches ?? 0, f?.partialFetches ?? 0]),
    );
  }
  return table(['RECIPIENT', 'LINK', 'FILE', 'FIRST COMPLETE', 'COMPLETE', 'SCANNER', 'PARTIAL'], rows);
}

export async function transfersCommand(
  from: Config | AdminApiClient,
  args: string[],
  io: { out: (s: string) => void; err: (s: string) => void } = { out: console.log, err: console.error },
): Promise<number> {
  const [sub, ...rest] = args;
  if (!sub || !['list', 'show', 'revoke', 'extend', 'hold', 'release', 'delete'].includes(sub)) {
    io.err(TRANSFERS_USAGE);
    return 2;
  }
  let source: TransfersSource | undefined;
  try {
    const f = parseFlags(`transfers ${sub}`, rest, {
      sender: { type: 'string' },
      recipient: { type: 'string' },
      file: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      state: { type: 'string' },
      limit: { type: 'string' },
      cursor: { type: 'string' },
      json: { type: 'boolean' },
      reason: { type: 'string' },
      until: { type: 'string' },
      by: { type: 'string' },
      yes: { type: 'boolean' },
    });
    const v = f.values;
    const id = f.positionals[0];
    if (sub !== 'list' && !id) throw new UsageError(`ferry transfers ${sub}: which transfer? Give its ID (see ferry transfers list)`);
    if (v.state && !(STATES as readonly string[]).includes(v.state)) throw new UsageError(`--state: expected one of ${STATES.join(', ')}`);
    if (sub === 'revoke' && v.recipient !== undefined) {
      if (!v.recipient.trim()) throw new UsageError('ferry transfers revoke: --recipient needs an address (see ferry transfers show ID)');
      // revokeLink keeps no reason; one given would be silently lost.
      if (v.reason !== undefined) throw new UsageError('ferry transfers revoke: --reason goes with revoking the whole transfer, not one recipient\'s link');
    }
    if (sub === 'extend' && !!v.until === !!v.by) throw new UsageError('ferry transfers extend: give --until DATE or --by DAYS');
    if (sub === 'delete' && !v.yes) throw new UsageError(`ferry transfers delete: this deletes the files of ${id} now and cannot be undone; add --yes`);
    // Dates are checked here, so a bad one is a usage error (2) with --server too.
    for (const flag of ['from', 'to', 'until'] as const) if (v[flag] !== undefined) parseDate(flag, v[flag]);
    const limit = v.limit ? parseNumber('limit', v.limit, { integer: true, min: 1 }) : 50;
    const byDays = v.by !== undefined ? parseNumber('by', v.by) : undefined;
    source = from instanceof AdminApiClient ? remoteTransfers(from) : await localTransfers(from);
    const now = Date.now();
    const show = (t: Transfer) => {
      if (v.json) io.out(JSON.stringify(transferJson(t), null, 2));
      else io.out(`${t.id}: ${stateLine(t)}`);
    };
    switch (sub) {
      case 'list': {
        const page = await source.search({ sender: v.sender, recipient: v.recipient, file: v.file, from: v.from, to: v.to, state: v.state as (typeof STATES)[number] | undefined, limit, cursor: v.cursor });
        if (v.json) {
          io.out(JSON.stringify({ items: page.items.map((t) => transferJson(t, now)), nextCursor: page.nextCursor }, null, 2));
        } else if (page.items.length === 0) {
          io.out('No transfer matches.');
        } else {
          io.out(
            table(
              ['ID', 'CREATED', 'STATE', 'EXPIRES', 'FILES', 'SIZE', 'SENDER', 'RECIPIENTS'],
              page.items.map((t) => [
                t.id,
                when(t.createdAt),
                shownState(t, now) + (t.held ? '+held' : ''),
                when(t.expiresAt),
                t.fileCount,
                bytes(t.totalBytes),
                t.sender || '<>',
                t.recipients.join(', '),
              ]),
            ),
          );
          if (page.nextCursor) io.out(`\nMore: ferry transfers list --cursor ${page.nextCursor} (with the same filters)`);
        }
        return 0;
      }
      case 'show': {
        const d = await source.detail(id!);
        if (v.json) {
          io.out(JSON.stringify(d.json, null, 2));
          return 0;
        }
        const t = d.transfer;
        io.out(
          [
            `Transfer ${t.id}`,
            `  state:       ${shownState(t, now)}${t.held ? `, on legal hold since ${when(t.heldAt)} by ${printable(t.heldBy)}${t.holdReason ? ` (${printable(t.holdReason)})` : ''}` : ''}`,
            `  sender:      ${printable(t.sender || '<>')}`,
            `  recipients:  ${printable(t.recipients.join(', '))}`,
            `  subject:     ${printable(t.subject)}`,
            `  created:     ${when(t.createdAt)}`,
            `  expires:     ${when(t.expiresAt)} (rule: ${t.retentionRule ?? 'default'})`,
            `  limit:       ${downloadLimit(d.limit)}; ${d.countedDownloads} counted so far`,
            `  files gone:  ${when(t.purgedAt)}`,
            `  password protected: ${t.passwordProtected ? 'yes' : 'no'}`,
            '',
            table(['#', 'NAME', 'TYPE', 'SIZE'], d.files.map((x) => [x.idx, x.name, x.contentType, bytes(x.size)])),
            '',
            recipientsTable(d.recipients),
            '',
            d.downloads.length
              ? table(
                  ['WHEN', 'RECIPIENT', 'FILE', 'STATUS', 'BYTES', 'COUNTED', 'CLIENT', 'USER AGENT'],
                  d.downloads.map((x) => [when(x.at), printable(x.recipient ?? 'shared link'), x.fileIdx ?? 'zip', x.status, x.bytesSent, x.counted ? 'yes' : x.scanner ? 'scanner' : 'no', x.client ?? '', (x.userAgent ?? '').slice(0, 60)]),
                )
              : 'No downloads yet.',
          ].join('\n'),
        );
        return 0;
      }
      case 'revoke':
        if (v.recipient !== undefined) {
          const revoked = await source.revokeRecipient(id!, v.recipient);
          io.out(`${id}: link of ${printable(revoked.join(', '))} revoked; it answers 410 from now on, the other links keep working`);
          return 0;
        }
        show(await source.revoke(id!, v.reason));
        return 0;
      case 'extend':
        show(await source.setExpiry(id!, v.until ? { until: v.until } : { byDays: byDays! }));
        return 0;
      case 'hold':
        show(await source.hold(id!, v.reason));
        return 0;
      case 'release':
        show(await source.release(id!));
        return 0;
      case 'delete':
        show(await source.delete(id!));
        return 0;
    }
    return 2;
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(err.message);
      return 2;
    }
    if (err instanceof AdminActionError || err instanceof BadCursorError) {
      io.err(`ferry transfers ${sub}: ${err.message}`);
      return 1;
    }
    if (err instanceof AdminApiError) {
      io.err(`ferry transfers ${sub}: ${err.message}`);
      return err.exitCode;
    }
    throw err;
  } finally {
    await source?.close();
  }
}
