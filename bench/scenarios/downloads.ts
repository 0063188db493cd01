import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findFileLinks } from '../lib/download.js';
import { startFerryChild, type FerryChild } from '../lib/ferry-child.js';
import { sendOne } from '../lib/load.js';
import { generateMessage } from '../lib/message.js';
import { MiB, procAvailable, readTreeCpuMs, readTreeMemory, resetPeak } from '../lib/proc.js';
import { formatProfile, summariseProfileDir, type ProfileSummary } from '../lib/profile.js';
import { flag, num, type ScenarioDef } from '../lib/registry.js';
import { environment, summarise, type ScenarioReport } from '../lib/report.js';
import { curlDownloads, startNginx, type NginxInstance, type Transfer } from '../lib/services.js';

// Scenario 4, downloads: the same file served by Ferry (filesystem driver, proxy mode: landing
// page link -> /t/<token>/<n>/<name>) and by nginx serving Ferry's own blob file from disk
// (sendfile), fetched by the same client (curl, bodies to /dev/null) in interleaved rounds:
// one 1 GiB download, then 100 concurrent downloads of a 10 MiB file. Each of the 100 comes from
// its own loopback address (127.0.1.x), as 100 recipients would: Ferry limits requests per
// client address, nginx as configured here does not.

const MB = 1e6;

