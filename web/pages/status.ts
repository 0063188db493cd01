import type { GoneReason } from '../errors.js';
import { humanTime, isoTime } from '../format.js';
import { html } from '../html.js';
import { layout, type PageContext } from './layout.js';

// The pages for everything that is not a landing page. They say what happened and what the
// recipient can do, and never anything about the server (no messages, codes or stack traces).

export function notFoundPage(ctx: PageContext): string {
  return layout(
    ctx,
    'Link not found',
    html`<h1>Link not found</h1>
<p>There is nothing at this address. Check that the whole link was copied from the email: long links are sometimes broken across two lines.</p>
<p>If the link is complete, ask the sender to send the files again.</p>`,
  );
}

export function gonePage(ctx: PageContext, reason: GoneReason, expiresAt: number): string {
  const when = html`<time datetime="${isoTime(expiresAt)}">${humanTime(expiresAt)}</time>`;
  const why =
    reason === 'expired'
      ? html`<p>These files could be downloaded until ${when}. That time has passed and they have been removed.</p>`
      : html`<p>These files were withdrawn before their expiry date (${when}) and can no longer be downloaded.</p>`;
  return layout(
    ctx,
    'Files no longer available',
    html`<h1>These files are no longer available</h1>
${why}
<p>If you still need them, ask the sender to send them again.</p>`,
  );
}

export function errorPage(ctx: PageContext, status: number): string {
  if (status === 503) {
    return layout(
      ctx,
      'Temporarily unavailable',
      html`<h1>Temporarily unavailable</h1>
<p>The file service cannot reach its storage right now. Your files are safe; please try again in a few minutes.</p>`,
    );
  }
  if (status >= 500) {
    return layout(
      ctx,
      'Something went wrong',
      html`<h1>Something went wrong</h1>
<p>The file service could not answer this request. Please try again in a few minutes.</p>`,
    );
  }
  return layout(
    ctx,
    'Request not understood',
    html`<h1>Request not understood</h1>
<p>The file service could not handle this request. Open the link from the email again.</p>`,
  );
}
