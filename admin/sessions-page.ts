import type { AdminSession } from '../storage/index.js';
import { html } from '../web/html.js';
import { csrfField, layout, td, when, type AdminPage } from './layout.js';

// The admin UI's list of live sessions: who, since when, from which address, last seen; each
// one revocable (audited as admin_session_revoked). Revoking a session ends it on every web
// process at once (the session store is the database).

export function sessionsPage(p: AdminPage, items: AdminSession[], currentId: string, now: number, done?: unknown): string {
  return layout(
    p,
    'Sessions',
    html`${done === 'session-revoked' ? html`<p class="flash card" role="status">Session revoked: its cookie no longer works.</p>` : ''}
<p>Everyone logged in to the admin UI now. A session ends at logout, after admin.session.idleTimeout without a request, and admin.session.maxAge after login. API bearer tokens have no session.</p>
<div class="table-wrap"><table class="data" id="sessions"><thead><tr><th>Who</th><th>Role</th><th>Since</th><th>Last seen</th><th>From</th><th>Browser</th><th></th></tr></thead>
<tbody>${items.map(
      (s) =>
        html`<tr${s.id === currentId ? html` class="current"` : ''}>${td('Who', html`${s.name}${s.id === currentId ? html` <span class="badge">you</span>` : ''}`)}${td('Role', s.role === 'readonly' ? 'read-only' : 'admin')}${td('Since', html`${when(s.createdAt)} <span class="note">(${s.method === 'oidc' ? 'single sign-on' : 'token'})</span>`)}${td('Last seen', when(s.lastSeenAt), 'nowrap')}${td('From', s.client ?? '–')}${td('Browser', (s.userAgent ?? '').slice(0, 80))}${td(
          '',
          p.readonly
            ? ''
            : html`<form class="inline" method="post" action="${p.base}/sessions/${s.id}/revoke">${csrfField(p)}<button class="btn danger small" type="submit">Revoke<span class="vh"> the session of ${s.name} since ${when(s.createdAt)}</span></button></form>`,
        )}</tr>`,
    )}</tbody></table></div>
<p class="note">${items.length} live session${items.length === 1 ? '' : 's'} at ${when(now)}.</p>`,
  );
}
