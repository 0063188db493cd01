import { html } from '../html.js';
import { layout, type PageContext } from './layout.js';
import { senderLink } from './status.js';

// The answer to any URL of a blocked file (web/scan-block.ts), in the page's language.

export function blockedPage(ctx: PageContext, reason: 'quarantine' | 'rescan' | 'deleted' | null, sender?: string): string {
  const w = ctx.t.scan;
  const link = senderLink(sender);
  const [title, body] = reason === 'rescan' ? [w.rescanTitle, w.rescanBody] : reason === 'deleted' ? [w.deletedTitle, w.deletedBody] : [w.heldTitle, w.heldBody];
  return layout(
    ctx,
    title,
    html`<h1>${title}</h1>
<div class="card notice">
<p>${body}</p>
<p>${link ? w.askOtherWay(link) : w.askOtherWayUnknown}</p>
</div>`,
    { status: 403 },
  );
}
