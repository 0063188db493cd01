import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSite } from '../../admin/site.js';
import { DAY_MS, fileScans, listAudit, recordRescan, recordScan, seedRetentionRules } from '../../storage/index.js';
import { addTransfer, makeEnv, PUBLIC_URL, type Env, type Fixture } from '../web/helpers.js';
import { postForm, uiLogin } from './admin-login.js';

// The admin UI's quarantine page (issue 13 item 3): the files the malware scan held at intake or
// a rescan blocked later, with verdict, signature, engine and time; release and delete, each
// audited; refused (and audited as refused) for the read-only role. The files are held with the
// storage calls the gateway and the rescan worker use, and the download side is the same site.

const ADMIN = 'quarantine-admin-token-0123456789ab';
const HELP = 'quarantine-helpdesk-token-012345678';
const bounds = { defaultMs: 30 * DAY_MS, minMs: DAY_MS, maxMs: 90 * DAY_MS };
const VERSION = 'ClamAV 1.4.6/27471/Wed Dec  2 09:25:02 2026';

let env: Env;
let app: FastifyInstance;
let intake: Fixture;
let later: Fixture;
let admin: { cookie: string; csrf: string };
let helpdesk: { cookie: string; csrf: string };

const fileUrl = (f: Fixture, idx: number) => `/t/${f.token}/${idx}/${encodeURIComponent(f.files[idx - 1]!.name)}`;

beforeAll(async () => {
  env = await makeEnv();
  await seedRetentionRules(env.db, bounds);
  app = await buildSite({ publicUrl: PUBLIC_URL, db: env.db, blobs: env.blobs, rateLimit: false, admin: { tokens: [`alice:${ADMIN}`], readonlyTokens: [`helpdesk:${HELP}`], retention: bounds } });
  // Held at intake (scan.onInfected: quarantine): file 2 of a two-file message.
  intake = await addTransfer(env, {
    sender: 'mallory@corp.example',
    files: [
      { name: 'minutes.pdf', data: Buffer.from('clean minutes') },
      { name: 'invoice <2>.exe', data: Buffer.from('infected bytes of the invoice') },
    ],
  });
  const at = Date.now() - 3_600_000;
  await recordScan(env.db, intake.transferId, 1, { verdict: 'clean', engine: 'clamav', version: VERSION, signature: null, at });
  await recordScan(env.db, intake.transferId, 2, { verdict: 'infected', engine: 'clamav', version: VERSION, signature: 'Ferry-Test-Custom.UNOFFICIAL', at }, { actor: 'system:scan' });
  // Clean at intake, blocked by a rescan with newer signatures.
  later = await addTransfer(env, { sender: 'bob@corp.example', files: [{ name: 'tool.zip', data: Buffer.from('bytes found bad later') }] });
  await recordScan(env.db, later.transferId, 1, { verdict: 'clean', engine: 'icap', version: 'istag-1', signature: null, at });
  expect(await recordRescan(env.db, { transferId: later.transferId, idx: 1 }, { verdict: 'infected', engine: 'icap', version: 'istag-2', signature: 'Win.Trojan.Late', at: Date.now() - 60_000 })).toBe(true);
  admin = await uiLogin(app, ADMIN);
  helpdesk = await uiLogin(app, HELP);
});
afterAll(async () => {
  await app?.close();
  await env?.close();
});

const get = (cookie: string, url = '/admin/quarantine') => app.inject({ url, headers: { cookie } });
const rows = (body: string) => [...body.matchAll(/<tr>([\s\S]*?)<\/tr>/g)].map((m) => m[1]!);

