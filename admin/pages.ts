import { formatSize } from '../config/units.js';
import type { AdminStats, AuditEntry, FileScan, FileStatus, QueueStats, RecipientStatus, RetentionRule, TransferDetail, Transfer } from '../storage/index.js';
import { DAY_MS, displayName, fileScanWords, shownState } from '../storage/index.js';
import { html, type Html } from '../web/html.js';
import { barChart } from './charts.js';
import { breakable, csrfField, detailWords, layout, td, when, type AdminPage } from './layout.js';
import { queueStatCards } from './queue-pages.js';

// The admin pages. Server-rendered HTML with the download pages' stylesheet plus a few admin
// rules; no script at all, so everything works without JavaScript and under a CSP without
// 'unsafe-inline'. Every form that changes something carries the session's CSRF token.

const size = (n: number) => formatSize(n);
const days = (ms: number) => String(+(ms / DAY_MS).toFixed(3));

export function loginPage(p: AdminPage, nonce: string, o: { error?: string | undefined; sso: boolean; tokens: boolean }, status?: number): string {
  return layout(
    p,
    'Log in',
    html`${o.error ? html`<p class="error" role="alert">${o.error}</p>` : ''}
${o.sso ? html`<p><a class="btn primary" href="${p.base}/oidc/login">Log in with single sign-on</a></p>` : ''}
${
  o.tokens
    ? html`<form class="stack card login" method="post" action="${p.base}/login">
<input type="hidden" name="_nonce" value="${nonce}">
<label class="field" for="token">Admin token (admin.token, admin.tokens or admin.readonlyTokens)
<input id="token" name="token" type="password" autocomplete="current-password" required></label>
<button class="btn ${o.sso ? 'secondary' : 'primary'}" type="submit">Log in with a token</button>
</form>`
    : ''
}`,
    status ?? (o.error ? 401 : undefined),
  );
}

export function messagePage(p: AdminPage, title: string, message: string, status: number): string {
  return layout(p, title, html`<p class="error" role="alert">${message}</p><p><a href="${p.base}">Back to the dashboard</a></p>`, status);
}

export function dashboardPage(p: AdminPage, s: AdminStats, queue?: QueueStats): string {
  const stat = (n: string, l: string) => html`<div class="card stat"><span class="n">${n}</span><span class="l">${l}</span></div>`;
  return layout(
    p,
    'Dashboard',
    html`<div class="stats">
${stat(String(s.liveTransfers), 'live transfers')}
${stat(size(s.storedBytes), `stored in ${s.storedFiles} file${s.storedFiles === 1 ? '' : 's'}`)}
${stat(String(s.heldTransfers), 'on legal hold')}
${stat(String(s.downloadsPerDay.reduce((a, d) => a + d.value, 0)), `downloads in ${s.downloadsPerDay.length} days`)}
${queue ? queueStatCards(p, queue) : ''}
</div>
${barChart({ id: 'chart-transfers', title: 'Transfers per day', points: s.transfersPerDay })}
${barChart({ id: 'chart-downloads', title: 'Downloads per day (complete downloads; scanners not counted)', points: s.downloadsPerDay })}
${barChart({ id: 'chart-bytes', title: 'Bytes offloaded per day', points: s.bytesOffloadedPerDay, format: size })}
<p class="note">Days are UTC. Storage used counts every transfer whose files have not been deleted yet.</p>`,
  );
}

function stateBadge(t: Transfer, now: number): Html {
  const st = shownState(t, now);
  return html`<span class="badge ${st}">${st}</span>${t.held ? html` <span class="badge held">held</span>` : ''}`;
}

export interface SearchValues {
  sender?: string;
  recipient?: string;
  file?: string;
  from?: string;
  to?: string;
  state?: string;
}

const STATE_OPTIONS = ['', 'live', 'expired', 'revoked', 'deleted', 'pending', 'held'];

