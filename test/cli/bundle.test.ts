import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { afterAll, describe, expect, it } from 'vitest';
import { whyStale } from '../../scripts/build-stale.mjs';
import { tempDir } from '../helpers/ferry.js';

// What `npm start` runs is the bundle scripts/build.mjs writes (dist/cli/main.js, the workers'
// dist/cli/node-worker.js, shared chunks beside them), not the TypeScript the other tests load
// through tsx. This runs it as an admin does: two worker processes, a message through SMTP, the
// health page, SIGTERM.

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const MAIN = path.join(ROOT, 'dist', 'cli', 'main.js');
const stale = whyStale(ROOT);
if (stale) console.log(`test/cli/bundle.test.ts: skipped: ${stale} (run \`npm run build\`)`);

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe.skipIf(!!stale)('the built CLI (bundle)', () => {
  it('is one file per entry plus shared chunks, with every lazily loaded part a chunk of its own', () => {
    const files = fs.readdirSync(path.dirname(MAIN));
    expect(files).toContain('node-worker.js');
    // tsc's layout had one file per source module (cli/start.js, gateway/..., web/...): gone.
    expect(fs.existsSync(path.join(ROOT, 'dist', 'gateway'))).toBe(false);
    // The S3 SDK and pg stay outside (loaded from node_modules only when configured).
    for (const f of files.filter((f) => f.endsWith('.js'))) expect(fs.readFileSync(path.join(path.dirname(MAIN), f), 'utf8')).not.toMatch(/class S3Client\b|class Pool extends/);
    expect(files.filter((f) => f.endsWith('.js')).length).toBeGreaterThan(10);
  });

  it('`ferry start` with two processes: both workers come up, a message is relayed, /healthz answers, SIGTERM ends it', async () => {
    const dir = tempDir('ferry-bundle-');
    dirs.push(dir);
    const smtpPort = await freePort();
    const webPort = await freePort();
    const env = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      FERRY_DATA_DIR: path.join(dir, 'data'),
      FERRY_SMTP_HOST: '127.0.0.1',
      FERRY_SMTP_PORT: String(smtpPort),
      FERRY_WEB_HOST: '127.0.0.1',
      FERRY_WEB_PORT: String(webPort),
      FERRY_PROCESSES: '2',
      FERRY_SENDERS_RECEIPTS: 'off',
    };
    const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'ferry.js'), 'start'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`not running within 60 s; stderr: ${err.slice(-800)}`)), 60_000);
        const check = () => {
          if (out.includes('"msg":"Ferry is running"')) {
            clearTimeout(timer);
            resolve();
          }
        };
        child.stdout.on('data', check);
        void exited.then((code) => reject(new Error(`exited with ${code}: ${err.slice(-800)}${out.slice(-800)}`)));
      });
      const running = JSON.parse(out.split('\n').find((l) => l.includes('"msg":"Ferry is running"'))!) as { processes: number; pids: number[] };
      expect(running.processes).toBe(2);
      expect(new Set(running.pids).size).toBe(2);

      const health = await fetch(`http://127.0.0.1:${webPort}/healthz`);
      expect(health.status).toBe(200);

      const transport = nodemailer.createTransport({ host: '127.0.0.1', port: smtpPort, secure: false, ignoreTLS: true });
      const info = await transport.sendMail({
        from: 'alice@example.com',
        to: 'bob@example.net',
        subject: 'Through the bundle',
        text: 'Hello from the built CLI.',
      });
      transport.close();
      expect(info.response).toMatch(/^250 /);
      const outbox = path.join(dir, 'data', 'outbox');
      const relayed = fs.readdirSync(outbox).map((f) => fs.readFileSync(path.join(outbox, f), 'latin1'));
      expect(relayed.some((m) => m.includes('Subject: Through the bundle') && m.includes('Hello from the built CLI.'))).toBe(true);
    } finally {
      if (child.exitCode === null) child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  }, 120_000);
});
