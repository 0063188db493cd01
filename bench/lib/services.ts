import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ferry-child.js';
import { waitForGreeting } from './smtp.js';

// The reference systems, installed and started by the bench itself, each as a private instance:
// Postfix with its own config directory, queue and log in a temp dir and its SMTP listener on a
// free loopback port (never /etc/postfix or port 25), smtp-sink and smtp-source from the same
// package, nginx with its own config and prefix. Everything started here is stopped by stop()
// or, if the bench dies first, by the exit hook below.

const APT_LOCK = '/tmp/ferry-apt.lock';
const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

function run(cmd: string, args: string[], timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: Math.round(timeoutMs), maxBuffer: 16 * 1024 * 1024, env: env ?? process.env }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stdout}${stderr}`.trim()));
      else resolve({ stdout, stderr });
    });
  });
}

function onPath(bin: string): string | undefined {
  for (const dir of ['/usr/sbin', '/usr/bin', '/sbin', '/bin', ...(process.env.PATH ?? '').split(':')]) {
    const p = path.join(dir, bin);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** Debian packages the bench installs when their programs are missing. */
export const NEEDED = { postfix: ['smtp-source', 'smtp-sink', 'postfix'], nginx: ['nginx'], curl: ['curl'] } as const;

/**
 * Installs the packages whose programs are missing, with apt under the shared lock. Postfix is
 * preseeded to "No configuration" so that installing it neither writes /etc/postfix/main.cf
 * nor starts a system mail server: the bench only ever runs its own instance.
 */
export async function ensurePackages(pkgs: (keyof typeof NEEDED)[], log: (m: string) => void): Promise<void> {
  const missing = pkgs.filter((p) => NEEDED[p].some((bin) => !onPath(bin)));
  if (!missing.length) return;
  if (!isRoot() || !onPath('apt-get')) {
    throw new Error(`missing programs of the Debian packages ${missing.join(', ')}; install them: sudo apt-get install --no-install-recommends ${missing.join(' ')}`);
  }
  log(`installing Debian packages: ${missing.join(', ')} (apt-get, under ${APT_LOCK})`);
  if (missing.includes('postfix')) {
    await new Promise<void>((resolve, reject) => {
      const p = spawn('debconf-set-selections', [], { stdio: ['pipe', 'ignore', 'pipe'] });
      p.stdin!.end('postfix postfix/main_mailer_type select No configuration\n');
      p.once('error', reject);
      p.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`debconf-set-selections exited with ${code}`))));
    });
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => run('flock', [APT_LOCK, 'apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...missing], 600_000, env);
  try {
    await install();
  } catch {
    // A fresh machine may have no package lists yet.
    await run('flock', [APT_LOCK, 'apt-get', 'update', '-qq'], 300_000, env);
    await install();
  }
  const still = missing.filter((p) => NEEDED[p].some((bin) => !onPath(bin)));
  if (still.length) throw new Error(`apt-get install ${still.join(' ')} finished but its programs are still missing`);
}

// ---- process bookkeeping ----

const live = new Set<ChildProcess>();
const cleanups = new Set<() => void>();
let hooked = false;
function hookExit() {
  if (hooked) return;
  hooked = true;
  process.once('exit', () => {
    for (const p of live) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    for (const c of cleanups) {
      try {
        c();
      } catch {
        /* best effort */
      }
    }
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));
}

function track(p: ChildProcess): ChildProcess {
  hookExit();
  live.add(p);
  p.once('exit', () => live.delete(p));
  return p;
}

async function stopChild(p: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill(signal);
  const inTime = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), graceMs).unref())]);
  if (!inTime) {
    p.kill('SIGKILL');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000).unref())]);
  }
}

function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  // Postfix daemons run as the postfix user and nginx workers may not be root: they must be
  // able to reach their files inside.
  fs.chmodSync(dir, 0o755);
  return dir;
}

async function waitForPort(port: number, timeoutMs: number, dead: () => string | undefined): Promise<void> {
  const net = await import('node:net');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const why = dead();
    if (why) throw new Error(why);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ port, host: '127.0.0.1' });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
}

// ---- smtp-sink ----

export interface SmtpSink {
  port: number;
  /** Messages received so far (smtp-sink's own counter). */
  count(): number;
  /** Resolves when count() reaches n; rejects after timeoutMs. */
  waitForCount(n: number, timeoutMs: number): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Postfix's smtp-sink: accepts everything, discards it, and with -c prints running counters
 * ("sess=N quit=N mesg=N", separated by \r) that the bench reads as the count of messages that
 * reached the next hop. It refuses to run as root without -u.
 */
export async function startSmtpSink(): Promise<SmtpSink> {
  const port = await freePort();
  const args = [...(isRoot() ? ['-u', 'nobody'] : []), '-c', `127.0.0.1:${port}`, '1024'];
  const p = track(spawn(onPath('smtp-sink') ?? 'smtp-sink', args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  let count = 0;
  let tail = '';
  let exited: string | undefined;
  p.once('exit', (code, sig) => (exited = `smtp-sink exited (${sig ?? code}): ${tail.slice(-500)}`));
  p.stdout!.setEncoding('latin1');
  p.stdout!.on('data', (d: string) => {
    tail = (tail + d).slice(-4096);
    const all = [...tail.matchAll(/mesg=(\d+)/g)];
    if (all.length) count = Math.max(count, Number(all.at(-1)![1]));
  });
  p.stderr!.setEncoding('latin1');
  p.stderr!.on('data', (d: string) => (tail = (tail + d).slice(-4096)));
  try {
    await waitForGreeting(port, 10_000, () => exited);
  } catch (err) {
    await stopChild(p);
    throw err;
  }
  return {
    port,
    count: () => count,
    async waitForCount(n, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (count < n) {
        if (exited) throw new Error(exited);
        if (Date.now() > deadline) throw new Error(`smtp-sink counted ${count} of ${n} messages within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 5));
      }
      return Date.now();
    },
    stop: () => stopChild(p),
  };
}

