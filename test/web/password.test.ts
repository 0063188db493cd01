import { Writable } from 'node:stream';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalPassword, getTransfer, hashTransferPassword, listAudit, newTransferPassword } from '../../storage/index.js';
import { buildWebApp } from '../../web/app.js';
import { addTransfer, downloads, makeEnv, type Env, type Fixture } from './helpers.js';

// Password-protected transfers on the web side (web/plugins/transfer-unlock.ts,
// web/routes/unlock.ts, docs/passwords.md), through Fastify's inject with a real database and
// blob store: the prompt instead of the files, file/zip/range refused (403 with the prompt)
// until the right password sets an unlock cookie bound to the transfer, wrong guesses counted
// per network and locked out (even the right password), the lock ending on time, the sender
// told once, and the password in no log line. The clock is the app's: tests move it.

const PUBLIC_URL = 'https://files.example.test';
const MAX_FAILURES = 3;
const LOCKOUT_MS = 10 * 60_000;
const UNLOCK_TTL_MS = 60 * 60_000;

let env: Env;
let app: FastifyInstance;
let clock = Date.now();
const logLines: string[] = [];
const password = newTransferPassword();
let fx: Fixture; // protected, two files
let other: Fixture; // protected, same password: a cookie of fx must not open it
let open: Fixture; // not protected

const form = (_pw: string) => ({ 'content-type': 'application/x-www-form-urlencoded' });
const body = (pw: string) => new URLSearchParams({ password: pw }).toString();

function post(f: Fixture, pw: string, opts: { ip?: string; headers?: Record<string, string>; query?: string } = {}) {
  return app.inject({
    method: 'POST',
    url: `/t/${f.token}/unlock${opts.query ?? ''}`,
    headers: { ...form(pw), ...opts.headers },
    payload: body(pw),
    remoteAddress: opts.ip ?? '192.0.2.10',
  });
}

function get(url: string, opts: { ip?: string; cookie?: string; headers?: Record<string, string>; method?: 'GET' | 'HEAD' } = {}) {
  return app.inject({ method: opts.method ?? 'GET', url, remoteAddress: opts.ip ?? '192.0.2.10', headers: { ...(opts.cookie ? { cookie: opts.cookie } : {}), ...opts.headers } });
}

/** The unlock cookie a successful unlock set, as the browser would send it back. */
function cookieOf(res: LightMyRequestResponse): string {
  const set = res.headers['set-cookie'];
  const line = (Array.isArray(set) ? set : [set]).find((l) => l && /ferry_unlock=/.test(l));
  expect(line, 'an unlock cookie').toBeTruthy();
  return line!.split(';')[0]!;
}

async function noticesTo(address: string) {
  const rows = await env.db.selectFrom('queue_entries').selectAll().execute();
  return rows.filter((r) => (JSON.parse(r.recipients) as { address: string }[]).some((x) => x.address === address));
}

async function blobText(key: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of await env.blobs.openRead(key)) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

beforeAll(async () => {
  env = await makeEnv();
  const hash = await hashTransferPassword(password);
  fx = await addTransfer(env, {
    sender: 'alice@example.org',
    subject: 'Board minutes (confidential)',
    passwordHash: hash,
    files: [
      { name: 'minutes-secret.pdf', data: Buffer.from('0123456789abcdefghij') },
      { name: 'budget-secret.xlsx', data: Buffer.from('spreadsheet bytes') },
    ],
  });
  other = await addTransfer(env, { sender: 'alice@example.org', subject: 'Other', passwordHash: hash, files: [{ name: 'other-secret.txt', data: Buffer.from('other') }] });
  open = await addTransfer(env, { sender: 'carol@example.org', files: [{ name: 'public.txt', data: Buffer.from('hello') }] });
  const logger = pino(
    { level: 'trace' },
    new Writable({
      write(chunk, _enc, cb) {
        logLines.push(String(chunk));
        cb();
      },
    }),
  );
  app = await buildWebApp({
    publicUrl: PUBLIC_URL,
    db: env.db,
    blobs: env.blobs,
    logger,
    trustProxy: true,
    rateLimit: false,
    now: () => clock,
    passwords: { maxFailures: MAX_FAILURES, lockoutMs: LOCKOUT_MS, unlockTtlMs: UNLOCK_TTL_MS, noticeFrom: 'ferry@files.example.test', hostname: 'files.example.test' },
  });
});

afterAll(async () => {
  await app?.close();
  await env?.close();
});

