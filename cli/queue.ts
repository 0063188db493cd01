import type { Config } from '../config/schema.js';
import { formatSize } from '../config/units.js';
import { deleteQueueEntry, QueueActionError, retryQueueEntry, retryWholeQueue } from '../admin/queue-actions.js';
import type { queueEntryJson } from '../admin/queue-api.js';
import { listQueue, openStorage, type QueueEntry } from '../storage/index.js';
import { AdminApiClient, AdminApiError } from './admin-client.js';
import { cliActor, printable, UsageError } from './admin-output.js';
import { storageOptionsFrom } from './storage-options.js';

// `ferry queue list|retry|delete`: the delivery queue from the command line, against the
// configured database and blob store (a running Ferry need not be stopped). Retry and delete
// are the admin API's own functions (admin/queue-actions.ts), so they are audited the same way,
// as cli:USER. With --server, the same through a running Ferry's admin API (as admin:NAME).

export const QUEUE_USAGE = `Usage: ferry queue <list|retry|delete> [options] [--config FILE | --server URL]

  ferry queue list [--json] [--limit N]   queued messages, oldest first
  ferry queue retry ID                    try ID again at the next worker pass
  ferry queue retry --all                 try every entry again
  ferry queue delete ID                   remove ID and its stored copy, silently
  ferry queue delete ID --bounce          return ID to its sender with a failure notice (DSN)

  --server https://ferry.example.org: through that Ferry's admin API, with the token in
  FERRY_CLI_TOKEN (docs/admin.md).`;

/** Where `ferry queue` reads and changes the queue: the database, or a Ferry's admin API (--server). */
interface QueueSource {
  list(limit: number): Promise<{ total: number; entries: QueueEntry[] }>;
  retryAll(): Promise<number>;
  retry(id: string): Promise<void>;
  delete(id: string, bounce: boolean): Promise<{ result: 'deleted' | 'bounce-scheduled'; entry: QueueEntry }>;
  close(): Promise<void>;
}

async function localQueue(config: Config): Promise<QueueSource> {
  const storage = await openStorage(storageOptionsFrom(config));
  const ctx = { db: storage.db, blobs: storage.blobs, now: Date.now };
  const actor = cliActor();
  return {
    list: (limit) => listQueue(storage.db, { limit }),
    retryAll: () => retryWholeQueue(ctx, actor),
    retry: async (id) => void (await retryQueueEntry(ctx, id, actor)),
    delete: (id, bounce) => deleteQueueEntry(ctx, id, bounce, actor),
    close: () => storage.close(),
  };
}

type EntryJson = ReturnType<typeof queueEntryJson>;
const entryFromJson = (j: EntryJson): QueueEntry => ({
  id: j.id,
  kind: j.kind,
  transferId: j.transferId,
  sender: j.sender,
  recipients: j.recipients.map((r) => ({ address: r.address, state: r.state, code: r.code ?? undefined, response: r.response ?? undefined, notify: r.notify ?? undefined, orcpt: r.orcpt ?? undefined })),
  dsnRet: j.dsnRet,
  dsnEnvid: j.dsnEnvid,
  blobKey: '',
  size: j.size,
  createdAt: Date.parse(j.createdAt),
  nextAttemptAt: Date.parse(j.nextAttemptAt),
  attempts: j.attempts,
  lastError: j.lastError,
  leaseOwner: null,
  leaseUntil: j.leaseUntil ? Date.parse(j.leaseUntil) : 0,
  warned: j.delayNoticeSent,
  cancel: j.bounceRequested ? 'bounce' : null,
});

