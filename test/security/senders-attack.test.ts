import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/index.js';
import { queueReceipt, type ReceiptInput } from '../../gateway/senders/receipt.js';
import {
  addFile,
  createTransfer,
  DAY_MS,
  hashToken,
  hashTransferPassword,
  listLinks,
  listQueue,
  markLive,
  newBlobKey,
  newId,
  newLinkId,
  newQueueId,
  newToken,
  newTransferPassword,
  verifyTransferPassword,
  openDatabase,
  resendCopy,
  SenderActionError,
  type Transfer,
  getTransfer,
  recordDownload,
  seedRetentionRules,
  setCopyBlobKey,
} from '../../storage/index.js';
import { buildWebApp } from '../../web/app.js';
import { createDatabase, dropDatabase, PG_MISSING, pgUrl, warnSkip } from '../storage/backends.js';
import { noticesOnce } from '../../worker/download-notices.js';
import { addTransfer, makeEnv, PUBLIC_URL, type Env, type Fixture } from '../web/helpers.js';

// Attacks on issue 17 (per-recipient links, receipts, the sender's management page, passwords)
// that the feature tests do not try: requests in parallel against checks that hold one at a time
// ("send again" cooldown, on SQLite and on two PostgreSQL pools; the password lockout), hostile
// strings from the message (management page, receipt and notice text), Ferry's own address as
// the envelope sender, another transfer's link ids and form tokens, and a stored hash that asks
// scrypt for gigabytes. Real app (Fastify inject), real SQLite (and PostgreSQL where
// FERRY_TEST_POSTGRES_URL is set) and blob store.

const BOUNDS = { defaultMs: 7 * DAY_MS, minMs: DAY_MS, maxMs: 30 * DAY_MS };
const SENDER = 'alice@example.org';
const SAME_ORIGIN = { 'content-type': 'application/x-www-form-urlencoded', origin: 'null', 'sec-fetch-site': 'same-origin' };

interface Managed {
  transferId: string;
  manageToken: string;
  links: { recipient: string; id: string; token: string }[];
}

/** A live per-recipient transfer with a stored copy per recipient, as the gateway leaves it. */
async function addManaged(env: Env, opts: { recipients?: string[]; subject?: string; fileNames?: string[]; maxDownloads?: number; sender?: string } = {}): Promise<Managed> {
  const recipients = opts.recipients ?? ['bob@example.net', 'carol@example.com'];
  const transferId = newId();
  const manageToken = newToken();
  const createdAt = Date.now() - 3_600_000;
  const links = recipients.map((recipient) => ({ recipient, id: newLinkId(), token: newToken() }));
  await createTransfer(env.db, {
    id: transferId,
    tokenHash: hashToken(newToken()),
    queueId: newQueueId(),
    sender: opts.sender ?? SENDER,
    recipients,
    subject: opts.subject ?? 'Q3 figures',
    messageId: `<${newId()}@example.org>`,
    createdAt,
    expiresAt: createdAt + 7 * DAY_MS,
    retentionRule: 'default',
    maxDownloads: opts.maxDownloads ?? null,
    manageTokenHash: hashToken(manageToken),
    links: links.map((l) => ({ id: l.id, recipient: l.recipient, tokenHash: hashToken(l.token) })),
  });
  for (const [i, name] of (opts.fileNames ?? ['report.pdf']).entries()) {
    const blobKey = newBlobKey(transferId, i + 1);
    const data = Buffer.from(`${i} data `.repeat(50));
    await env.blobs.put(blobKey, Readable.from([data]));
    await addFile(env.db, { transferId, idx: i + 1, name, contentType: 'application/octet-stream', size: data.length, sha256: '0'.repeat(64), blobKey });
  }
  for (const l of links) {
    const key = `t/${transferId}/copy-${l.id}`;
    await env.blobs.put(key, Readable.from([Buffer.from(`To: ${l.recipient}\r\nSubject: figures\r\n\r\nlink\r\n`)]));
    await setCopyBlobKey(env.db, l.id, key);
  }
  await markLive(env.db, transferId);
  return { transferId, manageToken, links };
}

async function formToken(app: FastifyInstance, token: string): Promise<string> {
  const res = await app.inject({ url: `/m/${token}` });
  expect(res.statusCode).toBe(200);
  return /name="_form" value="([^"]+)"/.exec(res.body)![1]!;
}

function post(app: FastifyInstance, url: string, fields: Record<string, string>, headers: InjectOptions['headers'] = SAME_ORIGIN) {
  return app.inject({ method: 'POST', url, headers, payload: new URLSearchParams(fields).toString() });
}

