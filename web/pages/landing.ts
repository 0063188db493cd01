import { displayName, fileUrl, type StoredFile, type Transfer } from '../../storage/index.js';
import { exactBytes, humanSize, humanTime, isoTime } from '../format.js';
import { html } from '../html.js';
import { layout, type PageContext } from './layout.js';

export interface LandingInput {
  publicUrl: string;
  token: string;
  transfer: Transfer;
  files: StoredFile[];
}

// Every string from the message (sender, subject, names, types) is hostile: it goes through
// displayName() (bidi overrides and control characters out, length capped) and the html tag
// (escaped). Nothing on this page triggers a download; only the links do.

export function landingPage(ctx: PageContext, { publicUrl, token, transfer, files }: LandingInput): string {
  const sender = displayName(transfer.sender, 'unknown sender');
  const subject = transfer.subject ? displayName(transfer.subject, '') : '';
  const total = files.reduce((n, f) => n + f.size, 0);
  const expires = html`<time datetime="${isoTime(transfer.expiresAt)}">${humanTime(transfer.expiresAt)}</time>`;

  const items = files.map((f) => {
    const name = displayName(f.name);
    return html`<li class="file">
<a class="download" href="${fileUrl(publicUrl, token, f.idx, f.name)}">${name}</a>
<dl>
<dt>Size</dt><dd>${humanSize(f.size)}${f.size >= 1000 ? html` <span class="exact">(${exactBytes(f.size)} bytes)</span>` : ''}</dd>
<dt>Type</dt><dd>${displayName(f.contentType, 'unknown')}</dd>
<dt>SHA-256</dt><dd><code class="hash">${f.sha256}</code></dd>
</dl>
</li>`;
  });

  return layout(
    ctx,
    `Files from ${sender}`,
    html`<h1>Files from ${sender}</h1>
<dl class="meta">
<dt>From</dt><dd>${sender}</dd>
<dt>Sent</dt><dd><time datetime="${isoTime(transfer.createdAt)}">${humanTime(transfer.createdAt)}</time></dd>
${subject ? html`<dt>Subject</dt><dd>${subject}</dd>` : ''}
<dt>Available until</dt><dd>${expires}</dd>
</dl>
${
  files.length > 0
    ? html`<h2>${files.length === 1 ? '1 file' : `${files.length} files`}, ${humanSize(total)}</h2>
<ul class="files">
${items}
</ul>`
    : html`<p>This transfer has no files.</p>`
}
<p class="note">The links stop working on ${expires}. Download the files before then; a download that breaks off can be resumed. To check a file, compare its SHA-256 with the one shown here.</p>`,
  );
}
