import crypto from 'node:crypto';
import nodemailer from 'nodemailer';
import { SMTPServer } from 'smtp-server';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listQueue, retryNow } from '../../storage/index.js';
import { freePort, startFerry, type TestFerry } from '../helpers/ferry.js';
import { fileLinks, landingLinks, parse, pseudoRandom, sha256 } from '../helpers/mail.js';
import { hasPython, parseDsn } from '../helpers/queue-dsn.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { Upstream } from '../helpers/upstream.js';

// The delivery queue end to end: a real SMTP client talks to Ferry, Ferry to a real next-hop
// SMTP server that is down, refuses, or comes back.

const THRESHOLD = 100_000;
// Fast retries so the worker inside `ferry start` picks entries up within the test.
const QUEUE = { retrySchedule: ['1s'], pollInterval: '100ms', leaseTimeout: '30s' };

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function ferryWith(relayUrl: string, extra: Record<string, any> = {}): Promise<TestFerry> {
  const f = await startFerry({ relay: { url: relayUrl, attemptTimeout: '5s' }, offload: { minAttachmentSize: THRESHOLD }, queue: QUEUE, ...extra });
  cleanups.push(() => f.stopAndClean());
  return f;
}

async function upstreamOn(port = 0): Promise<Upstream> {
  const u = await new Upstream().start(port);
  cleanups.push(() => u.stop());
  return u;
}

const until = async (cond: () => boolean | Promise<boolean>, timeoutMs = 20_000) => {
  await expect.poll(cond, { timeout: timeoutMs, interval: 50 }).toBe(true);
};

/** A multipart message with one base64 attachment of `size` random bytes, streamed; `digest()` is its SHA-256 once sent. */
function bigMessage(size: number, messageId: string) {
  const hash = crypto.createHash('sha256');
  let sent = 0;
  async function* gen(): AsyncGenerator<Buffer> {
    yield Buffer.from(
      [
        'From: Alice <alice@example.com>',
        'To: bob@example.net',
        'Subject: the big one',
        `Message-ID: <${messageId}>`,
        'MIME-Version: 1.0',
        'Content-Type: multipart/mixed; boundary="BOUND"',
        '',
        '--BOUND',
        'Content-Type: text/plain; charset=utf-8',
        '',
        'Here is the video.',
        '--BOUND',
        'Content-Type: video/mp4; name="video.mp4"',
        'Content-Disposition: attachment; filename="video.mp4"',
        'Content-Transfer-Encoding: base64',
        '',
        '',
      ].join('\r\n'),
    );
    const LINE = 57; // 57 bytes -> one 76-character base64 line
    const CHUNK = LINE * 4096;
    while (sent < size) {
      const n = Math.min(CHUNK, size - sent);
      const bytes = crypto.randomBytes(n);
      hash.update(bytes);
      sent += n;
      const parts: string[] = [];
      for (let i = 0; i < n; i += LINE) parts.push(bytes.subarray(i, Math.min(i + LINE, n)).toString('base64'));
      yield Buffer.from(parts.join('\r\n') + '\r\n', 'latin1');
    }
    yield Buffer.from('--BOUND--\r\n');
  }
  return { body: gen(), digest: () => hash.digest('hex') };
}

async function sha256OfUrl(url: string): Promise<string> {
  const r = await fetch(url);
  expect(r.status).toBe(200);
  const h = crypto.createHash('sha256');
  for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) h.update(chunk);
  return h.digest('hex');
}

describe('next hop down at end of DATA', () => {
  it('a 200 MB message: the client gets 250 after one transfer; when the next hop is back the small message arrives once and its link works', async () => {
    const port = await freePort(); // nothing listens here yet: the next hop is down
    const f = await ferryWith(`smtp://127.0.0.1:${port}`);
    const msg = bigMessage(200_000_000, 'big-1@example.com');
    const c = await RawSmtp.connect(f.smtpPort);
    let dataCommands = 0;
    try {
      expect(await c.cmd('EHLO client.test')).toMatch(/250[ -]DSN/);
      expect(await c.cmd('MAIL FROM:<alice@example.com>')).toMatch(/^250/);
      expect(await c.cmd('RCPT TO:<bob@example.net>')).toMatch(/^250/);
      dataCommands++;
      const reply = await c.data(msg.body);
      expect(reply).toMatch(/^250 2\.0\.0 Ok: queued as [0-9A-F]{16}, 1 attachment turned into download links; the next mail server is not available now, Ferry will retry delivery$/);
    } finally {
      c.close();
    }
    expect(dataCommands).toBe(1); // the sender transferred the 200 MB once, and is done
    const digest = msg.digest();
    const { entries } = await listQueue(f.storage.db);
    expect(entries).toHaveLength(1);
    expect(entries[0]!.size).toBeLessThan(20_000); // only the small rewritten message is queued

    const upstream = await upstreamOn(port); // the next hop comes back
    await until(() => upstream.messages.length === 1);
    await until(async () => (await listQueue(f.storage.db)).total === 0);
    await new Promise((r) => setTimeout(r, 1500)); // more than one retry interval: no second copy
    expect(upstream.messages).toHaveLength(1);
    const got = upstream.messages[0]!;
    expect(got.to).toEqual(['bob@example.net']);
    const mail = await parse(got.raw);
    expect(mail.messageId).toBe('<big-1@example.com>');
    expect(await landingLinks(got.raw, f.publicUrl)).toHaveLength(1);
    const [link] = await fileLinks(got.raw, f.publicUrl);
    expect(await sha256OfUrl(link!)).toBe(digest);
  });
});