function remoteQueue(api: AdminApiClient): QueueSource {
  const path = (id: string) => `/queue/${encodeURIComponent(id)}`;
  return {
    async list(limit) {
      // The API pages by at most 200: follow its cursor up to the limit asked for.
      const entries: QueueEntry[] = [];
      let total = 0;
      let cursor: string | undefined;
      do {
        const page = await api.call<{ items: EntryJson[]; total: number; nextCursor: string | null }>('GET', '/queue', { query: { limit: Math.min(200, limit - entries.length), cursor } });
        total = page.total;
        entries.push(...page.items.map(entryFromJson));
        cursor = page.nextCursor ?? undefined;
      } while (cursor && entries.length < limit);
      return { total, entries };
    },
    retryAll: async () => (await api.call<{ retried: number }>('POST', '/queue/retry', { body: {} })).retried,
    retry: async (id) => void (await api.call('POST', `${path(id)}/retry`, { body: {} })),
    async delete(id, bounce) {
      const entry = entryFromJson(await api.call<EntryJson>('GET', path(id)));
      const r = await api.call<{ result: 'deleted' | 'bounce-scheduled' }>('DELETE', path(id), { query: { bounce: String(bounce) } });
      return { result: r.result, entry };
    },
    close: async () => undefined,
  };
}

export async function queueCommand(from: Config | AdminApiClient, args: string[], out: (s: string) => void = console.log, err: (s: string) => void = console.error): Promise<number> {
  const [sub, ...rest] = args;
  const flags = new Set(rest.filter((a) => a.startsWith('--')));
  const positional = rest.filter((a, i) => !a.startsWith('--') && rest[i - 1] !== '--limit');
  if (!sub || !['list', 'retry', 'delete'].includes(sub)) {
    err(QUEUE_USAGE);
    return 2;
  }
  let limit = 1000;
  if (sub === 'list') {
    const li = rest.indexOf('--limit');
    limit = li >= 0 ? Number(rest[li + 1]) : 1000;
    if (!Number.isInteger(limit) || limit < 1) {
      err('ferry queue list: --limit needs a whole number of at least 1');
      return 2;
    }
  } else if (sub === 'retry' && !flags.has('--all') && !positional[0]) {
    err('ferry queue retry: name a queue id, or --all');
    return 2;
  } else if (sub === 'delete' && !positional[0]) {
    err('ferry queue delete: name a queue id');
    return 2;
  }
  let source: QueueSource | undefined;
  try {
    source = from instanceof AdminApiClient ? remoteQueue(from) : await localQueue(from);
    if (sub === 'list') {
      const { total, entries } = await source.list(limit);
      if (flags.has('--json')) out(JSON.stringify({ total, entries: entries.map(toJson) }, null, 2));
      else out(table(entries, total));
      return 0;
    }
    if (sub === 'retry') {
      if (flags.has('--all')) {
        const n = await source.retryAll();
        if (n === 0) {
          err('the queue is empty');
          return 0;
        }
        out(`${n} ${n === 1 ? 'entry' : 'entries'} due now; a worker tries ${n === 1 ? 'it' : 'them'} within queue.pollInterval`);
        return 0;
      }
      await source.retry(positional[0]!);
      out(`1 entry due now; a worker tries it within queue.pollInterval`);
      return 0;
    }
    const id = positional[0]!;
    const { result, entry } = await source.delete(id, flags.has('--bounce'));
    const waiting = entry.recipients.filter((x) => x.state === 'pending').length;
    if (result === 'deleted') {
      out(`${id} deleted (${waiting} recipient${waiting === 1 ? '' : 's'} will not get it; no notice was sent${entry.transferId && !entry.recipients.some((x) => x.state === 'delivered') ? `; transfer ${entry.transferId} removed, as no link went out` : ''})`);
    } else {
      out(`${id} will be returned to <${printable(entry.sender)}> with a failure notice at the next worker pass`);
    }
    return 0;
  } catch (e) {
    if (e instanceof QueueActionError || e instanceof UsageError) {
      err(`ferry queue ${sub}: ${e.message}`);
      return e instanceof UsageError ? 2 : 1;
    }
    if (e instanceof AdminApiError) {
      err(`ferry queue ${sub}: ${e.message}`);
      return e.exitCode;
    }
    throw e;
  } finally {
    await source?.close();
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
