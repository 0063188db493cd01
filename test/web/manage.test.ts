import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import type { FastifyInstance, InjectOptions } from 'fastify';
import type { KyselyPlugin } from 'kysely';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  addFile,
  createTransfer,
  DAY_MS,
  getTransfer,
  hashToken,
  listAudit,
  listQueue,
  markLive,
  newBlobKey,
  newId,
  newLinkId,
  newQueueId,
  newToken,
  recordDownload,
  seedRetentionRules,
  setCopyBlobKey,
  setRule,
  setState,
  type Db,
  type TransferState,
} from '../../storage/index.js';
import { buildWebApp } from '../../web/app.js';
import { manageFormToken } from '../../web/routes/manage.js';
import { makeEnv, PUBLIC_URL, type Env } from './helpers.js';

// The sender's management page, /m/<token>, through the real app and a real database: the token
// is the credential (404 for anything else, at the same cost; misses count towards the rate
// limit), and every action (revoke one link, revoke all, move the expiry, send a copy again) does
// what the sender sees on the page, is refused outside its bounds, and is audited as
// sender:<address>. POSTs from anywhere but the page itself are refused.

const BOUNDS = { defaultMs: 7 * DAY_MS, minMs: DAY_MS, maxMs: 30 * DAY_MS };
const SENDER = 'alice@example.org';
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
// What Chromium sends with a form POST from a page with Referrer-Policy: no-referrer.
const SAME_ORIGIN = { ...FORM, origin: 'null', 'sec-fetch-site': 'same-origin' };

interface Managed {
  transferId: string;
  manageToken: string;
  /** Per recipient: its link id, download token and the bytes of its stored copy. */
  links: { recipient: string; id: string; token: string; copy: Buffer }[];
}

async function addManaged(
  env: Env,
  opts: { recipients?: string[]; state?: TransferState; createdAt?: number; expiresAt?: number; retentionRule?: string | null; copies?: boolean; subject?: string } = {},
): Promise<Managed> {
  const recipients = opts.recipients ?? ['bob@example.net', 'carol@example.com'];
  const transferId = newId();
  const manageToken = newToken();
  const createdAt = opts.createdAt ?? Date.now() - 3_600_000;
  const links = recipients.map((recipient) => ({ recipient, id: newLinkId(), token: newToken(), copy: Buffer.from(`To: ${recipient}\r\nSubject: figures\r\n\r\nYour link: ${PUBLIC_URL}/t/...\r\n`) }));
  await createTransfer(env.db, {
    id: transferId,
    // Per-recipient transfers: the transfer's own token is one nobody is given.
    tokenHash: hashToken(newToken()),
    queueId: newQueueId(),
    sender: SENDER,
    recipients,
    subject: opts.subject ?? 'Q3 figures',
    messageId: `<${newId()}@example.org>`,
    createdAt,
    expiresAt: opts.expiresAt ?? createdAt + 7 * DAY_MS,
    retentionRule: opts.retentionRule === undefined ? 'default' : opts.retentionRule,
    manageTokenHash: hashToken(manageToken),
    links: links.map((l) => ({ id: l.id, recipient: l.recipient, tokenHash: hashToken(l.token) })),
  });
  for (const [i, name] of ['report.pdf', 'photos.zip'].entries()) {
    const blobKey = newBlobKey(transferId, i + 1);
    const data = Buffer.from(`${name} `.repeat(100 * (i + 1)));
    await env.blobs.put(blobKey, Readable.from([data]));
    await addFile(env.db, { transferId, idx: i + 1, name, contentType: 'application/octet-stream', size: data.length, sha256: '0'.repeat(64), blobKey });
  }
  if (opts.copies !== false) {
    for (const l of links) {
      const key = `t/${transferId}/copy-${l.id}`;
      await env.blobs.put(key, Readable.from([l.copy]));
      await setCopyBlobKey(env.db, l.id, key);
    }
  }
  const state = opts.state ?? 'live';
  if (state !== 'pending') await markLive(env.db, transferId);
  if (state !== 'pending' && state !== 'live') await setState(env.db, transferId, state);
  return { transferId, manageToken, links };
}

/** The form token as a browser gets it: from the page. */
async function formToken(app: FastifyInstance, token: string): Promise<string> {
  const res = await app.inject({ url: `/m/${token}` });
  expect(res.statusCode).toBe(200);
  const m = /name="_form" value="([^"]+)"/.exec(res.body);
  expect(m, 'form token on the page').not.toBeNull();
  return m![1]!;
}

