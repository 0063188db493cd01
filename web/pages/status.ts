import type { GoneReason } from '../errors.js';
import { humanTime, isoTime } from '../format.js';
import { html, type Html } from '../html.js';
import { layout, type PageContext } from './layout.js';

// The pages for everything that is not a landing page: the same look, a sentence saying what
// happened and what the recipient can do, and never anything about the server (no messages,
// codes or stack traces).

function notice(body: Html): Html {
  return html`<div class="card notice">
${body}
</div>`;
}

/** The sender as a mailto: link when it is a plain address, else as text. */
export function senderLink(sender: string | undefined): Html | undefined {
  if (!sender) return undefined;
  const addr = sender.trim();
  const m = /^([A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64})@([A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+)$/.exec(addr);
  if (m) return html`<a href="${mailtoHref(m[1]!, m[2]!)}">${addr}</a>`;
  return undefined;
}

/**
 * RFC 6068: in a mailto: URI "?" starts the header fields, "&" separates them and "%" starts an
 * escape, and all three are legal in a local part (`reply?cc=x%40evil.example&subject=...@`). NB:
 * html escaping does not help here, the browser decodes the entities before it reads the URI. So
 * the local part is percent-encoded (every character outside unreserved ones), and the domain,
 * which the pattern above restricts to letters, digits, '-' and '.', needs nothing.
 */
export function mailtoHref(local: string, domain: string): string {
  const encoded = encodeURIComponent(local).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `mailto:${encoded}@${domain}`;
}

export function notFoundPage(ctx: PageContext): string {
  const { t } = ctx;
  return layout(
    ctx,
    t.notFoundTitle,
    html`<h1>${t.notFoundTitle}</h1>
${notice(html`<p>${t.notFoundBody}</p>
<p>${t.notFoundAsk}</p>`)}`,
    { status: 404 },
  );
}

export function gonePage(ctx: PageContext, reason: GoneReason, expiresAt: number, sender?: string): string {
  const { t } = ctx;
  const when = html`<time datetime="${isoTime(expiresAt)}" data-local>${humanTime(expiresAt, t.locale)}</time>`;
  const link = senderLink(sender);
  return layout(
    ctx,
    t.goneTitle,
    html`<h1>${t.goneTitle}</h1>
${notice(html`<p>${reason === 'expired' ? t.goneExpired(when) : t.goneRevoked(when)}</p>
<p>${link ? t.askSender(link) : t.askSenderUnknown}</p>`)}`,
    { status: 410 },
  );
}

export function limitPage(ctx: PageContext, maxDownloads: number, sender?: string): string {
  const { t } = ctx;
  const link = senderLink(sender);
  return layout(
    ctx,
    t.limitTitle,
    html`<h1>${t.limitTitle}</h1>
${notice(html`<p>${t.limitBody(maxDownloads)}</p>
<p>${link ? t.askSender(link) : t.askSenderUnknown}</p>`)}`,
    { status: 410 },
  );
}

export function tooManyPage(ctx: PageContext, seconds: number): string {
  const { t } = ctx;
  return layout(ctx, t.tooManyTitle, html`<h1>${t.tooManyTitle}</h1>
${notice(html`<p>${t.tooManyBody(seconds)}</p>`)}`, { status: 429 });
}

export function errorPage(ctx: PageContext, status: number): string {
  const { t } = ctx;
  const [title, body] =
    status === 503
      ? [t.unavailableTitle, t.unavailableBody]
      : status >= 500
        ? [t.errorTitle, t.errorBody]
        : [t.badRequestTitle, t.badRequestBody];
  return layout(ctx, title, html`<h1>${title}</h1>
${notice(html`<p>${body}</p>`)}`, { status });
}
