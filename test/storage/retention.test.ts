import fs from 'node:fs';
import nodemailer from 'nodemailer';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRoles, type RunningRoles } from '../../cli/start.js';
import { loadConfig } from '../../config/index.js';
import { formatUtc } from '../../config/units.js';
import {
  DAY_MS,
  decideRetention,
  deleteRule,
  getTransfer,
  listAudit,
  listRules,
  openDatabase,
  reapplyRetention,
  resolveRetention,
  RetentionRuleError,
  seedRetentionRules,
  setRule,
  type Db,
  type RetentionPolicy,
  type RetentionRule,
} from '../../storage/index.js';
import { freePort, tempDir } from '../helpers/ferry.js';
import { pseudoRandom } from '../helpers/mail.js';
import { Upstream } from '../helpers/upstream.js';
import { addTransfer, makeEnv, type Env } from '../web/helpers.js';

const rule = (id: string, days: number, downloadLimit: number | null = null): RetentionRule => {
  const [kind, match = ''] = id.split(':') as [RetentionRule['kind'], string?];
  return { id, kind, match, periodMs: days * DAY_MS, downloadLimit, source: 'admin', updatedAt: 0, updatedBy: 't' };
};

const policy: RetentionPolicy = {
  defaultMs: 30 * DAY_MS,
  minMs: 2 * DAY_MS,
  maxMs: 90 * DAY_MS,
  rules: [
    rule('sender:ceo@corp.example', 60),
    rule('sender_domain:corp.example', 45, 10),
    rule('sender_domain:lab.corp.example', 20),
    rule('recipient_domain:partner.example', 7, 3),
    rule('recipient_domain:eu.partner.example', 14),
    rule('recipient_domain:archive.example', 365),
    rule('recipient_domain:quick.example', 1),
  ],
};

describe('rule resolution', () => {
  // sender, recipients -> rule that decides, days, download limit, clamp
  it.each([
    ['nobody@else.example', ['x@else.example'], 'default', 30, null, null],
    ['bob@corp.example', ['x@else.example'], 'sender_domain:corp.example', 45, 10, null],
    ['BOB@Corp.Example', ['x@else.example'], 'sender_domain:corp.example', 45, 10, null],
    // The longest matching domain wins, subdomains included.
    ['eve@lab.corp.example', ['x@else.example'], 'sender_domain:lab.corp.example', 20, null, null],
    ['eve@dev.lab.corp.example', ['x@else.example'], 'sender_domain:lab.corp.example', 20, null, null],
    // A recipient domain beats a sender domain...
    ['bob@corp.example', ['x@partner.example'], 'recipient_domain:partner.example', 7, 3, null],
    ['bob@corp.example', ['x@eu.partner.example'], 'recipient_domain:eu.partner.example', 14, null, null],
    // ...and a sender address beats both.
    ['ceo@corp.example', ['x@partner.example'], 'sender:ceo@corp.example', 60, null, null],
    // Several recipients: the shortest applicable period wins.
    ['bob@corp.example', ['x@else.example', 'y@partner.example'], 'recipient_domain:partner.example', 7, 3, null],
    ['nobody@else.example', ['x@eu.partner.example', 'y@partner.example', 'z@else.example'], 'recipient_domain:partner.example', 7, 3, null],
    ['nobody@else.example', ['x@else.example', 'y@archive.example'], 'default', 30, null, null],
    // Clamps: 365 days is brought down to the maximum, 1 day up to the minimum.
    ['nobody@else.example', ['y@archive.example'], 'recipient_domain:archive.example', 90, null, 'maximum'],
    ['nobody@else.example', ['y@quick.example', 'x@partner.example'], 'recipient_domain:quick.example', 2, null, 'minimum'],
    // The null sender (bounces) and no recipients fall back to the default.
    ['', ['x@else.example'], 'default', 30, null, null],
    ['bob@corp.example', [], 'sender_domain:corp.example', 45, 10, null],
  ] as const)('%s -> %j: %s, %d days', (sender, recipients, ruleId, days, limit, clampedBy) => {
    const d = resolveRetention(policy, { sender, recipients });
    // None of these rules asks for a password or says anything about receipts (test/storage/transfer-passwords.test.ts does).
    expect(d).toEqual({ ruleId, periodMs: days * DAY_MS, downloadLimit: limit, clampedBy, requirePassword: false, receipts: null });
  });

  it('on equal periods the more specific rule is named', () => {
    const p: RetentionPolicy = { ...policy, rules: [rule('sender_domain:a.example', 30)] };
    expect(resolveRetention(p, { sender: 'x@a.example', recipients: ['y@b.example'] }).ruleId).toBe('sender_domain:a.example');
  });
});

