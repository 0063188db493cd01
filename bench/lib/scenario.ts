import fs from 'node:fs';
import path from 'node:path';
import { downloadAndHash, findFileLinks } from './download.js';
import { startFerryChild, type FerryChild, type ProbeSample } from './ferry-child.js';
import { generateMessage } from './message.js';
import { readProcMemory, resetPeak, RssSampler } from './proc.js';
import { SinkServer } from './sink.js';
import { SmtpSession } from './smtp.js';

// One large message through a Ferry child, end to end: start Ferry, send a message with an
// N-byte attachment, check the reply, find the link in what was relayed, download it and
// compare hashes, and read the child's peak RSS for each phase. Shared by `npm run bench` and
// test/memory.test.ts so that the figure the test asserts is the one the bench reports.

export type RelayKind = 'sink' | 'outbox';

export interface LargeMessageOptions {
  attachmentSize: number;
  /** sink: an SMTP next hop in this process that counts and discards (default); outbox: files in the temp dir. */
  relay?: RelayKind;
  /** Report process.memoryUsage() of the child (heap vs Buffers) alongside RSS. */
  probe?: boolean;
  /** FERRY_OFFLOAD_MIN_ATTACHMENT_SIZE; Ferry's default when undefined. */
  minAttachmentSize?: number;
  nodeFlags?: string[];
  seed?: string;
  /** Progress messages. */
  log?: (msg: string) => void;
}

export interface PhaseMemory {
  /** Peak RSS (VmHWM) during the phase, bytes. */
  peak: number;
  /** RSS at the end of the phase, bytes. */
  end: number;
}

export interface LargeMessageResult {
  attachmentSize: number;
  wireSize: number;
  relay: RelayKind;
  smtpReply: string;
  memory: {
    /** Peak RSS over the child's whole life until the download ended: the figure the requirement is about. */
    peak: number;
    startup: PhaseMemory;
    smtp: PhaseMemory;
    download: PhaseMemory;
    /** False where VmHWM could not be reset between phases: then each phase's peak includes the earlier ones. */
    perPhase: boolean;
  };
  /** From the DATA command to the final reply. */
  sendMs: number;
  /** Wire bytes per second over sendMs, in MB/s (10^6 bytes). */
  sendMBps: number;
  download: { status: number; bytes: number; ms: number; MBps: number };
  /** What Ferry logged for the message (its summary line), if it did. */
  ferrySummary?: Record<string, unknown>;
  relayedBytes: number;
  /** File links found by following the message's landing-page link. */
  links: string[];
  sha256Sent: string;
  sha256Downloaded: string;
  /** The downloaded file is the attachment (same size and SHA-256). */
  intact: boolean;
  /** process.memoryUsage() of the child at its RSS peak and the maxima of each figure (with probe). */
  probe?: { samples: number; atRssPeak: ProbeSample | undefined; max: Omit<ProbeSample, 't'> };
  /** RSS timeline (ms since the message started, bytes), downsampled. */
  timeline: { t: number; rss: number }[];
}

const MB = 1e6;

/** Ferry's default message limit; raised only when the message would not fit under it. */
const DEFAULT_MAX_MESSAGE = 500_000_000;