// ---- smtp-source ----

export interface SmtpSourceOptions {
  port: number;
  sessions: number;
  messages: number;
  /** Payload bytes per message (-l). */
  length: number;
  /** Reuse each connection for several messages (-d) instead of one per message. */
  reuse?: boolean;
  timeoutMs: number;
}

/** Runs Postfix's smtp-source to completion; resolves with its output, rejects on error or timeout. */
export async function runSmtpSource(o: SmtpSourceOptions): Promise<string> {
  const args = ['-s', String(o.sessions), '-m', String(o.messages), '-l', String(o.length), '-f', 'bench@example.com', '-t', 'recipient@example.net', '-M', 'source.bench.invalid'];
  if (o.reuse) args.push('-d');
  args.push(`127.0.0.1:${o.port}`);
  const p = track(spawn(onPath('smtp-source') ?? 'smtp-source', args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  for (const s of [p.stdout!, p.stderr!]) s.on('data', (d: Buffer) => (out = (out + d.toString('latin1')).slice(-8192)));
  const timer = setTimeout(() => p.kill('SIGKILL'), o.timeoutMs);
  const [code, sig] = await new Promise<[number | null, NodeJS.Signals | null]>((r) => p.once('exit', (c, s) => r([c, s])));
  clearTimeout(timer);
  if (code !== 0) throw new Error(`smtp-source ${args.join(' ')} ${sig ? `was killed (${sig}, over ${o.timeoutMs} ms)` : `exited with ${code}`}: ${out.trim().slice(-1000)}`);
  return out;
}

// ---- Postfix ----

export interface PostfixInstance {
  port: number;
  dir: string;
  queueDir: string;
  /** The last lines of its maillog. */
  logTail(): string;
  stop(): Promise<void>;
}

const POSTFIX_SKIP = new Set(['maildrop', 'uucp', 'ifmail', 'bsmtp', 'scalemail-backend', 'mailman']);

/** Debian's stock master.cf with the SMTP listener on 127.0.0.1:port, nothing chrooted, no pipe transports. */
function masterCf(port: number): string {
  const src = fs.readFileSync('/usr/share/postfix/master.cf.dist', 'utf8').split('\n');
  const out: string[] = [];
  let skip = false;
  for (const line of src) {
    if (!line.trim() || line.startsWith('#')) continue;
    if (!/^\s/.test(line)) {
      const f = line.split(/\s+/);
      skip = POSTFIX_SKIP.has(f[0]!);
      if (skip) continue;
      if (f[0] === 'smtp' && f[1] === 'inet') f[0] = `127.0.0.1:${port}`;
      // A chroot would need copies of /etc files in the queue directory.
      if (f[4] === 'y') f[4] = 'n';
      out.push(f.join(' '));
    } else if (!skip) out.push(line);
  }
  return out.join('\n') + '\n';
}

/**
 * A private Postfix relay: accepts from 127.0.0.0/8 and relays everything to 127.0.0.1:relayPort.
 * Stock settings otherwise (queue on disk with fsync, its own process model), since the point
 * is to compare with what an admin would run.
 */
export async function startPostfix(opts: { relayPort: number; messageSizeLimit: number }): Promise<PostfixInstance> {
  if (!isRoot()) throw new Error('a private Postfix instance needs root (its master runs as root and its daemons as the postfix user)');
  const dir = tempDir('ferry-bench-postfix-');
  const conf = path.join(dir, 'conf');
  const queueDir = path.join(dir, 'queue');
  const data = path.join(dir, 'data');
  const maillog = path.join(dir, 'maillog');
  cleanups.add(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const d of [conf, queueDir, data]) fs.mkdirSync(d, { mode: 0o755 });
  const port = await freePort();
  const { stdout: uid } = await run('id', ['-u', 'postfix'], 5000);
  fs.chownSync(data, Number(uid.trim()), -1);
  fs.writeFileSync(
    path.join(conf, 'main.cf'),
    [
      'compatibility_level = 3.6',
      `queue_directory = ${queueDir}`,
      `data_directory = ${data}`,
      'mail_owner = postfix',
      'setgid_group = postdrop',
      'inet_interfaces = 127.0.0.1',
      'inet_protocols = ipv4',
      'myhostname = postfix.bench.invalid',
      'mydestination =',
      'local_recipient_maps =',
      'mynetworks = 127.0.0.0/8',
      'smtpd_relay_restrictions = permit_mynetworks, reject',
      `relayhost = [127.0.0.1]:${opts.relayPort}`,
      'smtp_tls_security_level = none',
      'smtpd_tls_security_level = none',
      `message_size_limit = ${opts.messageSizeLimit}`,
      'mailbox_size_limit = 0',
      // Logging to a file of our own (postlogd); /tmp must be allowed explicitly.
      `maillog_file = ${maillog}`,
      `maillog_file_prefixes = ${dir}`,
      'biff = no',
      '',
    ].join('\n'),
  );
  fs.writeFileSync(path.join(conf, 'master.cf'), masterCf(port));
  const logTail = () => {
    try {
      return fs.readFileSync(maillog, 'utf8').split('\n').slice(-20).join('\n');
    } catch {
      return '(no maillog)';
    }
  };
  // start-fg keeps the master as our child: we see it exit, and its daemons are reaped by it.
  const p = track(spawn('postfix', ['-c', conf, 'start-fg'], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  for (const s of [p.stdout!, p.stderr!]) s.on('data', (d: Buffer) => (out = (out + d.toString('latin1')).slice(-4096)));
  let exited: string | undefined;
  p.once('exit', (code, sig) => (exited = `postfix start-fg exited (${sig ?? code}): ${out}\n${logTail()}`));
  const stop = async () => {
    await run('postfix', ['-c', conf, 'stop'], 30_000).catch(() => undefined);
    await stopChild(p, 'SIGTERM', 15_000);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForGreeting(port, 30_000, () => exited);
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, dir, queueDir, logTail, stop };
}

// ---- nginx ----

export interface NginxInstance {
  port: number;
  /** The master's pid (its workers are its children). */
  pid: number;
  /** URL of a file under the served root. */
  url(relative: string): string;
  stop(): Promise<void>;
}

/** nginx serving `root` at /files/ on a loopback port, with the Debian package's defaults for static files (sendfile on). */
export async function startNginx(root: string): Promise<NginxInstance> {
  const dir = tempDir('ferry-bench-nginx-');
  cleanups.add(() => fs.rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const conf = path.join(dir, 'nginx.conf');
  fs.writeFileSync(
    conf,
    `# private instance of the Ferry bench
${isRoot() ? 'user root;' : ''}
worker_processes auto;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 65;
  default_type application/octet-stream;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port};
    location /files/ { alias ${root.replace(/\/+$/, '')}/; }
  }
}
`,
  );
  const p = track(spawn(onPath('nginx') ?? 'nginx', ['-p', dir, '-c', conf, '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  for (const s of [p.stdout!, p.stderr!]) s.on('data', (d: Buffer) => (out = (out + d.toString('latin1')).slice(-4096)));
  let exited: string | undefined;
  p.once('exit', (code, sig) => (exited = `nginx exited (${sig ?? code}): ${out}`));
  const stop = async () => {
    // SIGQUIT: graceful shutdown of master and workers.
    await stopChild(p, 'SIGQUIT', 10_000);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForPort(port, 10_000, () => exited);
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, pid: p.pid!, url: (rel) => `http://127.0.0.1:${port}/files/${rel.split('/').map(encodeURIComponent).join('/')}`, stop };
}

// ---- curl ----

export interface Transfer {
  status: number;
  bytes: number;
  /** Seconds from the start of the transfer to the first response byte (curl's time_starttransfer). */
  ttfb: number;
  total: number;
}

/**
 * Downloads with curl, the same client for Ferry and nginx, bodies to /dev/null. Several URLs
 * run in parallel (one curl process, --parallel); each transfer may bind its own loopback
 * source address, so that many downloads look like many recipients rather than one address
 * hammering the service (Ferry limits requests per client address).
 */
export async function curlDownloads(items: { url: string; from?: string }[], timeoutMs: number): Promise<{ wallMs: number; transfers: Transfer[] }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-curl-'));
  try {
    const cfg = path.join(dir, 'curl.cfg');
    const writeOut = '%{http_code} %{size_download} %{time_starttransfer} %{time_total}\\n';
    fs.writeFileSync(
      cfg,
      items
        .map((it) => [`url = "${it.url}"`, 'output = "/dev/null"', it.from ? `interface = "${it.from}"` : '', `write-out = "${writeOut}"`, `max-time = ${Math.ceil(timeoutMs / 1000)}`].filter(Boolean).join('\n'))
        .join('\nnext\n') + '\n',
    );
    const args = ['--no-progress-meter', '-A', 'ferry-bench (curl)', ...(items.length > 1 ? ['--parallel', '--parallel-max', String(Math.min(items.length, 300))] : []), '-K', cfg];
    const t0 = process.hrtime.bigint();
    const { stdout } = await run('curl', args, timeoutMs + 10_000);
    const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const transfers = stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [status, bytes, ttfb, total] = l.trim().split(/\s+/).map(Number);
        return { status: status!, bytes: bytes!, ttfb: ttfb!, total: total! };
      });
    return { wallMs, transfers };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