describe('the quarantine page', () => {
  it('lists held and blocked files with verdict, signature, engine, signature version and time, linked from the navigation', async () => {
    const res = await get(admin.cookie);
    expect(res.statusCode).toBe(200);
    expect(res.body).toMatch(/<a href="\/admin\/quarantine" aria-current="page">Quarantine<\/a>/);
    const list = rows(res.body.slice(res.body.indexOf('<tbody>')));
    expect(list).toHaveLength(2);
    // Newest first: the rescan's block is the more recent.
    expect(list[0]).toContain('tool.zip');
    expect(list[0]).toContain('blocked after a rescan');
    expect(list[0]).toContain('Win.Trojan.Late');
    expect(list[0]).toMatch(/ICAP service<br><span class="note">istag-2/);
    expect(list[1]).toContain('invoice &lt;2&gt;.exe');
    expect(list[1]).toContain('held at intake');
    expect(list[1]).toContain('Ferry-Test-Custom.UNOFFICIAL');
    expect(list[1]).toContain(`ClamAV<br><span class="note">${VERSION}`);
    expect(list[1]).toMatch(/\d{4}-\d\d-\d\d \d\d:\d\d UTC/);
    expect(list[1]).toContain(`/admin/transfers/${intake.transferId}`);
    // The clean file of the same message is not in the list.
    expect(res.body).not.toContain('minutes.pdf');
    expect(res.body).toContain(`action="/admin/quarantine/${intake.transferId}/2/release"`);
  });

  it('the transfer page and the API show each file\'s verdict: clean with its engine, held with its signature', async () => {
    const page = await get(admin.cookie, `/admin/transfers/${intake.transferId}`);
    expect(page.statusCode).toBe(200);
    // The header row first, then one row per file.
    const files = rows(page.body.slice(page.body.indexOf('id="files"')));
    expect(files[0]).toContain('<th>Malware check</th>');
    expect(files[1]).toContain('clean (clamav)');
    expect(files[2]).toContain('held for review: Ferry-Test-Custom.UNOFFICIAL');
    const api = await app.inject({ url: `/admin/api/transfers/${later.transferId}`, headers: { authorization: `Bearer ${ADMIN}` } });
    expect(api.statusCode).toBe(200);
    expect(api.json().files[0].scan).toMatchObject({ verdict: 'infected', engine: 'icap', signatureVersion: 'istag-2', signature: 'Win.Trojan.Late', blocked: true, blockedReason: 'rescan' });
  });

  it('the read-only role sees the list without forms, and a release or delete it posts anyway is refused and audited', async () => {
    const page = await get(helpdesk.cookie);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('invoice &lt;2&gt;.exe');
    expect(page.body).not.toContain('/release"');
    expect(page.body).not.toContain('/delete"');
    for (const action of ['release', 'delete']) {
      const res = await app.inject(postForm(helpdesk.cookie, `/admin/quarantine/${intake.transferId}/2/${action}`, { _csrf: helpdesk.csrf, confirm: 'yes' }));
      expect(res.statusCode).toBe(403);
      expect(res.body).toContain('read-only role');
    }
    expect((await fileScans(env.db, intake.transferId)).get(2)).toMatchObject({ blocked: true, blockedReason: 'quarantine', releasedAt: null });
    expect(await env.blobs.exists(intake.files[1]!.blobKey)).toBe(true);
    expect((await app.inject({ url: fileUrl(intake, 2) })).statusCode).toBe(403);
    const refused = (await listAudit(env.db, { action: 'admin_refused', limit: 10 })).filter((e) => e.actor === 'admin:helpdesk');
    expect(refused.map((e) => String((e.detail as { request: string }).request))).toEqual(
      expect.arrayContaining(['POST /admin/quarantine/:id/:idx/release', 'POST /admin/quarantine/:id/:idx/delete']),
    );
  });

  it('a form without the session’s CSRF token changes nothing', async () => {
    const res = await app.inject(postForm(admin.cookie, `/admin/quarantine/${intake.transferId}/2/release`, { _csrf: 'x'.repeat(43) }));
    expect(res.statusCode).toBe(403);
    expect((await fileScans(env.db, intake.transferId)).get(2)!.blocked).toBe(true);
  });

  it('release: the file downloads again, the landing page says so, the audit log names the admin; a second release is a 404', async () => {
    expect((await app.inject({ url: fileUrl(intake, 2) })).statusCode).toBe(403);
    const res = await app.inject(postForm(admin.cookie, `/admin/quarantine/${intake.transferId}/2/release`, { _csrf: admin.csrf }));
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/admin/quarantine?done=released');
    const after = await get(admin.cookie, res.headers.location);
    expect(after.body).toContain('Released: the file downloads again');
    expect(after.body).not.toContain('invoice &lt;2&gt;.exe');
    const dl = await app.inject({ url: fileUrl(intake, 2) });
    expect(dl.statusCode).toBe(200);
    expect(dl.rawPayload.equals(intake.files[1]!.data)).toBe(true);
    expect((await app.inject({ url: `/t/${intake.token}` })).body).toContain('Released by an administrator after a malware finding');
    const audit = await listAudit(env.db, { transferId: intake.transferId });
    expect(audit.find((e) => e.action === 'file_released')).toMatchObject({ actor: 'admin:alice', detail: { idx: 2 } });
    const again = await app.inject(postForm(admin.cookie, `/admin/quarantine/${intake.transferId}/2/release`, { _csrf: admin.csrf }));
    expect(again.statusCode).toBe(404);
  });

  it('delete: refused without the confirmation; with it the bytes are gone, the links say removed, the audit log names the admin', async () => {
    const url = `/admin/quarantine/${later.transferId}/1/delete`;
    const unconfirmed = await app.inject(postForm(admin.cookie, url, { _csrf: admin.csrf }));
    expect(unconfirmed.statusCode).toBe(400);
    expect(unconfirmed.body).toContain('delete for good');
    expect(await env.blobs.exists(later.files[0]!.blobKey)).toBe(true);

    const res = await app.inject(postForm(admin.cookie, url, { _csrf: admin.csrf, confirm: 'yes' }));
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/admin/quarantine?done=deleted');
    expect(await env.blobs.exists(later.files[0]!.blobKey)).toBe(false);
    const dl = await app.inject({ url: fileUrl(later, 1) });
    expect(dl.statusCode).toBe(403);
    expect(dl.body).toContain('File removed');
    expect((await app.inject({ url: `/t/${later.token}` })).body).toContain('was deleted by an administrator');
    expect((await listAudit(env.db, { transferId: later.transferId })).find((e) => e.action === 'file_deleted')).toMatchObject({ actor: 'admin:alice', detail: { idx: 1 } });
    const list = await get(admin.cookie);
    expect(list.body).toContain('No file is held');
    expect((await app.inject(postForm(admin.cookie, url, { _csrf: admin.csrf, confirm: 'yes' }))).statusCode).toBe(404);
  });

  it('a malformed transfer id or file number is a 404, not a storage query', async () => {
    for (const u of ['/admin/quarantine/..%2Fx/1/release', `/admin/quarantine/${intake.transferId}/0/release`, `/admin/quarantine/${intake.transferId}/1e3/release`]) {
      expect((await app.inject(postForm(admin.cookie, u, { _csrf: admin.csrf }))).statusCode).toBe(404);
    }
  });
});