export async function runLargeMessage(opts: LargeMessageOptions): Promise<LargeMessageResult> {
  const log = opts.log ?? (() => undefined);
  const relay = opts.relay ?? 'sink';
  const msg = generateMessage({ attachmentSize: opts.attachmentSize, seed: opts.seed });
  // Budgets sized for a slow machine: 2 MB/s would be a failure worth hearing about, not a wait.
  const sendBudgetMs = Math.round(60_000 + (msg.wireSize / (2 * MB)) * 1000);
  const downloadBudgetMs = Math.round(60_000 + (msg.attachmentSize / (5 * MB)) * 1000);

  const sink = relay === 'sink' ? await new SinkServer().start() : undefined;
  let ferry: FerryChild | undefined;
  let session: SmtpSession | undefined;
  let sampler: RssSampler | undefined;
  try {
    ferry = await startFerryChild({
      relayUrl: sink?.url,
      maxMessageSize: msg.wireSize > DEFAULT_MAX_MESSAGE ? Math.ceil(msg.wireSize * 1.1) : undefined,
      minAttachmentSize: opts.minAttachmentSize,
      probe: opts.probe,
      nodeFlags: opts.nodeFlags,
    });
    const pid = ferry.pid;
    const dead = () => ferry!.exitReason();

    // Start-up (module loading, SQLite, Fastify) has its own peak; reset it so the SMTP phase's
    // peak is the message's alone.
    const started = readProcMemory(pid);
    const perPhase = resetPeak(pid);
    ferry.takeProbe();
    sampler = new RssSampler(pid).start();
    log(`Ferry pid ${pid} up, RSS ${mib(started.rss)}, start-up peak ${mib(started.hwm)}; sending ${mib(msg.attachmentSize)} attachment (${mib(msg.wireSize)} on the wire)`);

    // ---- SMTP ----
    session = await SmtpSession.connect(ferry.smtpPort, 10_000);
    expectReply(await session.reply(10_000), '220', 'greeting');
    expectReply(await session.command('EHLO bench.ferry.invalid'), '250', 'EHLO');
    expectReply(await session.command(`MAIL FROM:<bench@example.com> SIZE=${msg.wireSize}`), '250', 'MAIL FROM');
    expectReply(await session.command('RCPT TO:<recipient@example.net>'), '250', 'RCPT TO');
    const t0 = Date.now();
    expectReply(await session.command('DATA'), '354', 'DATA');
    const deadline = t0 + sendBudgetMs;
    for (const chunk of msg.chunks()) {
      if (Date.now() > deadline) throw new Error(`sending took over ${Math.round(sendBudgetMs / 1000)} s`);
      await session.write(chunk, 60_000);
    }
    await session.write(Buffer.from('.\r\n'), 60_000);
    const smtpReply = await session.reply(120_000).catch((err: Error) => {
      throw new Error(`${err.message}${dead() ? `; ${dead()}` : ''}\n--- Ferry log ---\n${ferry!.logTail()}`);
    });
    const sendMs = Date.now() - t0;
    await session.command('QUIT', 5000).catch(() => undefined);
    session.close();
    session = undefined;
    if (!smtpReply.startsWith('250')) throw new Error(`Ferry refused the message: ${smtpReply}\n--- Ferry log ---\n${ferry.logTail()}`);
    const afterSmtp = readProcMemory(pid);
    if (perPhase) resetPeak(pid);
    log(`250 after ${(sendMs / 1000).toFixed(1)} s (${(msg.wireSize / MB / (sendMs / 1000)).toFixed(0)} MB/s); SMTP-phase peak RSS ${mib(afterSmtp.hwm)}`);

    // ---- what was relayed, and the download (landing page, then the file) ----
    const relayed = await relayedMessage(relay, sink, ferry);
    // The mail links to the landing page only; the file link is on that page.
    const links = await findFileLinks(relayed.head, ferry.publicUrl);
    if (links.length !== 1) throw new Error(`expected one file link on the landing page linked from the relayed message (${relayed.bytes} bytes), found ${links.length}`);

    const dl = await downloadAndHash(links[0]!, downloadBudgetMs);
    const afterDownload = readProcMemory(pid);
    const timeline = sampler.stop();
    const probeSamples = ferry.takeProbe();
    log(`download: HTTP ${dl.status}, ${mib(dl.bytes)} in ${(dl.ms / 1000).toFixed(1)} s; download-phase peak RSS ${mib(afterDownload.hwm)}`);

    const startup = { peak: started.hwm, end: started.rss };
    const smtp = { peak: afterSmtp.hwm, end: afterSmtp.rss };
    const download = { peak: afterDownload.hwm, end: afterDownload.rss };
    const sha256Sent = msg.sha256();
    return {
      attachmentSize: msg.attachmentSize,
      wireSize: msg.wireSize,
      relay,
      smtpReply,
      memory: { peak: Math.max(startup.peak, smtp.peak, download.peak), startup, smtp, download, perPhase },
      sendMs,
      sendMBps: msg.wireSize / MB / (sendMs / 1000),
      download: { status: dl.status, bytes: dl.bytes, ms: dl.ms, MBps: dl.bytes / MB / (dl.ms / 1000) },
      ferrySummary: ferry.logs(/: sent$/).at(-1),
      relayedBytes: relayed.bytes,
      links,
      sha256Sent,
      sha256Downloaded: dl.sha256,
      intact: dl.status === 200 && dl.bytes === msg.attachmentSize && dl.sha256 === sha256Sent,
      probe: opts.probe ? summariseProbe(probeSamples) : undefined,
      timeline: thin(timeline, 200),
    };
  } finally {
    sampler?.stop();
    session?.close();
    await ferry?.stop();
    await sink?.stop();
  }
}

function expectReply(reply: string, code: string, what: string): void {
  if (!reply.startsWith(code)) throw new Error(`${what}: expected ${code}, got "${reply}"`);
}

const HEAD_BYTES = 1024 * 1024;

async function relayedMessage(relay: RelayKind, sink: SinkServer | undefined, ferry: FerryChild): Promise<{ head: Buffer; bytes: number }> {
  if (relay === 'sink') {
    // Ferry answers 250 only after the next hop accepted, so the message is already here.
    await sink!.waitFor(1, 10_000);
    const m = sink!.messages[0]!;
    return { head: m.head, bytes: m.bytes };
  }
  const emls = fs.readdirSync(ferry.outboxDir).filter((f) => f.endsWith('.eml'));
  if (emls.length !== 1) throw new Error(`expected one message in the outbox, found ${emls.length}`);
  const file = path.join(ferry.outboxDir, emls[0]!);
  const bytes = fs.statSync(file).size;
  // Only the head: if the attachment had stayed in the message, reading it whole would put the
  // bench's memory, not Ferry's, in trouble.
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(Math.min(bytes, HEAD_BYTES));
    fs.readSync(fd, head, 0, head.length, 0);
    return { head, bytes };
  } finally {
    fs.closeSync(fd);
  }
}

function summariseProbe(samples: ProbeSample[]): LargeMessageResult['probe'] {
  const max = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };
  let atRssPeak: ProbeSample | undefined;
  for (const s of samples) {
    for (const k of Object.keys(max) as (keyof typeof max)[]) max[k] = Math.max(max[k], s[k]);
    if (!atRssPeak || s.rss > atRssPeak.rss) atRssPeak = s;
  }
  return { samples: samples.length, atRssPeak, max };
}

function thin<T>(xs: T[], n: number): T[] {
  if (xs.length <= n) return xs;
  const step = xs.length / n;
  return Array.from({ length: n }, (_, i) => xs[Math.floor(i * step)]!);
}

export function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