describe('before the password', () => {
  it('the landing page is the prompt: no file, size or subject, a form that posts to this link', async () => {
    const res = await get(`/t/${fx.token}`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.body).toContain('Password required');
    expect(res.body).toContain('alice@example.org');
    expect(res.body).not.toMatch(/secret\.(pdf|xlsx)|Board minutes|SHA-256|\b20 bytes/);
    expect(res.body).toContain(`<form class="unlock" method="post" action="/t/${fx.token}/unlock">`);
    expect(res.body).toMatch(/<input class="pw" id="pw" name="password" type="password"/);
    // The prompt may post to this site (the other pages may not post anywhere), and nothing else changes.
    expect(res.headers['content-security-policy']).toContain("form-action 'self'");
    expect(res.headers['content-security-policy']).toContain("script-src 'self'");
    expect(res.headers['cache-control']).toBe('private, no-store');
  });

  it('keeps ?lang= on the form and speaks the language asked for', async () => {
    const res = await get(`/t/${fx.token}?lang=de`);
    expect(res.body).toContain('Passwort erforderlich');
    expect(res.body).toContain(`action="/t/${fx.token}/unlock?lang=de"`);
    // A language link on a page answered from the form (relative: "?lang=fr") leads back to the link's page.
    const back = await get(`/t/${fx.token}/unlock?lang=fr`);
    expect(back.statusCode).toBe(303);
    expect(back.headers.location).toBe(`/t/${fx.token}?lang=fr`);
  });

  it('refuses file, zip, range and HEAD requests with 403 and the prompt, and no byte of the files', async () => {
    const file = fx.files[0]!;
    const url = `/t/${fx.token}/${file.idx}/${encodeURIComponent(file.name)}`;
    for (const [what, res] of [
      ['file', await get(url)],
      ['range', await get(url, { headers: { range: 'bytes=0-9' } })],
      ['zip', await get(`/t/${fx.token}/zip`)],
      ['HEAD', await get(url, { method: 'HEAD' })],
    ] as const) {
      expect(res.statusCode, what).toBe(403);
      expect(res.headers['content-disposition'], what).toBeUndefined();
      expect(res.headers['content-range'], what).toBeUndefined();
      expect(res.headers['etag'], what).toBeUndefined();
      expect(res.body, what).not.toContain('0123456789');
      if (what !== 'HEAD') expect(res.body, what).toContain('Password required');
    }
    // Nothing was served, so nothing was reserved or counted.
    expect(await downloads(env.db, fx.transferId)).toEqual([]);
  });

  it('leaves transfers without a password as they were', async () => {
    const res = await get(`/t/${open.token}`);
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('public.txt');
    const redirect = await post(open, 'anything');
    expect(redirect.statusCode).toBe(303);
    expect(redirect.headers['set-cookie']).toBeUndefined();
  });

  it('an empty form is asked again (400) and not counted as a guess', async () => {
    const res = await post(fx, '   ', { ip: '192.0.2.50' });
    expect(res.statusCode).toBe(400);
    expect(res.body).toContain('Enter the password.');
    const rows = await env.db.selectFrom('password_failures').selectAll().where('transfer_id', '=', fx.transferId).execute();
    expect(rows).toEqual([]);
  });

  it('refuses a form another site made the browser post', async () => {
    const res = await post(fx, password, { ip: '192.0.2.51', headers: { 'sec-fetch-site': 'cross-site' } });
    expect(res.statusCode).toBe(403);
    expect(res.headers['set-cookie']).toBeUndefined();
  });
});

