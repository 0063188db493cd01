import { displayName, type FileScan, type StoredFile, type Transfer } from '../../storage/index.js';
import { exactBytes, humanSize, humanTime, isoTime, timeLeftParts } from '../format.js';
import { html, type Html } from '../html.js';
import type { Messages } from '../i18n.js';
import { fileIcon, fileKind } from '../icons.js';
import { layout, type PageContext } from './layout.js';
import { verdictLine } from './verdict.js';

export interface LandingInput {
  transfer: Transfer;
  files: StoredFile[];
  /** Path (not URL: links stay on whatever host served the page) of each file, by index. */
  fileHref: (file: StoredFile) => string;
  zipHref: string;
  /** Exact size of the zip of all files. */
  zipSize: number;
  showSubject: boolean;
  now: number;
  /** web.maxDownloads and the downloads counted so far per file index; absent when unlimited. */
  limit?: { max: number; used: Map<number, number> };
  /** Malware-scan records by file index (web/pages/verdict.ts); absent when not known. */
  scans?: Map<number, FileScan>;
}

// Every string from the message (sender, subject, names, types) is hostile: it goes through
// displayName() (bidi overrides and control characters out, length capped) and the html tag
// (escaped). Nothing on this page triggers a download; only the buttons do.

export function sizeText(t: Messages, bytes: number): string {
  return bytes < 1000 ? t.bytes(exactBytes(bytes, t.locale)) : humanSize(bytes, t.locale);
}

function timeLeft(t: Messages, ms: number): string {
  const parts = timeLeftParts(ms);
  return parts ? t.timeLeft(parts.unit, parts.n) : t.lessThanAMinute;
}

const DOWNLOAD_ICON = html`<svg viewBox="0 0 20 20" aria-hidden="true" focusable="false"><path d="M10 3v9m0 0-3.5-3.5M10 12l3.5-3.5M4 15.5h12" fill="none" stroke="currentColor" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round"/></svg>`;

export function landingPage(ctx: PageContext, input: LandingInput): string {
  const { t } = ctx;
  const { transfer, files, limit } = input;
  // The null sender (a bounce) has no address to show: the page then names no sender at all.
  const sender = displayName(transfer.sender, '');
  const title = sender ? t.landingTitle(sender) : t.landingTitleNoSender;
  const subject = input.showSubject && transfer.subject ? displayName(transfer.subject, '') : '';
  const total = files.reduce((n, f) => n + f.size, 0);
  const expires = html`<time datetime="${isoTime(transfer.expiresAt)}" data-local>${humanTime(transfer.expiresAt, t.locale)}</time>`;
  const left = (f: StoredFile) => (limit ? limit.max - (limit.used.get(f.idx) ?? 0) : Infinity);
  const blocked = (f: StoredFile) => input.scans?.get(f.idx)?.blocked === true;
  const zipAllowed = files.filter((f) => !blocked(f)).length >= 2 && files.every((f) => blocked(f) || left(f) > 0);
  // With "Download all" on the page, it is the main action and the per-file buttons step back.
  const fileButton = files.length >= 2 ? 'secondary' : 'primary';

  const items = files.map((f) => {
    const name = displayName(f.name);
    const hashId = `sha-${f.idx}`;
    const remaining = left(f);
    const ctype = displayName(f.contentType, 'application/octet-stream');
    const action: Html = blocked(f)
      ? html`<span class="used">Not available</span>`
      : remaining > 0
        ? html`<a class="btn ${fileButton}" href="${input.fileHref(f)}" download>${DOWNLOAD_ICON}<span>${t.download}<span class="vh"> ${name}</span></span></a>`
        : html`<span class="used">${t.limitReachedFile}</span>`;
    return html`<li class="file">
${fileIcon(name, f.contentType)}
<div class="info">
<h3 class="fname">${name}</h3>
<p class="facts"><span class="nw">${sizeText(t, f.size)}</span>${f.size >= 1000 ? html` <span class="exact nw">(${t.bytes(exactBytes(f.size, t.locale))})</span>` : ''}<span class="sep" aria-hidden="true">·</span><span class="nw" title="${ctype}"><span class="vh">${t.type}: </span>${t.kinds[fileKind(name, f.contentType)]}</span>${limit && remaining > 0 ? html`<span class="sep" aria-hidden="true">·</span><span class="quota nw">${t.downloadsLeft(remaining, limit.max)}</span>` : ''}</p>
${verdictLine(input.scans?.get(f.idx), t.locale)}
<div class="hashrow"><span class="label">SHA-256</span><code class="hash" id="${hashId}">${f.sha256}</code><button type="button" class="copy" data-copy="${hashId}" data-done="${t.copied}" aria-label="${t.copyLabel(name)}" hidden>${t.copy}</button></div>
</div>
<div class="actions">${action}</div>
</li>`;
  });

  const zip: Html = zipAllowed
    ? html`<div class="zip"><a class="btn primary" href="${input.zipHref}" download>${DOWNLOAD_ICON}<span>${t.downloadAll}</span></a><span class="hint">${t.downloadAllHint(sizeText(t, input.zipSize))}</span></div>`
    : html``;

  return layout(
    ctx,
    title,
    html`<h1>${sender ? t.landingHeading(sender) : title}</h1>
<section class="card summary" aria-label="${title}">
<dl class="meta">
${sender ? html`<dt>${t.from}</dt><dd>${sender}</dd>` : ''}
<dt>${t.sent}</dt><dd><time datetime="${isoTime(transfer.createdAt)}" data-local>${humanTime(transfer.createdAt, t.locale)}</time></dd>
${subject ? html`<dt>${t.subject}</dt><dd>${subject}</dd>` : ''}
<dt>${t.availableUntil}</dt><dd>${expires} <span class="left">· ${timeLeft(t, transfer.expiresAt - input.now)}</span></dd>
</dl>
</section>
${
  files.length > 0
    ? html`<section aria-labelledby="files-heading">
<div class="files-head"><h2 id="files-heading">${t.filesHeading(files.length, sizeText(t, total))}</h2>${zip}</div>
${files.length >= 2 && !zipAllowed && limit ? html`<p class="note">${t.zipUnavailableLimit}</p>` : ''}
<ul class="files card">
${items}
</ul>
</section>`
    : html`<div class="card notice"><p>${t.noFiles}</p></div>`
}
<p class="note">${t.expiryNote(expires)} ${t.checkNote}</p>
<p class="vh" id="copy-status" role="status" aria-live="polite"></p>`,
  );
}
