import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { formatUtc } from '../config/units.js';
import { htmlAscii } from '../gateway/notice.js';
import { displayName, isOwnAddress, queueSystemMail, type BlobStore, type Db } from '../storage/index.js';

// Download notices to senders (senders.notifyOnDownload, docs/senders.md), run by the worker
// role every minute:
//   first:  a mail at the first complete download through each recipient's link;
//   digest: one mail a day at senders.digestAt (server time) with every complete download since
//           the previous digest, grouped by transfer and recipient;
//   off:    nothing; downloads are marked covered so that turning notices on later never mails
//           about old ones.
// "Complete" is what the download limit counts (downloads.counted = 1), fetched by a person
// (scanner = 0) with GET: scanner fetches, HEAD and partial ranges that did not add up to the
// whole file never lead to a notice.
//
// Several workers may run this at once. Each mail is queued in the same database transaction
// that claims its download rows (UPDATE ... WHERE notified = 0) and its per-link or per-sender
// marker (download_notices, sender_digests): a worker whose claim changed nothing sends nothing,
// and a crash rolls the claim back with the queue entry, so a notice is neither lost nor doubled.

export type NotifyMode = 'off' | 'first' | 'digest';

export interface DownloadNoticeContext {
  db: Db;
  blobs: BlobStore;
  logger: Logger;
  /** Ferry's host name (Message-ID). */
  hostname: string;
  /** senders.from. */
  from: string;
  mode: NotifyMode;
  /** senders.digestAt, HH:MM server time. */
  digestAt: string;
}

export interface NoticePass {
  /** Mails queued in this pass. */
  mails: number;
  /** Download rows a mail covered. */
  covered: number;
}

/** Rows per pass; the rest waits for the next minute. */
const BATCH = 500;
const TICK_MS = 60_000;

/** The most recent digest time at or before `now` (server time zone). */
export function lastDigestTime(now: number, digestAt: string): number {
  const [h, m] = digestAt.split(':').map(Number) as [number, number];
  const d = new Date(now);
  d.setHours(h, m, 0, 0);
  // setDate, not minus 24 h: a day with a clock change is 23 or 25 hours long.
  if (d.getTime() > now) d.setDate(d.getDate() - 1);
  return d.getTime();
}

/** One pass of the configured mode. */
export async function noticesOnce(ctx: DownloadNoticeContext, now = Date.now()): Promise<NoticePass> {
  await coverNonQualifying(ctx.db, ctx.mode);
  if (ctx.mode === 'first') return firstNotices(ctx, now);
  if (ctx.mode === 'digest') return digests(ctx, now);
  return { mails: 0, covered: 0 };
}

/**
 * Marks rows no notice will ever cover, so the passes do not read them again: finished requests
 * that were scanners, HEAD or not GET, downloads of transfers with a null sender, and, with
 * notices off, every complete download. Rows not counted yet are left alone: a download in
 * progress, or a range that a later one completes, may still count.
 */
async function coverNonQualifying(db: Db, mode: NotifyMode): Promise<void> {
  let q = db.updateTable('downloads').set({ notified: 1 }).where('notified', '=', 0).where('counted', '=', 1);
  if (mode !== 'off') {
    q = q.where((eb) =>
      eb.or([
        eb('scanner', '<>', 0),
        eb('method', 'is', null),
        eb('method', '<>', 'GET'),
        // Correlated, so only the few candidate rows are looked up (transfers.sender has no index).
        eb.exists(eb.selectFrom('transfers').select('transfers.id').whereRef('transfers.id', '=', 'downloads.transfer_id').where('transfers.sender', '=', '')),
      ]),
    );
  }
  await q.execute();
}

interface DownloadRow {
  id: number;
  transfer_id: string;
  link_id: string | null;
  file_idx: number | null;
  at: number;
}

/** Complete downloads by a person with GET, not covered yet (the join keeps only live records). */
function qualifying(db: Db) {
  return db
    .selectFrom('downloads as d')
    .innerJoin('transfers as t', 't.id', 'd.transfer_id')
    .where('d.notified', '=', 0)
    .where('d.counted', '=', 1)
    .where('d.scanner', '=', 0)
    .where('d.method', '=', 'GET')
    .where('t.sender', '<>', '');
}

