import crypto from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { downloadAndHash, findFileLinks } from '../lib/download.js';
import { startFerryChild, type FerryChild } from '../lib/ferry-child.js';
import { generateMessage } from '../lib/message.js';
import { MiB, procAvailable, readTreeMemory, resetPeak, RssSampler } from '../lib/proc.js';
import { num, type ScenarioDef } from '../lib/registry.js';
import { environment, summarise, type Metric, type ScenarioReport } from '../lib/report.js';
import { SinkServer } from '../lib/sink.js';
import { SmtpSession } from '../lib/smtp.js';

// A large attachment through the S3 driver (issue 3): one message with a 1 GiB attachment goes
// through a Ferry process whose blobs are in a real S3 server (Ceph RGW from
// scripts/s3/ceph-rgw-up.sh, or any server named by FERRY_TEST_S3_*), relayed to a sink, and the
// file is downloaded back through Ferry and checked by SHA-256. The figure is the process's peak
// RSS (VmHWM): streamed multipart uploads must keep it flat however large the attachment.

export const S3_PEAK_TARGET_MB = 250;

function s3Settings() {
  const e = process.env;
  if (!e.FERRY_TEST_S3_ENDPOINT || !e.FERRY_TEST_S3_ACCESS_KEY || !e.FERRY_TEST_S3_SECRET_KEY) return undefined;
  return { endpoint: e.FERRY_TEST_S3_ENDPOINT, accessKeyId: e.FERRY_TEST_S3_ACCESS_KEY, secretAccessKey: e.FERRY_TEST_S3_SECRET_KEY };
}

export const s3LargeScenario: ScenarioDef = {
  name: 's3-large',
  summary: 'a 1 GiB attachment through the S3 driver (Ceph RGW): peak RSS, upload and download speed',
  inDefault: false,
  unavailable: () =>
    !procAvailable()
      ? 'no /proc: peak RSS cannot be read (Linux only)'
      : !s3Settings()
        ? 'no S3 server: run `eval "$(bash scripts/s3/ceph-rgw-up.sh /tmp/ferry-ceph)"` first (sets FERRY_TEST_S3_*)'
        : undefined,
  options: {
    'size-mib': { kind: 'number', min: 1, max: 16 * 1024, help: 'attachment size in MiB (default 1024)' },
    runs: { kind: 'int', min: 1, max: 10, help: 'runs (default 1)' },
  },
  async run(o, ctx): Promise<ScenarioReport> {
    const started = new Date();
    const s3 = s3Settings()!;
    const size = Math.round(num(o, 'size-mib', 1024) * MiB);
    const runs = num(o, 'runs', 1);
    const peaks: number[] = [];
    const smtpPeaks: number[] = [];
    const up: number[] = [];
    const down: number[] = [];
    const errors: string[] = [];
    const detail: unknown[] = [];
    for (let run = 1; run <= runs; run++) {
      try {
        const r = await oneRun(s3, size, `s3-large-${run}`, ctx.log);
        peaks.push(r.peak / 1e6);
        smtpPeaks.push(r.smtpPeak / 1e6);
        up.push(r.sendMBps);
        down.push(r.downloadMBps);
        detail.push({ run, ...r });
      } catch (err) {
        for (const xs of [peaks, smtpPeaks, up, down]) xs.push(NaN);
        errors.push(`run ${run}: ${(err as Error).message}`);
        ctx.log(`FAILED: ${(err as Error).message}`);
      }
    }
    const label = `${(size / MiB).toFixed(0)} MiB via S3`;
    const metrics: Metric[] = [
      {
        id: 'peak-rss',
        title: "Ferry's peak RSS (whole process life: start-up, SMTP + S3 upload, relay, download)",
        unit: 'MB',
        better: 'lower',
        target: `< ${S3_PEAK_TARGET_MB} MB`,
        series: [{ system: label, values: peaks }],
      },
      { id: 'smtp-peak-rss', title: 'peak RSS of the SMTP phase (the gateway streaming into S3)', unit: 'MB', better: 'lower', series: [{ system: label, values: smtpPeaks }] },
      { id: 'send', title: 'SMTP DATA to 250 (upload to S3 included), wire MB/s', unit: 'MB/s', better: 'higher', series: [{ system: label, values: up }] },
      { id: 'download', title: 'download through Ferry (proxy mode, ranged GetObject), MB/s', unit: 'MB/s', better: 'higher', series: [{ system: label, values: down }] },
    ];
    return {
      scenario: 's3-large',
      title: 'Large attachment through the S3 driver (Ceph RGW)',
      started: started.toISOString(),
      finished: new Date().toISOString(),
      environment: environment(),
      options: { sizeMiB: size / MiB, runs, endpoint: s3.endpoint },
      metrics: metrics.map(summarise),
      notes: [
        'Ferry runs as `ferry start` (gateway, web and worker in one process) with storage.blobs = s3://...; the S3 server shares the machine.',
        'The attachment is checked byte for byte (SHA-256) after the download; the bucket is removed afterwards.',
        ...errors,
      ],
      detail,
    };
  },
};

