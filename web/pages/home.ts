import { html } from '../html.js';
import { layout, type PageContext } from './layout.js';

/** The root page: says what this host is and deliberately lists nothing. */
export function homePage(ctx: PageContext): string {
  return layout(
    ctx,
    'Ferry file service',
    html`<h1>Ferry file service</h1>
<p>This server delivers files that were sent to you by email. To download them, open the link in that email.</p>`,
  );
}
