import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkConfigCommand } from '../../cli/check-config.js';
import { rulesCommand } from '../../cli/rules.js';
import { loadConfig, type Config } from '../../config/index.js';
import { decideRetention, getRule, listAudit, retentionBounds, seedRetentionRules } from '../../storage/index.js';
import { makeEnv, type Env } from '../web/helpers.js';

// The two switches of a retention rule, requirePassword and receipts (docs/retention.md,
// docs/passwords.md), from the command line: `ferry rules set|list` and `ferry check-config`,
// against a configured database, as an admin types them.

let env: Env;
let config: Config;

type Command = (config: Config, args: string[], io: { out: (s: string) => void; err: (s: string) => void }) => Promise<number>;

async function run(fn: Command, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await fn(config, args, { out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}
const rules = (args: string[]) => run(rulesCommand, args);

/** The row of `rule` in a table whose header is `header` (columns split on 2+ spaces). */
function row(text: string, rule: string): Record<string, string> {
  const lines = text.split('\n').map((l) => l.trim());
  const head = lines.find((l) => l.startsWith('RULE '))!.split(/\s{2,}/);
  const cells = lines.find((l) => l.startsWith(`${rule} `))!.split(/\s{2,}/);
  return Object.fromEntries(head.map((h, i) => [h, cells[i] ?? '']));
}

beforeAll(async () => {
  env = await makeEnv();
  const yaml = [
    `dataDir: ${env.dir}`,
    'storage:',
    `  database: sqlite:${env.dir}/db.sqlite`,
    `  blobs: file:${env.dir}/blobs`,
    'retention:',
    '  default: 30d',
    '  maximum: 60d',
    '  rules:',
    '    - recipientDomain: partner.example',
    '      days: 14',
    '      requirePassword: true',
    '      receipts: false',
    'log:',
    '  level: silent',
  ].join('\n');
  const configFile = path.join(env.dir, 'ferry.yaml');
  fs.writeFileSync(configFile, yaml);
  config = loadConfig({ file: configFile, env: {} });
  await seedRetentionRules(env.db, { ...retentionBounds(config), rules: config.retention.rules });
});
afterAll(async () => env?.close());

describe('ferry rules and the two switches', () => {
  it('list shows the switches of a rule from the configuration, in the table and in --json', async () => {
    const r = await rules(['list']);
    expect(r.code).toBe(0);
    expect(row(r.out, 'recipient_domain:partner.example')).toMatchObject({ PERIOD: '14d', 'SET BY': 'config', PASSWORD: 'required', RECEIPTS: 'off' });
    expect(row(r.out, 'default')).toMatchObject({ PASSWORD: '-', RECEIPTS: '-' });
    const json = JSON.parse((await rules(['list', '--json'])).out) as { id: string; requirePassword: boolean; receipts: boolean | null }[];
    expect(json.find((x) => x.id === 'recipient_domain:partner.example')).toMatchObject({ requirePassword: true, receipts: false });
    expect(json.find((x) => x.id === 'default')).toMatchObject({ requirePassword: false, receipts: null });
  });

  it('set turns them on and off, audited as cli:USER, and new mail follows at once', async () => {
    let r = await rules(['set', 'sender_domain:corp.example', '--days', '20', '--require-password', 'on', '--receipts', 'on']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe('sender_domain:corp.example: 20 days, password required, receipts on');
    expect(await getRule(env.db, 'sender_domain:corp.example')).toMatchObject({ requirePassword: true, receipts: true, source: 'admin' });
    const audit = (await listAudit(env.db, { action: 'rule_set', limit: 1 }))[0]!;
    expect(audit.actor).toMatch(/^cli:/);
    expect(audit.detail).toMatchObject({ rule: 'sender_domain:corp.example', requirePassword: true, receipts: true, before: null });
    const decided = await decideRetention(env.db, { sender: 'ann@corp.example', recipients: ['bob@elsewhere.example'], at: Date.now() }, retentionBounds(config));
    expect(decided).toMatchObject({ ruleId: 'sender_domain:corp.example', requirePassword: true, receipts: true });

    // A switch not given stays as it was; "unset" hands receipts back to senders.receipts.
    r = await rules(['set', 'sender_domain:corp.example', '--days', '21']);
    expect(r.out).toBe('sender_domain:corp.example: 21 days, password required, receipts on');
    r = await rules(['set', 'sender_domain:corp.example', '--days', '21', '--require-password', 'off', '--receipts', 'unset', '--json']);
    expect(JSON.parse(r.out)).toMatchObject({ id: 'sender_domain:corp.example', days: 21, requirePassword: false, receipts: null });
    expect((await listAudit(env.db, { action: 'rule_set', limit: 1 }))[0]!.detail).toMatchObject({ requirePassword: false, receipts: null, before: { requirePassword: true, receipts: true } });
    expect(await decideRetention(env.db, { sender: 'ann@corp.example', recipients: ['bob@elsewhere.example'], at: Date.now() }, retentionBounds(config))).toMatchObject({
      requirePassword: false,
      receipts: null,
    });

    // The default may carry them too; the list shows who set them.
    expect((await rules(['set', 'default', '--days', '30', '--receipts', 'off'])).code).toBe(0);
    expect(row((await rules(['list'])).out, 'default')).toMatchObject({ RECEIPTS: 'off', PASSWORD: '-' });
  });

  it('refuses bad values and switches on a bound with exit code 2, changing nothing', async () => {
    const before = await getRule(env.db, 'recipient_domain:partner.example');
    for (const [args, message] of [
      [['set', 'recipient_domain:partner.example', '--days', '14', '--require-password', 'yes'], /--require-password: expected on or off/],
      [['set', 'recipient_domain:partner.example', '--days', '14', '--receipts', 'maybe'], /--receipts: expected on, off or unset/],
      [['set', 'maximum', '--days', '60', '--require-password', 'on'], /maximum is a bound/],
      [['set', 'minimum', '--days', '1', '--receipts', 'off'], /minimum is a bound/],
      [['set', 'recipient_domain:partner.example', '--days', '14', '--require-password'], /--require-password/],
    ] as const) {
      const r = await rules([...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err).toMatch(message);
    }
    expect(await getRule(env.db, 'recipient_domain:partner.example')).toEqual(before);
  });
});

describe('ferry check-config', () => {
  it('shows the switches in the rules in effect, from the file and from run time, leading the note', async () => {
    const r = await run((c, _a, io) => checkConfigCommand(c, 'ferry.yaml', io), []);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/RULE\s+PERIOD\s+DOWNLOAD LIMIT\s+FROM\s+NOTE/);
    expect(row(r.err, 'recipient_domain:partner.example')).toMatchObject({ FROM: 'file', NOTE: 'password required; receipts off' });
    // Switched off at run time by the test above: nothing about them, only who set the rule.
    expect(row(r.err, 'sender_domain:corp.example')).toMatchObject({ FROM: 'run time', NOTE: expect.stringMatching(/^set by cli:/) });
    expect(row(r.err, 'default')).toMatchObject({ FROM: 'run time', NOTE: expect.stringMatching(/^receipts off; set by cli:/) });
    expect(row(r.err, 'maximum')).toMatchObject({ FROM: 'file', NOTE: '' });
    // The printed configuration shows the file's switches as they are (not masked like a secret).
    expect(JSON.parse(r.out).retention.rules).toEqual([{ recipientDomain: 'partner.example', days: 14, requirePassword: true, receipts: false }]);
  });
});
