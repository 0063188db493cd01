import { formatSize } from '../config/units.js';
import { queueEntryStatus, type QueueEntry, type QueueStats, type Transfer } from '../storage/index.js';
import { html, type Html } from '../web/html.js';
import { breakable, csrfField, layout, td, when, type AdminPage } from './layout.js';

// The admin UI's queue pages: the list, one entry with "Retry now" and "Delete", and the
// confirmation step of a delete. No script: every action is a POST form with the CSRF token.

/** "45 s", "12 min", "3 h 20 min", "2 d 4 h": how long a message has waited. */
export function ageText(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

const STATE_LABELS: Record<string, string> = {
  due: 'due',
  deferred: 'deferred',
  delivering: 'being delivered',
  bouncing: 'being returned',
};

function nextAttempt(e: QueueEntry, now: number): Html | string {
  const st = queueEntryStatus(e, now);
  if (st === 'delivering') return 'now';
  if (st === 'bouncing') return 'at the next worker pass (returning)';
  if (e.nextAttemptAt <= now) return 'due now';
  return html`${when(e.nextAttemptAt)} <span class="note">(in ${ageText(e.nextAttemptAt - now)})</span>`;
}

const stateBadge = (e: QueueEntry, now: number) => {
  const st = queueEntryStatus(e, now);
  return html`<span class="badge q-${st}">${STATE_LABELS[st]}</span>`;
};

const sender = (e: QueueEntry) => (e.sender ? e.sender : '<>');

function recipientList(e: QueueEntry): Html {
  return html`<ul class="rcpts">${e.recipients.map((r) => html`<li>${breakable(r.address)} <span class="badge r-${r.state}">${r.state}</span></li>`)}</ul>`;
}

const QUEUE_DONE: Record<string, string> = {
  retried: 'Due now: a worker tries it within queue.pollInterval.',
  'retried-all': 'Every entry is due now: workers try them within queue.pollInterval.',
  deleted: 'Deleted: the message and its stored copy are gone; no notice was sent.',
  bounced: 'Marked for return: the next worker pass sends the sender a failure notice and removes the entry.',
};

function queueFlash(done: unknown): Html {
  const m = typeof done === 'string' ? QUEUE_DONE[done] : undefined;
  return m ? html`<p class="flash card" role="status">${m}</p>` : html``;
}

export interface QueueFilterValues {
  state?: string;
  sender?: string;
  recipient?: string;
}

export interface QueueListView {
  values: QueueFilterValues;
  items: QueueEntry[];
  total: number;
  stats: QueueStats;
  nextUrl: string | null;
  now: number;
  done?: unknown;
  error?: string;
  /** Count of entries made due by "Retry all", shown in the flash. */
  retried?: number;
}

export function queuePage(p: AdminPage, v: QueueListView): string {
  const f = v.values;
  const input = (name: 'sender' | 'recipient', label: string) =>
    html`<label class="field" for="q-${name}">${label}<input id="q-${name}" name="${name}" value="${f[name] ?? ''}"></label>`;
  const filtered = !!(f.state || f.sender || f.recipient);
  return layout(
    p,
    'Queue',
    html`${queueFlash(v.done)}${v.error ? html`<p class="error" role="alert">${v.error}</p>` : ''}
<p>Messages the next hop has not taken yet. Ferry retries them on its schedule (queue.retrySchedule), warns senders after queue.delayWarning and returns them after queue.maxAge.</p>
<div class="stats">
<div class="card stat"><span class="n" id="queue-size">${v.stats.size}</span><span class="l">queued</span></div>
<div class="card stat"><span class="n" id="queue-oldest">${v.stats.size ? ageText(v.stats.oldestAgeMs) : '–'}</span><span class="l">oldest entry</span></div>
</div>
<form class="search" method="get" action="${p.base}/queue" role="search">
${input('recipient', 'Recipient')}${input('sender', 'Sender')}
<label class="field" for="q-state">State<select id="q-state" name="state">${['', 'due', 'deferred', 'delivering', 'bouncing'].map(
      (s) => html`<option value="${s}"${f.state === s ? html` selected` : ''}>${s ? STATE_LABELS[s] : 'any'}</option>`,
    )}</select></label>
<button class="btn primary" type="submit">Filter</button>
</form>
${
  v.items.length
    ? html`<p class="note">${filtered ? `${v.total} matching entr${v.total === 1 ? 'y' : 'ies'}` : `${v.total} entr${v.total === 1 ? 'y' : 'ies'}`}, oldest first.</p>
<div class="table-wrap"><table class="data" id="queue">
<thead><tr><th>Queue id</th><th>Sender</th><th>Recipients</th><th class="num">Attempts</th><th>Age</th><th>Next attempt</th><th>Last error</th></tr></thead>
<tbody>${v.items.map(
        (e) =>
          html`<tr>${td('Queue id', html`<a href="${p.base}/queue/${e.id}">${e.id}</a>${e.kind === 'dsn' ? html` <span class="badge">notice</span>` : ''}<br>${stateBadge(e, v.now)}`, 'nowrap')}${td('Sender', breakable(sender(e)), 'addr')}${td('Recipients', recipientList(e), 'addr')}${td('Attempts', e.attempts, 'num')}${td('Age', ageText(v.now - e.createdAt), 'nowrap')}${td('Next attempt', nextAttempt(e, v.now))}${td('Last error', (e.lastError ?? '').slice(0, 200))}</tr>`,
      )}</tbody></table></div>`
    : html`<p>${filtered ? 'No queue entry matches.' : 'The queue is empty: the next hop has taken every message.'}</p>`
}
${v.nextUrl ? html`<p class="pager"><a href="${v.nextUrl}" rel="next">Next page</a></p>` : ''}
${
  v.stats.size && !p.readonly
    ? html`<section><h2>Retry everything</h2>
<form class="inline" method="post" action="${p.base}/queue/retry">${csrfField(p)}<button class="btn secondary small" type="submit">Retry all now</button></form>
<p class="note">Makes every entry due now, for instance once the next hop is back.</p></section>`
    : ''
}`,
    v.error ? 400 : undefined,
  );
}

export function queueEntryPage(p: AdminPage, e: QueueEntry, transfer: Transfer | undefined, now: number, extra: { done?: unknown; error?: string }, status?: number): string {
  const st = queueEntryStatus(e, now);
  const pending = e.recipients.filter((r) => r.state === 'pending');
  return layout(
    p,
    `Queue entry ${e.id}`,
    html`${queueFlash(extra.done)}${extra.error ? html`<p class="error" role="alert">${extra.error}</p>` : ''}
<div class="card summary"><dl class="meta">
<dt>State</dt><dd>${stateBadge(e, now)}${e.kind === 'dsn' ? html` <span class="badge">notice to a sender</span>` : ''}</dd>
<dt>Sender</dt><dd>${sender(e)}</dd>
<dt>Queued</dt><dd>${when(e.createdAt)} <span class="note">(${ageText(now - e.createdAt)} ago)</span></dd>
<dt>Size</dt><dd>${formatSize(e.size)}</dd>
<dt>Attempts</dt><dd>${e.attempts}</dd>
<dt>Next attempt</dt><dd>${nextAttempt(e, now)}</dd>
<dt>Last error</dt><dd>${e.lastError ?? '–'}</dd>
<dt>Delay notice</dt><dd>${e.warned ? 'sent to the sender' : 'not sent'}</dd>
${e.dsnEnvid || e.dsnRet ? html`<dt>DSN parameters</dt><dd>${e.dsnRet ? `RET=${e.dsnRet}` : ''} ${e.dsnEnvid ? `ENVID=${e.dsnEnvid}` : ''}</dd>` : ''}
<dt>Transfer</dt><dd>${
      e.transferId
        ? transfer
          ? html`<a href="${p.base}/transfers/${e.transferId}">${e.transferId}</a> <span class="note">(${transfer.fileCount} file${transfer.fileCount === 1 ? '' : 's'}, ${formatSize(transfer.totalBytes)})</span>`
          : html`${e.transferId} <span class="note">(record gone)</span>`
        : 'none (no attachments were offloaded)'
    }</dd>
</dl></div>
<section><h2>Recipients</h2><div class="table-wrap"><table class="data" id="recipients"><thead><tr><th>Address</th><th>State</th><th>Last reply</th><th>Notify</th></tr></thead>
<tbody>${e.recipients.map(
      (r) =>
        html`<tr>${td('Address', r.address, 'addr')}${td('State', html`<span class="badge r-${r.state}">${r.state}</span>`)}${td('Last reply', r.response ?? (r.code !== undefined ? String(r.code) : ''))}${td('Notify', (r.notify ?? []).join(', '))}</tr>`,
    )}</tbody></table></div></section>
${
  st === 'delivering'
    ? html`<p class="note">A worker is delivering this entry right now (until ${when(e.leaseUntil)}); retry and delete are possible once it is done.</p>`
    : st === 'bouncing'
      ? html`<p class="note">This entry is being returned: the next worker pass sends ${sender(e)} a failure notice and removes it.</p>`
      : p.readonly
        ? ''
        : html`<div class="actions-grid">
<div class="card"><h3>Retry now</h3><form class="stack" method="post" action="${p.base}/queue/${e.id}/retry">${csrfField(p)}<p class="note">A worker tries it within queue.pollInterval.</p><button class="btn primary small" type="submit">Retry now</button></form></div>
<div class="card"><h3>Delete</h3><form class="stack" method="get" action="${p.base}/queue/${e.id}/delete">
${
  e.sender
    ? html`<label class="check"><input type="radio" name="mode" value="bounce" checked> Return to ${e.sender} with a failure notice (DSN)</label>
<label class="check"><input type="radio" name="mode" value="silent"> Delete silently: no one is told</label>`
    : html`<input type="hidden" name="mode" value="silent"><p class="note">The sender is &lt;&gt; (a notice itself): it can only be deleted silently.</p>`
}
<button class="btn danger small" type="submit">Delete…</button></form>
<p class="note">${pending.length} recipient${pending.length === 1 ? '' : 's'} still waiting.</p></div>
</div>`
}
<p><a href="${p.base}/queue">Back to the queue</a></p>`,
    status,
  );
}

/** The confirmation step of a delete: says what will happen, and posts it. */
export function queueDeletePage(p: AdminPage, e: QueueEntry, mode: 'bounce' | 'silent'): string {
  const pending = e.recipients.filter((r) => r.state === 'pending').map((r) => r.address);
  return layout(
    p,
    mode === 'bounce' ? `Return ${e.id} to its sender?` : `Delete ${e.id} silently?`,
    html`<div class="card summary"><p>${
      mode === 'bounce'
        ? html`${sender(e)} will get a failure notice naming ${pending.length ? pending.join(', ') : 'no recipient'}; then the entry and its stored copy are removed.`
        : html`The message from ${sender(e)} and its stored copy are removed now. ${pending.length ? pending.join(', ') : 'No recipient'} will not get it, and no one is told.`
    }</p>
<form class="stack" method="post" action="${p.base}/queue/${e.id}/delete">${csrfField(p)}<input type="hidden" name="mode" value="${mode}"><input type="hidden" name="confirm" value="yes">
<button class="btn danger" type="submit">${mode === 'bounce' ? 'Return to sender' : 'Delete silently'}</button></form>
<p><a href="${p.base}/queue/${e.id}">Cancel</a></p></div>`,
  );
}

/** The dashboard's queue cards. */
export function queueStatCards(p: AdminPage, s: QueueStats): Html {
  return html`<div class="card stat"><span class="n" id="dash-queue-size"><a href="${p.base}/queue">${s.size}</a></span><span class="l">in the delivery queue</span></div>
<div class="card stat"><span class="n" id="dash-queue-oldest">${s.size ? ageText(s.oldestAgeMs) : '–'}</span><span class="l">oldest queued message</span></div>`;
}
