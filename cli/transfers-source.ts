import type { Config } from '../config/schema.js';
import {
  AdminActionError,
  DAY_MS,
  deleteTransferNow,
  holdTransfer,
  recipientStatus,
  recipientStatusJson,
  releaseTransfer,
  retentionBounds,
  revokeRecipientLinks,
  revokeTransfer,
  searchTransfers,
  setTransferExpiry,
  transferDetail,
  transferJson,
  type RecipientStatus,
  type Transfer,
  type TransferState,
} from '../storage/index.js';
import type { AdminApiClient } from './admin-client.js';
import { cliActor, openAdminStorage, parseDate } from './admin-output.js';

// Where `ferry transfers` reads and changes transfers: the configured database (the default,
// audited as cli:USER) or a running Ferry's admin API (--server, audited as admin:NAME and
// subject to the token's role). The command prints the same either way.

export interface TransferFilters {
  sender?: string;
  recipient?: string;
  file?: string;
  /** DATE as given (2026-12-01 or an ISO time); `to` with a bare date means to the end of that day. */
  from?: string;
  to?: string;
  state?: TransferState | 'held';
  limit: number;
  cursor?: string;
}

export interface ShownDetail {
  transfer: Transfer;
  files: { idx: number; name: string; contentType: string; size: number }[];
  countedDownloads: number;
  downloads: { at: number; recipient: string | null; fileIdx: number | null; status: number; bytesSent: number; counted: boolean; scanner: boolean; client: string | null; userAgent: string | null }[];
  recipients: RecipientStatus[];
  /** The download limit in force (the transfer's, else the site's); 0 = unlimited. */
  limit: number;
  /** What `show --json` prints. */
  json: unknown;
}

export interface TransfersSource {
  search(f: TransferFilters): Promise<{ items: Transfer[]; nextCursor: string | null }>;
  detail(id: string): Promise<ShownDetail>;
  revoke(id: string, reason: string | undefined): Promise<Transfer>;
  /** The recipients whose link was revoked. */
  revokeRecipient(id: string, recipient: string): Promise<string[]>;
  setExpiry(id: string, change: { until: string } | { byDays: number }): Promise<Transfer>;
  hold(id: string, reason: string | undefined): Promise<Transfer>;
  release(id: string): Promise<Transfer>;
  delete(id: string): Promise<Transfer>;
  close(): Promise<void>;
}

const endOfDay = (v: string) => parseDate('to', v) + (/^\d{4}-\d{2}-\d{2}$/.test(v.trim()) ? DAY_MS : 0);

export async function localTransfers(config: Config): Promise<TransfersSource> {
  const storage = await openAdminStorage(config);
  const { db, blobs } = storage;
  const actor = cliActor();
  const must = async <T>(id: string, p: Promise<T | undefined>) => {
    const v = await p;
    if (!v) throw new AdminActionError('not_found', `no transfer ${id}`);
    return v;
  };
  return {
    search: (f) =>
      searchTransfers(db, {
        sender: f.sender,
        recipient: f.recipient,
        fileName: f.file,
        from: f.from ? parseDate('from', f.from) : undefined,
        // --from D --to D means that day: a date alone ends at the next midnight (UTC).
        to: f.to ? endOfDay(f.to) : undefined,
        state: f.state,
        limit: f.limit,
        cursor: f.cursor,
      }),
    async detail(id) {
      const d = await must(id, transferDetail(db, id));
      const recipients = await recipientStatus(db, id);
      return {
        ...d,
        recipients,
        limit: d.transfer.maxDownloads ?? config.web.maxDownloads ?? 0,
        json: { ...transferJson(d.transfer), files: d.files, passwordProtected: d.transfer.passwordProtected, recipients: recipients.map(recipientStatusJson), countedDownloads: d.countedDownloads, downloads: d.downloads },
      };
    },
    revoke: (id, reason) => revokeTransfer(db, id, actor, reason),
    revokeRecipient: async (id, recipient) => (await revokeRecipientLinks(db, id, { recipient }, actor)).map((l) => l.recipient),
    async setExpiry(id, change) {
      const expiresAt = 'until' in change ? parseDate('until', change.until) : (await must(id, transferDetail(db, id, 0))).transfer.expiresAt + change.byDays * DAY_MS;
      return setTransferExpiry(db, id, expiresAt, actor, retentionBounds(config));
    },
    hold: (id, reason) => holdTransfer(db, id, actor, reason),
    release: (id) => releaseTransfer(db, id, actor),
    delete: (id) => deleteTransferNow(db, blobs, id, actor),
    close: () => storage.close(),
  };
}