export function transfersPage(p: AdminPage, v: SearchValues, items: Transfer[], nextUrl: string | null, now: number, error?: string): string {
  const input = (name: keyof SearchValues, label: string, type = 'text') =>
    html`<label class="field" for="q-${name}">${label}<input id="q-${name}" name="${name}" type="${type}" value="${v[name] ?? ''}"></label>`;
  return layout(
    p,
    'Transfers',
    html`${error ? html`<p class="error" role="alert">${error}</p>` : ''}
<form class="search" method="get" action="${p.base}/transfers" role="search">
${input('file', 'File name')}${input('sender', 'Sender')}${input('recipient', 'Recipient')}${input('from', 'Created from', 'date')}${input('to', 'Created before', 'date')}
<label class="field" for="q-state">State<select id="q-state" name="state">${STATE_OPTIONS.map(
      (s) => html`<option value="${s}"${v.state === s ? html` selected` : ''}>${s || 'any'}</option>`,
    )}</select></label>
<button class="btn primary" type="submit">Search</button>
</form>
${
  items.length
    ? html`<div class="table-wrap"><table class="data" id="transfers">
<thead><tr><th>Created</th><th>Sender</th><th>Recipients</th><th>Files</th><th class="num">Size</th><th>State</th><th>Expires</th></tr></thead>
<tbody>${items.map(
        (t) => html`<tr>${td('Created', html`<a href="${p.base}/transfers/${t.id}">${when(t.createdAt)}</a>`, 'nowrap')}${td('Sender', breakable(t.sender || '<>'), 'addr')}${td('Recipients', breakable(t.recipients.join(', ')), 'addr')}${td('Files', t.fileCount, 'num')}${td('Size', size(t.totalBytes), 'num')}${td('State', stateBadge(t, now))}${td('Expires', when(t.expiresAt), 'nowrap')}</tr>`,
      )}</tbody></table></div>`
    : html`<p>No transfer matches.</p>`
}
${nextUrl ? html`<p class="pager"><a href="${nextUrl}" rel="next">Next page</a></p>` : ''}`,
    error ? 400 : undefined,
  );
}

const DONE_MESSAGES: Record<string, string> = {
  revoked: 'Revoked: its links answer 410 from now on.',
  'recipient-revoked': "Recipient's link revoked: it answers 410 from now on; the other links keep working.",
  extended: 'Expiry changed.',
  held: 'Legal hold placed: the sweeper will not touch this transfer.',
  released: 'Legal hold released.',
  deleted: 'Files deleted.',
  'rule-saved': 'Rule saved. New mail follows it at once.',
  'rule-deleted': 'Rule deleted.',
  reapplied: 'Rules reapplied to live transfers.',
};

export function flash(done: unknown): Html {
  const m = typeof done === 'string' ? DONE_MESSAGES[done] : undefined;
  return m ? html`<p class="flash card" role="status">${m}</p>` : html``;
}

/** One file's status for one recipient, in words: a sender or admin should not have to decode counters. */
function fileStatusWords(f: FileStatus): Html {
  const times = (n: number, one: string, many: string) => (n === 1 ? one : `${n} ${many}`);
  const also = [
    f.completeCount > 1 ? `${f.completeCount} complete downloads` : '',
    f.scannerFetches ? times(f.scannerFetches, '1 scanner fetch', 'scanner fetches') : '',
    f.partialFetches ? times(f.partialFetches, '1 partial download', 'partial downloads') : '',
  ].filter(Boolean);
  return html`<li><strong>${f.name}</strong>: ${f.completeAt === null ? 'not downloaded completely' : html`downloaded <span class="nw">${when(f.completeAt)}</span>`}${also.length ? html` <span class="note">(${also.join('; ')})</span>` : ''}</li>`;
}

