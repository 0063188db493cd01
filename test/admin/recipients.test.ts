import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken, hashTransferPassword, listAudit } from '../../storage/index.js';
import { addTransfer, downloads, httpRequest, waitFor, type Env } from '../web/helpers.js';
import { startAdminSite } from './admin-site.js';
import { postForm, uiLogin } from './admin-login.js';

// Issue 17 item 6 in the admin API and UI: each recipient's downloads (complete, scanner and
// partial apart), whether a password guards the transfer (never the password or its hash), and
// revoking one recipient's link. Downloads go through the real web routes over a socket.

const ADMIN = 'boss-recipients-token-0123456789abc';
const HELP = 'helpdesk-recipients-token-01234567';
const BROWSER = 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0';
const SCANNER = 'Mimecast URL Protect';
const FILES = [
  { name: 'plan.pdf', data: Buffer.from('%PDF-1.7 the plan, long enough for a range') },
  { name: 'notes.txt', data: Buffer.from('the notes, also long enough') },
];
const PASSWORD = 'Kettle-Orbit-Velvet-Sandal-7341';

let env: Env;
let app: FastifyInstance;
let base: string;
let passwordHash: string;

beforeAll(async () => {
  ({ env, app, base } = await startAdminSite({ admin: ADMIN, readonly: HELP }));
  passwordHash = await hashTransferPassword(PASSWORD);
});
afterAll(async () => {
  await app?.close();
  await env?.close();
});

/** A live transfer as the gateway stores it with one link per recipient. */
async function perRecipientTransfer(recipients: string[], opts: { passwordHash?: string } = {}) {
  const t = await addTransfer(env, { files: FILES, recipients, linkPerRecipient: true, subject: 'Plans', messageId: null, passwordHash: opts.passwordHash ?? null });
  return { id: t.transferId, bob: t.links[0]!, carol: t.links[1]! };
}

const web = (path: string, headers: Record<string, string> = {}) => httpRequest(`${base}${path}`, { headers: { 'user-agent': BROWSER, ...headers } });

async function api(method: 'GET' | 'POST', url: string, body?: object, token = ADMIN) {
  const r = await app.inject({ method, url: `/admin/api${url}`, headers: { authorization: `Bearer ${token}` }, ...(body ? { payload: body } : {}) });
  return { status: r.statusCode, text: r.body, json: r.json() as any };
}

describe('per-recipient status in the admin API', () => {
  it("shows each recipient's complete, scanner and partial downloads apart, and whether a password guards the transfer", async () => {
    const { id, bob, carol } = await perRecipientTransfer(['bob@example.net', 'carol@example.org']);
    expect((await web(`/t/${bob.token}/1/plan.pdf`)).status).toBe(200);
    // Carol's mail scanner fetched file 1; Carol herself only previewed the start of file 2.
    await web(`/t/${carol.token}/1/plan.pdf`, { 'user-agent': SCANNER });
    expect((await web(`/t/${carol.token}/2/notes.txt`, { range: 'bytes=0-3' })).status).toBe(206);
    await waitFor(async () => ((await downloads(env.db, id)).length === 3 ? true : undefined), 'three download records');

    const r = await api('GET', `/transfers/${id}`);
    expect(r.status).toBe(200);
    expect(r.json.passwordProtected).toBe(false);
    const [b, c] = r.json.recipients;
    expect(b).toMatchObject({ linkId: bob.id, recipient: 'bob@example.net', revokedAt: null });
    expect(b.files[0]).toMatchObject({ idx: 1, name: 'plan.pdf', completeCount: 1, scannerFetches: 0, partialFetches: 0 });
    expect(Date.parse(b.files[0].completeAt)).toBeGreaterThan(Date.now() - 60_000);
    expect(b.files[1]).toMatchObject({ idx: 2, completeAt: null, completeCount: 0 });
    expect(c).toMatchObject({ linkId: carol.id, recipient: 'carol@example.org', revokedAt: null });
    expect(c.files[0]).toMatchObject({ idx: 1, completeAt: null, completeCount: 0, scannerFetches: 1, partialFetches: 0 });
    expect(c.files[1]).toMatchObject({ idx: 2, completeAt: null, completeCount: 0, scannerFetches: 0, partialFetches: 1 });
    // Tokens and their hashes stay out of the answer.
    for (const secret of [bob.token, carol.token, hashToken(bob.token), hashToken(carol.token)]) expect(r.text).not.toContain(secret);
  });

  it('says yes for a password-protected transfer, and neither the password nor its hash appears in the API or on the page', async () => {
    const { id } = await perRecipientTransfer(['bob@example.net', 'carol@example.org'], { passwordHash });
    const r = await api('GET', `/transfers/${id}`, undefined, HELP);
    expect(r.status).toBe(200);
    expect(r.json.passwordProtected).toBe(true);
    const list = await api('GET', `/transfers?sender=alice`, undefined, HELP);
    const { cookie } = await uiLogin(app, HELP);
    const page = await app.inject({ url: `/admin/transfers/${id}`, headers: { cookie } });
    expect(page.statusCode).toBe(200);
    expect(page.body).toMatch(/<dt>Password protected<\/dt><dd>yes/);
    const salt = passwordHash.split('$').filter((p) => p.length >= 16);
    expect(salt.length).toBeGreaterThan(0);
    for (const text of [r.text, list.text, page.body]) {
      expect(text).not.toContain(PASSWORD);
      expect(text).not.toContain(passwordHash);
      for (const part of salt) expect(text).not.toContain(part);
    }
  });
});

