import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, tempDir } from '../helpers/ferry.js';

// A Ferry role in an operating-system process of its own, started the way an admin starts it
// (`ferry gateway --config ferry.yaml`), so that nothing can be shared between nodes except what
// the configuration names: the S3 bucket and the PostgreSQL database.

const ROOT = path.resolve(import.meta.dirname, '..', '..');

export interface FerryProcess {
  child: ChildProcess;
  dir: string;
  smtpPort?: number;
  webPort?: number;
  /** Everything the process wrote to stdout and stderr so far (JSON log lines). */
  output(): string;
  stop(): Promise<void>;
}

export async function spawnFerry(role: 'start' | 'gateway' | 'web' | 'worker', config: Record<string, any>): Promise<FerryProcess> {
  const dir = tempDir(`ferry-${role}-`);
  const smtpPort = role === 'gateway' || role === 'start' ? await freePort() : undefined;
  const full = {
    dataDir: dir,
    log: { level: 'info' },
    // One process per role unless the test says otherwise (a node of several is cli/cluster.ts's, test/ops/cluster.test.ts).
    processes: 1,
    // Receipts to senders off: they would be queued beside the messages a test counts.
    senders: { receipts: 'off' },
    ...config,
    smtp: { host: '127.0.0.1', hostname: 'ferry.test', ...config.smtp, ...(smtpPort && { port: smtpPort }) },
  };
  const file = path.join(dir, 'ferry.yaml');
  // JSON is YAML.
  fs.writeFileSync(file, JSON.stringify(full, null, 2));
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import('./cli/main.ts').then((m) => m.main(process.argv.slice(1)))`, role, '--config', file], {
    cwd: ROOT,
    env: { ...process.env, FERRY_CONFIG: '', NODE_NO_WARNINGS: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (out += d));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`ferry ${role} did not start within 30 s:\n${out}`)), 30_000);
    const check = () => {
      if (/"msg":"Ferry is running"/.test(out)) {
        clearTimeout(t);
        child.stdout!.off('data', check);
        child.off('exit', onExit);
        resolve();
      }
    };
    const onExit = (code: number | null) => {
      clearTimeout(t);
      reject(new Error(`ferry ${role} exited with ${code}:\n${out}`));
    };
    child.stdout!.on('data', check);
    child.once('exit', onExit);
  });
  return {
    child,
    dir,
    smtpPort,
    webPort: config.web?.port,
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