describe('partial refusal', () => {
  it.skipIf(!hasPython)('accepted recipients get one copy, refused-permanently ones a DSN to the sender, refused-temporarily ones stay queued and get one copy later', async () => {
    const upstream = await upstreamOn();
    let daveDown = true;
    upstream.behaviour = {
      rcpt: (a) => (a === 'carol@example.org' ? { code: 550, message: 'No such user carol' } : a === 'dave@example.org' && daveDown ? { code: 451, message: 'Try dave later' } : undefined),
    };
    const f = await ferryWith(upstream.url, { queue: { ...QUEUE, retrySchedule: ['1h'] } });
    const big = pseudoRandom(150_000, 'partial');
    const info = await nodemailer
      .createTransport({ host: '127.0.0.1', port: f.smtpPort, secure: false, ignoreTLS: true })
      .sendMail({ from: 'alice@example.com', to: ['bob@example.net', 'carol@example.org', 'dave@example.org'], subject: 'Partial', text: 'hello', attachments: [{ filename: 'p.bin', content: big }] });
    expect(info.response).toMatch(/^250 2\.0\.0 Ok: queued as /);
    expect(info.accepted.sort()).toEqual(['bob@example.net', 'carol@example.org', 'dave@example.org']);

    // Bob's copy came at once; the DSN naming Carol follows through the worker.
    await until(() => upstream.messages.some((m) => m.to.includes('alice@example.com')));
    const toBob = upstream.messages.filter((m) => m.to.includes('bob@example.net'));
    expect(toBob).toHaveLength(1);
    expect(toBob[0]!.to).toEqual(['bob@example.net']);
    const dsns = upstream.messages.filter((m) => m.to.includes('alice@example.com'));
    expect(dsns).toHaveLength(1);
    expect(dsns[0]!.from).toBe(''); // DSNs go out with the null sender
    const dsn = await parseDsn(dsns[0]!.raw);
    expect([dsn.contentType, dsn.reportType, dsn.mailparserReportType]).toEqual(['multipart/report', 'delivery-status', 'delivery-status']);
    expect(dsn.recipients).toEqual([{ finalRecipient: 'rfc822; carol@example.org', action: 'failed', status: '5.1.1', diagnostic: 'smtp; 550 5.1.1 No such user carol' }]);
    expect(dsn.mailparserText).toMatch(/Final-Recipient: rfc822; carol@example\.org\nAction: failed\nStatus: 5\.1\.1/);
    // The original headers come back, the body and the attachment do not.
    expect(dsn.returnedHeaders).toMatch(/^Subject: Partial$/m);
    expect(dsns[0]!.raw.length).toBeLessThan(10_000);

    // Dave is still queued; when the next hop takes him, he gets exactly one copy, Bob none more.
    const { entries } = await listQueue(f.storage.db);
    // Each recipient has a copy of its own (offload.linkPerRecipient): only Dave's is queued.
    expect(entries.filter((e) => e.kind === 'message').map((e) => e.recipients.map((r) => [r.address, r.state]))).toEqual([[['dave@example.org', 'pending']]]);
    daveDown = false;
    await retryNow(f.storage.db, '*');
    await until(() => upstream.messages.some((m) => m.to.includes('dave@example.org')));
    await until(async () => (await listQueue(f.storage.db)).total === 0);
    await new Promise((r) => setTimeout(r, 500));
    const count = (a: string) => upstream.messages.filter((m) => m.to.includes(a)).length;
    expect([count('bob@example.net'), count('carol@example.org'), count('dave@example.org'), count('alice@example.com')]).toEqual([1, 0, 1, 1]);
    // Dave's copy has working links (the transfer went live when the message was queued).
    const daveCopy = upstream.messages.find((m) => m.to.includes('dave@example.org'))!;
    const [link] = await fileLinks(daveCopy.raw, f.publicUrl);
    expect(await sha256OfUrl(link!)).toBe(sha256(big));
  });

  it('a null-sender message is never bounced, and NOTIFY=NEVER gets no DSN', async () => {
    const upstream = await upstreamOn();
    upstream.behaviour = { rcpt: (a) => (a.startsWith('gone') ? { code: 550, message: '5.1.1 No such user' } : undefined) };
    const f = await ferryWith(upstream.url);
    const send = async (from: string, rcpts: string[]) => {
      const c = await RawSmtp.connect(f.smtpPort);
      try {
        await c.cmd('EHLO client.test');
        expect(await c.cmd(`MAIL FROM:<${from}>`)).toMatch(/^250/);
        for (const r of rcpts) expect(await c.cmd(`RCPT TO:${r}`)).toMatch(/^250/);
        return await c.data('From: x@example.com\r\nSubject: t\r\n\r\nhello\r\n');
      } finally {
        c.close();
      }
    };
    expect(await send('', ['<gone1@example.org>', '<ok@example.org>'])).toMatch(/^250 2\.0\.0/);
    expect(await send('alice@example.com', ['<gone2@example.org> NOTIFY=NEVER', '<ok@example.org>'])).toMatch(/^250 2\.0\.0/);
    await new Promise((r) => setTimeout(r, 600)); // several worker passes
    expect(upstream.messages.map((m) => m.to)).toEqual([['ok@example.org'], ['ok@example.org']]);
    expect((await listQueue(f.storage.db)).total).toBe(0);
  });
});

