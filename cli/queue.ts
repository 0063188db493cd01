import type { Config } from '../config/schema.js';
import { formatSize } from '../config/units.js';
import { deleteQueueEntry, QueueActionError, retryQueueEntry, retryWholeQueue } from '../admin/queue-actions.js';
import { listQueue, openStorage, type QueueEntry } from '../storage/index.js';
import { cliActor, printable } from './admin-output.js';
import { storageOptionsFrom } from './storage-options.js';

// `ferry queue list|retry|delete`: the delivery queue from the command line, against the
// configured database and blob store (a running Ferry need not be stopped). Retry and delete
// are the admin API's own functions (admin/queue-actions.ts), so they are audited the same way,
// as cli:USER.

export const QUEUE_USAGE = `Usage: ferry queue <list|retry|delete> [options] [--config FILE]

  ferry queue list [--json] [--limit N]   queued messages, oldest first
  ferry queue retry ID                    try ID again at the next worker pass
  ferry queue retry --all                 try every entry again
  ferry queue delete ID                   remove ID and its stored copy, silently
  ferry queue delete ID --bounce          return ID to its sender with a failure notice (DSN)`;

export async function queueCommand(config: Config, args: string[], out: (s: string) => void = console.log, err: (s: string) => void = console.error): Promise<number> {
  const [sub, ...rest] = args;
  const flags = new Set(rest.filter((a) => a.startsWith('--')));
  const positional = rest.filter((a, i) => !a.startsWith('--') && rest[i - 1] !== '--limit');
  if (!sub || !['list', 'retry', 'delete'].includes(sub)) {
    err(QUEUE_USAGE);
    return 2;
  }
  const storage = await openStorage(storageOptionsFrom(config));
  try {
    if (sub === 'list') {
      const li = rest.indexOf('--limit');
      const limit = li >= 0 ? Number(rest[li + 1]) : 1000;
      if (!Number.isInteger(limit) || limit < 1) {
        err('ferry queue list: --limit needs a whole number of at least 1');
        return 2;
      }
      const { total, entries } = await listQueue(storage.db, { limit });
      if (flags.has('--json')) out(JSON.stringify({ total, entries: entries.map(toJson) }, null, 2));
      else out(table(entries, total));
      return 0;
    }
    const ctx = { db: storage.db, blobs: storage.blobs, now: Date.now };
    const actor = cliActor();
    try {
      if (sub === 'retry') {
        if (flags.has('--all')) {
          const n = await retryWholeQueue(ctx, actor);
          if (n === 0) {
            err('the queue is empty');
            return 0;
          }
          out(`${n} ${n === 1 ? 'entry' : 'entries'} due now; a worker tries ${n === 1 ? 'it' : 'them'} within queue.pollInterval`);
          return 0;
        }
        const target = positional[0];
        if (!target) {
          err('ferry queue retry: name a queue id, or --all');
          return 2;
        }
        await retryQueueEntry(ctx, target, actor);
        out(`1 entry due now; a worker tries it within queue.pollInterval`);
        return 0;
      }
      const id = positional[0];
      if (!id) {
        err('ferry queue delete: name a queue id');
        return 2;
      }
      const { result, entry } = await deleteQueueEntry(ctx, id, flags.has('--bounce'), actor);
      const waiting = entry.recipients.filter((x) => x.state === 'pending').length;
      if (result === 'deleted') {
        out(`${id} deleted (${waiting} recipient${waiting === 1 ? '' : 's'} will not get it; no notice was sent${entry.transferId && !entry.recipients.some((x) => x.state === 'delivered') ? `; transfer ${entry.transferId} removed, as no link went out` : ''})`);
      } else {
        out(`${id} will be returned to <${printable(entry.sender)}> with a failure notice at the next worker pass`);
      }
      return 0;
    } catch (e) {
      if (!(e instanceof QueueActionError)) throw e;
      err(`ferry queue ${sub}: ${e.message}`);
      return 1;
    }
  } finally {
    await storage.close();
  }
}

function toJson(e: QueueEntry) {
  return {
    id: e.id,
    kind: e.kind,
    sender: e.sender,
    recipients: e.recipients,
    size: e.size,
    createdAt: new Date(e.createdAt).toISOString(),
    nextAttemptAt: new Date(e.nextAttemptAt).toISOString(),
    attempts: e.attempts,
    lastError: e.lastError,
    transferId: e.transferId,
    beingDelivered: e.leaseUntil > Date.now(),
    bounceRequested: e.cancel === 'bounce',
    delayNoticeSent: e.warned,
  };
}

function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

function table(entries: QueueEntry[], total: number): string {
  if (total === 0) return 'The queue is empty.';
  const now = Date.now();
  const rows = entries.map((e) => {
    const pending = e.recipients.filter((r) => r.state === 'pending');
    return [
      e.id + (e.kind === 'dsn' ? ' (dsn)' : ''),
      age(now - e.createdAt),
      formatSize(e.size),
      String(e.attempts),
      e.leaseUntil > now ? 'now' : e.nextAttemptAt <= now ? 'due' : `in ${age(e.nextAttemptAt - now)}`,
      printable(e.sender || '<>'),
      printable(`${pending.map((r) => r.address).slice(0, 3).join(', ')}${pending.length > 3 ? ` +${pending.length - 3}` : ''}`),
      // A next hop's reply, its own control characters included: shown, never sent to the terminal.
      printable((e.lastError ?? '').replace(/\s+/g, ' ').slice(0, 60)),
    ];
  });
  const head = ['QUEUE ID', 'AGE', 'SIZE', 'TRIES', 'NEXT', 'SENDER', 'PENDING RECIPIENTS', 'LAST ERROR'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  const lines = [fmt(head), ...rows.map(fmt)];
  lines.push(total > entries.length ? `${entries.length} of ${total} entries shown (--limit)` : `${total} ${total === 1 ? 'entry' : 'entries'}`);
  return lines.join('\n');
}
