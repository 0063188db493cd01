import { displayName, type RecipientStatus, type StoredFile, type Transfer } from '../../storage/index.js';
import { humanTime, isoTime } from '../format.js';
import { html, type Html } from '../html.js';
import { MANAGE_MESSAGES, type ManageDone, type ManageError, type ManageStatus } from '../i18n.js';
import { layout, type PageContext } from './layout.js';
import { sizeText } from './landing.js';

// The sender's private management page (/m/<token>, web/routes/manage.ts): per recipient, which
// file was downloaded completely and when, with scanner and incomplete fetches apart; and the
// forms that revoke one link or all, move the expiry, and send a copy again. The same layout,
// stylesheet and script as the recipients' pages; no script is needed: every action is a plain
// POST form carrying the page's form token. Strings from the message (subject, names,
// addresses) are hostile like everywhere: displayName() and the html tag.

export interface ManageRecipient {
  status: RecipientStatus;
  /** Whether "send again" is offered (a recipient of its own, a stored copy, not revoked). */
  canResend: boolean;
}

export interface ManageExpiry {
  minDays: number;
  maxDays: number;
  currentDays: number;
  earliest: number;
  latest: number;
  cap: 'rule' | 'maximum' | 'admin';
}

export type ManageFlash = { kind: 'done'; what: ManageDone; recipient?: string } | { kind: 'error'; what: ManageError };

export interface ManageInput {
  transfer: Transfer;
  status: ManageStatus;
  files: StoredFile[];
  recipients: ManageRecipient[];
  /** Whether the sender may change anything (live, not past its expiry). */
  canAct: boolean;
  /** Undefined when the expiry cannot be moved. */
  expiry?: ManageExpiry;
  /** Path of this page (with the public URL's prefix); forms post below it. */
  base: string;
  /** The form token every POST must carry (web/routes/manage.ts). */
  formToken: string;
  flash?: ManageFlash;
}

const when = (ms: number, locale: string): Html => html`<time datetime="${isoTime(ms)}" data-local>${humanTime(ms, locale)}</time>`;

const PERSON_ICON = html`<svg class="ficon" viewBox="0 0 40 48" aria-hidden="true" focusable="false"><circle class="page" cx="20" cy="16" r="8"/><path class="page" d="M5 42c0-8.5 6.5-14 15-14s15 5.5 15 14z"/></svg>`;

