import { formatUtc } from '../config/units.js';
import { escapeHtml, html, Html } from '../web/html.js';

// The frame every admin page shares: head, navigation, logout form. Server-rendered HTML with
// the download pages' stylesheet plus a few admin rules; no script at all, so everything works
// without JavaScript and under a CSP without 'unsafe-inline'. Every form that changes something
// carries the session's CSRF token (csrfField).

export interface AdminPage {
  base: string;
  stylesheet: string;
  adminStylesheet: string;
  icon: string;
  brandName: string;
  /** web.brand's logo (a /path Ferry serves or an https:// URL), as on the download pages. */
  logoUrl?: string;
  /** Logged-in admin; absent on the login page. */
  admin?: string;
  csrf?: string;
  /** The admin has the read-only role: pages leave out every form that changes something. */
  readonly?: boolean;
  active?: 'dashboard' | 'transfers' | 'queue' | 'quarantine' | 'rules' | 'audit' | 'sessions';
}

export function when(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '–';
  return formatUtc(ms);
}

export function csrfField(p: AdminPage): Html {
  return html`<input type="hidden" name="_csrf" value="${p.csrf ?? ''}">`;
}

export function layout(p: AdminPage, title: string, body: Html, status?: number): string {
  const nav = (key: AdminPage['active'], href: string, label: string) =>
    html`<a href="${p.base}${href}"${p.active === key ? html` aria-current="page"` : ''}>${label}</a>`;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<meta name="referrer" content="no-referrer">
<meta name="color-scheme" content="light dark">
<title>${title} · ${p.brandName} admin</title>
<link rel="icon" href="${p.icon}" type="image/svg+xml">
<link rel="stylesheet" href="${p.stylesheet}">
<link rel="stylesheet" href="${p.adminStylesheet}">
</head>
<body class="admin-wide">
<header class="site"><div class="wrap">${p.logoUrl ? html`<img class="logo" src="${p.logoUrl}" alt="" height="32">` : ''}<span class="brand">${p.brandName}</span><span class="admin-tag">admin</span>
${
  p.admin
    ? html`<form class="logout" method="post" action="${p.base}/logout">${csrfField(p)}<button class="link" type="submit">Log out <span class="who">${p.admin}${p.readonly ? ' (read-only)' : ''}</span></button></form>
<nav class="admin" aria-label="Admin">${nav('dashboard', '', 'Dashboard')}${nav('transfers', '/transfers', 'Transfers')}${nav('queue', '/queue', 'Queue')}${nav('quarantine', '/quarantine', 'Quarantine')}${nav('rules', '/rules', 'Retention rules')}${nav('audit', '/audit', 'Audit log')}${nav('sessions', '/sessions', 'Sessions')}</nav>`
    : ''
}
</div></header>
<main id="main" class="wrap"${status ? html` data-status="${status}"` : ''}>
<h1>${title}</h1>
${body}
</main>
</body>
</html>
`.value;
}

/**
 * A table cell that names its column: on a phone the admin tables show each row as a card of
 * "Column: value" lines (admin-css.ts), since a seven-column table cannot fit 390 px.
 */
export function td(label: string, content: Html | string | number | null | undefined, cls?: string): Html {
  return html`<td data-label="${label}"${cls ? html` class="${cls}"` : ''}>${content}</td>`;
}

/** Words of an audit entry's detail, one "key: value" per line, instead of raw JSON. */
export function detailWords(detail: Record<string, unknown> | null | undefined): Html {
  if (!detail) return html``;
  const words = (k: string) => k.replace(/([a-z0-9])([A-Z])/g, '$1 $2').replace(/_/g, ' ').toLowerCase();
  const value = (v: unknown): string => {
    if (v === null || v === undefined || v === '') return '–';
    if (Array.isArray(v)) return v.map(value).join(', ');
    if (typeof v === 'object') return Object.entries(v as Record<string, unknown>).map(([k, x]) => `${words(k)} ${value(x)}`).join('; ');
    if (typeof v === 'boolean') return v ? 'yes' : 'no';
    return String(v);
  };
  return html`<dl class="detail">${Object.entries(detail).map(([k, v]) => html`<div><dt>${words(k)}</dt><dd>${value(v).slice(0, 500)}</dd></div>`)}</dl>`;
}

/**
 * An address or host name that may wrap at its dots and at the @ (a <wbr> before each), so a
 * narrow column breaks "very.long.sender@corp.example" between its parts, not mid-word.
 */
export function breakable(text: string): Html {
  return new Html(escapeHtml(text).replace(/([.@])/g, '<wbr>$1'));
}
