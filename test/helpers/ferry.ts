import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { loadConfig } from '../../config/index.js';
import { startAll, type RunningFerry } from '../../cli/start.js';

// Starts a whole Ferry (gateway + web, fs blobs + SQLite) in this process on free loopback
// ports and a fresh data directory.

export interface TestFerry extends RunningFerry {
  dir: string;
  publicUrl: string;
  outbox: string;
  stopAndClean(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export function tempDir(prefix = 'ferry-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export async function startFerry(overrides: Record<string, any> = {}): Promise<TestFerry> {
  const dir = tempDir();
  const webPort = await freePort();
  const publicUrl = `http://127.0.0.1:${webPort}`;
  const base = {
    dataDir: dir,
    smtp: { host: '127.0.0.1', port: 0, hostname: 'ferry.test' },
    web: { host: '127.0.0.1', port: webPort, publicUrl },
    log: { level: process.env.FERRY_TEST_LOG ?? 'silent' },
    // Receipts to the sender (on by default, issue 17) would reach the test's next hop beside the
    // message a test counts; the tests of receipts turn them on.
    senders: { receipts: 'off' },
  };
  const merged = deepMerge(base, overrides);
  const config = loadConfig({ env: {}, overrides: merged });
  const logger = pino({ level: config.log.level });
  const running = await startAll(config, logger);
  return {
    ...running,
    dir,
    publicUrl,
    outbox: path.join(dir, 'outbox'),
    async stopAndClean() {
      await running.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function deepMerge(a: Record<string, any>, b: Record<string, any>): Record<string, any> {
  const out: Record<string, any> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && a[k] && typeof a[k] === 'object' ? deepMerge(a[k], v) : v;
  }
  return out;
}

/** Every file under `dir`, recursively (blob and spool checks). */
export function listFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listFiles(p));
    else out.push(p);
  }
  return out;
}
