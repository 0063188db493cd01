import { html, type Html } from '../html.js';

export interface PageContext {
  /** URL path of the stylesheet, including any path prefix of the public URL. */
  stylesheet: string;
}

/**
 * The one layout. No external resources, no script, no inline style: the page CSP allows only
 * the same-origin stylesheet, so anything else would be blocked anyway.
 */
export function layout(ctx: PageContext, title: string, body: Html): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<meta name="referrer" content="no-referrer">
<title>${title}</title>
<link rel="stylesheet" href="${ctx.stylesheet}">
</head>
<body>
<header class="site"><span class="brand">Ferry</span></header>
<main>
${body}
</main>
<footer class="site">Files delivered by Ferry on behalf of the sender.</footer>
</body>
</html>
`.value;
}
