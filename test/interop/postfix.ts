import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

// Private Postfix instances for the interop tests: their own config_directory, queue_directory
// and log file in a temp dir, smtpd on a loopback port, no chroot. /etc/postfix and port 25 are
// never touched (the system package is installed with "No configuration").

const run = promisify(execFile);

export const POSTFIX = '/usr/sbin/postfix';
export const SMTP_SINK = '/usr/sbin/smtp-sink';

export function postfixMissing(): string | undefined {
  if (!fs.existsSync(POSTFIX)) return 'postfix is not installed (Debian package postfix, see test/interop/DEBIAN_PACKAGES)';
  if (!fs.existsSync('/etc/postfix/postfix-files')) return 'postfix is installed without /etc/postfix/postfix-files';
  if (!fs.existsSync(SMTP_SINK)) return 'smtp-sink is missing (Debian package postfix)';
  try {
    fs.accessSync('/usr/lib/postfix/sbin/master');
  } catch {
    return 'Postfix daemons not found in /usr/lib/postfix/sbin';
  }
  if (process.getuid?.() !== 0) return 'a private Postfix instance must be started as root (postfix -c DIR start)';
  return undefined;
}

export interface PostfixInstance {
  dir: string;
  port: number;
  log(): string;
  stop(): Promise<void>;
  /** Output of `postqueue -p` for this instance. */
  queue(): Promise<string>;
}

const MASTER_CF = (port: number) => `# service type private unpriv chroot wakeup maxproc command
127.0.0.1:${port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
`;

/**
 * Starts Postfix with `relayhost = [127.0.0.1]:relayPort`: every message it takes on `port`
 * goes to that host (Ferry), as an organisation's MTA with Ferry as its smart host would.
 */
export async function startPostfix(dir: string, port: number, relayPort: number, extra: Record<string, string> = {}, masterExtra = ''): Promise<PostfixInstance> {
  const conf = path.join(dir, 'conf');
  const queue = path.join(dir, 'queue');
  const data = path.join(dir, 'data');
  const logFile = path.join(dir, 'maillog');
  fs.mkdirSync(conf, { recursive: true });
  // The unprivileged daemons (user postfix) must reach the queue through every parent directory;
  // mkdtemp makes them 0700.
  for (let d = dir; d !== path.dirname(d) && d.startsWith(os.tmpdir() + path.sep); d = path.dirname(d)) fs.chmodSync(d, 0o755);
  fs.mkdirSync(queue, { recursive: true });
  fs.mkdirSync(data, { recursive: true });
  fs.chownSync(data, uid('postfix'), gid('postfix'));
  const main: Record<string, string> = {
    compatibility_level: '3.6',
    config_directory: conf,
    queue_directory: queue,
    data_directory: data,
    maillog_file: logFile,
    maillog_file_prefixes: dir,
    syslog_name: `postfix-ferrytest-${port}`,
    mail_owner: 'postfix',
    setgid_group: 'postdrop',
    myhostname: 'mta.ferry-interop.test',
    mydomain: 'ferry-interop.test',
    myorigin: '$myhostname',
    mydestination: '',
    inet_interfaces: '127.0.0.1',
    inet_protocols: 'ipv4',
    mynetworks: '127.0.0.0/8',
    smtpd_relay_restrictions: 'permit_mynetworks, reject_unauth_destination',
    relayhost: `[127.0.0.1]:${relayPort}`,
    smtp_tls_security_level: 'none',
    smtp_dns_support_level: 'disabled',
    alias_maps: '',
    alias_database: '',
    local_recipient_maps: '',
    biff: 'no',
    // Retries would come fast in a test; the second test checks that none is made at all.
    queue_run_delay: '2s',
    minimal_backoff_time: '2s',
    maximal_backoff_time: '4s',
    ...extra,
  };
  fs.writeFileSync(path.join(conf, 'main.cf'), Object.entries(main).map(([k, v]) => `${k} = ${v}`).join('\n') + '\n');
  fs.writeFileSync(path.join(conf, 'master.cf'), MASTER_CF(port) + masterExtra);
  await run(POSTFIX, ['-c', conf, 'start'], { timeout: 60_000 }).catch(async (err: Error) => {
    // postfix prints its fatal errors only to a terminal (and to syslog, absent here): run it
    // again under script(1) to get the reason into the test failure.
    const why = await run('script', ['-qc', `${POSTFIX} -c ${conf} start`, '/dev/null'], { timeout: 60_000 }).then(
      (r) => r.stdout,
      (e: { stdout?: string }) => e.stdout ?? '',
    );
    throw new Error(`postfix -c ${conf} start failed: ${why.trim() || err.message}`);
  });
  return {
    dir,
    port,
    log: () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : ''),
    async stop() {
      await run(POSTFIX, ['-c', conf, 'stop'], { timeout: 60_000 }).catch(() => undefined);
      // postfix stop returns before master is gone; wait for its pid file to go.
      const pid = path.join(queue, 'pid', 'master.pid');
      for (let i = 0; i < 50 && fs.existsSync(pid); i++) await new Promise((r) => setTimeout(r, 100));
    },
    async queue() {
      const r = await run('/usr/sbin/postqueue', ['-c', conf, '-p'], { timeout: 30_000 });
      return r.stdout;
    },
  };
}

function uid(name: string): number {
  const line = fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${name}:`));
  return Number(line?.split(':')[2] ?? 0);
}
function gid(name: string): number {
  const line = fs.readFileSync('/etc/group', 'utf8').split('\n').find((l) => l.startsWith(`${name}:`));
  return Number(line?.split(':')[2] ?? 0);
}

export interface Sink {
  dir: string;
  port: number;
  /** The messages received so far (smtp-sink's dump files), oldest first. */
  messages(): Buffer[];
  stop(): Promise<void>;
}

/** Postfix's smtp-sink on a loopback port, writing every message it accepts to a file in `dir`. */
export async function startSink(dir: string, port: number): Promise<Sink> {
  fs.mkdirSync(dir, { recursive: true });
  fs.chownSync(dir, uid('nobody'), gid('nogroup'));
  // -u nobody: smtp-sink refuses to run as root. -d: one dump file per message.
  const child: ChildProcess = spawn(SMTP_SINK, ['-u', 'nobody', '-d', `${dir}/%H%M%S.`, `127.0.0.1:${port}`, '16'], { stdio: 'ignore' });
  await waitForPort(port);
  return {
    dir,
    port,
    messages: () =>
      fs
        .readdirSync(dir)
        .map((f) => path.join(dir, f))
        .filter((f) => fs.statSync(f).isFile())
        .sort((a, b) => fs.statSync(a).mtimeMs - fs.statSync(b).mtimeMs)
        .map((f) => fs.readFileSync(f)),
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
    },
  };
}

export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const net = await import('node:net');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
