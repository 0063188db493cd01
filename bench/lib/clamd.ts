import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

// A private clamd for the scanning cost (bench/scenarios/scan.ts), started as the scanning tests
// start theirs (test/gateway/clamd-daemon.ts): Debian's clamav-daemon in the foreground, a Unix
// socket in a temporary directory, and a signature database written here (the EICAR test
// string; no signature download is possible on the bench machine). The stream and file limits
// are raised above the attachment, so the whole file is scanned rather than cut off as too large.

export const CLAMD_BINARY = ['/usr/sbin/clamd', '/usr/bin/clamd'].find((p) => fs.existsSync(p));

/** The EICAR test string, from two halves so this file is not itself a match. */
const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$' + 'EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';

export interface BenchClamd {
  pid: number;
  address: string;
  /** INSTREAM of `data` at full speed, as the only client: seconds until the last byte is sent and until the answer. */
  scanDirect(data: Buffer): Promise<{ sentS: number; answerS: number; answer: string }>;
  stop(): Promise<void>;
}

function ask(socket: string, cmd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socket);
    let b = '';
    s.setEncoding('utf8');
    s.setTimeout(5000, () => s.destroy(new Error('clamd did not answer')));
    s.on('data', (d: string) => (b += d));
    s.on('end', () => resolve(b.replace(/\0$/, '').trim()));
    s.on('error', reject);
    s.write(cmd);
  });
}

export async function startClamd(maxBytes: number): Promise<BenchClamd> {
  if (!CLAMD_BINARY) throw new Error('clamd is not installed (apt-get install clamav-daemon)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-clamd-'));
  const socket = path.join(dir, 'clamd.sock');
  fs.mkdirSync(path.join(dir, 'db'));
  fs.writeFileSync(path.join(dir, 'db', 'bench.ndb'), `Eicar-Test-Signature:0:*:${Buffer.from(EICAR, 'latin1').toString('hex')}\n`);
  const limit = `${Math.ceil((maxBytes * 1.5) / 2 ** 20)}M`;
  fs.writeFileSync(
    path.join(dir, 'clamd.conf'),
    [
      `DatabaseDirectory ${path.join(dir, 'db')}`,
      `LocalSocket ${socket}`,
      'Foreground true',
      `TemporaryDirectory ${dir}`,
      `PidFile ${path.join(dir, 'clamd.pid')}`,
      `LogFile ${path.join(dir, 'clamd.log')}`,
      'SelfCheck 0',
      `StreamMaxLength ${limit}`,
      `MaxFileSize ${limit}`,
      `MaxScanSize ${limit}`,
      '',
    ].join('\n'),
  );
  const proc: ChildProcess = spawn(CLAMD_BINARY, ['-c', path.join(dir, 'clamd.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d) => (err = (err + d).slice(-4000)));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      await new Promise<void>((resolve) => {
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      });
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) {
      await stop();
      throw new Error(`clamd exited: ${err}`);
    }
    if (fs.existsSync(socket) && (await ask(socket, 'zPING\0').catch(() => '')) === 'PONG') break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error('clamd did not start within 60 s');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const scanDirect = async (data: Buffer) => {
    const sock = net.connect(socket);
    const t0 = performance.now();
    const answer = new Promise<string>((resolve, reject) => {
      let b = '';
      sock.setEncoding('utf8');
      sock.setTimeout(600_000, () => sock.destroy(new Error('clamd did not answer within 600 s')));
      sock.on('data', (d: string) => (b += d));
      sock.on('close', () => resolve(b.replace(/\0$/, '').trim()));
      sock.on('error', reject);
    });
    sock.write('zINSTREAM\0');
    for (let off = 0; off < data.length; off += 64 * 1024) {
      const part = data.subarray(off, Math.min(data.length, off + 64 * 1024));
      const len = Buffer.alloc(4);
      len.writeUInt32BE(part.length);
      sock.write(len);
      if (!sock.write(part)) await new Promise((r) => sock.once('drain', r));
    }
    sock.write(Buffer.alloc(4));
    const sentS = (performance.now() - t0) / 1000;
    const text = await answer;
    return { sentS, answerS: (performance.now() - t0) / 1000, answer: text };
  };
  return { pid: proc.pid!, address: `unix:${socket}`, scanDirect, stop };
}

/** CPU seconds (user + system) the process has used so far, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of stat(5) (utime, stime) are at 11 and 12 after the command name; clock
  // ticks are 100 a second on every Linux this runs on (sysconf(_SC_CLK_TCK)).
  return (Number(f[11]) + Number(f[12])) / 100;
}