/** Who has which link and what each did with it (issue 17): one row per link, a card on a phone. */
function recipientsTable(p: AdminPage, t: Transfer, recipients: RecipientStatus[]): Html {
  if (!recipients.length) return html`<p>No links recorded for this transfer.</p>`;
  const canRevoke = !p.readonly && t.state === 'live' && t.purgedAt === null;
  return html`<div class="table-wrap"><table class="data" id="recipients"><thead><tr><th>Recipient</th><th>Link</th><th>Files</th>${canRevoke ? html`<th></th>` : ''}</tr></thead>
<tbody>${recipients.map((r) => {
    const who = r.recipient || 'everyone (shared link)';
    return html`<tr>${td('Recipient', r.recipient ? breakable(r.recipient) : who, 'addr')}${td('Link', r.revokedAt === null ? 'active' : html`revoked <span class="nw">${when(r.revokedAt)}</span>`)}${td('Files', html`<ul class="rcpts">${r.files.map(fileStatusWords)}</ul>`)}${
      canRevoke
        ? html`<td>${
            r.revokedAt === null && r.recipient
              ? html`<form class="inline" method="post" action="${p.base}/transfers/${t.id}/revoke-recipient">${csrfField(p)}<input type="hidden" name="link" value="${r.linkId}"><button class="btn danger small" type="submit">Revoke link<span class="vh"> of ${r.recipient}</span></button></form>`
              : ''
          }</td>`
        : ''
    }</tr>`;
  })}</tbody></table></div>
<p class="note">Complete downloads as the download limit counts them; scanners and link prefetchers are shown apart and never count. A download of the whole transfer as a zip counts for every file.</p>`;
}

export function transferPage(
  p: AdminPage,
  d: TransferDetail,
  audit: AuditEntry[],
  siteMaxDownloads: number,
  now: number,
  extra: { done?: unknown; error?: string },
  recipients: RecipientStatus[] = [],
  scans: Map<number, FileScan> = new Map(),
): string {
  const t = d.transfer;
  const st = shownState(t, now);
  const action = (name: string, label: string, body: Html, cls = 'primary') =>
    html`<form class="stack" method="post" action="${p.base}/transfers/${t.id}/${name}">${csrfField(p)}${body}<button class="btn ${cls} small" type="submit">${label}</button></form>`;
  const canChange = t.state === 'live' && t.purgedAt === null && !p.readonly;
  return layout(
    p,
    `Transfer ${t.id}`,
    html`${flash(extra.done)}${extra.error ? html`<p class="error" role="alert">${extra.error}</p>` : ''}
<div class="card summary"><dl class="meta">
<dt>State</dt><dd>${stateBadge(t, now)}${t.held ? html` since ${when(t.heldAt)} by ${t.heldBy ?? ''}${t.holdReason ? html` (${t.holdReason})` : ''}` : ''}</dd>
<dt>Sender</dt><dd>${t.sender || '<>'}</dd>
<dt>Recipients</dt><dd>${t.recipients.join(', ')}</dd>
${t.subject !== null ? html`<dt>Subject</dt><dd>${t.subject}</dd>` : ''}
<dt>Created</dt><dd>${when(t.createdAt)}</dd>
<dt>Expires</dt><dd>${when(t.expiresAt)} <span class="note">(rule: ${t.retentionRule ?? 'default'})</span></dd>
<dt>Download limit</dt><dd>${(t.maxDownloads ?? siteMaxDownloads) || 'unlimited'} per file${recipients.length > 1 ? ' and link' : ''}; ${d.countedDownloads} counted download${d.countedDownloads === 1 ? '' : 's'}</dd>
<dt>Password protected</dt><dd>${t.passwordProtected ? 'yes (only the sender was given the password)' : 'no'}</dd>
<dt>Files deleted</dt><dd>${when(t.purgedAt)}</dd>
<dt>Queue id</dt><dd>${t.queueId}</dd>
</dl></div>
${p.readonly ? '' : html`<div class="actions-grid">
${canChange && st === 'live' ? html`<div class="card"><h3>Revoke</h3>${action('revoke', 'Revoke links', html`<label class="field" for="r-reason">Reason (optional)<input id="r-reason" name="reason" maxlength="500"></label>`)}</div>` : ''}
${
  canChange
    ? html`<div class="card"><h3>Extend or shorten</h3>${action(
        'extend',
        'Change expiry',
        html`<label class="field" for="e-days">Move the expiry by days (negative shortens)<input id="e-days" name="addDays" type="number" step="any"></label>
<label class="field" for="e-until">or set it to (UTC date)<input id="e-until" name="until" type="date"></label>`,
      )}</div>`
    : ''
}
<div class="card"><h3>Legal hold</h3>${
      t.held
        ? action('release', 'Release hold', html``, 'secondary')
        : action('hold', 'Place hold', html`<label class="field" for="h-reason">Reason<input id="h-reason" name="reason" maxlength="500"></label>`)
    }</div>
${
  !t.held && t.state !== 'pending' && t.purgedAt === null
    ? html`<div class="card"><h3>Delete now</h3>${action(
        'delete',
        'Delete files',
        html`<label class="check"><input type="checkbox" name="confirm" value="yes" required> I understand the files are gone for good</label>`,
        'danger',
      )}</div>`
    : ''
}
</div>`}
<section><h2>Files</h2><div class="table-wrap"><table class="data" id="files"><thead><tr><th>#</th><th>Name</th><th>Type</th><th class="num">Size</th><th>SHA-256</th><th>Malware check</th></tr></thead>
<tbody>${d.files.map((f) => html`<tr>${td('#', f.idx)}${td('Name', displayName(f.name))}${td('Type', f.contentType)}${td('Size', size(f.size), 'num')}${td('SHA-256', html`<code>${f.sha256.slice(0, 16)}…</code>`)}${td('Malware check', fileScanWords(scans.get(f.idx)))}</tr>`)}</tbody></table></div></section>
<section><h2>Recipients</h2>${recipientsTable(p, t, recipients)}</section>
<section><h2>Download log</h2>${
      d.downloads.length
        ? html`<div class="table-wrap"><table class="data" id="downloads"><thead><tr><th>When</th><th>Recipient</th><th>File</th><th>Status</th><th class="num">Bytes</th><th>Counted</th><th>Client</th><th>User agent</th></tr></thead>
<tbody>${d.downloads.map(
            (x) =>
              html`<tr>${td('When', when(x.at), 'nowrap')}${td('Recipient', x.recipient ? breakable(x.recipient) : html`<span class="note">shared link</span>`)}${td('File', x.fileIdx ?? 'zip')}${td('Status', x.status)}${td('Bytes', x.bytesSent, 'num')}${td('Counted', x.counted ? 'yes' : x.scanner ? 'scanner' : 'no')}${td('Client', x.client ?? '')}${td('User agent', (x.userAgent ?? '').slice(0, 80))}</tr>`,
          )}</tbody></table></div>`
        : html`<p>No downloads yet.</p>`
    }</section>
<section><h2>History</h2>${auditTable(audit, p)}</section>`,
    extra.error ? 400 : undefined,
  );
}