describe('rules in the database', () => {
  let env: Env;
  let db: Db;
  const bounds = { defaultMs: 30 * DAY_MS, minMs: DAY_MS, maxMs: 365 * DAY_MS };
  beforeAll(async () => {
    env = await makeEnv();
    db = env.db;
  });
  afterAll(async () => env.close());

  it('are seeded from the configuration; admin changes survive a restart, config-made rows follow the file', async () => {
    await seedRetentionRules(db, { ...bounds, rules: [{ recipientDomain: 'Partner.Example', days: 7, downloadLimit: 2 }, { senderDomain: 'old.example', days: 10 }] });
    let rules = await listRules(db);
    expect(rules.map((r) => [r.id, r.periodMs / DAY_MS, r.downloadLimit, r.source])).toEqual([
      ['default', 30, null, 'config'],
      ['minimum', 1, null, 'config'],
      ['maximum', 365, null, 'config'],
      ['sender_domain:old.example', 10, null, 'config'],
      ['recipient_domain:partner.example', 7, 2, 'config'],
    ]);
    await setRule(db, { kind: 'default', periodMs: 20 * DAY_MS }, 'admin:t', bounds);
    // Restart with a changed file: the default keeps the admin's 20 days, the partner rule
    // follows the file, and the rule the file dropped goes.
    await seedRetentionRules(db, { ...bounds, defaultMs: 40 * DAY_MS, rules: [{ recipientDomain: 'partner.example', days: 9 }] });
    rules = await listRules(db);
    expect(rules.map((r) => [r.id, r.periodMs / DAY_MS, r.source])).toEqual([
      ['default', 20, 'admin'],
      ['minimum', 1, 'config'],
      ['maximum', 365, 'config'],
      ['recipient_domain:partner.example', 9, 'config'],
    ]);
  });

  it('lists rules by kind, then by match in code-unit order: the same list on every server, whatever its locale', async () => {
    // ICU's collation (localeCompare) puts "_" before "." and "é" right after "e"; code units
    // do neither, and do not depend on the process's locale.
    for (const match of ['zed@corp.example', 'a_b@corp.example', 'a.b@corp.example', 'éve@corp.example', 'eve@corp.example']) {
      await setRule(db, { kind: 'sender', match, periodMs: 3 * DAY_MS }, 'admin:t', bounds);
    }
    const senders = (await listRules(db)).filter((r) => r.kind === 'sender').map((r) => r.match);
    expect(senders).toEqual(['a.b@corp.example', 'a_b@corp.example', 'eve@corp.example', 'zed@corp.example', 'éve@corp.example']);
    for (const match of senders) await deleteRule(db, `sender:${match}`, 'admin:t');
  });

  it.each([
    [{ kind: 'sender', match: 'not-an-address', periodMs: DAY_MS }, /not a mail address/],
    [{ kind: 'recipient_domain', match: 'bad domain!', periodMs: DAY_MS }, /not a domain/],
    [{ kind: 'recipient_domain', match: 'ok.example', periodMs: 400 * DAY_MS }, /between the minimum \(1 day\) and the maximum \(365 days\)/],
    [{ kind: 'recipient_domain', match: 'ok.example', periodMs: 0 }, /greater than 0/],
    [{ kind: 'recipient_domain', match: 'ok.example', periodMs: DAY_MS, downloadLimit: 0 }, /at least 1/],
    [{ kind: 'minimum', periodMs: 25 * DAY_MS }, /default \(20 days\) must lie between/],
    [{ kind: 'maximum', periodMs: 10 * DAY_MS }, /default \(20 days\) must lie between/],
  ] as const)('refuses %j with a message saying what to change', async (input, message) => {
    const err = await setRule(db, input as Parameters<typeof setRule>[1], 'admin:t', bounds).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RetentionRuleError);
    expect((err as Error).message).toMatch(message);
  });

  it('cannot delete the bounds; deleting a rule is audited', async () => {
    await expect(deleteRule(db, 'default', 'admin:t')).rejects.toThrow(/cannot be deleted/);
    await setRule(db, { kind: 'sender', match: 'a@b.example', periodMs: 3 * DAY_MS }, 'admin:t', bounds);
    expect(await deleteRule(db, 'sender:a@b.example', 'admin:t')).toBe(true);
    expect(await deleteRule(db, 'sender:a@b.example', 'admin:t')).toBe(false);
    const audit = await listAudit(db, { action: 'rule_deleted' });
    expect(audit[0]).toMatchObject({ actor: 'admin:t', detail: { rule: 'sender:a@b.example' } });
  });

  it('rule changes do not touch existing transfers unless asked; reapplying skips held and hand-set ones', async () => {
    const created = Date.now() - DAY_MS;
    const a = await addTransfer(env, { files: [{ name: 'a.bin', data: Buffer.from('a') }], createdAt: created, expiresAt: created + 9 * DAY_MS });
    const b = await addTransfer(env, { files: [{ name: 'b.bin', data: Buffer.from('b') }], createdAt: created, expiresAt: created + 9 * DAY_MS });
    await db.updateTable('transfers').set({ retention_rule: 'recipient_domain:partner.example' }).where('id', '=', a.transferId).execute();
    await db.updateTable('transfers').set({ retention_rule: 'admin' }).where('id', '=', b.transferId).execute();
    // addTransfer's recipient is bob@example.net: a rule for example.net now says 3 days.
    await setRule(db, { kind: 'recipient_domain', match: 'example.net', periodMs: 3 * DAY_MS, downloadLimit: 5 }, 'admin:t', bounds);
    expect((await getTransfer(db, a.transferId))!.expiresAt).toBe(created + 9 * DAY_MS);
    const changed = await reapplyRetention(db, 'admin:t', bounds);
    expect(changed).toBeGreaterThanOrEqual(1);
    const ta = (await getTransfer(db, a.transferId))!;
    expect(ta).toMatchObject({ expiresAt: created + 3 * DAY_MS, retentionRule: 'recipient_domain:example.net', maxDownloads: 5 });
    expect((await getTransfer(db, b.transferId))!.expiresAt).toBe(created + 9 * DAY_MS);
    const audit = await listAudit(db, { transferId: a.transferId, action: 'extended' });
    expect(audit[0]!.detail).toMatchObject({ reason: 'rules reapplied', rule: 'recipient_domain:example.net' });
  });

  it('decideRetention falls back to the configured bounds when nothing was seeded', async () => {
    const db2 = await openDatabase(`sqlite:${env.dir}/empty.sqlite`);
    try {
      const d = await decideRetention(db2, { sender: 'a@b.example', recipients: ['c@d.example'], at: 1000 }, { defaultMs: 5 * DAY_MS, minMs: DAY_MS, maxMs: 10 * DAY_MS });
      expect(d).toMatchObject({ ruleId: 'default', expiresAt: 1000 + 5 * DAY_MS });
    } finally {
      await db2.destroy();
    }
  });
});