async function post(app: FastifyInstance, path: string, fields: Record<string, string>, headers: InjectOptions['headers'] = SAME_ORIGIN) {
  return app.inject({ method: 'POST', url: path, headers, payload: new URLSearchParams(fields).toString() });
}

describe('the sender management page', () => {
  let env: Env;
  let app: FastifyInstance;
  let logLines: string[];

  beforeAll(async () => {
    env = await makeEnv();
    await seedRetentionRules(env.db, BOUNDS);
    logLines = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });
    app = await buildWebApp({ publicUrl: PUBLIC_URL, db: env.db, blobs: env.blobs, rateLimit: false, retention: BOUNDS, logger });
  });
  afterAll(async () => {
    await app?.close();
    await env?.close();
  });

  it('shows per recipient and file whether and when it was downloaded completely, with scanner and incomplete fetches apart', async () => {
    const m = await addManaged(env);
    const [bob, carol] = m.links;
    await recordDownload(env.db, { transferId: m.transferId, linkId: bob!.id, fileIdx: 1, status: 200, bytesSent: 1100, range: null, client: '192.0.2.7', userAgent: 'Firefox', counted: true, method: 'GET' });
    await recordDownload(env.db, { transferId: m.transferId, linkId: bob!.id, fileIdx: 2, status: 200, bytesSent: 2200, range: null, client: '192.0.2.9', userAgent: 'Proofpoint', counted: false, scanner: true, method: 'GET' });
    await recordDownload(env.db, { transferId: m.transferId, linkId: bob!.id, fileIdx: 2, status: 206, bytesSent: 100, range: 'bytes=0-99', client: '192.0.2.7', userAgent: 'Firefox', counted: false, method: 'GET' });
    const res = await app.inject({ url: `/m/${m.manageToken}` });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    // The landing page's headers, except that this page's forms may post to this site.
    expect(res.headers['content-security-policy']).toContain("form-action 'self'");
    expect(res.headers['content-security-policy']).toContain("script-src 'self'");
    expect(res.headers['content-security-policy']).not.toContain('unsafe-inline');
    expect(res.headers).toMatchObject({ 'cache-control': 'private, no-store', 'referrer-policy': 'no-referrer', 'x-frame-options': 'DENY', 'x-robots-tag': 'noindex, nofollow' });
    const body = res.body;
    const section = (who: string) => {
      const start = body.indexOf(`<h3 class="fname">${who}</h3>`);
      expect(start, who).toBeGreaterThan(0);
      return body.slice(start, body.indexOf('</li>\n', body.indexOf('</ul>', start)));
    };
    const b = section('bob@example.net');
    expect(b).toMatch(/report\.pdf<\/span>: Downloaded completely on <time datetime="[^"]+" data-local>/);
    expect(b).toMatch(/photos\.zip<\/span>: Not downloaded yet <span class="extra">\(1 fetch by a mail scanner, 1 incomplete download\)<\/span>/);
    const c = section('carol@example.com');
    expect(c).toContain('report.pdf</span>: Not downloaded yet</li>');
    expect(c).toContain('photos.zip</span>: Not downloaded yet</li>');
    expect(c).not.toContain('Downloaded completely');
    // Nothing on the page is a way in for recipients: no download token appears on it.
    for (const l of m.links) expect(body).not.toContain(l.token);
    expect(body).toContain('Q3 figures');
    expect(carol).toBeDefined();
  });

  it('answers 404 for an unknown, malformed or pending token, after the same database work as for a real one', async () => {
    const m = await addManaged(env);
    const pending = await addManaged(env, { state: 'pending' });
    const seen: string[] = [];
    const spy: KyselyPlugin = {
      transformQuery(args) {
        seen.push(JSON.stringify(args.node));
        return args.node;
      },
      async transformResult(args) {
        return args.result;
      },
    };
    const spied = await buildWebApp({ publicUrl: PUBLIC_URL, db: env.db.withPlugin(spy) as Db, blobs: env.blobs, rateLimit: false, retention: BOUNDS });
    try {
      const firstQueries = async (url: string, status: number) => {
        seen.length = 0;
        const res = await spied.inject({ url });
        expect(res.statusCode, url).toBe(status);
        return [...seen];
      };
      const good = await firstQueries(`/m/${m.manageToken}`, 200);
      const unknown = await firstQueries(`/m/${newToken()}`, 404);
      const malformed = await firstQueries('/m/not-a-token', 404);
      const pend = await firstQueries(`/m/${pending.manageToken}`, 404);
      // One look-up by hash, the same statement for all; only a real token goes on from there.
      expect(unknown).toHaveLength(1);
      expect(unknown[0]).toContain('manage_token_hash');
      for (const q of [malformed, pend, good.slice(0, 1)]) expect(q.map((s) => s.replace(/"[0-9a-f]{64}"/g, 'H'))).toEqual(unknown.map((s) => s.replace(/"[0-9a-f]{64}"/g, 'H')));
      expect(good.length).toBeGreaterThan(1);
      // The 404 page is the one every unknown link gets.
      const res = await spied.inject({ url: `/m/${newToken()}` });
      expect(res.body).toContain('Link not found');
      // A download token is not a manage token, nor the other way round.
      expect((await spied.inject({ url: `/m/${m.links[0]!.token}` })).statusCode).toBe(404);
      expect((await spied.inject({ url: `/t/${m.manageToken}` })).statusCode).toBe(404);
    } finally {
      await spied.close();
    }
  });

  it('counts failed look-ups towards the same miss limit as download tokens: past it, even a good token gets 429', async () => {
    const m = await addManaged(env);
    const limited = await buildWebApp({ publicUrl: PUBLIC_URL, db: env.db, blobs: env.blobs, rateLimit: { missMax: 3 }, retention: BOUNDS });
    try {
      expect((await limited.inject({ url: `/m/${m.manageToken}` })).statusCode).toBe(200);
      for (let i = 0; i < 3; i++) expect((await limited.inject({ url: `/m/${newToken()}` })).statusCode).toBe(404);
      const res = await limited.inject({ url: `/m/${m.manageToken}` });
      expect(res.statusCode).toBe(429);
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      // Another address is not affected.
      expect((await limited.inject({ url: `/m/${m.manageToken}`, remoteAddress: '198.51.100.4' })).statusCode).toBe(200);
    } finally {
      await limited.close();
    }
  });

  it('revokes one recipient: that link answers 410, the other still works, and the audit log names the sender', async () => {
    const m = await addManaged(env);
    const [bob, carol] = m.links;
    expect((await app.inject({ url: `/t/${bob!.token}` })).statusCode).toBe(200);
    const form = await formToken(app, m.manageToken);
    const res = await post(app, `/m/${m.manageToken}/links/${bob!.id}/revoke?lang=en`, { _form: form });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe(`/m/${m.manageToken}?lang=en&done=link-revoked&link=${bob!.id}`);
    expect((await app.inject({ url: `/t/${bob!.token}` })).statusCode).toBe(410);
    expect((await app.inject({ url: `/t/${bob!.token}/1/report.pdf` })).statusCode).toBe(410);
    expect((await app.inject({ url: `/t/${carol!.token}` })).statusCode).toBe(200);
    expect((await getTransfer(env.db, m.transferId))!.state).toBe('live');
    const audit = await listAudit(env.db, { transferId: m.transferId, action: 'link_revoked' });
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor: `sender:${SENDER}`, detail: { link: bob!.id, recipient: 'bob@example.net' } });
    // Back on the page: the status line, and the link shown as revoked, with no buttons left for it.
    const page = (await app.inject({ url: res.headers.location as string })).body;
    expect(page).toContain('<div class="card flash" role="status"><p>The link of bob@example.net was revoked.</p></div>');
    expect(page).toMatch(/bob@example\.net<\/h3>\n<p class="facts">Link revoked on <time/);
    expect(page).not.toContain(`/links/${bob!.id}/`);
    expect(page).toContain(`/links/${carol!.id}/revoke`);
    // Again: already revoked, said so, nothing new in the audit log.
    const again = await post(app, `/m/${m.manageToken}/links/${bob!.id}/revoke`, { _form: form });
    expect(again.headers.location).toContain('error=link-revoked');
    expect(await listAudit(env.db, { transferId: m.transferId, action: 'link_revoked' })).toHaveLength(1);
    // A link of another transfer cannot be revoked from this page.
    const other = await addManaged(env);
    const foreign = await post(app, `/m/${m.manageToken}/links/${other.links[0]!.id}/revoke`, { _form: form });
    expect(foreign.headers.location).toContain('error=not-found');
    expect((await app.inject({ url: `/t/${other.links[0]!.token}` })).statusCode).toBe(200);
  });

  it('revokes everything only with the box ticked; then every link answers 410 and the page can change nothing more', async () => {
    const m = await addManaged(env);
    const form = await formToken(app, m.manageToken);
    const unconfirmed = await post(app, `/m/${m.manageToken}/revoke`, { _form: form });
    expect(unconfirmed.statusCode).toBe(303);
    expect(unconfirmed.headers.location).toContain('error=confirm');
    expect((await getTransfer(env.db, m.transferId))!.state).toBe('live');

    const res = await post(app, `/m/${m.manageToken}/revoke`, { _form: form, confirm: 'yes' });
    expect(res.headers.location).toBe(`/m/${m.manageToken}?lang=en&done=revoked`);
    expect((await getTransfer(env.db, m.transferId))!.state).toBe('revoked');
    for (const l of m.links) expect((await app.inject({ url: `/t/${l.token}` })).statusCode).toBe(410);
    const audit = await listAudit(env.db, { transferId: m.transferId, action: 'revoked' });
    expect(audit).toHaveLength(1);
    expect(audit[0]!.actor).toBe(`sender:${SENDER}`);

    const page = await app.inject({ url: res.headers.location as string });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('All links were withdrawn.');
    expect(page.body).toContain('<dd>Withdrawn</dd>');
    expect(page.body).toContain('These files are no longer available, so nothing here can be changed.');
    expect(page.body).not.toContain('<form');
    const late = await post(app, `/m/${m.manageToken}/links/${m.links[0]!.id}/resend`, { _form: form });
    expect(late.headers.location).toContain('error=not-live');
    expect((await listQueue(env.db)).entries.filter((e) => e.recipients[0]?.address === m.links[0]!.recipient && e.sender === SENDER)).toEqual([]);
  });

  it('moves the expiry within [minimum, maximum] when the default chose it, and refuses anything outside', async () => {
    const m = await addManaged(env);
    const t0 = (await getTransfer(env.db, m.transferId))!;
    const page = (await app.inject({ url: `/m/${m.manageToken}` })).body;
    // The range is on the page: 1 to 30 days after sending (retention.minimum and .maximum).
    expect(page).toMatch(/<input class="num" type="number" name="days" inputmode="numeric" min="1" max="30" step="1" value="7" required/);
    expect(page).toContain('You can choose 1 to 30 days after sending');
    const form = await formToken(app, m.manageToken);
    const longer = await post(app, `/m/${m.manageToken}/expiry`, { _form: form, days: '20' });
    expect(longer.headers.location).toBe(`/m/${m.manageToken}?lang=en&done=expiry`);
    const t1 = (await getTransfer(env.db, m.transferId))!;
    expect(t1.expiresAt).toBe(t0.createdAt + 20 * DAY_MS);
    // The rule that chose the expiry stays: the bounds do not move under the sender.
    expect(t1.retentionRule).toBe('default');
    const shorter = await post(app, `/m/${m.manageToken}/expiry`, { _form: form, days: '2' });
    expect(shorter.headers.location).toContain('done=expiry');
    expect((await getTransfer(env.db, m.transferId))!.expiresAt).toBe(t0.createdAt + 2 * DAY_MS);
    for (const days of ['31', '0', '-1', '2.5', 'abc', '']) {
      const res = await post(app, `/m/${m.manageToken}/expiry`, { _form: form, days });
      expect(res.headers.location, days).toContain('error=out-of-bounds');
    }
    expect((await getTransfer(env.db, m.transferId))!.expiresAt).toBe(t0.createdAt + 2 * DAY_MS);
    const audit = await listAudit(env.db, { transferId: m.transferId, action: 'extended' });
    expect(audit.map((a) => [a.actor, a.detail?.to])).toEqual([
      [`sender:${SENDER}`, new Date(t0.createdAt + 2 * DAY_MS).toISOString()],
      [`sender:${SENDER}`, new Date(t0.createdAt + 20 * DAY_MS).toISOString()],
    ]);
    const after = (await app.inject({ url: shorter.headers.location as string })).body;
    expect(after).toMatch(/The files are now available until <time datetime="[^"]+" data-local>/);
  });

  it('caps the expiry at the period of the rule that chose it, and at an admin\'s hand-set date', async () => {
    await setRule(env.db, { kind: 'recipient_domain', match: 'partner.example', periodMs: 3 * DAY_MS }, 'admin:test', BOUNDS);
    const ruled = await addManaged(env, { recipients: ['x@partner.example'], expiresAt: Date.now() + 2 * DAY_MS, retentionRule: 'recipient_domain:partner.example' });
    let form = await formToken(app, ruled.manageToken);
    expect((await app.inject({ url: `/m/${ruled.manageToken}` })).body).toContain('The longest period is set by your organisation’s rules for these recipients.');
    expect((await post(app, `/m/${ruled.manageToken}/expiry`, { _form: form, days: '5' })).headers.location).toContain('error=out-of-bounds');
    expect((await post(app, `/m/${ruled.manageToken}/expiry`, { _form: form, days: '3' })).headers.location).toContain('done=expiry');

    const byAdmin = await addManaged(env, { createdAt: Date.now() - 3_600_000, expiresAt: Date.now() - 3_600_000 + 10 * DAY_MS, retentionRule: 'admin' });
    form = await formToken(app, byAdmin.manageToken);
    expect((await post(app, `/m/${byAdmin.manageToken}/expiry`, { _form: form, days: '11' })).headers.location).toContain('error=out-of-bounds');
    expect((await post(app, `/m/${byAdmin.manageToken}/expiry`, { _form: form, days: '4' })).headers.location).toContain('done=expiry');
  });

  it('sends one recipient\'s stored copy again, to that recipient only, at most once in ten minutes', async () => {
    const m = await addManaged(env);
    const [bob, carol] = m.links;
    const before = new Set((await listQueue(env.db)).entries.map((e) => e.id));
    const form = await formToken(app, m.manageToken);
    const res = await post(app, `/m/${m.manageToken}/links/${bob!.id}/resend?lang=de`, { _form: form });
    expect(res.headers.location).toBe(`/m/${m.manageToken}?lang=de&done=resent&link=${bob!.id}`);
    const added = (await listQueue(env.db)).entries.filter((e) => !before.has(e.id));
    expect(added).toHaveLength(1);
    const entry = added[0]!;
    expect(entry).toMatchObject({ kind: 'message', sender: SENDER, transferId: null, size: bob!.copy.length, recipients: [{ address: 'bob@example.net', state: 'pending' }] });
    expect(entry.nextAttemptAt).toBeLessThanOrEqual(Date.now());
    // Its own blob, a byte-for-byte copy of what bob was sent.
    expect(entry.blobKey).not.toBe(`t/${m.transferId}/copy-${bob!.id}`);
    expect(await text(await env.blobs.openRead(entry.blobKey))).toBe(bob!.copy.toString());
    const audit = await listAudit(env.db, { transferId: m.transferId, action: 'copy_resent' });
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor: `sender:${SENDER}`, detail: { link: bob!.id, recipient: 'bob@example.net', queueId: entry.id } });
    const page = (await app.inject({ url: res.headers.location as string })).body;
    expect(page).toContain('Die Nachricht an bob@example.net ist erneut unterwegs.');

    const again = await post(app, `/m/${m.manageToken}/links/${bob!.id}/resend`, { _form: form });
    expect(again.headers.location).toContain('error=too-soon');
    // Carol's copy is another matter.
    expect((await post(app, `/m/${m.manageToken}/links/${carol!.id}/resend`, { _form: form })).headers.location).toContain('done=resent');
    expect((await listQueue(env.db)).entries.filter((e) => !before.has(e.id)).map((e) => e.recipients.map((r) => r.address))).toEqual([['bob@example.net'], ['carol@example.com']]);

    // No copy kept: no button, and a POST says so.
    const bare = await addManaged(env, { copies: false });
    const barePage = (await app.inject({ url: `/m/${bare.manageToken}` })).body;
    expect(barePage).not.toContain('/resend');
    const refused = await post(app, `/m/${bare.manageToken}/links/${bare.links[0]!.id}/resend`, { _form: await formToken(app, bare.manageToken) });
    expect(refused.headers.location).toContain('error=no-copy');
  });

  describe('refuses a POST that did not come from the page', () => {
    let m: Managed;
    let form: string;
    beforeEach(async () => {
      m = await addManaged(env);
      form = await formToken(app, m.manageToken);
    });
    afterEach(async () => {
      // Whatever was refused changed nothing.
      expect((await getTransfer(env.db, m.transferId))!.state).toBe('live');
      expect((await app.inject({ url: `/t/${m.links[0]!.token}` })).statusCode).toBe(200);
      expect(await listAudit(env.db, { transferId: m.transferId, actor: `sender:${SENDER}` })).toEqual([]);
    });

    const cases: [string, Record<string, string>][] = [
      ['a cross-site form (Sec-Fetch-Site)', { ...FORM, 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' }],
      ['a same-site but other-origin form', { ...FORM, 'sec-fetch-site': 'same-site', origin: 'https://other.example.test' }],
      ['a foreign Origin without fetch metadata', { ...FORM, origin: 'https://evil.example' }],
      ['Origin null without fetch metadata (a sandboxed frame)', { ...FORM, origin: 'null' }],
    ];
    for (const [what, headers] of cases) {
      it(what, async () => {
        const res = await post(app, `/m/${m.manageToken}/links/${m.links[0]!.id}/revoke`, { _form: form }, headers);
        expect(res.statusCode).toBe(403);
        expect(res.body).toContain('Form refused');
        expect(res.headers['content-security-policy']).toContain("form-action 'none'");
      });
    }

    it('a same-origin POST without the form token, or with another transfer\'s', async () => {
      expect((await post(app, `/m/${m.manageToken}/revoke`, { confirm: 'yes' })).statusCode).toBe(403);
      const other = await addManaged(env);
      const otherForm = await formToken(app, other.manageToken);
      expect((await post(app, `/m/${m.manageToken}/revoke`, { confirm: 'yes', _form: otherForm })).statusCode).toBe(403);
      expect((await post(app, `/m/${m.manageToken}/revoke`, { confirm: 'yes', _form: form.slice(0, -1) })).statusCode).toBe(403);
    });
  });

  it('accepts a client without fetch metadata (not a browser) that carries the form token, and this site\'s own Origin', async () => {
    const m = await addManaged(env);
    const form = await formToken(app, m.manageToken);
    expect((await post(app, `/m/${m.manageToken}/links/${m.links[0]!.id}/revoke`, { _form: form }, FORM)).statusCode).toBe(303);
    expect((await post(app, `/m/${m.manageToken}/links/${m.links[1]!.id}/revoke`, { _form: form }, { ...FORM, origin: PUBLIC_URL })).statusCode).toBe(303);
    expect(await listAudit(env.db, { transferId: m.transferId, action: 'link_revoked' })).toHaveLength(2);
  });

  it('shows an expired transfer read-only, and refuses its actions', async () => {
    const m = await addManaged(env, { createdAt: Date.now() - 8 * DAY_MS, expiresAt: Date.now() - DAY_MS });
    const res = await app.inject({ url: `/m/${m.manageToken}` });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('<dd>Expired</dd>');
    expect(res.body).not.toContain('<form');
    // A client that kept the form token from earlier gets the reason, and nothing changes.
    const refused = await post(app, `/m/${m.manageToken}/expiry`, { _form: manageFormToken(hashToken(m.manageToken)), days: '20' });
    expect(refused.headers.location).toContain('error=not-live');
    expect((await getTransfer(env.db, m.transferId))!.expiresAt).toBeLessThan(Date.now());
  });

  it('speaks the four languages', async () => {
    const m = await addManaged(env);
    const titles = { en: 'Manage your transfer', de: 'Ihre Sendung verwalten', fr: 'Gérer votre envoi', es: 'Gestionar su envío' };
    for (const [lang, title] of Object.entries(titles)) {
      const res = await app.inject({ url: `/m/${m.manageToken}?lang=${lang}` });
      expect(res.body).toContain(`<html lang="${lang}"`);
      expect(res.body).toContain(`<h1>${title}</h1>`);
      // Forms keep the language across the redirect.
      expect(res.body).toContain(`/revoke?lang=${lang}"`);
    }
    const byHeader = await app.inject({ url: `/m/${m.manageToken}`, headers: { 'accept-language': 'fr-CH, en;q=0.5' } });
    expect(byHeader.body).toContain('<h1>Gérer votre envoi</h1>');
  });

  it('never writes a manage token into the log', async () => {
    const m = await addManaged(env);
    const form = await formToken(app, m.manageToken);
    await post(app, `/m/${m.manageToken}/links/${m.links[0]!.id}/revoke`, { _form: form });
    await app.inject({ url: `/m/${m.manageToken}/nothing-here` });
    // A link cut short (a line break in the receipt) is still most of the secret.
    const cut = m.manageToken.slice(0, 20);
    expect((await app.inject({ url: `/m/${cut}` })).statusCode).toBe(404);
    const all = logLines.join('\n');
    expect(all).not.toContain(cut);
    expect(all).toContain(`/m/h:${hashToken(m.manageToken).slice(0, 12)}`);
    expect(all).not.toContain(m.manageToken);
    expect(all).not.toContain(form);
  });
});