// ---- first ----

async function firstNotices(ctx: DownloadNoticeContext, now: number): Promise<NoticePass> {
  const rows = (await qualifying(ctx.db).select(['d.id', 'd.transfer_id', 'd.link_id', 'd.file_idx', 'd.at']).orderBy('d.id').limit(BATCH).execute()).map(toRow);
  const byLink = new Map<string, DownloadRow[]>();
  for (const r of rows) {
    // Downloads recorded without a link came through the shared one, whose id is the transfer's.
    const key = r.link_id ?? r.transfer_id;
    byLink.set(key, [...(byLink.get(key) ?? []), r]);
  }
  const pass: NoticePass = { mails: 0, covered: 0 };
  for (const [linkKey, group] of byLink) {
    try {
      const sent = await ctx.db.transaction().execute(async (trx) => {
        const claimed = await trx
          .updateTable('downloads')
          .set({ notified: 1 })
          .where('id', 'in', group.map((r) => r.id))
          .where('notified', '=', 0)
          .returning(['id', 'transfer_id', 'link_id', 'file_idx', 'at'])
          .execute();
        if (claimed.length === 0) return undefined; // another worker covered them
        pass.covered += claimed.length;
        const first = await trx
          .insertInto('download_notices')
          .values({ link_key: linkKey, transfer_id: group[0]!.transfer_id, sent_at: now })
          .onConflict((oc) => oc.column('link_key').doNothing())
          .executeTakeFirst();
        // Not the first complete download through this link: the one before was reported.
        if (Number(first.numInsertedOrUpdatedRows ?? 0) === 0) return undefined;
        const info = await describeRows(trx as unknown as Db, claimed.map(toRow));
        const t = info.transfers.get(group[0]!.transfer_id);
        // Covered, not told: Ferry's own address as the sender (storage/system-mail.ts isOwnAddress).
        if (!t || isOwnAddress(t.sender, ctx.from)) return undefined;
        const downloads = claimed.map(toRow).sort((a, b) => a.at - b.at);
        const mail = firstMail(t, info.recipient(linkKey), downloads);
        return queueSystemMail({ db: trx as unknown as Db, blobs: ctx.blobs, hostname: ctx.hostname }, { to: t.sender, from: ctx.from, ...mail }, now);
      });
      if (sent) {
        pass.mails++;
        ctx.logger.info({ notice: sent, transferId: group[0]!.transfer_id, linkId: linkKey }, `first-download notice queued as ${sent}`);
      }
    } catch (err) {
      // Rolled back: the rows stay uncovered and the next pass tries again.
      ctx.logger.warn({ err, linkId: linkKey }, 'could not queue a download notice');
    }
  }
  return pass;
}

// ---- digest ----

async function digests(ctx: DownloadNoticeContext, now: number): Promise<NoticePass> {
  const cutoff = lastDigestTime(now, ctx.digestAt);
  const senders = await qualifying(ctx.db).where('d.at', '<', cutoff).select('t.sender').distinct().limit(BATCH).execute();
  const pass: NoticePass = { mails: 0, covered: 0 };
  for (const { sender } of senders) {
    try {
      const sent = await ctx.db.transaction().execute(async (trx) => {
        // One digest per sender and digest time: the marker moves forward only once.
        const mark = await trx
          .insertInto('sender_digests')
          .values({ sender, cutoff, sent_at: now })
          .onConflict((oc) => oc.column('sender').doUpdateSet({ cutoff, sent_at: now }).where('sender_digests.cutoff', '<', cutoff))
          .executeTakeFirst();
        if (Number(mark.numInsertedOrUpdatedRows ?? 0) === 0) return undefined;
        const claimed = (
          await trx
            .updateTable('downloads')
            .set({ notified: 1 })
            .where('notified', '=', 0)
            .where('counted', '=', 1)
            .where('scanner', '=', 0)
            .where('method', '=', 'GET')
            .where('at', '<', cutoff)
            .where((eb) => eb.exists(eb.selectFrom('transfers').select('transfers.id').whereRef('transfers.id', '=', 'downloads.transfer_id').where('transfers.sender', '=', sender)))
            .returning(['id', 'transfer_id', 'link_id', 'file_idx', 'at'])
            .execute()
        ).map(toRow);
        if (claimed.length === 0) return undefined;
        pass.covered += claimed.length;
        if (isOwnAddress(sender, ctx.from)) return undefined;
        const info = await describeRows(trx as unknown as Db, claimed);
        const mail = digestMail(claimed, info, cutoff);
        return queueSystemMail({ db: trx as unknown as Db, blobs: ctx.blobs, hostname: ctx.hostname }, { to: sender, from: ctx.from, ...mail }, now);
      });
      if (sent) {
        pass.mails++;
        ctx.logger.info({ notice: sent, to: sender }, `download digest queued as ${sent}`);
      }
    } catch (err) {
      ctx.logger.warn({ err, to: sender }, 'could not queue a download digest');
    }
  }
  return pass;
}

