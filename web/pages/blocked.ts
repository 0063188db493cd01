import { html } from '../html.js';
import { layout, type PageContext } from './layout.js';
import { senderLink } from './status.js';

// The answer to any URL of a blocked file (web/scan-block.ts). English only for now, like
// web/pages/verdict.ts.

export function blockedPage(ctx: PageContext, reason: 'quarantine' | 'rescan' | 'deleted' | null, sender?: string): string {
  const link = senderLink(sender);
  const [title, body] =
    reason === 'rescan'
      ? ['Blocked after a new check', 'A new malware check with updated signatures found malware in this file after it was sent, so it can no longer be downloaded. The sender and the administrators have been told.']
      : reason === 'deleted'
        ? ['File removed', 'This file contained malware and an administrator deleted it.']
        : ['File held for review', 'A malware check found malware in this file when it was sent. It cannot be downloaded until an administrator has checked it.'];
  return layout(
    ctx,
    title,
    html`<h1>${title}</h1>
<div class="card notice">
<p>${body}</p>
<p>${link ? html`Ask the sender, ${link}, for another way to get it.` : 'Ask the sender for another way to get it.'}</p>
</div>`,
    { status: 403 },
  );
}