describe('the gateway stores the rule and prints its date in the notice', () => {
  const dir = tempDir();
  let upstream: Upstream;
  let node: RunningRoles;
  beforeAll(async () => {
    upstream = await new Upstream().start();
    const port = await freePort();
    const config = loadConfig({
      env: {},
      overrides: {
        dataDir: dir,
        smtp: { host: '127.0.0.1', port: 0, hostname: 'ferry.test' },
        web: { host: '127.0.0.1', port, publicUrl: `http://127.0.0.1:${port}` },
        relay: { url: upstream.url },
        offload: { minAttachmentSize: 50_000 },
        retention: { default: '30d', rules: [{ recipientDomain: 'partner.example', days: 3, downloadLimit: 2 }] },
      },
    });
    node = await startRoles(config, pino({ level: 'silent' }), ['gateway']);
  });
  afterAll(async () => {
    await node?.stop();
    await upstream?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('with a partner among the recipients, the 3-day rule decides', async () => {
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: node.smtpPort!, secure: false, ignoreTLS: true });
    const before = Date.now();
    await t.sendMail({
      from: 'alice@corp.example',
      to: ['bob@else.example', 'carol@partner.example'],
      subject: 'rules',
      text: 'see attached',
      attachments: [{ filename: 'plan.bin', content: pseudoRandom(80_000, 'retention') }],
    });
    const row = await node.storage.db.selectFrom('transfers').selectAll().orderBy('created_at', 'desc').executeTakeFirstOrThrow();
    expect(row.retention_rule).toBe('recipient_domain:partner.example');
    expect(row.max_downloads).toBe(2);
    const expiresAt = Number(row.expires_at);
    expect(expiresAt - Number(row.created_at)).toBe(3 * DAY_MS);
    expect(Number(row.created_at)).toBeGreaterThanOrEqual(before - 1000);
    const raw = upstream.messages.at(-1)!.raw.toString('latin1');
    expect(raw).toContain(`available until ${formatUtc(expiresAt)}`);
  });
});

describe('the worker role sweeps on retention.sweepInterval', () => {
  const dir = tempDir();
  let node: RunningRoles;
  afterAll(async () => {
    await node?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('an expired transfer loses its files without anyone running ferry purge', async () => {
    const config = loadConfig({ env: {}, overrides: { dataDir: dir, retention: { sweepInterval: '1s' }, log: { level: 'silent' } } });
    node = await startRoles(config, pino({ level: 'silent' }), ['worker']);
    const env = { dir, db: node.storage.db, blobs: node.storage.blobs } as unknown as Env;
    const t = await addTransfer(env, { files: [{ name: 'late.bin', data: Buffer.from('late') }], expiresAt: Date.now() - 1000 });
    const deadline = Date.now() + 10_000;
    while ((await node.storage.blobs.exists(t.files[0]!.blobKey)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await node.storage.blobs.exists(t.files[0]!.blobKey)).toBe(false);
    expect(await getTransfer(node.storage.db, t.transferId)).toMatchObject({ state: 'expired' });
  }, 20_000);
});
