import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { transfersCommand } from '../../cli/transfers.js';
import { rulesCommand } from '../../cli/rules.js';
import { loadConfig, type Config } from '../../config/index.js';
import { noticeHtml, noticeText, placeholderText } from '../../gateway/notice.js';
import { DAY_MS, setRule } from '../../storage/index.js';
import { spawnFerry, type ChildFerry } from '../ops/child.js';
import { addTransfer, makeEnv, type Env } from '../web/helpers.js';

// Issue 16 items 3-5 (units, the start banner, words) and issue 12 item 6 (day-inclusive search,
// clamped rules, fractional days), as an admin meets them: the CLI runs as a child process where
// its output streams and exit status matter.

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '..', '..');

async function ferry(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, ['--import', 'tsx', 'test/admin/run-cli.ts', ...args], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', NODE_NO_WARNINGS: '1', ...env } });
    return { code: 0, ...r };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

let env: Env;
let config: Config;
let configFile: string;

beforeAll(async () => {
  env = await makeEnv();
  configFile = path.join(env.dir, 'ferry.yaml');
  fs.writeFileSync(
    configFile,
    [`dataDir: ${env.dir}`, 'storage:', `  database: sqlite:${env.dir}/db.sqlite`, `  blobs: file:${env.dir}/blobs`, 'relay:', '  timeout: 45s', 'log:', '  level: silent'].join('\n'),
  );
  config = loadConfig({ file: configFile, env: {} });
});
afterAll(async () => env?.close());

async function cli(fn: typeof transfersCommand, args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await fn(config, args, { out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('units (issue 16, item 3)', () => {
  it('FERRY_RETENTION_DEFAULT=30 is refused saying it was read as 30 ms and what to write', async () => {
    const r = await ferry(['check-config'], { FERRY_DATA_DIR: env.dir, FERRY_RETENTION_DEFAULT: '30' });
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('retention.default = "30" is not allowed (set in FERRY_RETENTION_DEFAULT): 30 has no unit, so it would be read as 30 milliseconds (30ms); write 30d for 30 days');
    // A larger bare number passes the unit check but not the bounds: the message says how it was read.
    expect(() => loadConfig({ env: { FERRY_RETENTION_DEFAULT: '2592000' } })).toThrow(/2592000 has no unit, so it would be read as 2592000 milliseconds \(2592s\); write it with a unit, such as 30d/);
    expect(() => loadConfig({ env: { FERRY_RETENTION_DEFAULT: '86400000000' } })).toThrow(/retention\.default \(1000d\) must lie between retention\.minimum \(1d\) and retention\.maximum \(365d\) \(86400000000 was read as milliseconds/);
    // Where milliseconds can be meant, a bare number still is milliseconds.
    expect(loadConfig({ env: { FERRY_SMTP_SOCKET_TIMEOUT: '500' } }).smtp.socketTimeout).toBe(500);
  });

  it('an unknown FERRY_ variable close to a real one gets "did you mean"; a far one does not', () => {
    expect(() => loadConfig({ env: { FERRY_RETENTON_DEFAULT: '30d' } })).toThrow(/FERRY_RETENTON_DEFAULT is not a Ferry setting; did you mean FERRY_RETENTION_DEFAULT\?/);
    expect(() => loadConfig({ env: { FERRY_QUEUE_MAXAGE: '5d' } })).toThrow(/did you mean FERRY_QUEUE_MAX_AGE\?/);
    expect(() => loadConfig({ env: { FERRY_BANANA: '1' } })).toThrow(/^FERRY_BANANA is not a Ferry setting \(settings are/);
  });

  it('check-config prints 30d, 5m and 500 MB, leaves out relay.timeout, and shows the rules in effect from the database', async () => {
    await setRule(env.db, { kind: 'maximum', periodMs: 90 * DAY_MS }, 'admin:alice', { defaultMs: 30 * DAY_MS, minMs: DAY_MS, maxMs: 365 * DAY_MS });
    const r = await ferry(['check-config', '--config', configFile], {});
    expect(r.code).toBe(0);
    const printed = JSON.parse(r.stdout);
    expect(printed.retention).toMatchObject({ default: '30d', minimum: '1d', sweepInterval: '10m', keepRecords: '180d' });
    expect(printed.smtp.maxMessageSize).toBe('500 MB');
    expect(printed.smtp.socketTimeout).toBe('5m');
    expect(printed.queue.retrySchedule).toEqual(['5m', '10m', '20m', '40m', '1h', '2h', '4h']);
    expect(printed.relay.attemptTimeout).toBe('45s');
    expect(printed.relay).not.toHaveProperty('timeout');
    // The printout reads back as the same configuration (JSON is YAML).
    const again = path.join(env.dir, 'printed.yaml');
    fs.writeFileSync(again, r.stdout);
    expect(loadConfig({ file: again, env: {} }).retention.keepRecords).toBe(180 * DAY_MS);
    // The rules in effect: the admin's maximum from the database, the rest from the file.
    expect(r.stderr).toMatch(/retention rules in effect \(database and file\)/);
    expect(r.stderr).toMatch(/maximum\s+90d\s+-\s+run time\s+the file says 365d; not used, an admin changed it at run time; set by admin:alice/);
    expect(r.stderr).toMatch(/default\s+30d\s+-\s+file/);
    expect(r.stderr).toMatch(/is valid/);
  });

  it('check-config refuses bounds from the file that contradict those set at run time (issue 12, item 5)', async () => {
    const r = await ferry(['check-config', '--config', configFile], { FERRY_RETENTION_DEFAULT: '100d' });
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/configuration error: retention: retention\.default = 100d \(from the configuration\) is longer than the maximum of 90d \(set at run time by admin:alice/);
  });
});

describe('words (issue 16, item 5) and small things (issue 12, item 6)', () => {
  it('the notice says "as a download link" (one) and "as download links" (several)', () => {
    const f = { name: 'a.pdf', size: 20_000_000, sha256: 'a'.repeat(64) };
    const one = { files: [f], landingUrl: 'https://x/t/y', expiresAt: Date.UTC(2026, 11, 25, 14, 30) };
    expect(noticeText(one)).toContain('1 attachment was sent as a download link, available until 2026-12-25 14:30 UTC:');
    expect(noticeHtml(one)).toContain('1 attachment was sent as a download link, available until');
    const two = { ...one, files: [f, f] };
    expect(noticeText(two)).toContain('2 attachments were sent as download links, available until');
    expect(noticeHtml(two)).toContain('2 attachments were sent as download links');
    expect(placeholderText(f, one.landingUrl, one.expiresAt)).toContain('was sent as a download link:');
  });

  it('transfers show says "unlimited"; revoke prints no expiry; --from D --to D finds that day', async () => {
    const created = Date.UTC(2026, 10, 20, 15, 0);
    const t = await addTransfer(env, { files: [{ name: 'x.bin', data: Buffer.from('x') }], createdAt: created, expiresAt: Date.now() + 7 * DAY_MS });
    const show = await cli(transfersCommand, ['show', t.transferId]);
    expect(show.out).toMatch(/limit:\s+unlimited downloads per file; 0 counted so far/);
    expect(show.out).not.toMatch(/0 = unlimited/);
    const day = await cli(transfersCommand, ['list', '--from', '2026-11-20', '--to', '2026-11-20', '--json']);
    expect((JSON.parse(day.out) as { items: { id: string }[] }).items.map((x) => x.id)).toContain(t.transferId);
    const before = await cli(transfersCommand, ['list', '--to', '2026-11-19', '--json']);
    expect((JSON.parse(before.out) as { items: { id: string }[] }).items.map((x) => x.id)).not.toContain(t.transferId);
    const revoked = await cli(transfersCommand, ['revoke', t.transferId]);
    expect(revoked.out).toBe(`${t.transferId}: revoked; links answer 410; files go at the next sweep`);
  });

  it('rules list shows periods with units (never "0"), and says when the maximum clamps a rule', async () => {
    const bounds = { defaultMs: 30 * DAY_MS, minMs: DAY_MS, maxMs: 365 * DAY_MS };
    await setRule(env.db, { kind: 'minimum', periodMs: 12 * 3_600_000 }, 'admin:alice', bounds);
    await setRule(env.db, { kind: 'recipient_domain', match: 'long.example', periodMs: 80 * DAY_MS }, 'admin:alice', bounds);
    await setRule(env.db, { kind: 'maximum', periodMs: 60 * DAY_MS }, 'admin:alice', bounds);
    const r = await cli(rulesCommand, ['list']);
    expect(r.out).toMatch(/^minimum\s+12h\s/m);
    expect(r.out).toMatch(/^recipient_domain:long\.example\s+80d\s+.*clamped: mail gets the maximum, 60d/m);
    const set = await cli(rulesCommand, ['set', 'minimum', '--days', '0.5']);
    expect(set.out).toBe('minimum: 12 hours');
    const refused = await cli(rulesCommand, ['set', 'default', '--days', '0.25']);
    expect(refused.err).toMatch(/the default \(6 hours\) must lie between the minimum \(12 hours\) and the maximum \(60 days\)/);
  });

  it('README tour: swaks is told --suppress-data, and the notice shown has the article', () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const swaks = readme.split('\n').filter((l) => l.startsWith('swaks '));
    expect(swaks.length).toBeGreaterThan(0);
    const tour = readme.slice(readme.indexOf('## A five-minute tour'), readme.indexOf('## Processes and roles'));
    expect(tour).toContain('--suppress-data');
    expect(tour).toContain('1 attachment was sent as a download link');
  });
});

describe('the start banner (issue 16, item 4)', () => {
  let child: ChildFerry | undefined;
  afterAll(async () => {
    child?.proc.kill('SIGTERM');
    await child?.exited;
  });

  it('says where the admin UI, metrics and health checks are, or that admin is off and how to turn it on', async () => {
    const dir = fs.mkdtempSync(path.join(env.dir, 'banner-'));
    child = spawnFerry('start', { FERRY_DATA_DIR: dir, FERRY_SMTP_PORT: '0', FERRY_WEB_PORT: '0', FERRY_LOG_LEVEL: 'info', FERRY_WEB_PUBLIC_URL: 'https://files.example.com' }, dir);
    const line = await child.waitForLog((l) => l.msg === 'Ferry is running', 60_000);
    expect(line.admin).toMatch(/^off: set admin\.tokens \(e\.g\. FERRY_ADMIN_TOKENS=.*\) or admin\.oidc\.issuer to turn it on/);
    expect(line.metrics).toMatch(/^off: set metrics\.port/);
    expect(line.health).toMatch(/^http:\/\/localhost:\d+\/healthz, http:\/\/localhost:\d+\/readyz$/);
    const port = /:(\d+)\/healthz/.exec(line.health)![1];
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    child.proc.kill('SIGTERM');
    await child.exited;

    child = spawnFerry('start', { FERRY_DATA_DIR: dir, FERRY_SMTP_PORT: '0', FERRY_WEB_PORT: '0', FERRY_LOG_LEVEL: 'info', FERRY_WEB_PUBLIC_URL: 'https://files.example.com', FERRY_ADMIN_TOKENS: 'alice:0123456789abcdefghijklmnopqrstuv', FERRY_METRICS_PORT: '0' }, dir);
    const on = await child.waitForLog((l) => l.msg === 'Ferry is running', 60_000);
    expect(on.admin).toBe('https://files.example.com/admin (API: /admin/api)');
    expect(on.metrics).toMatch(/^http:\/\/localhost:\d+\/metrics$/);
    const metricsPort = /:(\d+)\/metrics/.exec(on.metrics)![1];
    expect(on.health).toContain(`http://localhost:${metricsPort}/healthz`);
    expect(JSON.stringify(on)).not.toContain('0123456789abcdefghij');
  }, 150_000);
});