describe("revoking one recipient's link", () => {
  it('the read-only role is refused (audited); an admin revokes by address: that link answers 410 on the web, the other still works', async () => {
    const { id, bob, carol } = await perRecipientTransfer(['bob@example.net', 'carol@example.org']);
    const refused = await api('POST', `/transfers/${id}/recipients/revoke`, { recipient: 'bob@example.net' }, HELP);
    expect(refused.status).toBe(403);
    expect(refused.json.error.code).toBe('FERRY_ERR_READ_ONLY');
    expect((await listAudit(env.db, { action: 'admin_refused', limit: 5 }))[0]!.detail).toMatchObject({ request: 'POST /admin/api/transfers/:id/recipients/revoke' });
    expect((await web(`/t/${bob.token}`)).status).toBe(200);

    const r = await api('POST', `/transfers/${id}/recipients/revoke`, { recipient: 'Bob@Example.NET' });
    expect(r.status).toBe(200);
    expect(r.json.revoked).toEqual([bob.id]);
    expect(r.json.recipients[0]).toMatchObject({ recipient: 'bob@example.net', revokedAt: expect.any(String) });
    expect(r.json.recipients[1]).toMatchObject({ recipient: 'carol@example.org', revokedAt: null });
    for (const path of [`/t/${bob.token}`, `/t/${bob.token}/1/plan.pdf`, `/t/${bob.token}/zip`]) expect((await web(path)).status, path).toBe(410);
    expect((await web(`/t/${carol.token}`)).status).toBe(200);
    const file = await web(`/t/${carol.token}/1/plan.pdf`);
    expect(file.status).toBe(200);
    expect(file.body.equals(FILES[0]!.data)).toBe(true);
    const audit = await listAudit(env.db, { transferId: id, action: 'link_revoked' });
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor: 'admin:boss', detail: { link: bob.id, recipient: 'bob@example.net' } });
  });

  it('answers 409 for a link revoked already, 404 for an address without a link, 400 for bad input', async () => {
    const { id, carol } = await perRecipientTransfer(['bob@example.net', 'carol@example.org']);
    expect((await api('POST', `/transfers/${id}/recipients/revoke`, { linkId: carol.id })).status).toBe(200);
    const again = await api('POST', `/transfers/${id}/recipients/revoke`, { recipient: 'carol@example.org' });
    expect(again.status).toBe(409);
    expect(again.json.error.code).toBe('FERRY_ERR_LINK_REVOKED');
    const nobody = await api('POST', `/transfers/${id}/recipients/revoke`, { recipient: 'mallory@example.com' });
    expect(nobody.status).toBe(404);
    expect(nobody.json.error.code).toBe('FERRY_ERR_RECIPIENT_NOT_FOUND');
    expect(nobody.json.error.message).toContain('bob@example.net');
    expect((await api('POST', `/transfers/${'z'.repeat(16)}/recipients/revoke`, { recipient: 'bob@example.net' })).json.error.code).toBe('FERRY_ERR_TRANSFER_NOT_FOUND');
    for (const body of [{}, { recipient: 'bob@example.net', linkId: carol.id }, { recipient: '' }, { recipient: 'bob@example.net', extra: 1 }]) {
      const bad = await api('POST', `/transfers/${id}/recipients/revoke`, body);
      expect(bad.status, JSON.stringify(body)).toBe(400);
    }
    expect((await listAudit(env.db, { transferId: id, action: 'link_revoked' })).length).toBe(1);
  });
});

