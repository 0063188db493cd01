import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startFerry, type TestFerry } from '../helpers/ferry.js';
import { fileLinks, pseudoRandom } from '../helpers/mail.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { Upstream } from '../helpers/upstream.js';

// After a scripted set of SMTP transactions and downloads, every metric at /metrics has the
// value the script implies. Metrics are process-wide and this file runs in a process of its
// own, but each check still compares against a snapshot taken before the step.

type Samples = Map<string, number>;

function parseMetrics(text: string): Samples {
  const out: Samples = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

const BUCKET_SAMPLE = /_bucket\{/;

let ferry: TestFerry;
let upstream: Upstream;
const UA = 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0';

async function metrics(): Promise<Samples> {
  const r = await fetch(`${ferry.publicUrl}/metrics`);
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseMetrics(await r.text());
}

/**
 * Runs `step` and returns how every sample changed (only those that changed). The worker sweeps
 * every second here, so its run counter moves by itself during a slow step: it is left out unless
 * the step is about the sweeper.
 */
async function delta(step: () => Promise<unknown>, opts: { sweeperRuns?: boolean } = {}): Promise<Record<string, number>> {
  const before = await metrics();
  await step();
  // Download records and session ends are counted when the socket closes: give them a moment.
  await new Promise((r) => setTimeout(r, 150));
  const after = await metrics();
  const out: Record<string, number> = {};
  for (const [k, v] of after) {
    // Ferry's own metrics; process_* and nodejs_* change by themselves.
    if (!k.startsWith('ferry_') || BUCKET_SAMPLE.test(k) || k.startsWith('ferry_relay_duration_seconds_sum')) continue;
    if (!opts.sweeperRuns && k.startsWith('ferry_sweeper_runs_total')) continue;
    // A process's own full collections (memory.bufferGarbage) come when its buffers say so.
    if (k.startsWith('ferry_buffer_collections_total')) continue;
    const d = v - (before.get(k) ?? 0);
    if (d !== 0) out[k] = Math.round(d * 1000) / 1000;
  }
  return out;
}

async function compose(opts: Record<string, unknown>): Promise<Buffer> {
  return new MailComposer({ from: 'alice@example.com', to: 'bob@example.net', subject: 'metrics', text: 'hello', ...opts }).compile().build();
}

async function send(raw: Buffer | string, mailFrom = 'MAIL FROM:<alice@example.com>', localAddress?: string): Promise<{ mail: string; rcpt: string; data?: string }> {
  const c = await RawSmtp.connect(ferry.smtpPort, '127.0.0.1', localAddress);
  await c.cmd('EHLO client.test');
  const mail = await c.cmd(mailFrom);
  if (!mail.startsWith('250')) {
    c.close();
    return { mail, rcpt: '' };
  }
  const rcpt = await c.cmd('RCPT TO:<bob@example.net>');
  if (!rcpt.startsWith('250')) {
    c.close();
    return { mail, rcpt };
  }
  const data = await c.data(raw);
  if (!c.closed) await c.cmd('QUIT');
  c.close();
  return { mail, rcpt, data };
}

beforeAll(async () => {
  upstream = await new Upstream().start();
  ferry = await startFerry({
    smtp: { maxMessageSize: '1MB', hardLimit: '2MB', trustedNetworks: ['127.0.0.1/32'] },
    offload: { minAttachmentSize: '100KB' },
    relay: { url: upstream.url },
    // The worker sweeps every second, so the last step sees a revoked transfer's files go.
    retention: { sweepInterval: '1s' },
    // Off by default (test/ops/metrics-exposure.test.ts); this file reads them on the web port.
    metrics: { onWebPort: true },
  });
});
afterAll(async () => {
  await ferry?.stopAndClean();
  await upstream?.stop();
});

describe('metrics at /metrics', () => {
  let raw1: Buffer;
  const file = pseudoRandom(300_000, 'metrics');

  it('a message with one large attachment: accepted, offloaded, relayed, stored', async () => {
    raw1 = await compose({ attachments: [{ filename: 'big.bin', content: file }] });
    const d = await delta(async () => expect((await send(raw1)).data).toMatch(/^250 2\.0\.0 /));
    expect(d).toEqual({
      'ferry_smtp_sessions_total{tls="plain"}': 1,
      ferry_messages_accepted_total: 1,
      ferry_bytes_received_total: raw1.length,
      ferry_attachments_offloaded_total: 1,
      ferry_bytes_offloaded_total: 300_000,
      'ferry_relay_duration_seconds_count{result="ok"}': 1,
      ferry_transfers_live: 1,
      ferry_stored_bytes: 300_000,
    });
  });

  it('a message with nothing to offload: accepted, nothing stored', async () => {
    const raw = await compose({});
    const d = await delta(async () => expect((await send(raw)).data).toMatch(/^250 /));
    expect(d).toEqual({
      'ferry_smtp_sessions_total{tls="plain"}': 1,
      ferry_messages_accepted_total: 1,
      ferry_bytes_received_total: raw.length,
      'ferry_relay_duration_seconds_count{result="ok"}': 1,
    });
  });

  it('refusals, each under its reason', async () => {
    const small = await compose({});
    const d = await delta(async () => {
      // SIZE declared over the limit: 552 at MAIL FROM, no data.
      expect((await send(small, 'MAIL FROM:<alice@example.com> SIZE=5000000')).mail).toMatch(/^552 5\.3\.4 /);
      // Undeclared and over the limit: read to the end, then 552.
      const over = Buffer.concat([small, Buffer.from(`\r\n${('x'.repeat(76) + '\r\n').repeat(16_000)}`)]);
      expect((await send(over)).data).toMatch(/^552 5\.3\.4 /);
      // Past the hard limit: 421 and the connection is dropped.
      const huge = Buffer.from(`Subject: huge\r\n\r\n${('y'.repeat(998) + '\r\n').repeat(2200)}`);
      expect((await send(huge)).data).toMatch(/^421 4\.3\.4 /);
      // From outside trustedNetworks, not logged in: 550 5.7.1 at RCPT.
      expect((await send(small, undefined, '127.0.0.2')).rcpt).toMatch(/^550 5\.7\.1 /);
      // The next hop refuses the message: its 5xx is passed back.
      upstream.behaviour = { data: () => ({ code: 554, message: 'no thanks' }) };
      try {
        expect((await send(small)).data).toMatch(/^554 5\.6\.0 Next hop said: no thanks/);
      } finally {
        upstream.behaviour = {};
      }
    });
    expect(d['ferry_smtp_sessions_total{tls="plain"}']).toBe(5);
    expect(d['ferry_messages_rejected_total{reason="size_mail_from"}']).toBe(1);
    expect(d['ferry_messages_rejected_total{reason="size_after_data"}']).toBe(1);
    expect(d['ferry_messages_rejected_total{reason="hard_limit"}']).toBe(1);
    expect(d['ferry_messages_rejected_total{reason="relay_denied"}']).toBe(1);
    expect(d['ferry_messages_rejected_total{reason="next_hop_refused"}']).toBe(1);
    expect(d['ferry_relay_duration_seconds_count{result="refused"}']).toBe(1);
    expect(d.ferry_messages_accepted_total).toBeUndefined();
    expect(d.ferry_attachments_offloaded_total).toBeUndefined();
    // The undeclared oversize message is read whole; the hard-limit one until past 2 MB.
    expect(d.ferry_bytes_received_total).toBeGreaterThan(1_000_000 + 2_000_000);
  });

  it('a next hop that defers: the message is queued, the client gets 250, the queue gauges count it', async () => {
    const raw = await compose({ subject: 'to be queued' });
    upstream.behaviour = { data: () => ({ code: 451, message: 'try later' }) };
    let d: Record<string, number>;
    try {
      d = await delta(async () => expect((await send(raw)).data).toMatch(/^250 /));
    } finally {
      upstream.behaviour = {};
    }
    expect(d['ferry_smtp_sessions_total{tls="plain"}']).toBe(1);
    expect(d.ferry_messages_accepted_total).toBe(1);
    expect(d.ferry_messages_queued_total).toBe(1);
    expect(d['ferry_relay_duration_seconds_count{result="failed"}']).toBe(1);
    expect(d.ferry_queue_messages).toBe(1);
    expect((await metrics()).get('ferry_queue_oldest_age_seconds')).toBeGreaterThan(0);
  });

  it('a storage failure while receiving counts as storage_error and leaves nothing stored', async () => {
    const blobs = ferry.storage.blobs;
    const put = blobs.put.bind(blobs);
    blobs.put = async (_key, body) => {
      body.resume();
      throw new Error('disk on fire (injected)');
    };
    try {
      const raw = await compose({ attachments: [{ filename: 'f.bin', content: pseudoRandom(200_000, 's') }] });
      const d = await delta(async () => expect((await send(raw)).data).toMatch(/^451 4\.3\.0 /));
      expect(d['ferry_messages_rejected_total{reason="storage_error"}']).toBe(1);
      expect(d.ferry_stored_bytes).toBeUndefined();
      expect(d.ferry_transfers_live).toBeUndefined();
    } finally {
      blobs.put = put;
    }
  });

  it('downloads: full GETs count whoever asks (scanner and prefetch included); HEAD and partial ranges do not; bytes served', async () => {
    const [link] = await fileLinks(upstream.messages[0]!.raw, ferry.publicUrl);
    expect(link).toBeDefined();
    const d = await delta(async () => {
      expect((await (await fetch(link!, { headers: { 'user-agent': UA } })).arrayBuffer()).byteLength).toBe(300_000);
      expect((await fetch(link!, { method: 'HEAD', headers: { 'user-agent': UA } })).status).toBe(200);
      await (await fetch(link!, { headers: { 'user-agent': 'Mozilla/5.0 (compatible; Barracuda Sentinel)' } })).arrayBuffer();
      await (await fetch(link!, { headers: { 'user-agent': UA, 'sec-purpose': 'prefetch' } })).arrayBuffer();
      const part = await fetch(link!, { headers: { 'user-agent': UA, range: 'bytes=0-999' } });
      expect(part.status).toBe(206);
      expect((await part.arrayBuffer()).byteLength).toBe(1000);
    });
    // A full GET is a whole copy of the file, so the scanner's and the prefetch's count too
    // (docs/downloads.md, "What counts as a download").
    expect(d.ferry_downloads_counted_total).toBe(3);
    expect(d['ferry_downloads_not_counted_total{reason="head"}']).toBe(1);
    expect(d['ferry_downloads_not_counted_total{reason="scanner"}']).toBeUndefined();
    expect(d['ferry_downloads_not_counted_total{reason="prefetch"}']).toBeUndefined();
    expect(d['ferry_downloads_not_counted_total{reason="partial"}']).toBe(1);
    expect(d.ferry_bytes_served_total).toBe(300_000 * 3 + 1000);
  });

  it('sweeper runs and queue gauges are exported; every series the issue lists is present', async () => {
    const m = await metrics();
    expect(m.get('ferry_sweeper_runs_total{result="ok"}')).toBeGreaterThanOrEqual(1);
    expect(m.get('ferry_sweeper_deleted_total{why="stale_pending"}')).toBe(0);
    expect(m.get('ferry_sweeper_deleted_total{why="expired"}')).toBe(0);
    for (const name of [
      'ferry_smtp_sessions_active',
      'ferry_messages_accepted_total',
      'ferry_bytes_received_total',
      'ferry_bytes_offloaded_total',
      'ferry_attachments_offloaded_total',
      'ferry_downloads_counted_total',
      'ferry_bytes_served_total',
      'ferry_transfers_live',
      'ferry_stored_bytes',
    ]) {
      expect(m.has(name), name).toBe(true);
    }
    expect(m.get('ferry_smtp_sessions_active')).toBe(0);
    expect(m.get('process_resident_memory_bytes')).toBeGreaterThan(0);
  });

  it('a metrics.port listener serves /metrics, /healthz and /readyz for a gateway-only process', async () => {
    const { startRoles } = await import('../../cli/start.js');
    const { loadConfig } = await import('../../config/index.js');
    const pino = (await import('pino')).default;
    const port = await freePort();
    const config = loadConfig({
      env: {},
      overrides: { dataDir: ferry.dir, smtp: { host: '127.0.0.1', port: 0 }, metrics: { port, host: '127.0.0.1' }, relay: { url: upstream.url } },
    });
    const g = await startRoles(config, pino({ level: 'silent' }), ['gateway']);
    try {
      expect(g.metricsPort).toBe(port);
      // The same process-wide registry as the web port's /metrics.
      const m = parseMetrics(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
      expect(m.get('ferry_messages_accepted_total')).toBe((await metrics()).get('ferry_messages_accepted_total'));
      expect(m.get('ferry_messages_accepted_total')).toBeGreaterThanOrEqual(3);
      expect(await (await fetch(`http://127.0.0.1:${port}/healthz`)).text()).toBe('ok\n');
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
      expect([ready.status, await ready.text()]).toEqual([200, 'ready\n']);
    } finally {
      await g.stop();
    }
  });

  it('the sweeper: a revoked transfer\'s files are deleted and counted; stored bytes and live transfers drop', async () => {
    const { revokeTransfer } = await import('../../storage/index.js');
    const [t] = await ferry.storage.db.selectFrom('transfers').select('id').where('state', '=', 'live').execute();
    const d = await delta(async () => {
      await revokeTransfer(ferry.storage.db, t!.id, 'test', 'metrics test');
      const runs = (await metrics()).get('ferry_sweeper_runs_total{result="ok"}')!;
      // Two more sweeps: the one that may already be running, and one that saw the revocation.
      for (let i = 0; i < 100 && (await metrics()).get('ferry_sweeper_runs_total{result="ok"}')! < runs + 2; i++) await new Promise((r) => setTimeout(r, 100));
    }, { sweeperRuns: true });
    expect(d['ferry_sweeper_deleted_total{why="revoked_or_deleted"}']).toBe(1);
    expect(d.ferry_transfers_live).toBe(-1);
    expect(d.ferry_stored_bytes).toBe(-300_000);
    expect(d['ferry_sweeper_runs_total{result="ok"}']).toBeGreaterThanOrEqual(2);
  });
});