/** File names inside an audit detail are shown as the landing page shows them (storage/filenames.ts). */
function auditDetailShown(d: Record<string, unknown> | null): Record<string, unknown> | null {
  if (!d) return d;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(d)) out[k] = /name/i.test(k) && typeof v === 'string' ? displayName(v) : Array.isArray(v) && /names|files/i.test(k) ? v.map((x) => (typeof x === 'string' ? displayName(x) : x)) : v;
  return out;
}

export function auditTable(items: AuditEntry[], p: AdminPage): Html {
  if (!items.length) return html`<p>Nothing recorded.</p>`;
  return html`<div class="table-wrap"><table class="data" id="audit"><thead><tr><th>When</th><th>Who</th><th>What</th><th>Transfer</th><th>Detail</th></tr></thead>
<tbody>${items.map(
    (e) =>
      html`<tr>${td('When', when(e.at), 'nowrap')}${td('Who', e.actor)}${td('What', e.action.replace(/_/g, ' '), 'nowrap')}${td('Transfer', e.transferId ? html`<a href="${p.base}/transfers/${e.transferId}">${e.transferId}</a>` : '')}${td('Detail', detailWords(auditDetailShown(e.detail)))}</tr>`,
  )}</tbody></table></div>`;
}

export interface RuleFormValues {
  kind?: string;
  match?: string;
  days?: string;
  downloadLimit?: string;
  requirePassword?: boolean;
  /** 'on', 'off', or '' (senders.receipts decides). */
  receipts?: string;
  reapply?: boolean;
}