describe('the transfer page of the admin UI', () => {
  it("lists each recipient with its downloads, and revokes one recipient's link from its row", async () => {
    const { id, bob, carol } = await perRecipientTransfer(['bob@example.net', 'carol@example.org']);
    await web(`/t/${carol.token}/zip`);
    await waitFor(async () => ((await downloads(env.db, id)).some((d) => d.counted === 1) ? true : undefined), "carol's zip");
    const { cookie, csrf } = await uiLogin(app, ADMIN);
    const page = await app.inject({ url: `/admin/transfers/${id}`, headers: { cookie } });
    expect(page.statusCode).toBe(200);
    const table = /<table class="data" id="recipients">[\s\S]*?<\/table>/.exec(page.body)![0];
    const rows = table.split('<tr>').slice(2);
    expect(rows).toHaveLength(2);
    // Bob: nothing yet; Carol: the zip counts for both files.
    expect(rows[0]).toContain('bob<wbr>@example<wbr>.net');
    expect(rows[0]!.match(/not downloaded completely/g)).toHaveLength(2);
    expect(rows[1]!.match(/<strong>(plan\.pdf|notes\.txt)<\/strong>: downloaded <span class="nw">\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC<\/span>/g)).toHaveLength(2);
    expect(page.body).toMatch(/<dt>Password protected<\/dt><dd>no<\/dd>/);
    // Each row's button names its recipient for screen readers.
    expect(rows[0]).toContain(`name="link" value="${bob.id}"`);
    expect(rows[0]).toContain('Revoke link<span class="vh"> of bob@example.net</span>');

    const res = await app.inject(postForm(cookie, `/admin/transfers/${id}/revoke-recipient`, { link: bob.id, _csrf: csrf }));
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe(`/admin/transfers/${id}?done=recipient-revoked`);
    expect((await web(`/t/${bob.token}`)).status).toBe(410);
    expect((await web(`/t/${carol.token}`)).status).toBe(200);
    const after = await app.inject({ url: res.headers.location as string, headers: { cookie } });
    expect(after.body).toContain('role="status">Recipient&#39;s link revoked: it answers 410 from now on');
    const afterRows = /<table class="data" id="recipients">[\s\S]*?<\/table>/.exec(after.body)![0].split('<tr>').slice(2);
    expect(afterRows[0]).toMatch(/revoked <span class="nw">/);
    expect(afterRows[0]).not.toContain('name="link"');
    expect(afterRows[1]).toContain(`name="link" value="${carol.id}"`);
    expect((await listAudit(env.db, { transferId: id, action: 'link_revoked' }))[0]).toMatchObject({ actor: 'admin:boss' });

    // A stale form (the link revoked meanwhile) says so instead of failing silently.
    const stale = await app.inject(postForm(cookie, `/admin/transfers/${id}/revoke-recipient`, { link: bob.id, _csrf: csrf }));
    expect(stale.statusCode).toBe(409);
    expect(stale.body).toContain('revoked already');
  });
});