type TransferJson = ReturnType<typeof transferJson> & { passwordProtected?: boolean };
const ms = (iso: string) => Date.parse(iso);
const msOrNull = (iso: string | null | undefined) => (iso ? Date.parse(iso) : null);

/** The API's transfer (storage/admin-queries.ts transferJson) as the row the printing code takes. */
export function transferFromJson(j: TransferJson): Transfer {
  return {
    id: j.id,
    tokenHash: '',
    state: j.storedState,
    queueId: j.queueId,
    sender: j.sender,
    recipients: j.recipients,
    subject: j.subject,
    messageId: j.messageId,
    createdAt: ms(j.createdAt),
    expiresAt: ms(j.expiresAt),
    fileCount: j.fileCount,
    totalBytes: j.totalBytes,
    retentionRule: j.retentionRule,
    maxDownloads: j.maxDownloads,
    held: j.held,
    heldAt: msOrNull(j.heldAt),
    heldBy: j.heldBy,
    holdReason: j.holdReason,
    purgedAt: msOrNull(j.filesDeletedAt),
    manageTokenHash: null,
    passwordProtected: j.passwordProtected ?? false,
  };
}

type RecipientJson = ReturnType<typeof recipientStatusJson>;
function recipientFromJson(r: RecipientJson): RecipientStatus {
  return { ...r, revokedAt: msOrNull(r.revokedAt), files: r.files.map((f) => ({ ...f, completeAt: msOrNull(f.completeAt) })) };
}

export function remoteTransfers(api: AdminApiClient): TransfersSource {
  const path = (id: string) => `/transfers/${encodeURIComponent(id)}`;
  const one = async (p: Promise<TransferJson>) => transferFromJson(await p);
  return {
    async search(f) {
      const page = await api.call<{ items: TransferJson[]; nextCursor: string | null }>('GET', '/transfers', {
        query: { sender: f.sender, recipient: f.recipient, file: f.file, from: f.from, to: f.to, state: f.state, limit: Math.min(f.limit, 200), cursor: f.cursor },
      });
      return { items: page.items.map(transferFromJson), nextCursor: page.nextCursor };
    },
    async detail(id) {
      const j = await api.call<TransferJson & { effectiveMaxDownloads: number | null; files: ShownDetail['files']; recipients: RecipientJson[]; countedDownloads: number; downloads: (Omit<ShownDetail['downloads'][number], 'at'> & { at: string })[] }>('GET', path(id));
      return {
        transfer: transferFromJson(j),
        files: j.files,
        countedDownloads: j.countedDownloads,
        downloads: j.downloads.map((x) => ({ ...x, at: ms(x.at) })),
        recipients: j.recipients.map(recipientFromJson),
        limit: j.effectiveMaxDownloads ?? 0,
        json: j,
      };
    },
    revoke: (id, reason) => one(api.call('POST', `${path(id)}/revoke`, { body: reason !== undefined ? { reason } : {} })),
    async revokeRecipient(id, recipient) {
      const r = await api.call<{ revoked: string[]; recipients: RecipientJson[] }>('POST', `${path(id)}/recipients/revoke`, { body: { recipient } });
      return r.recipients.filter((x) => r.revoked.includes(x.linkId)).map((x) => x.recipient);
    },
    setExpiry: (id, change) => one(api.call('POST', `${path(id)}/expiry`, { body: 'until' in change ? { expiresAt: change.until } : { addDays: change.byDays } })),
    hold: (id, reason) => one(api.call('POST', `${path(id)}/hold`, { body: reason !== undefined ? { reason } : {} })),
    release: (id) => one(api.call('POST', `${path(id)}/release`, { body: {} })),
    delete: (id) => one(api.call('DELETE', path(id))),
    close: async () => undefined,
  };
}