// ---- what the mails say ----

interface TransferInfo {
  id: string;
  sender: string;
  subject: string | null;
  createdAt: number;
  files: Map<number, string>;
}

interface Described {
  transfers: Map<string, TransferInfo>;
  /** The address a link belongs to; '' for the shared link. */
  recipient(linkKey: string): string;
}

function toRow(r: { id: number | string; transfer_id: string; link_id: string | null; file_idx: number | null; at: number | string }): DownloadRow {
  return { id: Number(r.id), transfer_id: r.transfer_id, link_id: r.link_id, file_idx: r.file_idx === null ? null : Number(r.file_idx), at: Number(r.at) };
}

async function describeRows(db: Db, rows: DownloadRow[]): Promise<Described> {
  const ids = [...new Set(rows.map((r) => r.transfer_id))];
  const linkIds = [...new Set(rows.map((r) => r.link_id).filter((x): x is string => !!x))];
  const transfers = await db.selectFrom('transfers').select(['id', 'sender', 'subject', 'created_at']).where('id', 'in', ids).execute();
  const files = await db.selectFrom('files').select(['transfer_id', 'idx', 'name']).where('transfer_id', 'in', ids).execute();
  const links = linkIds.length ? await db.selectFrom('links').select(['id', 'recipient']).where('id', 'in', linkIds).execute() : [];
  const out = new Map<string, TransferInfo>();
  // The subject as one clean line (displayName): decoded, it may hold line breaks or
  // reordering characters that would let a message's author lay out the text of Ferry's mail.
  for (const t of transfers) out.set(t.id, { id: t.id, sender: t.sender, subject: (t.subject && displayName(t.subject, '')) || null, createdAt: Number(t.created_at), files: new Map() });
  for (const f of files) out.get(f.transfer_id)?.files.set(Number(f.idx), f.name);
  const recipients = new Map(links.map((l) => [l.id, l.recipient]));
  return { transfers: out, recipient: (key) => recipients.get(key) ?? '' };
}

const who = (recipient: string) => recipient || 'someone with the shared link';
const what = (t: TransferInfo, idx: number | null) => (idx === null ? 'all files (zip)' : displayName(t.files.get(idx) ?? `file ${idx}`));
const message = (t: TransferInfo) => (t.subject ? `your message "${t.subject}"` : 'your message');
const FOOT = 'Your receipt for the message has the link to its management page, which lists every download.';

function firstMail(t: TransferInfo, recipient: string, downloads: DownloadRow[]): { subject: string; text: string; html: string } {
  const lines = downloads.map((d) => `* ${what(t, d.file_idx)}, ${formatUtc(d.at)}`);
  const text = [
    `${who(recipient)} downloaded files of ${message(t)} (sent ${formatUtc(t.createdAt)}):`,
    '',
    ...lines,
    '',
    `This is the first complete download through ${recipient ? `${recipient}'s link` : 'the shared link'}; later downloads through it are not reported by mail.`,
    FOOT,
    '',
  ].join('\n');
  const html =
    `<div style="font-family:Arial,Helvetica,sans-serif;font-size:14px;color:#1f2933">` +
    `<p>${htmlAscii(who(recipient))} downloaded files of ${htmlAscii(message(t))} (sent ${htmlAscii(formatUtc(t.createdAt))}):</p>` +
    `<ul>${downloads.map((d) => `<li>${htmlAscii(what(t, d.file_idx))}, ${htmlAscii(formatUtc(d.at))}</li>`).join('')}</ul>` +
    `<p>This is the first complete download through ${htmlAscii(recipient ? `${recipient}'s link` : 'the shared link')}; later downloads through it are not reported by mail.</p>` +
    `<p style="color:#555">${FOOT}</p></div>`;
  const subject = `Downloaded by ${who(recipient)}: ${t.subject ? `"${t.subject}"` : 'your files'}`;
  return { subject, text, html };
}