async function oneRun(s3: { endpoint: string; accessKeyId: string; secretAccessKey: string }, size: number, seed: string, log: (m: string) => void) {
  const admin = new S3Client({
    endpoint: s3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const bucket = `ferry-bench-${crypto.randomBytes(4).toString('hex')}`;
  await admin.send(new CreateBucketCommand({ Bucket: bucket }));
  const msg = generateMessage({ attachmentSize: size, seed });
  const sink = await new SinkServer().start();
  let ferry: FerryChild | undefined;
  let session: SmtpSession | undefined;
  let sampler: RssSampler | undefined;
  try {
    ferry = await startFerryChild({
      relayUrl: sink.url,
      maxMessageSize: Math.ceil(msg.wireSize * 1.1),
      env: {
        FERRY_STORAGE_BLOBS: `s3://${bucket}?endpoint=${encodeURIComponent(s3.endpoint)}&region=us-east-1&forcePathStyle=true`,
        FERRY_STORAGE_S3_ACCESS_KEY_ID: s3.accessKeyId,
        FERRY_STORAGE_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
      },
    });
    const pid = ferry.pid;
    const startup = readTreeMemory(pid);
    const perPhase = resetPeak(pid);
    sampler = new RssSampler(pid).start();
    log(`Ferry pid ${pid}, start-up peak ${(startup.hwm / MiB).toFixed(1)} MiB; sending ${(size / MiB).toFixed(0)} MiB into bucket ${bucket}`);

    session = await SmtpSession.connect(ferry.smtpPort, 10_000);
    const expect = (reply: string, code: string, what: string) => {
      if (!reply.startsWith(code)) throw new Error(`${what}: expected ${code}, got "${reply}"\n${ferry!.logTail()}`);
    };
    expect(await session.reply(10_000), '220', 'greeting');
    expect(await session.command('EHLO bench.ferry.invalid'), '250', 'EHLO');
    expect(await session.command(`MAIL FROM:<bench@example.com> SIZE=${msg.wireSize}`), '250', 'MAIL FROM');
    expect(await session.command('RCPT TO:<recipient@example.net>'), '250', 'RCPT TO');
    const t0 = Date.now();
    expect(await session.command('DATA'), '354', 'DATA');
    for (const chunk of msg.chunks()) await session.write(chunk, 60_000);
    await session.write(Buffer.from('.\r\n'), 60_000);
    expect(await session.reply(300_000), '250', 'end of DATA');
    const sendMs = Date.now() - t0;
    await session.command('QUIT', 5000).catch(() => undefined);
    session.close();
    session = undefined;
    const afterSmtp = readTreeMemory(pid);
    if (perPhase) resetPeak(pid);
    log(`250 after ${(sendMs / 1000).toFixed(1)} s; SMTP-phase peak RSS ${(afterSmtp.hwm / MiB).toFixed(1)} MiB`);

    await sink.waitFor(1, 10_000);
    const links = await findFileLinks(sink.messages[0]!.head, ferry.publicUrl);
    if (links.length !== 1) throw new Error(`expected one file link, found ${links.length}`);
    const dl = await downloadAndHash(links[0]!, 300_000);
    const afterDownload = readTreeMemory(pid);
    sampler.stop();
    if (dl.status !== 200 || dl.bytes !== size || dl.sha256 !== msg.sha256()) throw new Error(`the download differs from the attachment (HTTP ${dl.status}, ${dl.bytes} bytes)`);
    log(`download ${(dl.bytes / MiB).toFixed(0)} MiB in ${(dl.ms / 1000).toFixed(1)} s, SHA-256 equal; download-phase peak RSS ${(afterDownload.hwm / MiB).toFixed(1)} MiB`);
    return {
      peak: Math.max(startup.hwm, afterSmtp.hwm, afterDownload.hwm),
      startupPeak: startup.hwm,
      smtpPeak: afterSmtp.hwm,
      downloadPeak: afterDownload.hwm,
      perPhase,
      sendMs,
      sendMBps: msg.wireSize / 1e6 / (sendMs / 1000),
      downloadMBps: dl.bytes / 1e6 / (dl.ms / 1000),
      attachmentBytes: size,
      wireBytes: msg.wireSize,
    };
  } finally {
    sampler?.stop();
    session?.close();
    await ferry?.stop();
    await sink.stop();
    await emptyAndDelete(admin, bucket).catch((err: Error) => log(`could not remove bucket ${bucket}: ${err.name}`));
    admin.destroy();
  }
}

async function emptyAndDelete(admin: S3Client, Bucket: string): Promise<void> {
  for (;;) {
    const r = await admin.send(new ListObjectsV2Command({ Bucket }));
    for (const o of r.Contents ?? []) await admin.send(new DeleteObjectCommand({ Bucket, Key: o.Key! }));
    if (!r.IsTruncated) break;
  }
  const u = await admin.send(new ListMultipartUploadsCommand({ Bucket }));
  for (const x of u.Uploads ?? []) await admin.send(new AbortMultipartUploadCommand({ Bucket, Key: x.Key!, UploadId: x.UploadId! }));
  await admin.send(new DeleteBucketCommand({ Bucket }));
}
