import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { purgeCommand } from '../../cli/purge.js';
import { rulesCommand } from '../../cli/rules.js';
import { transfersCommand } from '../../cli/transfers.js';
import { loadConfig, type Config } from '../../config/index.js';
import { DAY_MS, getRule, getTransfer, listAudit } from '../../storage/index.js';
import { addTransfer, makeEnv, type Env, type Fixture } from '../web/helpers.js';

// `ferry transfers`, `ferry rules` and `ferry purge` against a configured database and blob
// store, as an admin types them. Most cases call the command functions in-process; the purge
// runs as a real child process (exit status, output streams).

const run = promisify(execFile);
let env: Env;
let config: Config;
let configFile: string;
let a: Fixture;
let b: Fixture;

async function cli(fn: typeof transfersCommand, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await fn(config, args, { out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, out: out.join('\n'), err: err.join('\n') };
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
    '      days: 7',
    'log:',
    '  level: silent',
  ].join('\n');
  configFile = path.join(env.dir, 'ferry.yaml');
  fs.writeFileSync(configFile, yaml);
  config = loadConfig({ file: configFile, env: {} });
  const created = Date.now() - DAY_MS;
  a = await addTransfer(env, { files: [{ name: 'Budget 2027.xlsx', data: Buffer.from('budget') }], sender: 'cfo@corp.example', createdAt: created, expiresAt: created + 10 * DAY_MS });
  b = await addTransfer(env, { files: [{ name: 'photo.jpg', data: Buffer.from('photo') }], sender: 'ann@corp.example', createdAt: created + 1000, expiresAt: created + 10 * DAY_MS });
});
afterAll(async () => env?.close());

describe('ferry transfers', () => {
  it('list prints a table, filters by file name, and --json is machine-readable', async () => {
    let r = await cli(transfersCommand, ['list']);
    expect(r.code).toBe(0);
    expect(r.out.split('\n')[0]).toMatch(/^ID\s+CREATED\s+STATE\s+EXPIRES\s+FILES\s+SIZE\s+SENDER\s+RECIPIENTS$/);
    expect(r.out).toContain(a.transferId);
    expect(r.out).toContain(b.transferId);
    r = await cli(transfersCommand, ['list', '--file', 'budget', '--json']);
    const j = JSON.parse(r.out) as { items: { id: string; state: string }[]; nextCursor: null };
    expect(j.items.map((i) => i.id)).toEqual([a.transferId]);
    expect(j.items[0]!.state).toBe('live');
    r = await cli(transfersCommand, ['list', '--limit', '1']);
    expect(r.out).toMatch(/More: ferry transfers list --cursor \S+/);
  });

  it('show prints the files and the rule', async () => {
    const r = await cli(transfersCommand, ['show', a.transferId]);
    expect(r.code).toBe(0);
    expect(r.out).toContain('Budget 2027.xlsx');
    expect(r.out).toContain('sender:      cfo@corp.example');
    expect(r.out).toContain('No downloads yet.');
  });

  it('revoke, extend, hold, release and delete change the transfer and are audited as cli:USER', async () => {
    expect((await cli(transfersCommand, ['extend', a.transferId, '--by', '2'])).code).toBe(0);
    expect((await getTransfer(env.db, a.transferId))!.expiresAt - (await getTransfer(env.db, a.transferId))!.createdAt).toBe(12 * DAY_MS);
    const tooFar = await cli(transfersCommand, ['extend', a.transferId, '--by', '100']);
    expect(tooFar.code).toBe(1);
    expect(tooFar.err).toMatch(/must lie between .* \(1 to 60 days after the transfer was created\)/);
    expect((await cli(transfersCommand, ['hold', a.transferId, '--reason', 'case 9'])).code).toBe(0);
    const refused = await cli(transfersCommand, ['delete', a.transferId, '--yes']);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('legal hold');
    expect((await cli(transfersCommand, ['release', a.transferId])).code).toBe(0);
    const noYes = await cli(transfersCommand, ['delete', a.transferId]);
    expect(noYes.code).toBe(2);
    expect(noYes.err).toContain('add --yes');
    // Issue 16, item 5: a revoked transfer has no expiry to speak of.
    const revoked = (await cli(transfersCommand, ['revoke', a.transferId])).out;
    expect(revoked).toMatch(/revoked; links answer 410; files go at the next sweep/);
    expect(revoked).not.toMatch(/expires/);
    expect((await cli(transfersCommand, ['delete', a.transferId, '--yes'])).code).toBe(0);
    expect(await env.blobs.exists(a.files[0]!.blobKey)).toBe(false);
    const actions = (await listAudit(env.db, { transferId: a.transferId })).map((e) => `${e.action}:${e.actor.split(':')[0]}`);
    expect(actions.slice(0, 6)).toEqual(['deleted:cli', 'revoked:cli', 'released:cli', 'held:cli', 'extended:cli', 'link_issued:gateway']);
  });

  it('bad input gets exit code 2 and a message', async () => {
    expect((await cli(transfersCommand, ['list', '--state', 'gone'])).err).toMatch(/--state: expected one of/);
    expect((await cli(transfersCommand, ['show'])).code).toBe(2);
    expect((await cli(transfersCommand, ['frobnicate'])).code).toBe(2);
    expect((await cli(transfersCommand, ['list', '--colour'])).code).toBe(2);
    expect((await cli(transfersCommand, ['show', 'nosuchtransfer'])).code).toBe(1);
  });
});

