import { execFile } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminApiClient } from '../../cli/admin-client.js';
import { queueCommand } from '../../cli/queue.js';
import { rulesCommand } from '../../cli/rules.js';
import { transfersCommand } from '../../cli/transfers.js';
import { DAY_MS, enqueue, getQueueEntry, getTransfer, listAudit, listRules, newQueueId, queueBlobKey } from '../../storage/index.js';
import { addTransfer, type Env, type Fixture } from '../web/helpers.js';
import { startAdminSite } from '../admin/admin-site.js';

// `ferry transfers|queue|rules --server URL` (issue 16 item 8: the read-only role enforced in
// the CLI too): the commands through a running Ferry's admin API over real HTTP, with the token
// from FERRY_CLI_TOKEN. A full token changes things, audited as admin:NAME; a read-only token
// lists and shows, and every change it tries is refused by the server (exit 77), audited, and
// changes nothing.

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const FULL = 'remote-cli-full-token-0123456789abcdef';
const HELP = 'remote-cli-help-token-0123456789abcdef';

let env: Env;
let app: FastifyInstance;
let server: string;
let t: Fixture;
let queueId: string;

beforeAll(async () => {
  ({ env, app, base: server } = await startAdminSite({ admin: FULL, readonly: HELP }));
  t = await addTransfer(env, { files: [{ name: 'plan.pdf', data: Buffer.from('pdf bytes') }], sender: 'carol@corp.example', subject: 'Quarterly plan', expiresAt: Date.now() + 5 * DAY_MS });
  queueId = newQueueId();
  await env.blobs.put(queueBlobKey(queueId), Readable.from([Buffer.from('Subject: queued\r\n\r\nbody\r\n')]));
  await enqueue(env.db, {
    id: queueId,
    kind: 'message',
    transferId: null,
    sender: 'alice@example.com',
    recipients: [{ address: 'bob@example.net', state: 'pending' }],
    blobKey: queueBlobKey(queueId),
    size: 24,
    createdAt: Date.now() - 60_000,
    nextAttemptAt: Date.now() + 30 * 60_000,
    attempts: 1,
    lastError: '421 4.3.2 next hop busy',
  });
});
afterAll(async () => {
  await app?.close();
  await env?.close();
});

const client = (token: string) => AdminApiClient.fromArgs(server, { FERRY_CLI_TOKEN: token })!;

type Command = (from: AdminApiClient, args: string[], io: { out: (s: string) => void; err: (s: string) => void }) => Promise<number>;
const queueIo: Command = (from, args, io) => queueCommand(from, args, io.out, io.err);

