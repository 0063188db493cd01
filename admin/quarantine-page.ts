import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { formatSize } from '../config/units.js';
import { deleteHeldFile, displayName, listQuarantined, releaseFile, type QuarantinedFile } from '../storage/index.js';
import { html, type Html } from '../web/html.js';
import type { AdminContext } from './context.js';
import { breakable, csrfField, layout, td, when, type AdminPage } from './layout.js';
import { messagePage } from './pages.js';

// The admin UI's quarantine under /admin/quarantine: files the malware scan held at intake
// (scan.onInfected: quarantine) or a rescan blocked later, with the verdict, signature, engine
// and time, and the two things an admin does with one: release it (served again) or delete its
// bytes (the landing page then says it was removed). The same storage calls as the API and
// `ferry scan`, so each change is audited once (file_released, file_deleted). Registered by ui.ts
// inside its session scope: the session, CSRF and read-only checks apply to every POST here.

const HTML = 'text/html; charset=utf-8';

export interface QuarantineUiOptions {
  ctx: AdminContext;
  page: (request: FastifyRequest, active?: AdminPage['active']) => AdminPage;
}

const DONE: Record<string, string> = {
  released: 'Released: the file downloads again from its links, and the landing page says an administrator released it.',
  deleted: 'Deleted: the file’s bytes are gone; its links and the landing page say an administrator removed it.',
};

/** "ClamAV", "ICAP service": the engine as recorded with the verdict. */
function engineName(engine: string | null): string {
  return engine === 'clamav' ? 'ClamAV' : engine === 'icap' ? 'ICAP service' : (engine ?? 'unknown');
}

const reasonText = (f: QuarantinedFile) => (f.reason === 'rescan' ? 'blocked after a rescan' : 'held at intake');

function actions(p: AdminPage, f: QuarantinedFile): Html {
  if (p.readonly) return html``;
  const target = `${p.base}/quarantine/${encodeURIComponent(f.transferId)}/${f.idx}`;
  const name = displayName(f.name);
  const fid = `q-${f.transferId.replace(/[^A-Za-z0-9]/g, '')}-${f.idx}`;
  return html`<form class="inline" method="post" action="${target}/release">${csrfField(p)}<button class="btn secondary small" type="submit">Release<span class="vh"> ${name}</span></button></form>
<form class="inline" method="post" action="${target}/delete">${csrfField(p)}<label class="check" for="${fid}-confirm"><input id="${fid}-confirm" type="checkbox" name="confirm" value="yes" required> delete for good<span class="vh">: ${name}</span></label><button class="btn danger small" type="submit">Delete<span class="vh"> ${name}</span></button></form>`;
}

export function quarantinePage(p: AdminPage, items: QuarantinedFile[], now: number, extra: { done?: unknown; error?: string } = {}, status?: number): string {
  const done = typeof extra.done === 'string' ? DONE[extra.done] : undefined;
  return layout(
    p,
    'Quarantine',
    html`${done ? html`<p class="flash card" role="status">${done}</p>` : ''}${extra.error ? html`<p class="error" role="alert">${extra.error}</p>` : ''}
<p>Files the malware scan found infected: held when they came in (scan.onInfected: quarantine) or blocked when a rescan with newer signatures found them. No link returns their bytes. Release a file only when you are sure the finding is wrong; delete removes its bytes for good. Both are written to the audit log.</p>
${
  items.length
    ? html`<div class="table-wrap"><table class="data" id="quarantine"><thead><tr><th>File</th><th>Sender</th><th>Verdict</th><th>Signature</th><th>Engine</th><th>Since</th><th></th></tr></thead>
<tbody>${items.map(
        (f) =>
          html`<tr>${td('File', html`${displayName(f.name)} <span class="note">(${formatSize(f.size)}, file ${f.idx} of <a href="${p.base}/transfers/${f.transferId}">transfer ${f.transferId}</a>)</span>`)}${td('Sender', breakable(f.sender || '<>'), 'addr')}${td(
            'Verdict',
            html`<span class="badge held">infected</span> ${reasonText(f)}`,
          )}${td('Signature', html`<code>${f.signature ?? 'unknown'}</code>`)}${td('Engine', html`${engineName(f.engine)}${f.version ? html`<br><span class="note">${f.version}</span>` : ''}`)}${td('Since', when(f.blockedAt), 'nowrap')}${td('', actions(p, f))}</tr>`,
      )}</tbody></table></div>
<p class="note">${items.length} file${items.length === 1 ? '' : 's'} held at ${when(now)}.</p>`
    : html`<p>No file is held: nothing infected has come in, or every finding has been released or deleted.</p>`
}`,
    status,
  );
}

type Body = Record<string, unknown> | undefined;

/** The transfer id and file number of the URL, checked before anything reaches storage. */
function target(request: FastifyRequest): { id: string; idx: number } | undefined {
  const p = request.params as { id?: string; idx?: string };
  if (!p.id || !/^[A-Za-z0-9_-]{1,64}$/.test(p.id) || !/^[1-9][0-9]{0,8}$/.test(p.idx ?? '')) return undefined;
  return { id: p.id, idx: Number(p.idx) };
}

export const quarantineUi: FastifyPluginAsync<QuarantineUiOptions> = async (app, { ctx, page }) => {
  const actor = (request: FastifyRequest) => `admin:${request.ferryAdmin!.name}`;
  const show = async (request: FastifyRequest, reply: FastifyReply, extra: { done?: unknown; error?: string }, status = 200) =>
    reply.code(status).type(HTML).send(quarantinePage(page(request, 'quarantine'), await listQuarantined(ctx.db), ctx.now(), extra, status === 200 ? undefined : status));
  const notHeld = (request: FastifyRequest, reply: FastifyReply) =>
    reply.code(404).type(HTML).send(messagePage(page(request, 'quarantine'), 'Not held', 'That file is not held (any more): it was released or deleted already, or there is no such file.', 404));

  app.get('/quarantine', async (request, reply) => show(request, reply, { done: (request.query as Record<string, unknown>)?.done }));

  app.post('/quarantine/:id/:idx/release', async (request, reply) => {
    const t = target(request);
    if (!t || !(await releaseFile(ctx.db, t.id, t.idx, actor(request), ctx.now()))) return notHeld(request, reply);
    return reply.redirect(`${ctx.base}/quarantine?done=released`, 303);
  });

  app.post('/quarantine/:id/:idx/delete', async (request, reply) => {
    const t = target(request);
    if (!t) return notHeld(request, reply);
    const confirm = (request.body as Body)?.confirm;
    if (confirm !== 'yes') return show(request, reply, { error: 'Tick “delete for good” beside the file to confirm that its bytes are to be removed.' }, 400);
    if (!(await deleteHeldFile(ctx.db, ctx.blobs, t.id, t.idx, actor(request), ctx.now()))) return notHeld(request, reply);
    return reply.redirect(`${ctx.base}/quarantine?done=deleted`, 303);
  });
};
