import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSite } from '../../admin/site.js';
import { DAY_MS, FsBlobStore, listAudit, openDatabase, seedRetentionRules, type Db } from '../../storage/index.js';
import { createDatabase, dropDatabase, pgUrl, PG_MISSING, warnSkip } from '../storage/backends.js';
import { PUBLIC_URL } from '../web/helpers.js';
import { csrfOf, postForm, uiLogin } from './admin-login.js';

// Server-side admin sessions (issue 15 item 10): created at login, ended at logout so that a
// copied cookie stops working, listed with who, since when, from where and last seen,
// revocable from the UI (audited), ended by idle time and by age. On SQLite and PostgreSQL.

const ALICE = 'alice-session-token-0123456789abcdef';
const BOB = 'bob-session-token-0123456789abcdefgh';
const bounds = { defaultMs: 30 * DAY_MS, minMs: DAY_MS, maxMs: 90 * DAY_MS };
const HOUR = 3_600_000;

const backends: { name: string; missing?: string; open: () => Promise<{ url: string; done: () => Promise<void> }> }[] = [
  {
    name: 'SQLite',
    async open() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-sessions-'));
      return { url: `sqlite:${dir}/db.sqlite`, done: async () => fs.rmSync(dir, { recursive: true, force: true }) };
    },
  },
  {
    name: 'PostgreSQL',
    ...(pgUrl() ? {} : { missing: PG_MISSING }),
    async open() {
      const url = await createDatabase(pgUrl()!, 'ferry_sessions');
      return { url, done: () => dropDatabase(pgUrl()!, url) };
    },
  },
];