describe('unlocking', () => {
  let cookie: string;

  it('the right password (typed loosely) sets a cookie bound to this link and leads back to the files', async () => {
    const typed = canonicalPassword(password).toLowerCase();
    const res = await post(fx, typed);
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe(`/t/${fx.token}`);
    const set = String(res.headers['set-cookie']);
    expect(set).toMatch(/^ferry_unlock=[A-Za-z0-9_-]{27};/);
    expect(set).toContain(`Path=/t/${fx.token}`);
    expect(set).toContain('HttpOnly');
    expect(set).toContain('SameSite=Strict');
    expect(set).toContain(`Max-Age=${UNLOCK_TTL_MS / 1000}`);
    // Plain HTTP: not Secure (the browser would drop it).
    expect(set).not.toContain('Secure');
    cookie = cookieOf(res);
  });

  it('with the cookie, the landing page lists the files and file, range and zip requests are served', async () => {
    const landing = await get(`/t/${fx.token}`, { cookie });
    expect(landing.statusCode).toBe(200);
    expect(landing.body).toContain('minutes-secret.pdf');
    expect(landing.body).toContain('Board minutes (confidential)');
    const file = fx.files[0]!;
    const url = `/t/${fx.token}/${file.idx}/${encodeURIComponent(file.name)}`;
    const whole = await get(url, { cookie });
    expect(whole.statusCode).toBe(200);
    expect(whole.rawPayload.equals(file.data)).toBe(true);
    const range = await get(url, { cookie, headers: { range: 'bytes=0-9' } });
    expect(range.statusCode).toBe(206);
    expect(range.body).toBe('0123456789');
    const zip = await get(`/t/${fx.token}/zip`, { cookie });
    expect(zip.statusCode).toBe(200);
    expect(zip.headers['content-type']).toBe('application/zip');
  });

  it('the cookie of one transfer does not open another, even with the same password', async () => {
    const res = await get(`/t/${other.token}`, { cookie });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('Password required');
    expect(res.body).not.toContain('other-secret.txt');
    const file = await get(`/t/${other.token}/1/other-secret.txt`, { cookie });
    expect(file.statusCode).toBe(403);
  });

  it('a made-up cookie opens nothing', async () => {
    const res = await get(`/t/${fx.token}`, { cookie: 'ferry_unlock=AAAAAAAAAAAAAAAAAAAAAAAAAAA' });
    expect(res.body).toContain('Password required');
  });

  it('the unlock ends after web.unlockTtl', async () => {
    const saved = clock;
    clock += UNLOCK_TTL_MS + 1;
    try {
      const res = await get(`/t/${fx.token}`, { cookie });
      expect(res.body).toContain('Password required');
    } finally {
      clock = saved;
    }
  });

  it('over HTTPS the cookie is Secure and carries the __Secure- prefix', async () => {
    const res = await post(fx, password, { ip: '192.0.2.11', headers: { 'x-forwarded-proto': 'https' } });
    expect(res.statusCode).toBe(303);
    const set = String(res.headers['set-cookie']);
    expect(set).toMatch(/^__Secure-ferry_unlock=/);
    expect(set).toContain('Secure');
    const landing = await get(`/t/${fx.token}`, { ip: '192.0.2.11', cookie: cookieOf(res), headers: { 'x-forwarded-proto': 'https' } });
    expect(landing.body).toContain('minutes-secret.pdf');
  });
});

describe('wrong passwords', () => {
  const attacker = '198.51.100.23';
  let lockedBody = '';

  it('are answered with the prompt and how many attempts are left', async () => {
    const res = await post(other, 'WRONG-WRONG-WRONG-WRONG', { ip: attacker });
    expect(res.statusCode).toBe(403);
    expect(res.body).toContain('That password is not right. After 2 more wrong attempts');
    expect(res.body).toContain('aria-invalid="true"');
    expect(res.headers['set-cookie']).toBeUndefined();
  });

  it(`lock the transfer for that network after ${MAX_FAILURES}, with a page that says so in words`, async () => {
    await post(other, 'WRONG-WRONG-WRONG-WRON1', { ip: attacker });
    const res = await post(other, 'WRONG-WRONG-WRONG-WRON2', { ip: attacker });
    expect(res.statusCode).toBe(429);
    expect(Number(res.headers['retry-after'])).toBe(LOCKOUT_MS / 1000);
    expect(res.body).toContain('Too many wrong passwords');
    expect(res.body).toContain('Until then even the right password is not accepted.');
    expect(res.body).toContain('The sender has been told.');
    lockedBody = res.body;
  });

  it('refuse even the right password while locked, with the very same answer', async () => {
    const right = await post(other, password, { ip: attacker });
    const wrong = await post(other, 'WRONG-WRONG-WRONG-WRON3', { ip: attacker });
    expect(right.statusCode).toBe(429);
    expect(right.headers['set-cookie']).toBeUndefined();
    expect(right.body).toBe(wrong.body);
    expect(right.body).toBe(lockedBody);
    expect(right.headers['retry-after']).toBe(wrong.headers['retry-after']);
    // The landing page and the files say the same while the lock holds.
    expect((await get(`/t/${other.token}`, { ip: attacker })).statusCode).toBe(429);
    expect((await get(`/t/${other.token}/1/other-secret.txt`, { ip: attacker })).statusCode).toBe(429);
  });

  it('lock only that network: another address opens the transfer with the right password', async () => {
    const res = await post(other, password, { ip: '203.0.113.5' });
    expect(res.statusCode).toBe(303);
  });

  it('tell the sender once, without the password, and record the lock in the audit log', async () => {
    const notices = await noticesTo('alice@example.org');
    expect(notices).toHaveLength(1);
    expect(notices[0]).toMatchObject({ kind: 'dsn', sender: '' });
    const mail = await blobText(notices[0]!.blob_key);
    expect(mail).toMatch(/^Subject: Locked after wrong passwords: Other$/m);
    expect(mail).toMatch(/^From: ferry@files\.example\.test$/m);
    expect(mail).toMatch(/^Auto-Submitted: auto-generated$/m);
    expect(mail).toContain('198.51.100.23');
    expect(mail).toContain(new Date(clock + LOCKOUT_MS).toISOString().slice(0, 16).replace('T', ' '));
    expect(mail).not.toContain(password);
    expect(mail).not.toContain(canonicalPassword(password));
    const audit = await listAudit(env.db, { transferId: other.transferId });
    expect(audit.filter((e) => e.action === 'password_locked')).toHaveLength(1);
  });

  it('end after web.passwordLockout: the right password works again from that network', async () => {
    clock += LOCKOUT_MS;
    const res = await post(other, password, { ip: attacker });
    expect(res.statusCode).toBe(303);
    expect(res.headers['set-cookie']).toBeTruthy();
  });

  it('from many networks lock everyone once five times the limit is reached; the sender hears once per lockout', async () => {
    clock += LOCKOUT_MS;
    const before = (await noticesTo('alice@example.org')).length;
    let last: LightMyRequestResponse | undefined;
    for (let n = 1; n <= 5; n++) for (let i = 0; i < MAX_FAILURES; i++) last = await post(fx, `WRONG-${n}-${i}`, { ip: `2001:db8:${n}::1` });
    expect(last!.statusCode).toBe(429);
    expect(last!.body).toContain('so these files are locked until');
    // A network that never guessed is locked out too, right password or not.
    const fresh = await post(fx, password, { ip: '192.0.2.200' });
    expect(fresh.statusCode).toBe(429);
    expect(fresh.body).toContain('so these files are locked until');
    // Five networks locked, then everyone: the sender gets one mail, not six.
    expect((await noticesTo('alice@example.org')).length).toBe(before + 1);
  });
});