export function managePage(ctx: PageContext, input: ManageInput): string {
  const m = MANAGE_MESSAGES[ctx.lang];
  const locale = ctx.t.locale;
  const { transfer, files, base } = input;
  const q = `?lang=${ctx.lang}`;
  const tokenField = html`<input type="hidden" name="_form" value="${input.formToken}">`;
  const subject = transfer.subject ? displayName(transfer.subject, '') : '';
  const total = files.reduce((n, f) => n + f.size, 0);

  const flash = (() => {
    const f = input.flash;
    if (!f) return '';
    if (f.kind === 'error') return html`<div class="card flash error" role="alert"><p>${m.errors[f.what]}</p></div>`;
    const r = f.recipient ? displayName(f.recipient) : m.sharedLink;
    const text: Html | string =
      f.what === 'link-revoked' ? m.done.linkRevoked(r) : f.what === 'resent' ? m.done.resent(r) : f.what === 'expiry' ? m.done.expiry(when(transfer.expiresAt, locale)) : m.done.revoked;
    return html`<div class="card flash" role="status"><p>${text}</p></div>`;
  })();

  const recipients = input.recipients.map(({ status: r, canResend }, i) => {
    const name = r.recipient ? displayName(r.recipient) : m.sharedLink;
    const fileLines = r.files.map((f) => {
      const extras = [f.scannerFetches > 0 ? m.scannerFetches(f.scannerFetches) : '', f.partialFetches > 0 ? m.partialFetches(f.partialFetches) : ''].filter(Boolean);
      return html`<li><span class="fn">${displayName(f.name)}</span>: ${f.completeAt !== null ? m.downloadedAt(when(f.completeAt, locale), f.completeCount) : m.notDownloaded}${extras.length ? html` <span class="extra">(${extras.join(', ')})</span>` : ''}</li>`;
    });
    const live = r.revokedAt === null;
    const actions: Html[] = [];
    if (input.canAct && live && canResend) {
      actions.push(html`<form method="post" action="${base}/links/${r.linkId}/resend${q}">${tokenField}<button class="btn secondary" type="submit">${m.resend}<span class="vh"> (${name})</span></button></form>`);
    }
    if (input.canAct && live) {
      actions.push(html`<form method="post" action="${base}/links/${r.linkId}/revoke${q}">${tokenField}<button class="btn secondary" type="submit">${m.revokeLink}<span class="vh"> (${name})</span></button></form>`);
    }
    return html`<li class="file" id="r-${i + 1}">
${PERSON_ICON}
<div class="info">
<h3 class="fname">${name}</h3>
<p class="facts">${live ? m.linkActive : m.linkRevoked(when(r.revokedAt!, locale))}</p>
<ul class="fstatus">${fileLines}</ul>
</div>
<div class="actions">${actions}</div>
</li>`;
  });

  const expiry = input.expiry;
  const expirySection: Html | '' = !input.canAct
    ? ''
    : html`<h2 class="section" id="expiry-heading">${m.expiryHeading}</h2>
<div class="card panel">
${
  expiry
    ? html`<form class="row" method="post" action="${base}/expiry${q}">${tokenField}
<label class="field">${m.daysLabel}<input class="num" type="number" name="days" inputmode="numeric" min="${expiry.minDays}" max="${expiry.maxDays}" step="1" value="${expiry.currentDays}" required aria-describedby="expiry-range"></label>
<button class="btn primary" type="submit">${m.change}</button>
</form>
<p class="note" id="expiry-range">${m.expiryRange(expiry.minDays, expiry.maxDays, when(expiry.earliest, locale), when(expiry.latest, locale))}${expiry.cap === 'rule' ? ` ${m.capRule}` : expiry.cap === 'admin' ? ` ${m.capAdmin}` : ''}</p>`
    : html`<p>${m.expiryFixed}</p>`
}
</div>`;

  const revokeSection: Html | '' = !input.canAct
    ? ''
    : html`<h2 class="section" id="revoke-heading">${m.revokeAllHeading}</h2>
<div class="card panel">
<p>${m.revokeAllBody}</p>
<form class="row" method="post" action="${base}/revoke${q}">${tokenField}
<label class="check"><input type="checkbox" name="confirm" value="yes" required>${m.revokeAllConfirm}</label>
<button class="btn danger" type="submit">${m.revokeAll}</button>
</form>
</div>`;

  return layout(
    ctx,
    m.title,
    html`<h1>${m.title}</h1>
${flash}
<section class="card summary" aria-label="${m.title}">
<dl class="meta">
${subject ? html`<dt>${m.subject}</dt><dd>${subject}</dd>` : ''}
<dt>${m.sent}</dt><dd>${when(transfer.createdAt, locale)}</dd>
<dt>${m.files}</dt><dd>${m.filesSummary(files.length, sizeText(ctx.t, total))}</dd>
<dt>${m.availableUntil}</dt><dd>${when(transfer.expiresAt, locale)}</dd>
<dt>${m.state}</dt><dd>${m.states[input.status]}</dd>
</dl>
</section>
${input.canAct ? '' : html`<div class="card notice"><p>${m.closed}</p></div>`}
<section aria-labelledby="recipients-heading">
<h2 class="section" id="recipients-heading">${m.recipientsHeading}</h2>
<ul class="files card">
${recipients}
</ul>
</section>
${expirySection}
${revokeSection}
<p class="note">${m.privateNote}</p>`,
  );
}