function digestMail(rows: DownloadRow[], info: Described, cutoff: number): { subject: string; text: string; html: string } {
  // Transfers oldest first; within one, recipients in address order; downloads in time order.
  const byTransfer = new Map<string, Map<string, DownloadRow[]>>();
  for (const r of [...rows].sort((a, b) => a.at - b.at)) {
    const rec = info.recipient(r.link_id ?? r.transfer_id);
    const m = byTransfer.get(r.transfer_id) ?? new Map<string, DownloadRow[]>();
    m.set(rec, [...(m.get(rec) ?? []), r]);
    byTransfer.set(r.transfer_id, m);
  }
  const transfers = [...byTransfer.keys()].map((id) => info.transfers.get(id)).filter((t): t is TransferInfo => !!t).sort((a, b) => a.createdAt - b.createdAt);
  const text: string[] = [`Complete downloads of your files up to ${formatUtc(cutoff)}: ${rows.length}.`, ''];
  let html = `<div style="font-family:Arial,Helvetica,sans-serif;font-size:14px;color:#1f2933"><p>Complete downloads of your files up to ${htmlAscii(formatUtc(cutoff))}: ${rows.length}.</p>`;
  for (const t of transfers) {
    const heading = `${t.subject ? `"${t.subject}"` : '(no subject)'}, sent ${formatUtc(t.createdAt)}`;
    text.push(heading);
    html += `<h2 style="font-size:16px;margin:16px 0 4px 0">${htmlAscii(heading)}</h2>`;
    // Addresses in code-unit order: the same on every server whatever its locale, and no ICU
    // collator paged in for it (docs/performance.md, "Code pages").
    const recs = [...byTransfer.get(t.id)!.entries()].sort(([a], [b]) => (a === '' ? 1 : b === '' ? -1 : a < b ? -1 : a > b ? 1 : 0));
    for (const [rec, list] of recs) {
      text.push(`  ${who(rec)}:`, ...list.map((d) => `  * ${what(t, d.file_idx)}, ${formatUtc(d.at)}`));
      html += `<p style="margin:8px 0 2px 0">${htmlAscii(who(rec))}:</p><ul style="margin:0">${list.map((d) => `<li>${htmlAscii(what(t, d.file_idx))}, ${htmlAscii(formatUtc(d.at))}</li>`).join('')}</ul>`;
    }
    text.push('');
  }
  text.push(FOOT, '');
  html += `<p style="color:#555">${FOOT}</p></div>`;
  const subject = `Downloads of your files: ${rows.length} up to ${formatUtc(cutoff)}`;
  return { subject, text: text.join('\n'), html };
}

// ---- the worker loop ----

/** Starts the minute-by-minute passes in the worker role; returns the stop function. */
export function startDownloadNotices(config: Config, db: Db, blobs: BlobStore, logger: Logger): () => Promise<void> {
  const ctx: DownloadNoticeContext = {
    db,
    blobs,
    logger,
    hostname: config.smtp.hostname,
    from: config.senders.from,
    mode: config.senders.notifyOnDownload,
    digestAt: config.senders.digestAt,
  };
  let running: Promise<void> | null = null;
  let stopped = false;
  const tick = () => {
    if (running || stopped) return;
    running = noticesOnce(ctx)
      .then((p) => {
        if (p.mails) logger.info({ notices: p }, 'download notices pass');
      })
      .catch((err: Error) => logger.warn({ err }, 'download notices pass failed; tried again in a minute'))
      .finally(() => {
        running = null;
      });
  };
  tick();
  const timer = setInterval(tick, TICK_MS);
  timer.unref();
  return async () => {
    stopped = true;
    clearInterval(timer);
    await running;
  };
}