describe('what the password never reaches', () => {
  it('no log line holds the password, in any spelling', () => {
    const all = logLines.join('\n');
    expect(logLines.length).toBeGreaterThan(20);
    expect(all).not.toContain(password);
    expect(all).not.toContain(canonicalPassword(password));
    expect(all).not.toContain(canonicalPassword(password).toLowerCase());
    expect(all).not.toContain(encodeURIComponent(password));
    // Nor the hash, nor an unlock secret.
    expect(all).not.toContain('$scrypt$');
    expect(all).not.toMatch(/ferry_unlock=/);
  });

  it('the transfer as the rest of Ferry sees it says only that it is protected', async () => {
    const t = (await getTransfer(env.db, fx.transferId))!;
    expect(t.passwordProtected).toBe(true);
    expect(JSON.stringify(t)).not.toContain('scrypt');
    const audit = await listAudit(env.db, {});
    expect(JSON.stringify(audit)).not.toContain(canonicalPassword(password));
  });
});

describe('checks that cost CPU', () => {
  it('run a few at a time per process; a flood of guesses beyond the small queue gets 429 at once', async () => {
    const busy = await addTransfer(env, { passwordHash: await hashTransferPassword(password), files: [{ name: 'busy.txt', data: Buffer.from('b') }] });
    const one = await buildWebApp({ publicUrl: PUBLIC_URL, db: env.db, blobs: env.blobs, rateLimit: false, now: () => clock, passwords: { maxConcurrentChecks: 1 } });
    try {
      // Right guesses from forty networks at once: nothing is counted as a failure, only CPU is at stake.
      const started = Date.now();
      const flood = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          one.inject({ method: 'POST', url: `/t/${busy.token}/unlock`, headers: form(password), payload: body(password), remoteAddress: `10.1.${i}.1` }),
        ),
      );
      const statuses = flood.map((r) => r.statusCode);
      // One check runs and sixteen wait; the rest are turned away before any scrypt.
      expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(40 - 17);
      expect(statuses.filter((s) => s === 303).length).toBeGreaterThanOrEqual(1);
      expect(statuses.filter((s) => s === 303).length).toBeLessThanOrEqual(17);
      expect(flood.find((r) => r.statusCode === 429)!.headers['retry-after']).toBe('5');
      expect(Date.now() - started).toBeLessThan(20_000);
    } finally {
      await one.close();
    }
  });
});

describe('the web rate limit', () => {
  it('counts unlock attempts per network: past 30 in 10 minutes, 429 before any check', async () => {
    const limited = await buildWebApp({ publicUrl: PUBLIC_URL, db: env.db, blobs: env.blobs, rateLimit: {}, now: () => clock });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 32; i++) {
        const res = await limited.inject({ method: 'POST', url: `/t/${other.token}/unlock`, headers: form(''), payload: body(''), remoteAddress: '192.0.2.77' });
        statuses.push(res.statusCode);
      }
      expect(statuses.slice(0, 30).every((s) => s === 400)).toBe(true);
      expect(statuses.slice(30)).toEqual([429, 429]);
      // Another network is not affected.
      const res = await limited.inject({ method: 'POST', url: `/t/${other.token}/unlock`, headers: form(''), payload: body(''), remoteAddress: '192.0.2.78' });
      expect(res.statusCode).toBe(400);
    } finally {
      await limited.close();
    }
  });
});
