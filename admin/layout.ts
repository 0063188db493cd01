import { html, type Html } from '../web/html.js';

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
  active?: 'dashboard' | 'transfers' | 'queue' | 'rules' | 'audit';
}

export function when(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '–';
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
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
    ? html`<nav class="admin" aria-label="Admin">${nav('dashboard', '', 'Dashboard')}${nav('transfers', '/transfers', 'Transfers')}${nav('queue', '/queue', 'Queue')}${nav('rules', '/rules', 'Retention rules')}${nav('audit', '/audit', 'Audit log')}
<form method="post" action="${p.base}/logout">${csrfField(p)}<button class="link" type="submit">Log out (${p.admin})</button></form></nav>`
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