const BOUNDS = ['minimum', 'maximum'];
const RECEIPT_CHOICES: [string, string][] = [
  ['', 'site setting'],
  ['on', 'on'],
  ['off', 'off'],
];
const receiptsValue = (r: boolean | null | undefined) => (r === true ? 'on' : r === false ? 'off' : '');
const switchesText = (r: RetentionRule) =>
  BOUNDS.includes(r.kind) ? '–' : `${r.requirePassword ? 'password required' : 'no password'} · receipts: ${RECEIPT_CHOICES.find(([v]) => v === receiptsValue(r.receipts))![1]}`;

/** The rule's two switches as form fields; `form` ties them to a row's form in another cell. */
function switchFields(prefix: string, forId: string, password: boolean, receipts: string, form?: string) {
  const f = form ? html` form="${form}"` : '';
  return html`<input type="hidden" name="switches" value="yes"${f}><label class="check" for="${prefix}-pw"><input type="checkbox" id="${prefix}-pw" name="requirePassword" value="yes"${f}${password ? html` checked` : ''}> require a password<span class="vh"> for ${forId}</span></label>
<label class="field" for="${prefix}-receipts">Receipts<span class="vh"> for ${forId}</span><select id="${prefix}-receipts" name="receipts"${f}>${RECEIPT_CHOICES.map(
    ([v, label]) => html`<option value="${v}"${receipts === v ? html` selected` : ''}>${label}</option>`,
  )}</select></label>`;
}

const KIND_LABELS: Record<string, string> = {
  default: 'Default',
  minimum: 'Minimum',
  maximum: 'Maximum',
  sender: 'Sender address',
  sender_domain: 'Sender domain',
  recipient_domain: 'Recipient domain',
};

