import type { Brand } from '../brand.js';
import { html, type Html } from '../html.js';
import { LANGUAGES, MESSAGES, type Lang, type Messages } from '../i18n.js';

/** What every page needs to know about the site (fixed per app). */
export interface SiteContext {
  /** URL path of the stylesheet, including any path prefix of the public URL and a version. */
  stylesheet: string;
  /** URL path of the page script, likewise. */
  script: string;
  /** URL path of the favicon (an SVG in the brand colour), likewise. */
  icon: string;
  brand: Brand;
}

/** A site context plus the language of this request. */
export interface PageContext extends SiteContext {
  lang: Lang;
  t: Messages;
}

export function pageContext(site: SiteContext, lang: Lang): PageContext {
  return { ...site, lang, t: MESSAGES[lang] };
}

/**
 * The one layout. No external resources except a configured logo, no inline script or style:
 * the page CSP allows only the same-origin stylesheet and script (and the logo's origin). The
 * language links are relative (`?lang=de`), so they keep the path and any proxy prefix.
 */
export function layout(ctx: PageContext, title: string, body: Html, opts: { status?: number } = {}): string {
  const { brand, t } = ctx;
  const languages = LANGUAGES.map(
    (l) =>
      html`<li><a href="?lang=${l}" lang="${MESSAGES[l].locale}" hreflang="${l}"${l === ctx.lang ? html` aria-current="true"` : ''}>${MESSAGES[l].name}</a></li>`,
  );
  return html`<!doctype html>
<html lang="${ctx.lang}" data-locale="${ctx.t.locale}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<meta name="referrer" content="no-referrer">
<meta name="color-scheme" content="light dark">
<title>${title} · ${brand.name}</title>
<link rel="icon" href="${ctx.icon}" type="image/svg+xml">
<link rel="stylesheet" href="${ctx.stylesheet}">
<script src="${ctx.script}" defer></script>
</head>
<body>
<header class="site"><div class="wrap">${brand.logoUrl ? html`<img class="logo" src="${brand.logoUrl}" alt="" height="32">` : ''}<span class="brand">${brand.name}</span></div></header>
<main id="main" class="wrap"${opts.status ? html` data-status="${opts.status}"` : ''}>
${body}
</main>
<footer class="site"><div class="wrap">
<p>${t.trust(brand.name)}</p>
<nav aria-label="${t.languageLabel}"><ul>${languages}</ul></nav>
</div></footer>
</body>
</html>
`.value;
}