describe('DSN parameters', () => {
  it('RET, ENVID, NOTIFY and ORCPT from the client reach a next hop that supports DSN, also after queueing', async () => {
    const seen: { mail: unknown; rcpt: unknown[] }[] = [];
    let down = true;
    const next = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      hideDSN: false,
      logger: false,
      onRcptTo: (address, _s, cb) => (down ? cb(Object.assign(new Error('4.3.0 later'), { responseCode: 451 })) : cb()),
      onData: (stream, session, cb) => {
        stream.resume();
        stream.on('end', () => {
          seen.push({ mail: { ...(session.envelope as { dsn?: object }).dsn }, rcpt: session.envelope.rcptTo.map((r) => ({ address: r.address, dsn: (r as { dsn?: object }).dsn })) });
          cb();
        });
      },
    });
    await new Promise<void>((r) => next.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => next.close(() => r())));
    const f = await ferryWith(`smtp://127.0.0.1:${(next.server.address() as { port: number }).port}`);
    const c = await RawSmtp.connect(f.smtpPort);
    try {
      await c.cmd('EHLO client.test');
      expect(await c.cmd('MAIL FROM:<alice@example.com> RET=HDRS ENVID=QQ314159+2Bx')).toMatch(/^250/);
      expect(await c.cmd('RCPT TO:<bob@example.net> NOTIFY=FAILURE,DELAY ORCPT=rfc822;Bob+2Bsales@example.net')).toMatch(/^250/);
      expect(await c.cmd('RCPT TO:<carol@example.org>')).toMatch(/^250/);
      expect(await c.data('From: alice@example.com\r\nSubject: dsn\r\n\r\nhi\r\n')).toMatch(/^250 2\.0\.0 Ok: queued as/);
    } finally {
      c.close();
    }
    down = false;
    await retryNow(f.storage.db, '*');
    await until(() => seen.length === 2);
    // One transaction per set of recipient parameters (nodemailer sends NOTIFY/ORCPT per envelope).
    const bob = seen.find((s) => (s.rcpt as { address: string }[])[0]!.address === 'bob@example.net')!;
    const carol = seen.find((s) => (s.rcpt as { address: string }[])[0]!.address === 'carol@example.org')!;
    expect(bob.mail).toEqual({ ret: 'HDRS', envid: 'QQ314159+x' });
    expect(bob.rcpt).toEqual([{ address: 'bob@example.net', dsn: { notify: ['FAILURE', 'DELAY'], orcpt: 'rfc822;Bob+sales@example.net' } }]);
    expect(carol.rcpt).toEqual([{ address: 'carol@example.org', dsn: undefined }]);
  });
});