export function rulesPage(p: AdminPage, rules: RetentionRule[], extra: { done?: unknown; error?: string; errorRule?: string; values?: RuleFormValues }): string {
  const v = extra.values ?? {};
  const rowForm = (r: RetentionRule) => {
    const mine = extra.errorRule === r.id;
    const dv = mine && v.days !== undefined ? v.days : days(r.periodMs);
    const lv = mine && v.downloadLimit !== undefined ? v.downloadLimit : r.downloadLimit === null ? '' : String(r.downloadLimit);
    const fid = `rule-${r.id.replace(/[^a-z0-9]/gi, '-')}`;
    if (p.readonly) {
      return html`<tr id="${fid}">${td('Kind', KIND_LABELS[r.kind] ?? r.kind)}${td('Matches', r.match || '–')}${td('Days · download limit', `${days(r.periodMs)} days${r.downloadLimit !== null ? ` · ${r.downloadLimit} downloads` : ''}`)}${td('Options', switchesText(r))}${td('Set by', html`${r.source === 'config' ? 'configuration' : r.updatedBy}<br><span class="note">${when(r.updatedAt)}</span>`)}<td></td></tr>`;
    }
    return html`<tr id="${fid}">${td('Kind', KIND_LABELS[r.kind] ?? r.kind)}${td('Matches', r.match || '–')}
<td data-label="Days · download limit"><form class="inline" method="post" action="${p.base}/rules" id="${fid}-form">${csrfField(p)}<input type="hidden" name="id" value="${r.id}">
<label class="vh" for="${fid}-days">Days for ${r.id}</label><input id="${fid}-days" name="days" type="number" step="any" min="0" value="${dv}" size="6" required>
${
  ['minimum', 'maximum'].includes(r.kind)
    ? ''
    : html`<label class="vh" for="${fid}-limit">Download limit for ${r.id}</label><input id="${fid}-limit" name="downloadLimit" type="number" min="1" step="1" value="${lv}" placeholder="site default" size="8">`
}
<button class="btn secondary small" type="submit">Save</button></form>${mine && extra.error ? html`<p class="error" role="alert">${extra.error}</p>` : ''}</td>
${td(
  'Options',
  BOUNDS.includes(r.kind)
    ? '–'
    : switchFields(fid, r.id, mine && v.requirePassword !== undefined ? v.requirePassword : (r.requirePassword ?? false), mine && v.receipts !== undefined ? v.receipts : receiptsValue(r.receipts), `${fid}-form`),
)}
${td('Set by', html`${r.source === 'config' ? 'configuration' : r.updatedBy}<br><span class="note">${when(r.updatedAt)}</span>`)}
<td>${
      ['default', 'minimum', 'maximum'].includes(r.kind)
        ? ''
        : html`<form class="inline" method="post" action="${p.base}/rules/delete">${csrfField(p)}<input type="hidden" name="id" value="${r.id}"><button class="btn danger small" type="submit">Delete</button></form>`
    }</td></tr>`;
  };
  const newError = extra.error && extra.errorRule === 'new';
  return layout(
    p,
    'Retention rules',
    html`${flash(extra.done)}
<p>How long links stay downloadable. Most specific wins: a sender address beats a recipient domain, which beats a sender domain, which beats the default. With several recipients the shortest period wins. Every period is kept between the minimum and the maximum. Changes apply to new mail; existing transfers keep their expiry unless you reapply.</p>
<div class="table-wrap"><table class="data" id="rules"><thead><tr><th>Kind</th><th>Matches</th><th>Days · download limit</th><th>Options</th><th>Set by</th><th></th></tr></thead>
<tbody>${rules.map(rowForm)}</tbody></table></div>
${p.readonly ? '' : html`<section><h2>Add a rule</h2>
${newError ? html`<p class="error" role="alert" id="rule-error">${extra.error}</p>` : ''}
<form class="search" method="post" action="${p.base}/rules" id="new-rule">${csrfField(p)}<input type="hidden" name="id" value="">
<label class="field" for="n-kind">Kind<select id="n-kind" name="kind">${['recipient_domain', 'sender_domain', 'sender'].map(
      (k) => html`<option value="${k}"${(newError ? v.kind : 'recipient_domain') === k ? html` selected` : ''}>${KIND_LABELS[k]}</option>`,
    )}</select></label>
<label class="field" for="n-match">Address or domain<input id="n-match" name="match" value="${newError ? (v.match ?? '') : ''}" required></label>
<label class="field" for="n-days">Days<input id="n-days" name="days" type="number" step="any" min="0" value="${newError ? (v.days ?? '') : ''}" required></label>
<label class="field" for="n-limit">Download limit<input id="n-limit" name="downloadLimit" type="number" min="1" step="1" value="${newError ? (v.downloadLimit ?? '') : ''}" placeholder="site default"></label>
${switchFields('n', 'the new rule', newError ? (v.requirePassword ?? false) : false, newError ? (v.receipts ?? '') : '')}
<label class="check"><input type="checkbox" name="reapply" value="yes"${newError && v.reapply ? html` checked` : ''}> also apply to live transfers</label>
<button class="btn primary" type="submit">Add rule</button>
</form></section>
<section><h2>Existing transfers</h2>
<form class="inline" method="post" action="${p.base}/rules/reapply">${csrfField(p)}<button class="btn secondary small" type="submit">Reapply rules to live transfers</button></form>
<p class="note">Recomputes the expiry of every live transfer from its creation time; transfers on hold or whose expiry an admin set by hand are kept.</p></section>`}`,
    extra.error ? 400 : undefined,
  );
}

export function auditPage(p: AdminPage, items: AuditEntry[], filters: { action?: string; transferId?: string }, nextUrl: string | null, exportQuery: string, actions: readonly string[]): string {
  return layout(
    p,
    'Audit log',
    html`<form class="search" method="get" action="${p.base}/audit">
<label class="field" for="a-action">Action<select id="a-action" name="action"><option value="">any</option>${actions.map(
      (a) => html`<option value="${a}"${filters.action === a ? html` selected` : ''}>${a}</option>`,
    )}</select></label>
<label class="field" for="a-transfer">Transfer id<input id="a-transfer" name="transferId" value="${filters.transferId ?? ''}"></label>
<button class="btn primary" type="submit">Filter</button>
<a class="btn secondary" href="${p.base}/audit/export?format=csv${exportQuery}">Export CSV</a>
<a class="btn secondary" href="${p.base}/audit/export?format=jsonl${exportQuery}">Export JSON lines</a>
</form>
${auditTable(items, p)}
${nextUrl ? html`<p class="pager"><a href="${nextUrl}" rel="next">Older entries</a></p>` : ''}`,
  );
}
