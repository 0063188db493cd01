import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readinessCheck } from '../../cli/health.js';
import { startRoles, type RunningRoles } from '../../cli/start.js';
import { loadConfig } from '../../config/index.js';
import { verifyPassword } from '../../gateway/auth.js';
import { hashToken, openStorage } from '../../storage/index.js';
import { freePort, tempDir } from '../helpers/ferry.js';
import { landingLinks, pseudoRandom } from '../helpers/mail.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { Upstream } from '../helpers/upstream.js';
import { hasTool, makeCert } from './helpers.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const run = promisify(execFile);

let upstream: Upstream;
let ferry: RunningRoles;
let publicUrl = '';
const dir = tempDir('ferry-health-');
const lines: Record<string, any>[] = [];

beforeAll(async () => {
  upstream = await new Upstream().start();
  const webPort = await freePort();
  publicUrl = `http://127.0.0.1:${webPort}`;
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir: dir,
      smtp: { host: '127.0.0.1', port: 0, hostname: 'ferry.test' },
      web: { host: '127.0.0.1', port: webPort, publicUrl },
      relay: { url: upstream.url },
      offload: { minAttachmentSize: '100KB' },
      // /readyz gives its reason only where metrics are served (here: the web port too).
      metrics: { onWebPort: true },
    },
  });
  const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
  ferry = await startRoles(config, logger, ['gateway', 'web', 'worker']);
});
afterAll(async () => {
  await ferry?.stop();
  await upstream?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('/healthz and /readyz', () => {
  it('/healthz answers while the process lives; /readyz when storage and SMTP are up', async () => {
    const h = await fetch(`${publicUrl}/healthz`);
    expect([h.status, await h.text()]).toEqual([200, 'ok\n']);
    const r = await fetch(`${publicUrl}/readyz`);
    expect([r.status, await r.text()]).toEqual([200, 'ready\n']);
  });

  it('/readyz is 503 with the reason when the blob store cannot take writes', async () => {
    const blobs = ferry.storage.blobs;
    const check = blobs.check.bind(blobs);
    blobs.check = async () => {
      throw new Error('bucket gone (injected)');
    };
    try {
      const r = await fetch(`${publicUrl}/readyz`);
      expect(r.status).toBe(503);
      expect(await r.text()).toBe('not ready: blob store: bucket gone (injected)\n');
      expect((await fetch(`${publicUrl}/healthz`)).status).toBe(200);
    } finally {
      blobs.check = check;
    }
  });

  it('names the database when it is unreachable, and SMTP when it is not listening', async () => {
    const d = tempDir('ferry-ready-');
    const storage = await openStorage({ blobs: `file:${d}/blobs`, database: `sqlite:${d}/ferry.db` });
    expect(await readinessCheck({ storage, smtpReady: () => false })()).toBe('smtp: not listening');
    expect(await readinessCheck({ storage, smtpReady: () => true })()).toBeUndefined();
    await storage.close();
    expect(await readinessCheck({ storage })()).toMatch(/^database: /);
    fs.rmSync(d, { recursive: true, force: true });
  });
});

describe('logs', () => {
  it('one summary line per SMTP transaction, and download requests logged with a token hash prefix only', async () => {
    const raw = await new MailComposer({
      from: 'alice@example.com',
      to: ['bob@example.net', 'carol@example.org'],
      subject: 'log line',
      text: 'hi',
      attachments: [{ filename: 'a.bin', content: pseudoRandom(200_000, 'log') }],
    })
      .compile()
      .build();
    const c = await RawSmtp.connect(ferry.smtpPort!);
    await c.cmd('EHLO client.test');
    await c.cmd('MAIL FROM:<alice@example.com>');
    await c.cmd('RCPT TO:<bob@example.net>');
    await c.cmd('RCPT TO:<carol@example.org>');
    const reply = await c.data(raw);
    c.close();
    const queueId = /queued as (\w+)/.exec(reply)![1]!;
    const summaries = lines.filter((l) => l.queueId === queueId && l.result);
    expect(summaries).toHaveLength(1);
    const s = summaries[0]!;
    expect(s.msg).toBe(`${queueId}: sent`);
    expect(s).toMatchObject({
      role: 'gateway',
      client: '127.0.0.1',
      from: 'alice@example.com',
      to: ['bob@example.net', 'carol@example.org'],
      bytes: raw.length,
      offloaded: 1,
      offloadedBytes: 200_000,
      result: 'sent',
    });
    expect(s.detail).toMatch(/^250 /); // the next hop's reply
    expect(typeof s.ms).toBe('number');
    expect(typeof s.size).toBe('number'); // what was relayed

    const [landing] = await landingLinks(upstream.messages.at(-1)!.raw, publicUrl);
    const token = new URL(landing!).pathname.split('/')[2]!;
    expect((await fetch(`${landing}/1/a.bin`)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 100));
    const requests = lines.filter((l) => l.msg === 'request completed' && String(l.url).startsWith('/t/'));
    expect(requests.map((l) => l.url)).toContain(`/t/h:${hashToken(token).slice(0, 12)}/1/a.bin`);
    expect(JSON.stringify(lines)).not.toContain(token);
  });
});

const ferryCli = (args: string[], env: Record<string, string> = {}, input?: string) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const child = execFile(
      process.execPath,
      ['--import', pathToFileURL(path.join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href, path.join(ROOT, 'test/ops/run-ferry.ts'), ...args],
      { cwd: dir, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    if (input !== undefined) child.stdin!.end(input);
  });

describe('ferry check-config and hash-password', () => {
  it('hash-password reads the password from stdin and prints a users-file line', async () => {
    const r = await ferryCli(['hash-password', 'alice'], {}, 'pa55 word\n');
    expect(r.code).toBe(0);
    const line = r.stdout.trim();
    expect(line).toMatch(/^alice:\$scrypt\$ln=15,r=8,p=1\$/);
    expect(await verifyPassword('pa55 word', line.slice('alice:'.length))).toBe(true);
  });

  it.skipIf(!hasTool('openssl'))('masks secrets (URL passwords, a PEM key given inline) and checks the certificate and users file', async () => {
    const d = tempDir('ferry-check-');
    const { cert, key } = makeCert(d);
    const users = path.join(d, 'users');
    fs.writeFileSync(users, 'alice:$2b$04$' + 'a'.repeat(53) + '\n');
    const env = {
      FERRY_DATA_DIR: d,
      FERRY_RELAY_URL: 'smtps://relayuser:relay-secret@smtp.example.com:465',
      FERRY_SMTP_TLS_CERT: cert,
      FERRY_SMTP_TLS_KEY: fs.readFileSync(key, 'utf8'),
      FERRY_SMTP_AUTH_USERS_FILE: users,
      FERRY_SMTP_TLS_PORT: '465',
      FERRY_METRICS_PORT: '9464',
      FERRY_SHUTDOWN_TIMEOUT: '45s',
      FERRY_ADMIN_TOKEN: 'admin-token-0123456789-abcdefghij',
    };
    const ok = await ferryCli(['check-config'], env);
    expect(ok.stderr).toMatch(/is valid/);
    expect(ok.code).toBe(0);
    const printed = JSON.parse(ok.stdout);
    expect(printed.relay.url).toBe('smtps://relayuser:***@smtp.example.com:465');
    expect(printed.smtp.tls.key).toBe('***');
    expect(printed.smtp.tls.cert).toBe(cert);
    expect(printed.smtp.tlsPort).toBe(465);
    expect(printed.metrics).toEqual({ onWebPort: false, port: 9464, host: '0.0.0.0' });
    expect(printed.shutdown).toEqual({ timeout: '45s' });
    expect(ok.stdout).not.toContain('relay-secret');
    expect(ok.stdout).not.toContain('PRIVATE KEY');
    expect(printed.admin.token).toBe('***');
    expect(ok.stdout).not.toContain('0123456789');

    fs.writeFileSync(users, 'alice:plaintext-password\n');
    const bad = await ferryCli(['check-config'], env);
    expect(bad.code).toBe(78);
    expect(bad.stderr).toContain(`configuration error: smtp.auth.usersFile ${users} line 1: expected NAME:HASH`);
    expect(bad.stderr).not.toContain('plaintext-password');

    const noTls = await ferryCli(['check-config'], { FERRY_DATA_DIR: d, FERRY_SMTP_AUTH_USERS_FILE: users });
    expect(noTls.code).toBe(78);
    expect(noTls.stderr).toContain('smtp.auth.usersFile needs TLS');
    fs.rmSync(d, { recursive: true, force: true });
  });
});
