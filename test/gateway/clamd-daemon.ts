import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { tempDir } from '../helpers/ferry.js';

// A private clamd for the scanning tests (Debian's clamav-daemon): a temporary DatabaseDirectory
// with a signature database the test writes itself (the EICAR test string and one custom
// signature; no signature download happens here), a Unix socket in the temp directory,
// Foreground, and a small StreamMaxLength so the "too large" case is cheap.

export const CLAMD = ['/usr/sbin/clamd', '/usr/bin/clamd'].find((p) => fs.existsSync(p));
export const clamdSkip = CLAMD ? '' : 'skipped: clamd not installed (apt-get install clamav-daemon; see test/gateway/DEBIAN_PACKAGES)';
/** sigtool (package clamav) builds the versioned database of Clamd.start({ versioned: true }). */
export const SIGTOOL = ['/usr/bin/sigtool'].find((p) => fs.existsSync(p));
export const sigtoolSkip = SIGTOOL ? '' : 'skipped: sigtool not installed (apt-get install clamav; see test/gateway/DEBIAN_PACKAGES)';

/** The EICAR anti-virus test file, built from two halves so this source file is not itself a match. */
export const EICAR = Buffer.from('X5O!P%@AP[4\\PZX54(P^)7CC)7}$' + 'EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*', 'latin1');
/** Bytes the test's custom signature (Ferry-Test-Custom) matches. */
export const CUSTOM = Buffer.from('FERRY-CUSTOM-' + 'MALWARE-SAMPLE', 'latin1');
/** A marker only the signature added later (Ferry-Test-Late) matches. */
export const LATE = Buffer.from('FERRY-LATE-' + 'SIGNATURE-SAMPLE', 'latin1');

const hex = (b: Buffer) => b.toString('hex');
const BASE_SIGNATURES = `Eicar-Test-Signature:0:*:${hex(EICAR)}\nFerry-Test-Custom:0:*:${hex(CUSTOM)}\n`;
const LATE_SIGNATURE = `Ferry-Test-Late:0:*:${hex(LATE)}\n`;

/**
 * An unsigned daily database (daily.cud, `sigtool --unsigned`) of the given version. clamd takes
 * the version part of its VERSION answer ("ClamAV 1.4.6/2/Wed Dec  2 ...") from the daily
 * database's header, as after a freshclam update: loose .ndb files leave it out, so with them a
 * signature update cannot be seen in the version at all.
 */