describe('ferry rules', () => {
  it('lists the configuration-seeded rules, sets, and deletes', async () => {
    let r = await cli(rulesCommand, ['list']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/recipient_domain:partner\.example\s+7d\s+-\s+config/);
    r = await cli(rulesCommand, ['set', 'sender_domain:corp.example', '--days', '14', '--download-limit', '3']);
    expect(r.code).toBe(0);
    expect(await getRule(env.db, 'sender_domain:corp.example')).toMatchObject({ periodMs: 14 * DAY_MS, downloadLimit: 3, source: 'admin' });
    r = await cli(rulesCommand, ['set', 'sender_domain:corp.example', '--days', '90']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/between the minimum \(1 day\) and the maximum \(60 days\)/);
    // Existing transfers keep their expiry unless --reapply is given.
    const before = (await getTransfer(env.db, b.transferId))!.expiresAt;
    await cli(rulesCommand, ['set', 'sender_domain:corp.example', '--days', '5']);
    expect((await getTransfer(env.db, b.transferId))!.expiresAt).toBe(before);
    r = await cli(rulesCommand, ['set', 'sender_domain:corp.example', '--days', '5', '--reapply']);
    expect(r.out).toMatch(/Expiry recomputed for [1-9]\d* live transfer/);
    const tb = (await getTransfer(env.db, b.transferId))!;
    expect(tb.expiresAt - tb.createdAt).toBe(5 * DAY_MS);
    r = await cli(rulesCommand, ['list', '--json']);
    expect((JSON.parse(r.out) as { id: string }[]).map((x) => x.id)).toContain('sender_domain:corp.example');
    expect((await cli(rulesCommand, ['delete', 'sender_domain:corp.example'])).code).toBe(0);
    expect((await cli(rulesCommand, ['delete', 'sender_domain:corp.example'])).code).toBe(1);
    expect((await cli(rulesCommand, ['delete', 'default'])).err).toContain('cannot be deleted');
    expect((await cli(rulesCommand, ['set', 'colour:red', '--days', '5'])).code).toBe(1);
  });
});

describe('ferry purge', () => {
  it('--dry-run counts and changes nothing; a real run deletes and prints a summary', async () => {
    const old = await addTransfer(env, { files: [{ name: 'old.bin', data: Buffer.from('old') }], expiresAt: Date.now() - 1000 });
    const args = ['--import', 'tsx', 'test/admin/run-cli.ts', 'purge', '--config', configFile];
    const dry = await run(process.execPath, [...args, '--dry-run'], { cwd: process.cwd() });
    expect(dry.stdout).toContain('Dry run: nothing was changed.');
    expect(dry.stdout).toMatch(/expired transfers would be cleared:\s+1/);
    // stderr is a pipe here, not a terminal: no progress bars (issue 16, item 5).
    expect(dry.stderr).not.toMatch(/\[[#.]+\]/);
    expect(await env.blobs.exists(old.files[0]!.blobKey)).toBe(true);
    const real = await run(process.execPath, args, { cwd: process.cwd() });
    expect(real.stdout).toContain('Sweep done.');
    expect(real.stdout).toMatch(/expired transfers cleared:\s+1/);
    expect(await env.blobs.exists(old.files[0]!.blobKey)).toBe(false);
    expect((await getTransfer(env.db, old.transferId))!.state).toBe('expired');
  }, 60_000);

  it('--json prints the summary as JSON; a stray argument is a usage error', async () => {
    const out: string[] = [];
    expect(await purgeCommand(config, ['--json'], { out: (s) => out.push(s), err: () => undefined })).toBe(0);
    expect(JSON.parse(out[0]!)).toMatchObject({ dryRun: false, errors: [] });
    expect(await purgeCommand(config, ['now'], { out: () => undefined, err: () => undefined })).toBe(2);
  });
});