async function run(cmd: Command, token: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await cmd(client(token), args, { out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('a full token', () => {
  it('lists and shows transfers as the local CLI prints them', async () => {
    const list = await run(transfersCommand, FULL, ['list', '--sender', 'carol']);
    expect(list.code, list.err).toBe(0);
    expect(list.out).toMatch(new RegExp(`^${t.transferId}\\s+\\S+ \\S+\\s+live\\s`, 'm'));
    const json = JSON.parse((await run(transfersCommand, FULL, ['list', '--json'])).out) as { items: { id: string; sender: string }[] };
    expect(json.items.find((x) => x.id === t.transferId)?.sender).toBe('carol@corp.example');
    const show = await run(transfersCommand, FULL, ['show', t.transferId]);
    expect(show.code, show.err).toBe(0);
    expect(show.out).toContain(`Transfer ${t.transferId}`);
    expect(show.out).toMatch(/subject:\s+Quarterly plan/);
    expect(show.out).toMatch(/^1\s+plan\.pdf\s/m);
    const missing = await run(transfersCommand, FULL, ['show', 'nosuchtransfer']);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/no transfer nosuchtransfer/);
  });

  it('changes a transfer and a rule, audited under the token name, not the shell user', async () => {
    const hold = await run(transfersCommand, FULL, ['hold', t.transferId, '--reason', 'case 42']);
    expect(hold.code, hold.err).toBe(0);
    expect(hold.out).toMatch(new RegExp(`^${t.transferId}: live, on legal hold; expires `));
    expect((await getTransfer(env.db, t.transferId))!.held).toBe(true);
    const before = (await getTransfer(env.db, t.transferId))!.expiresAt;
    expect((await run(transfersCommand, FULL, ['extend', t.transferId, '--by', '2'])).code).toBe(0);
    expect((await getTransfer(env.db, t.transferId))!.expiresAt).toBe(before + 2 * DAY_MS);
    expect((await run(transfersCommand, FULL, ['release', t.transferId])).code).toBe(0);
    const audit = await listAudit(env.db, { transferId: t.transferId, limit: 10 });
    expect(audit.map((a) => a.actor)).toEqual(expect.arrayContaining(['admin:boss']));
    expect(audit.some((a) => a.actor.startsWith('cli:'))).toBe(false);

    const set = await run(rulesCommand, FULL, ['set', 'recipient_domain:partner.example', '--days', '7', '--download-limit', '3']);
    expect(set.code, set.err).toBe(0);
    expect(set.out).toBe('recipient_domain:partner.example: 7 days, 3 downloads per file');
    expect((await run(rulesCommand, FULL, ['list'])).out).toMatch(/^recipient_domain:partner\.example\s+7d\s+3\s+admin:boss\s/m);
    expect((await run(rulesCommand, FULL, ['delete', 'recipient_domain:partner.example'])).out).toBe('recipient_domain:partner.example: deleted');
    const gone = await run(rulesCommand, FULL, ['delete', 'recipient_domain:partner.example']);
    expect([gone.code, gone.err]).toEqual([1, 'ferry rules delete: no rule recipient_domain:partner.example']);
  });

  it('lists the queue', async () => {
    const list = await run(queueIo, FULL, ['list']);
    expect(list.code, list.err).toBe(0);
    expect(list.out).toMatch(new RegExp(`^${queueId}\\s`, 'm'));
    expect(list.out).toContain('421 4.3.2 next hop busy');
    expect(list.out).toMatch(/^1 entry$/m);
  });
});

describe('a read-only token', () => {
  it('lists and shows', async () => {
    expect((await run(transfersCommand, HELP, ['list'])).out).toContain(t.transferId);
    expect((await run(transfersCommand, HELP, ['show', t.transferId])).code).toBe(0);
    expect((await run(rulesCommand, HELP, ['list'])).code).toBe(0);
    expect((await run(queueIo, HELP, ['list'])).out).toContain(queueId);
  });

  it('every change is refused by the server (exit 77), audited, and changes nothing', async () => {
    const tries: [Command, string[]][] = [
      [transfersCommand, ['revoke', t.transferId]],
      [transfersCommand, ['revoke', t.transferId, '--recipient', 'bob@example.net']],
      [transfersCommand, ['extend', t.transferId, '--by', '3']],
      [transfersCommand, ['hold', t.transferId]],
      [transfersCommand, ['release', t.transferId]],
      [transfersCommand, ['delete', t.transferId, '--yes']],
      [rulesCommand, ['set', 'default', '--days', '10']],
      [rulesCommand, ['delete', 'default']],
      [queueIo, ['retry', queueId]],
      [queueIo, ['retry', '--all']],
      [queueIo, ['delete', queueId, '--bounce']],
    ];
    const refusedBefore = (await listAudit(env.db, { action: 'admin_refused', limit: 1000 })).length;
    const transferBefore = await getTransfer(env.db, t.transferId);
    const rulesBefore = await listRules(env.db);
    const queueBefore = await getQueueEntry(env.db, queueId);
    for (const [cmd, args] of tries) {
      const r = await run(cmd, HELP, args);
      expect(r.code, `${args.join(' ')}: ${r.err}`).toBe(77);
      expect(r.err, args.join(' ')).toMatch(/helpdesk has a read-only token/);
    }
    const refused = await listAudit(env.db, { action: 'admin_refused', limit: 1000 });
    expect(refused.length - refusedBefore).toBe(tries.length);
    expect(refused[0]!.actor).toBe('admin:helpdesk');
    expect(await getTransfer(env.db, t.transferId)).toEqual(transferBefore);
    expect(await listRules(env.db)).toEqual(rulesBefore);
    expect(await getQueueEntry(env.db, queueId)).toEqual(queueBefore);
  });
});

describe('the command line', () => {
  // The CLI from the sources, as an admin types it: no configuration file, the token only in
  // the environment. NB asynchronously: the server runs in this process and must keep answering.
  const ferry = (args: string[], extraEnv: Record<string, string>) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        ['--import', pathToFileURL(path.join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href, path.join(ROOT, 'test/admin/run-cli.ts'), ...args],
        { cwd: env.dir, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...extraEnv }, encoding: 'utf8', timeout: 30_000 },
        (err, stdout, stderr) => resolve({ status: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
      );
    });

  it('--server with FERRY_CLI_TOKEN lists; a wrong token is refused (77); no token, plain http elsewhere, or a command that needs the host are usage errors (2)', async () => {
    const ok = await ferry(['transfers', 'list', '--server', server], { FERRY_CLI_TOKEN: HELP });
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(t.transferId);
    // FERRY_CLI_SERVER does the same as --server, and is no "unknown setting".
    const viaEnv = await ferry(['queue', 'list'], { FERRY_CLI_SERVER: server, FERRY_CLI_TOKEN: HELP });
    expect(viaEnv.status, viaEnv.stderr).toBe(0);
    expect(viaEnv.stdout).toContain(queueId);

    const wrong = await ferry(['transfers', 'list', '--server', server], { FERRY_CLI_TOKEN: 'not-a-token-of-this-server-0123456789' });
    expect(wrong.status).toBe(77);
    expect(wrong.stderr).toMatch(/the server refused the token in FERRY_CLI_TOKEN/);
    const noToken = await ferry(['transfers', 'list', '--server', server], {});
    expect(noToken.status).toBe(2);
    expect(noToken.stderr).toMatch(/FERRY_CLI_TOKEN/);
    const clear = await ferry(['transfers', 'list', '--server', 'http://ferry.example.org'], { FERRY_CLI_TOKEN: FULL });
    expect(clear.status).toBe(2);
    expect(clear.stderr).toMatch(/not https; the token would cross the network in clear text/);
    const purge = await ferry(['purge', '--server', server], { FERRY_CLI_TOKEN: FULL });
    expect(purge.status).toBe(2);
    expect(purge.stderr).toMatch(/--server \(FERRY_CLI_SERVER\) goes with transfers, queue, rules/);
  }, 60_000);
});

describe('what a server says', () => {
  it('reaches the terminal without its control characters, and a redirect is not followed (the token stays with the server named)', async () => {
    let hits = 0;
    const evil = http.createServer((req, res) => {
      hits++;
      if (req.url!.startsWith('/admin/api/transfers/x')) {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'FERRY_ERR_X', message: 'bad \u001b]0;owned\u0007 title' } }));
      } else {
        res.writeHead(302, { location: 'http://127.0.0.2:9/steal' }).end();
      }
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', () => r()));
    try {
      const url = `http://127.0.0.1:${(evil.address() as { port: number }).port}`;
      const io = () => {
        const out: string[] = [];
        const err: string[] = [];
        return { out, err, io: { out: (x: string) => out.push(x), err: (x: string) => err.push(x) } };
      };
      const a = io();
      expect(await transfersCommand(AdminApiClient.fromArgs(url, { FERRY_CLI_TOKEN: FULL })!, ['show', 'x'], a.io)).toBe(1);
      expect(a.err.join('')).toBe('ferry transfers show: bad \\x1b]0;owned\\x07 title');
      const b = io();
      expect(await transfersCommand(AdminApiClient.fromArgs(url, { FERRY_CLI_TOKEN: FULL })!, ['list'], b.io)).toBe(1);
      expect(b.err.join('')).toMatch(/redirects to http:\/\/127\.0\.0\.2:9\/steal; give the address Ferry itself serves \(the token is not sent on\)/);
      expect(hits).toBe(2);
    } finally {
      evil.close();
    }
  });
});