function buildDaily(dbDir: string, version: number, signatures: string): void {
  const build = tempDir('ferry-sigtool-');
  try {
    fs.writeFileSync(path.join(build, 'daily.ndb'), signatures);
    fs.writeFileSync(path.join(build, 'COPYING'), 'Test signatures written by Ferry\'s test suite.\n');
    const r = spawnSync(SIGTOOL!, ['--build=daily.cud', '--unsigned', `--cvd-version=${version}`, '--no-cdiff', `--datadir=${build}`], { cwd: build, input: 'ferry-test\n', encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0 || !fs.existsSync(path.join(build, 'daily.cud'))) throw new Error(`sigtool could not build daily.cud: ${r.stderr}${r.stdout}`);
    // Renamed into place, so a clamd reloading meanwhile never reads half a file.
    fs.copyFileSync(path.join(build, 'daily.cud'), path.join(dbDir, 'daily.cud.new'));
    fs.renameSync(path.join(dbDir, 'daily.cud.new'), path.join(dbDir, 'daily.cud'));
  } finally {
    fs.rmSync(build, { recursive: true, force: true });
  }
}

export class Clamd {
  readonly socket: string;
  private proc: ChildProcess | undefined;
  /** The daily database's version when versioned (Clamd.start({ versioned: true })). */
  private dailyVersion = 0;

  private constructor(
    readonly dir: string,
    readonly streamMaxLength: string,
  ) {
    this.socket = path.join(dir, 'clamd.sock');
  }

  get address(): string {
    return `unix:${this.socket}`;
  }

  /** `versioned`: the signatures in a daily database of version 1, so that VERSION changes with addLateSignature(). */
  static async start(opts: { streamMaxLength?: string; versioned?: boolean } = {}): Promise<Clamd> {
    const c = new Clamd(tempDir('ferry-clamd-'), opts.streamMaxLength ?? '2M');
    fs.mkdirSync(path.join(c.dir, 'db'));
    if (opts.versioned) {
      c.dailyVersion = 1;
      buildDaily(path.join(c.dir, 'db'), c.dailyVersion, BASE_SIGNATURES);
    } else {
      fs.writeFileSync(path.join(c.dir, 'db', 'ferry-test.ndb'), BASE_SIGNATURES);
    }
    fs.writeFileSync(
      path.join(c.dir, 'clamd.conf'),
      [
        `DatabaseDirectory ${path.join(c.dir, 'db')}`,
        `LocalSocket ${c.socket}`,
        'Foreground true',
        `StreamMaxLength ${c.streamMaxLength}`,
        `TemporaryDirectory ${c.dir}`,
        `PidFile ${path.join(c.dir, 'clamd.pid')}`,
        `LogFile ${path.join(c.dir, 'clamd.log')}`,
        'SelfCheck 0',
        // Running as root in CI: stay root (no User switch), so the temp directory stays readable.
        '',
      ].join('\n'),
    );
    c.proc = spawn(CLAMD!, ['-c', path.join(c.dir, 'clamd.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.proc.stderr!.on('data', (d) => (err += d));
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (c.proc.exitCode !== null) throw new Error(`clamd exited: ${err}${fs.existsSync(path.join(c.dir, 'clamd.log')) ? fs.readFileSync(path.join(c.dir, 'clamd.log'), 'utf8') : ''}`);
      if (fs.existsSync(c.socket)) {
        try {
          if ((await c.command('zPING\0')) === 'PONG') return c;
        } catch {
          /* not listening yet */
        }
      }
      if (Date.now() > deadline) throw new Error('clamd did not start within 60 s');
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  command(cmd: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const s = net.connect(this.socket);
      let b = '';
      s.setEncoding('utf8');
      s.on('data', (d: string) => (b += d));
      s.on('end', () => resolve(b.replace(/\0$/, '').trim()));
      s.on('error', reject);
      s.write(cmd);
    });
  }

  /**
   * Adds the "late" signature, RELOADs clamd and waits until it is in force. Versioned: as a
   * signature update does, a daily database one version newer that has it (VERSION changes);
   * else a loose .ndb file (VERSION stays the same).
   */
  async addLateSignature(): Promise<void> {
    if (this.dailyVersion) buildDaily(path.join(this.dir, 'db'), ++this.dailyVersion, BASE_SIGNATURES + LATE_SIGNATURE);
    else fs.writeFileSync(path.join(this.dir, 'db', 'ferry-late.ndb'), LATE_SIGNATURE);
    await this.command('zRELOAD\0');
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (/FOUND/.test(await this.scanBytes(LATE).catch(() => ''))) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error('clamd did not load the new signature');
  }

  /** clamd's VERSION answer, e.g. "ClamAV 1.4.6/2/Wed Dec  2 09:46:08 2026". */
  version(): Promise<string> {
    return this.command('zVERSION\0');
  }

  /** INSTREAM of a small buffer, as clamdscan would (test-side check, independent of Ferry's client). */
  scanBytes(b: Buffer): Promise<string> {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    return this.command(Buffer.concat([Buffer.from('zINSTREAM\0'), len, b, Buffer.alloc(4)]) as unknown as string);
  }

  async stop(): Promise<void> {
    if (this.proc && this.proc.exitCode === null) {
      const p = this.proc;
      await new Promise<void>((resolve) => {
        p.once('exit', () => resolve());
        p.kill('SIGTERM');
      });
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A deflated zip archive of the given files, made with the zip tool (clamd unpacks archives); undefined without zip. */
export function zipOf(files: [string, Buffer][]): Buffer | undefined {
  const d = tempDir('ferry-zip-');
  try {
    for (const [name, content] of files) fs.writeFileSync(path.join(d, name), content);
    const r = spawnSync('zip', ['-q', '-9', 'out.zip', ...files.map(([n]) => n)], { cwd: d });
    if (r.status !== 0) return undefined;
    return fs.readFileSync(path.join(d, 'out.zip'));
  } catch {
    return undefined;
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
}

export const CICAP = ['/usr/bin/c-icap'].find((p) => fs.existsSync(p));
const CICAP_MODULES = ['/usr/lib/x86_64-linux-gnu/c_icap', '/usr/lib/c_icap'].find((d) => fs.existsSync(path.join(d, 'virus_scan.so')));
export const cicapSkip = !CICAP
  ? 'skipped: c-icap not installed (apt-get install c-icap libc-icap-mod-virus-scan)'
  : !CICAP_MODULES
    ? 'skipped: the c-icap virus_scan module is missing (apt-get install libc-icap-mod-virus-scan)'
    : '';

/** c-icap with its virus_scan service, using the given clamd through clamd_mod, on a loopback port. */
export class CIcap {
  private proc: ChildProcess | undefined;
  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  get url(): string {
    // mode=simple: the verdict comes after the whole file (docs/scanning.md).
    return `icap://127.0.0.1:${this.port}/virus_scan?allow204=on&mode=simple`;
  }

  static async start(clamd: Clamd, port: number): Promise<CIcap> {
    const c = new CIcap(tempDir('ferry-cicap-'), port);
    const conf = [
      `PidFile ${c.dir}/c-icap.pid`,
      `CommandsSocket ${c.dir}/c-icap.ctl`,
      'StartServers 1',
      'MaxServers 2',
      'ThreadsPerChild 4',
      `Port 127.0.0.1:${port}`,
      `TmpDir ${c.dir}`,
      `ModulesDir ${CICAP_MODULES}`,
      `ServicesDir ${CICAP_MODULES}`,
      'TemplateDir /usr/share/c_icap/templates/',
      ...(fs.existsSync('/etc/c-icap/c-icap.magic') ? ['LoadMagicFile /etc/c-icap/c-icap.magic'] : []),
      `ServerLog ${c.dir}/server.log`,
      `AccessLog ${c.dir}/access.log`,
      'Module common clamd_mod.so',
      `clamd_mod.ClamdSocket ${clamd.socket}`,
      'Service virus_scan virus_scan.so',
      'virus_scan.ScanFileTypes TEXT DATA EXECUTABLE ARCHIVE GIF JPEG MSOFFICE',
      'virus_scan.MaxObjectSize 5M',
      '',
    ].join('\n');
    fs.writeFileSync(path.join(c.dir, 'c-icap.conf'), conf);
    c.proc = spawn(CICAP!, ['-N', '-f', path.join(c.dir, 'c-icap.conf')], { stdio: 'ignore' });
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (c.proc.exitCode !== null) throw new Error(`c-icap exited (${c.proc.exitCode}); see ${c.dir}/server.log`);
      const up = await new Promise<boolean>((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port }, () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      });
      if (up) return c;
      if (Date.now() > deadline) throw new Error('c-icap did not start within 30 s');
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop(): Promise<void> {
    if (this.proc && this.proc.exitCode === null) {
      const p = this.proc;
      await new Promise<void>((resolve) => {
        p.once('exit', () => resolve());
        p.kill('SIGTERM');
      });
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