async function queuedTo(env: Env, address: string) {
  return (await listQueue(env.db)).entries.filter((e) => e.recipients.some((r) => r.address === address));
}

describe('the management page under attack', () => {
  let env: Env;
  let app: FastifyInstance;

  beforeAll(async () => {
    env = await makeEnv();
    await seedRetentionRules(env.db, BOUNDS);
    app = await buildWebApp({ publicUrl: PUBLIC_URL, db: env.db, blobs: env.blobs, rateLimit: false, retention: BOUNDS, logger: pino({ level: 'silent' }) });
  });
  afterAll(async () => {
    await app?.close();
    await env?.close();
  });

  it('sends one copy however many "send again" requests arrive at once (no flood of a recipient)', async () => {
    const m = await addManaged(env, { recipients: ['flood-target@example.net', 'other@example.com'] });
    const target = m.links[0]!;
    const form = await formToken(app, m.manageToken);
    const answers = await Promise.all(Array.from({ length: 12 }, () => post(app, `/m/${m.manageToken}/links/${target.id}/resend`, { _form: form })));
    for (const a of answers) expect(a.statusCode).toBe(303);
    const done = answers.filter((a) => /[?&]done=resent/.test(a.headers.location as string));
    expect(done).toHaveLength(1);
    for (const a of answers.filter((x) => !done.includes(x))) expect(a.headers.location).toMatch(/[?&]error=too-soon/);
    expect(await queuedTo(env, 'flood-target@example.net')).toHaveLength(1);
    expect(await queuedTo(env, 'other@example.com')).toHaveLength(0);
  });

  it("cannot revoke or resend another transfer's link by its id", async () => {
    const mine = await addManaged(env);
    const theirs = await addManaged(env, { recipients: ['victim@example.net'] });
    const form = await formToken(app, mine.manageToken);
    const victim = theirs.links[0]!;
    for (const action of ['revoke', 'resend']) {
      const res = await post(app, `/m/${mine.manageToken}/links/${victim.id}/${action}`, { _form: form });
      expect(res.statusCode).toBe(303);
      expect(res.headers.location).toMatch(/[?&]error=not-found/);
    }
    expect((await listLinks(env.db, theirs.transferId))[0]!.revokedAt).toBeNull();
    expect(await queuedTo(env, 'victim@example.net')).toHaveLength(0);
    expect((await app.inject({ url: `/t/${victim.token}` })).statusCode).toBe(200);
  });

  it("refuses a valid form token from another transfer's page, and a cross-site POST with the right one", async () => {
    const a = await addManaged(env);
    const b = await addManaged(env);
    const formB = await formToken(app, b.manageToken);
    const res = await post(app, `/m/${a.manageToken}/revoke`, { _form: formB, confirm: 'yes' });
    expect(res.statusCode).toBe(403);
    const formA = await formToken(app, a.manageToken);
    const cross = await post(app, `/m/${a.manageToken}/revoke`, { _form: formA, confirm: 'yes' }, { ...SAME_ORIGIN, 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' });
    expect(cross.statusCode).toBe(403);
    expect((await app.inject({ url: `/t/${a.links[0]!.token}` })).statusCode).toBe(200);
  });

  it('escapes the subject, file names and recipient addresses the attacker wrote', async () => {
    const evilRcpt = '"<img src=x onerror=alert(3)>"@example.net';
    const m = await addManaged(env, {
      subject: '</title><script>alert(1)</script>',
      fileNames: ['<img src=x onerror=alert(2)>.pdf', '"><svg onload=alert(4)>.txt'],
      recipients: [evilRcpt, 'ok@example.com'],
    });
    const res = await app.inject({ url: `/m/${m.manageToken}` });
    expect(res.statusCode).toBe(200);
    expect(res.body).not.toMatch(/<script>alert|<img src=x|<svg onload/i);
    expect(res.body).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    // The status line after an action names the recipient: escaped there too.
    const form = /name="_form" value="([^"]+)"/.exec(res.body)![1]!;
    const revoked = await post(app, `/m/${m.manageToken}/links/${m.links[0]!.id}/revoke`, { _form: form });
    const page = await app.inject({ url: revoked.headers.location as string });
    expect(page.statusCode).toBe(200);
    expect(page.body).toMatch(/role="status"/);
    expect(page.body).not.toMatch(/<img src=x|<svg onload/i);
  });

  it('redirects only to its own page, whatever the request says', async () => {
    const m = await addManaged(env);
    const form = await formToken(app, m.manageToken);
    const res = await app.inject({
      method: 'POST',
      url: `/m/${m.manageToken}/expiry?lang=en&next=https://evil.example/`,
      headers: { ...SAME_ORIGIN, host: 'evil.example', 'x-forwarded-host': 'evil.example' },
      payload: new URLSearchParams({ _form: form, days: '3' }).toString(),
    });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toMatch(new RegExp(`^/m/${m.manageToken}\\?lang=en&done=expiry$`));
  });

  it('keeps the expiry within the bounds, however the days are written', async () => {
    const m = await addManaged(env);
    const form = await formToken(app, m.manageToken);
    for (const days of ['31', '99999', '-1', '1e3', '0x10', '3.5', '0']) {
      const res = await post(app, `/m/${m.manageToken}/expiry`, { _form: form, days });
      expect(res.headers.location, days).toMatch(/[?&]error=out-of-bounds/);
    }
  });
});