for (const backend of backends) {
  if (backend.missing) warnSkip(`admin sessions on ${backend.name}`, backend.missing);
  describe.skipIf(!!backend.missing)(`admin sessions on ${backend.name}`, () => {
    let db: Db;
    let app: FastifyInstance;
    let done: () => Promise<void>;
    let blobsDir: string;
    let clock = Date.UTC(2026, 11, 1, 9);

    beforeAll(async () => {
      const opened = await backend.open();
      done = opened.done;
      db = await openDatabase(opened.url);
      await seedRetentionRules(db, bounds);
      blobsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-sessions-blobs-'));
      app = await buildSite({
        publicUrl: PUBLIC_URL,
        db,
        blobs: new FsBlobStore(blobsDir),
        rateLimit: false,
        now: () => clock,
        admin: { tokens: [`alice:${ALICE}`, `bob:${BOB}`], retention: bounds, sessionIdleMs: HOUR, sessionMaxAgeMs: 12 * HOUR },
      });
    });
    afterAll(async () => {
      await app?.close();
      await db?.destroy();
      await done?.();
      fs.rmSync(blobsDir, { recursive: true, force: true });
    });

    const status = async (cookie: string) => (await app.inject({ url: '/admin', headers: { cookie } })).statusCode;

    it('stores only a hash of the session id, and logout ends the session: a copied cookie stops working', async () => {
      const { cookie, csrf } = await uiLogin(app, ALICE, { 'user-agent': 'Firefox/140 test' });
      const sid = cookie.split('=')[1]!;
      const rows = await db.selectFrom('admin_sessions').selectAll().execute();
      expect(rows.length).toBeGreaterThan(0);
      for (const r of rows) expect(JSON.stringify(r)).not.toContain(sid);
      const copy = cookie;
      expect(await status(copy)).toBe(200);
      const out = await app.inject(postForm(cookie, '/admin/logout', { _csrf: csrf }));
      expect(out.statusCode).toBe(303);
      expect(out.headers.location).toBe('/admin/login');
      expect(await status(copy)).toBe(303);
      const audit = await listAudit(db, { action: 'admin_logout' });
      expect(audit[0]!.actor).toBe('admin:alice');
    });

    it('lists live sessions with who, since when, from which address and last seen; another admin revokes one (audited)', async () => {
      const alice = await uiLogin(app, ALICE, { 'user-agent': 'Firefox/140 test' });
      const bob = await uiLogin(app, BOB, { 'user-agent': 'Chrome/131 test' });
      clock += 5 * 60_000;
      expect(await status(bob.cookie)).toBe(200);
      const list = await app.inject({ url: '/admin/sessions', headers: { cookie: alice.cookie } });
      expect(list.statusCode).toBe(200);
      const rows = list.body.match(/<tr[ >][\s\S]*?<\/tr>/g)!.filter((r) => r.includes('data-label'));
      const bobRow = rows.find((r) => r.includes('>bob<'))!;
      expect(bobRow).toContain('Chrome/131 test');
      expect(bobRow).toContain('127.0.0.1');
      expect(bobRow).toContain(new Date(clock - 5 * 60_000).toISOString().slice(0, 16).replace('T', ' '));
      expect(bobRow).toContain(new Date(clock).toISOString().slice(0, 16).replace('T', ' '));
      const aliceRow = rows.find((r) => r.includes('>alice'))!;
      expect(aliceRow).toContain('>you<');
      const bobId = /action="\/admin\/sessions\/([0-9a-f]{16})\/revoke"/.exec(bobRow)![1]!;

      // The form needs the CSRF token like every other.
      expect((await app.inject(postForm(alice.cookie, `/admin/sessions/${bobId}/revoke`, {}))).statusCode).toBe(403);
      expect(await status(bob.cookie)).toBe(200);
      const r = await app.inject(postForm(alice.cookie, `/admin/sessions/${bobId}/revoke`, { _csrf: alice.csrf }));
      expect(r.statusCode).toBe(303);
      expect(await status(bob.cookie)).toBe(303);
      expect(await status(alice.cookie)).toBe(200);
      const audit = await listAudit(db, { action: 'admin_session_revoked' });
      expect(audit[0]!.actor).toBe('admin:alice');
      expect(audit[0]!.detail).toMatchObject({ session: bobId, admin: 'bob', client: '127.0.0.1' });
      const again = await app.inject({ url: '/admin/sessions', headers: { cookie: alice.cookie } });
      expect(again.body).not.toContain(bobId);
      expect((await app.inject(postForm(alice.cookie, `/admin/sessions/${bobId}/revoke`, { _csrf: alice.csrf }))).statusCode).toBe(404);
    });

    it('ends after admin.session.idleTimeout without a request', async () => {
      const { cookie } = await uiLogin(app, ALICE);
      clock += HOUR - 60_000;
      expect(await status(cookie)).toBe(200);
      clock += HOUR - 60_000;
      expect(await status(cookie)).toBe(200);
      clock += HOUR + 1000;
      expect(await status(cookie)).toBe(303);
    });

    it('ends admin.session.maxAge after login however active it is', async () => {
      const { cookie } = await uiLogin(app, ALICE);
      for (let i = 0; i < 23; i++) {
        clock += 30 * 60_000;
        expect(await status(cookie), `after ${(i + 1) * 30} min`).toBe(200);
      }
      clock += 31 * 60_000;
      expect(await status(cookie)).toBe(303);
    });

    it('a token taken out of the configuration ends its sessions', async () => {
      const { cookie } = await uiLogin(app, BOB);
      expect(await status(cookie)).toBe(200);
      const without = await buildSite({ publicUrl: PUBLIC_URL, db, blobs: new FsBlobStore(blobsDir), rateLimit: false, now: () => clock, admin: { tokens: [`alice:${ALICE}`], retention: bounds } });
      try {
        expect((await without.inject({ url: '/admin', headers: { cookie } })).statusCode).toBe(303);
      } finally {
        await without.close();
      }
      // The CSRF token belongs to one session: another session's token is refused.
      const a = await uiLogin(app, ALICE);
      const b = await uiLogin(app, ALICE);
      expect(await csrfOf(app, a.cookie)).not.toBe(b.csrf);
      expect((await app.inject(postForm(a.cookie, '/admin/rules/reapply', { _csrf: b.csrf }))).statusCode).toBe(403);
    });
  });
}
