import { html } from '../html.js';
import { layout, type PageContext } from './layout.js';

/** The root page: says what this host is and deliberately lists nothing. */
export function homePage(ctx: PageContext): string {
  const title = ctx.t.homeTitle(ctx.brand.name);
  return layout(ctx, title, html`<h1>${title}</h1>
<div class="card notice"><p>${ctx.t.homeBody}</p></div>`);
}