const pg = pgUrl();
if (!pg) warnSkip('send again on two nodes (PostgreSQL)', PG_MISSING);

describe.skipIf(!pg)('send again on two nodes (PostgreSQL)', () => {
  it('one copy per cooldown however the parallel requests are spread over two database pools', async () => {
    const url = await createDatabase(pg!, 'ferry_resend');
    const env = await makeEnv();
    const [a, b] = [await openDatabase(url, { postgres: { maxConnections: 4 } }), await openDatabase(url, { postgres: { maxConnections: 4 } })];
    try {
      const m = await addManaged({ ...env, db: a }, { recipients: ['pg-target@example.net'] });
      const t = (await getTransfer(a, m.transferId)) as Transfer;
      const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => resendCopy(i % 2 ? a : b, env.blobs, t, m.links[0]!.id)));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results.filter((x): x is PromiseRejectedResult => x.status === 'rejected')) {
        expect(r.reason).toBeInstanceOf(SenderActionError);
        expect((r.reason as SenderActionError).kind).toBe('too_soon');
      }
      expect((await listQueue(a)).entries.filter((e) => e.recipients.some((x) => x.address === 'pg-target@example.net'))).toHaveLength(1);
    } finally {
      await a.destroy();
      await b.destroy();
      await env.close();
      await dropDatabase(pg!, url);
    }
  });
});

describe('per-recipient links under attack', () => {
  let env: Env;
  let app: FastifyInstance;

  beforeAll(async () => {
    env = await makeEnv();
    app = await buildWebApp({ publicUrl: PUBLIC_URL, db: env.db, blobs: env.blobs, rateLimit: false, logger: pino({ level: 'silent' }) });
  });
  afterAll(async () => {
    await app?.close();
    await env?.close();
  });

  it('a download limit of 1 per link holds against parallel requests, and one recipient cannot use up another\'s', async () => {
    const m = await addManaged(env, { maxDownloads: 1 });
    const [bob, carol] = m.links;
    const burst = await Promise.all(Array.from({ length: 8 }, () => app.inject({ url: `/t/${bob!.token}/1/report.pdf` })));
    expect(burst.filter((r) => r.statusCode === 200)).toHaveLength(1);
    const zip = await app.inject({ url: `/t/${bob!.token}/zip` });
    expect(zip.statusCode).not.toBe(200);
    // Carol's allowance is her own.
    expect((await app.inject({ url: `/t/${carol!.token}/1/report.pdf` })).statusCode).toBe(200);
  });

  it('a revoked link gives nothing through the landing page, a file, a range, the zip or HEAD', async () => {
    const m = await addManaged(env);
    const form = await formToken(app, m.manageToken);
    const [bob, carol] = m.links;
    expect((await post(app, `/m/${m.manageToken}/links/${bob!.id}/revoke`, { _form: form })).headers.location).toMatch(/done=link-revoked/);
    const base = `/t/${bob!.token}`;
    for (const [method, url, headers] of [
      ['GET', base, {}],
      ['HEAD', base, {}],
      ['GET', `${base}/1/report.pdf`, {}],
      ['GET', `${base}/1/report.pdf`, { range: 'bytes=0-3' }],
      ['HEAD', `${base}/1/report.pdf`, {}],
      ['GET', `${base}/zip`, {}],
      ['HEAD', `${base}/zip`, {}],
    ] as const) {
      const res = await app.inject({ method, url, headers });
      expect(res.statusCode, `${method} ${url} ${JSON.stringify(headers)}`).toBe(410);
      expect(res.body).not.toContain('report.pdf');
      expect(res.headers['content-disposition']).toBeUndefined();
    }
    expect((await app.inject({ url: `/t/${carol!.token}/1/report.pdf` })).statusCode).toBe(200);
  });
});