function blobOfSize(root: string, size: number): string | undefined {
  let found: string | undefined;
  let seen = 0;
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (found || ++seen > 100_000) return;
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && fs.statSync(p).size === size) found = p;
    }
  };
  walk(root);
  return found;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export const downloadsScenario: ScenarioDef = {
  name: 'downloads',
  summary: 'downloads: a 1 GiB file and 100 concurrent 10 MiB downloads, Ferry (fs) vs nginx, MB/s and time to first byte',
  inDefault: true,
  needs: ['nginx', 'curl'],
  unavailable: () => (procAvailable() ? undefined : 'no /proc (Linux only)'),
  options: {
    'file-mib': { kind: 'number', min: 1, max: 8192, help: 'size of the single large download in MiB (default 1024)' },
    parallel: { kind: 'int', min: 1, max: 250, help: 'concurrent downloads (default 100)' },
    'parallel-mib': { kind: 'number', min: 0.1, max: 1024, help: 'size of each concurrent download in MiB (default 10)' },
    rounds: { kind: 'int', min: 1, max: 50, help: 'interleaved rounds (default 5)' },
    profile: { kind: 'flag', help: "run Ferry under node --cpu-prof and print where its time went (slows Ferry: its figures are then not comparable)" },
    processes: { kind: 'int', min: 1, max: 64, help: "Ferry's processes setting (default: Ferry's own, one per core)" },
  },
  async run(o, ctx): Promise<ScenarioReport> {
    const started = new Date();
    const bigSize = Math.round(num(o, 'file-mib', 1024) * MiB);
    const parallel = num(o, 'parallel', 100);
    const smallSize = Math.round(num(o, 'parallel-mib', 10) * MiB);
    const rounds = num(o, 'rounds', 5);
    const bigTimeout = 60_000 + (bigSize / (10 * MB)) * 1000;
    const parTimeout = 60_000 + ((parallel * smallSize) / (10 * MB)) * 1000;

    let ferry: FerryChild | undefined;
    let nginx: NginxInstance | undefined;
    const v = {
      bigMBps: { Ferry: [] as number[], nginx: [] as number[] },
      bigTtfb: { Ferry: [] as number[], nginx: [] as number[] },
      bigCpu: { Ferry: [] as number[], nginx: [] as number[] },
      parMBps: { Ferry: [] as number[], nginx: [] as number[] },
      parP50: { Ferry: [] as number[], nginx: [] as number[] },
      parP99: { Ferry: [] as number[], nginx: [] as number[] },
      parCpu: { Ferry: [] as number[], nginx: [] as number[] },
      ferryRss: [] as number[],
    };
    const errors: string[] = [];
    const profDir = flag(o, 'profile') ? fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-prof-')) : undefined;
    let profile: ProfileSummary | undefined;
    try {
      // A low threshold so that a small --parallel-mib is offloaded too (10 MiB is at the default).
      ferry = await startFerryChild({ maxMessageSize: Math.ceil(bigSize * 1.45), minAttachmentSize: Math.min(smallSize, 5_000_000),
        nodeFlags: profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [],
        ...(o.processes !== undefined ? { env: { FERRY_PROCESSES: String(num(o, 'processes', 1)) } } : {}),
      });
      // The two files arrive the way every file does: by SMTP, then the link from the landing page.
      const links: Record<'big' | 'small', string> = { big: '', small: '' };
      for (const [k, size] of [['big', bigSize], ['small', smallSize]] as const) {
        const t = await sendOne(ferry.smtpPort, generateMessage({ attachmentSize: size, seed: `downloads-${k}` }));
        if (!t.reply.startsWith('250')) throw new Error(`Ferry refused the ${k} message: ${t.reply}`);
        ctx.log(`stored a ${(size / MiB).toFixed(0)} MiB file in ${(t.totalMs / 1000).toFixed(1)} s`);
      }
      for (const f of fs.readdirSync(ferry.outboxDir).filter((x) => x.endsWith('.eml'))) {
        const fd = fs.openSync(path.join(ferry.outboxDir, f), 'r');
        const head = Buffer.alloc(Math.min(1024 * 1024, fs.fstatSync(fd).size));
        fs.readSync(fd, head, 0, head.length, 0);
        fs.closeSync(fd);
        for (const l of await findFileLinks(head, ferry.publicUrl)) {
          if (l.endsWith(`bench-${bigSize}.bin`)) links.big = l;
          if (l.endsWith(`bench-${smallSize}.bin`)) links.small = l;
        }
      }
      if (!links.big || !links.small) throw new Error(`download links not found in the relayed messages (${JSON.stringify(links)})`);
      const bigBlob = blobOfSize(ferry.blobsDir, bigSize);
      const smallBlob = blobOfSize(ferry.blobsDir, smallSize);
      if (!bigBlob || !smallBlob) throw new Error(`the stored files were not found under ${ferry.blobsDir} (the filesystem driver stores each file whole)`);
      nginx = await startNginx(ferry.blobsDir);
      const urls = {
        Ferry: { big: links.big, small: links.small },
        nginx: { big: nginx.url(path.relative(ferry.blobsDir, bigBlob)), small: nginx.url(path.relative(ferry.blobsDir, smallBlob)) },
      };
      ctx.log(`Ferry ${urls.Ferry.big}\n         nginx ${urls.nginx.big}`);

      const check = (what: string, ts: Transfer[], size: number, n: number) => {
        const bad = ts.filter((t) => t.status !== 200 || t.bytes !== size);
        if (ts.length !== n || bad.length) throw new Error(`${what}: ${n - ts.length + bad.length} of ${n} downloads failed (${bad[0] ? `HTTP ${bad[0].status}, ${bad[0].bytes} bytes` : 'missing'})`);
      };
      // CPU time of the server's processes per GiB served: the cost of the bytes, which unlike
      // MB/s does not move with the load of a shared machine (curl's share is not in it).
      const serverPid = { Ferry: ferry.pid, nginx: nginx.pid };
      const cpuPerGiB = (sys: 'Ferry' | 'nginx', before: number, bytes: number) => (readTreeCpuMs(serverPid[sys]) - before) / (bytes / 2 ** 30);

      // Warm-up: both read the same files, now in the page cache for both.
      await curlDownloads([{ url: urls.Ferry.small, from: '127.0.3.1' }, { url: urls.nginx.small, from: '127.0.3.1' }], parTimeout);

      for (let r = 1; r <= rounds; r++) {
        for (const sys of ['Ferry', 'nginx'] as const) {
          try {
            const cpu0 = readTreeCpuMs(serverPid[sys]);
            const { transfers } = await curlDownloads([{ url: urls[sys].big, from: `127.0.2.${r}` }], bigTimeout);
            check(`${sys} 1 file`, transfers, bigSize, 1);
            const t = transfers[0]!;
            v.bigMBps[sys].push(bigSize / MB / t.total);
            v.bigTtfb[sys].push(t.ttfb * 1000);
            v.bigCpu[sys].push(cpuPerGiB(sys, cpu0, bigSize));
            ctx.log(
              `round ${r}/${rounds} ${sys} ${(bigSize / MiB).toFixed(0)} MiB: ${(bigSize / MB / t.total).toFixed(0)} MB/s, first byte after ${(t.ttfb * 1000).toFixed(1)} ms, CPU ${v.bigCpu[sys].at(-1)!.toFixed(0)} ms/GiB`,
            );
          } catch (err) {
            v.bigMBps[sys].push(NaN);
            v.bigTtfb[sys].push(NaN);
            v.bigCpu[sys].push(NaN);
            errors.push(`round ${r} ${sys} large download: ${(err as Error).message}`);
            ctx.log(`round ${r}/${rounds} ${sys} large download FAILED: ${(err as Error).message}`);
          }
        }
        for (const sys of ['Ferry', 'nginx'] as const) {
          try {
            if (sys === 'Ferry') resetPeak(ferry.pid);
            const items = Array.from({ length: parallel }, (_, i) => ({ url: urls[sys].small, from: `127.0.1.${i + 1}` }));
            const cpu0 = readTreeCpuMs(serverPid[sys]);
            const { wallMs, transfers } = await curlDownloads(items, parTimeout);
            v.parCpu[sys].push(cpuPerGiB(sys, cpu0, parallel * smallSize));
            check(`${sys} ${parallel} at once`, transfers, smallSize, parallel);
            if (sys === 'Ferry') v.ferryRss.push(readTreeMemory(ferry.pid).hwm / MB);
            const ttfb = transfers.map((t) => t.ttfb * 1000);
            // Aggregate rate over the wall time of the whole batch (one curl process; its own
            // start-up is a few ms of a second or more).
            const span = wallMs / 1000;
            v.parMBps[sys].push((parallel * smallSize) / MB / span);
            v.parP50[sys].push(percentile(ttfb, 50));
            v.parP99[sys].push(percentile(ttfb, 99));
            ctx.log(
              `round ${r}/${rounds} ${sys} ${parallel} x ${(smallSize / MiB).toFixed(0)} MiB: ${v.parMBps[sys].at(-1)!.toFixed(0)} MB/s together (curl wall ${(wallMs / 1000).toFixed(2)} s), first byte p50 ${percentile(ttfb, 50).toFixed(1)} ms, p99 ${percentile(ttfb, 99).toFixed(1)} ms, CPU ${v.parCpu[sys].at(-1)!.toFixed(0)} ms/GiB`,
            );
          } catch (err) {
            for (const k of ['parMBps', 'parP50', 'parP99', 'parCpu'] as const) if (v[k][sys].length < r) v[k][sys].push(NaN);
            if (sys === 'Ferry') v.ferryRss.push(NaN);
            errors.push(`round ${r} ${sys} concurrent downloads: ${(err as Error).message}`);
            ctx.log(`round ${r}/${rounds} ${sys} concurrent downloads FAILED: ${(err as Error).message}`);
          }
        }
        if (ferry.exitReason()) throw new Error(`${ferry.exitReason()}\n${ferry.logTail()}`);
      }
    } finally {
      await nginx?.stop();
      await ferry?.stop();
      if (profDir) {
        profile = summariseProfileDir(profDir);
        if (!profile) errors.push('profile: the profiled Ferry wrote no .cpuprofile');
        fs.rmSync(profDir, { recursive: true, force: true });
      }
    }
    const pair = (x: { Ferry: number[]; nginx: number[] }) => [
      { system: 'Ferry', values: x.Ferry },
      { system: 'nginx', values: x.nginx },
    ];
    const bigLabel = `${(bigSize / MiB).toFixed(0)} MiB`;
    const parLabel = `${parallel} x ${(smallSize / MiB).toFixed(0)} MiB at once`;
    return {
      scenario: 'downloads',
      title: 'Scenario 4: downloads, Ferry (filesystem driver) vs nginx, same file, curl on loopback',
      started: started.toISOString(),
      finished: new Date().toISOString(),
      environment: environment(),
      options: { fileBytes: bigSize, parallel, parallelBytes: smallSize, rounds },
      metrics: [
        summarise({ id: 'big-mbps', title: `one ${bigLabel} download`, unit: 'MB/s', better: 'higher', subject: 'Ferry', target: 'Ferry >= 0.8x nginx', series: pair(v.bigMBps) }),
        summarise({ id: 'big-cpu', title: `one ${bigLabel} download, CPU time of the server's processes per GiB`, unit: 'ms/GiB', better: 'lower', subject: 'Ferry', series: pair(v.bigCpu) }),
        summarise({ id: 'big-ttfb', title: `one ${bigLabel} download, time to first byte`, unit: 'ms', better: 'lower', subject: 'Ferry', series: pair(v.bigTtfb) }),
        summarise({ id: 'par-mbps', title: `${parLabel}, together`, unit: 'MB/s', better: 'higher', subject: 'Ferry', target: 'Ferry >= 0.8x nginx', series: pair(v.parMBps) }),
        summarise({ id: 'par-cpu', title: `${parLabel}, CPU time of the server's processes per GiB`, unit: 'ms/GiB', better: 'lower', subject: 'Ferry', series: pair(v.parCpu) }),
        summarise({ id: 'par-p50', title: `${parLabel}, time to first byte p50`, unit: 'ms', better: 'lower', subject: 'Ferry', series: pair(v.parP50) }),
        summarise({ id: 'par-p99', title: `${parLabel}, time to first byte p99`, unit: 'ms', better: 'lower', subject: 'Ferry', series: pair(v.parP99) }),
        summarise({ id: 'rss', title: `Ferry's peak RSS during ${parLabel}`, unit: 'MB', better: 'lower', series: [{ system: 'Ferry', values: v.ferryRss }] }),
      ],
      notes: [
        'MB/s = file bytes / curl time_total; together = all bytes / wall time of the batch. Time to first byte = curl time_starttransfer (connect, request, response headers and first body byte).',
        "CPU per GiB = user + system time of the server's process tree (Ferry's primary and workers; nginx's master and workers) during the download(s), from /proc, per GiB of file bytes; curl's own CPU is not in it.",
        'nginx: Debian package defaults for static files (sendfile on, worker_processes auto), serving the very blob file Ferry stored.',
        ...(profDir ? ['Ferry ran under the CPU profiler (including storing the two files): its figures here are lower than without it.'] : []),
        ...errors,
      ],
      detail: { profile },
      printable: profile ? [formatProfile(profile)] : [],
    };
  },
};