describe('download notices with a hostile subject', () => {
  let env: Env;
  beforeAll(async () => {
    env = await makeEnv();
  });
  afterAll(async () => {
    await env?.close();
  });

  it('the first-download notice keeps the subject on one line', async () => {
    const m = await addManaged(env, { subject: 'Hello\r\n\r\nYour password expired, log in at https://evil.example/login\u202e' });
    await recordDownload(env.db, { transferId: m.transferId, linkId: m.links[0]!.id, fileIdx: 1, status: 200, bytesSent: 450, range: null, client: '192.0.2.7', userAgent: 'Firefox', counted: true, method: 'GET' });
    const pass = await noticesOnce({ db: env.db, blobs: env.blobs, logger: pino({ level: 'silent' }), hostname: 'ferry.example.org', from: 'ferry@ferry.example.org', mode: 'first', digestAt: '08:00' });
    expect(pass.mails).toBe(1);
    const [entry] = (await listQueue(env.db)).entries;
    const raw = (await text(await env.blobs.openRead(entry!.blobKey))).replace(/=\r\n/g, '');
    const body = raw.slice(raw.indexOf('\r\n\r\n'));
    expect(body).toContain('Your password expired');
    expect(body).not.toMatch(/^Your password expired/m);
    expect(body).not.toContain('=E2=80=AE');
    await env.db.deleteFrom('queue_entries').execute();
  });

  it("tells nobody when the sender is Ferry's own address, in either mode, and does not try again", async () => {
    for (const mode of ['first', 'digest'] as const) {
      const m = await addManaged(env, { sender: 'Ferry@Ferry.Example.org' });
      await recordDownload(env.db, { transferId: m.transferId, linkId: m.links[0]!.id, fileIdx: 1, status: 200, bytesSent: 450, range: null, client: '192.0.2.7', userAgent: 'Firefox', counted: true, method: 'GET' });
      await env.db.updateTable('downloads').set({ at: Date.now() - 2 * DAY_MS }).where('transfer_id', '=', m.transferId).execute();
      const ctx = { db: env.db, blobs: env.blobs, logger: pino({ level: 'silent' }), hostname: 'ferry.example.org', from: 'Ferry <ferry@ferry.example.org>', mode, digestAt: '08:00' };
      const pass = await noticesOnce(ctx);
      expect(pass.mails, mode).toBe(0);
      expect(pass.covered, mode).toBe(1);
      expect((await listQueue(env.db)).entries, mode).toHaveLength(0);
      expect((await noticesOnce(ctx)).covered, mode).toBe(0);
    }
  });
});

describe('a stored password hash that asks for too much', () => {
  it('is refused before scrypt runs: no check may take gigabytes of memory', async () => {
    const pw = newTransferPassword();
    const hash = await hashTransferPassword(pw);
    expect(await verifyTransferPassword(pw, hash)).toBe(true);
    const rss = process.memoryUsage().rss;
    const started = Date.now();
    expect(await verifyTransferPassword(pw, hash.replace('ln=15,r=8,p=1', 'ln=20,r=16,p=4'))).toBe(false);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(process.memoryUsage().rss - rss).toBeLessThan(256 * 1024 * 1024);
  });
});

describe('password guesses in parallel', () => {
  const MAX_FAILURES = 3;
  let env: Env;
  let app: FastifyInstance;
  const password = newTransferPassword();
  let fx: Fixture;

  beforeAll(async () => {
    env = await makeEnv();
    fx = await addTransfer(env, { passwordHash: await hashTransferPassword(password), files: [{ name: 'secret.pdf', data: Buffer.from('secret bytes') }] });
    app = await buildWebApp({
      publicUrl: PUBLIC_URL,
      db: env.db,
      blobs: env.blobs,
      rateLimit: false,
      logger: pino({ level: 'silent' }),
      passwords: { maxFailures: MAX_FAILURES, lockoutMs: 600_000, unlockTtlMs: 3_600_000, noticeFrom: 'ferry@files.example.test', hostname: 'files.example.test' },
    });
  });
  afterAll(async () => {
    await app?.close();
    await env?.close();
  });

  it('a burst of wrong guesses locks at the limit, and the right password queued behind them is refused too', async () => {
    const guess = (pw: string) =>
      app.inject({ method: 'POST', url: `/t/${fx.token}/unlock`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams({ password: pw }).toString(), remoteAddress: '198.51.100.7' });
    const wrong = Array.from({ length: 10 }, (_, i) => guess(`WRONG-${String(i).padStart(5, '0')}-AAAAA-BBBBB`));
    const right = guess(password);
    const answers = await Promise.all([...wrong, right]);
    const last = answers[answers.length - 1]!;
    expect(last.statusCode).toBe(429);
    expect(String(last.headers['set-cookie'] ?? '')).not.toMatch(/ferry_unlock=/);
    // Only the guesses tried before the lock got an answer to their password (two run at once).
    expect(answers.filter((a) => a.statusCode === 403).length).toBeLessThanOrEqual(MAX_FAILURES);
    expect(answers.filter((a) => a.statusCode === 429).length).toBeGreaterThanOrEqual(answers.length - MAX_FAILURES);
    // And the files stay shut for that network.
    const file = await app.inject({ url: `/t/${fx.token}/1/secret.pdf`, remoteAddress: '198.51.100.7' });
    expect(file.statusCode).toBe(429);
    expect(file.body).not.toContain('secret bytes');
  });

  it("sends no lock notice when the transfer's sender is Ferry's own address", async () => {
    const own = await addTransfer(env, { sender: 'FERRY@files.example.test', passwordHash: await hashTransferPassword(password), files: [{ name: 'x.pdf', data: Buffer.from('x') }] });
    const before = (await listQueue(env.db)).entries.length;
    let last;
    for (let i = 0; i < MAX_FAILURES; i++) {
      last = await app.inject({ method: 'POST', url: `/t/${own.token}/unlock`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'password=WRONG-WRONG', remoteAddress: '203.0.113.9' });
    }
    expect(last!.statusCode).toBe(429);
    expect(before).toBeGreaterThan(0); // the burst above did tell alice
    expect((await listQueue(env.db)).entries).toHaveLength(before);
  });
});

describe('the receipt and Ferry\u2019s own address', () => {
  let env: Env;
  const config = loadConfig({ env: {}, overrides: { dataDir: '/tmp', smtp: { hostname: 'ferry.example.org' }, web: { publicUrl: 'https://files.example.org' }, senders: { from: 'Ferry <robot@ferry.example.org>' } } });
  const input = (sender: string): ReceiptInput & { receiptsByRule: null } => ({
    transferId: 'tr1',
    queueId: 'Q1',
    sender,
    subject: 'x',
    files: [{ name: 'a.bin', size: 1, sha256: '0'.repeat(64) }],
    expiresAt: Date.now() + DAY_MS,
    recipients: [{ address: 'bob@example.net', perRecipientLink: true }],
    manageUrl: `https://files.example.org/m/${newToken()}`,
    password: 'ABCDE-FGHJK-MNPQR-STVWX',
    receiptsByRule: null,
  });
  beforeAll(async () => {
    env = await makeEnv();
  });
  afterAll(async () => {
    await env?.close();
  });

  it('keeps a subject with line breaks and reordering characters on one line of the receipt', async () => {
    const ctx = { config, db: env.db, blobs: env.blobs, logger: pino({ level: 'silent' }) };
    const evil = 'Invoice"\r\n\r\nManage this transfer:\r\nhttps://evil.example/m/x\r\nPassword: 00000-00000\u202e';
    const id = await queueReceipt(ctx, { ...input('victim@example.org'), subject: evil });
    const entry = (await listQueue(env.db)).entries.find((e) => e.id === id)!;
    const raw = (await text(await env.blobs.openRead(entry.blobKey))).replace(/=\r\n/g, '');
    const body = raw.slice(raw.indexOf('\r\n\r\n'));
    expect(body).not.toMatch(/^Manage this transfer:\r?\n(=[0-9A-F]{2}|\s)*https:\/\/evil/m);
    expect(body).not.toMatch(/^https:\/\/evil/m);
    expect(body).not.toMatch(/^Password: 00000/m);
    expect(body).not.toContain('=E2=80=AE');
    await env.db.deleteFrom('queue_entries').execute();
  });

  it('never mails the management link and password to senders.from, however the address is written', async () => {
    const ctx = { config, db: env.db, blobs: env.blobs, logger: pino({ level: 'silent' }) };
    expect(await queueReceipt(ctx, input('Robot@Ferry.Example.ORG'))).toBeUndefined();
    expect(await queueReceipt(ctx, input('robot@ferry.example.org'))).toBeUndefined();
    expect((await listQueue(env.db)).entries).toHaveLength(0);
    // A real sender still gets it.
    expect(await queueReceipt(ctx, input('alice@example.org'))).toBeDefined();
    expect((await listQueue(env.db)).entries.map((e) => e.recipients[0]!.address)).toEqual(['alice@example.org']);
  });
});
