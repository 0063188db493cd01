import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queueHeldNotices } from '../../gateway/scan/notice.js';
import { replies } from '../../gateway/replies.js';
import { startFerry, type TestFerry } from '../helpers/ferry.js';
import { pseudoRandom } from '../helpers/mail.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { Upstream } from '../helpers/upstream.js';
import { makeEnv, type Env } from '../web/helpers.js';
import { Clamd, clamdSkip, CUSTOM } from './clamd-daemon.js';

// The "held for review" notice of scan.onInfected: quarantine goes only for a message that was
// taken (relayed, or queued for retries: both a 250). A message the next hop refused whole was
// never delivered and nothing of it is kept; its sender has the refusal and must not also be told
// that a file of it is held.

const dsnEntries = (env: Env) => env.db.selectFrom('queue_entries').select(['id', 'sender']).where('kind', '=', 'dsn').execute();

describe('queueHeldNotices: only once the reply says the message was taken', () => {
  let env: Env;
  const ctx = () => ({ db: env.db, blobs: env.blobs, logger: pino({ level: 'silent' }), hostname: 'ferry.test' });
  const notice = { sender: 'alice@example.com', admins: ['security@example.com'], transferId: 'T1', queueId: 'Q1', files: [{ name: 'tool.bin', signature: 'Ferry-Test-Custom' }] };
  beforeAll(async () => {
    env = await makeEnv();
  });
  afterAll(async () => {
    await env?.close();
  });

  it('a refusal of the whole message (5xx, 4xx) queues nothing', async () => {
    expect(await queueHeldNotices(ctx(), notice, { code: 550 })).toEqual([]);
    expect(await queueHeldNotices(ctx(), notice, replies.localError())).toEqual([]);
    expect(await dsnEntries(env)).toEqual([]);
  });

  it('a message relayed or queued (250) gets one notice to the sender and one to each admin, from the null sender', async () => {
    const ids = await queueHeldNotices(ctx(), notice, replies.queued('Q1', 2));
    expect(ids).toHaveLength(2);
    const entries = await dsnEntries(env);
    expect(entries.map((e) => e.id).sort()).toEqual([...ids].sort());
    expect(entries.every((e) => e.sender === '')).toBe(true);
  });

  it('nothing held, nothing queued', async () => {
    expect(await queueHeldNotices(ctx(), { ...notice, files: [] }, replies.accepted('Q2', 1))).toEqual([]);
  });
});

// The whole path: needs gateway/transaction.ts to queue the notice through queueHeldNotices
// after the relay's answer (the change is in the closing note of this work; transaction.ts
// belongs to another line of work at the moment). Until it does, this block says so and skips.
const wired = fs.readFileSync(path.join(import.meta.dirname, '../../gateway/transaction.ts'), 'utf8').includes('queueHeldNotices(');
const e2eSkip = clamdSkip || (wired ? '' : 'skipped: gateway/transaction.ts does not queue the notice with queueHeldNotices(..., outcome.reply) after the relay yet');
if (e2eSkip) console.warn(`[skip] scan-notice end to end: ${e2eSkip}`);

describe.skipIf(!!e2eSkip)('quarantine notice and the next hop’s answer, end to end', () => {
  let clamd: Clamd;
  let upstream: Upstream;
  let ferry: TestFerry;
  const HEADER = (to: string, subject: string) =>
    `From: alice@example.com\r\nTo: ${to}\r\nSubject: ${subject}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nHello.\r\n`;
  const part = (name: string, c: Buffer) =>
    `--b1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="${name}"\r\nContent-Transfer-Encoding: base64\r\n\r\n${c.toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n`;
  const message = (to: string, subject: string, file: string) => `${HEADER(to, subject)}${part(file, Buffer.concat([pseudoRandom(80_000, file), CUSTOM]))}--b1--\r\n`;
  async function send(to: string, raw: string): Promise<string> {
    const c = await RawSmtp.connect(ferry.smtpPort);
    try {
      await c.cmd('EHLO client.test');
      await c.cmd('MAIL FROM:<alice@example.com>');
      await c.cmd(`RCPT TO:<${to}>`);
      return await c.data(raw);
    } finally {
      c.close();
    }
  }
  const heldNotices = () => upstream.messages.filter((m) => /Subject: Attachment held for review/.test(m.raw.toString('latin1')));

  beforeAll(async () => {
    clamd = await Clamd.start();
    upstream = await new Upstream().start();
    // The next hop refuses one recipient for good: a message only to it is refused whole.
    upstream.behaviour.rcpt = (a) => (a === 'gone@example.net' ? { code: 550, message: '5.1.1 no such user' } : undefined);
    ferry = await startFerry({ relay: { url: upstream.url }, offload: { minAttachmentSize: 50_000 }, scan: { engine: 'clamd', clamd: clamd.address, onInfected: 'quarantine', notify: ['security@example.com'] } });
  }, 90_000);
  afterAll(async () => {
    await ferry?.stopAndClean();
    await upstream?.stop();
    await clamd?.stop();
  });

  it('refused whole by the next hop: the sender gets the refusal and no "held for review" notice; a message taken gets its notices', async () => {
    const refused = await send('gone@example.net', message('gone@example.net', 'Refused', 'first.bin'));
    expect(refused).toMatch(/^550 5\.1\.1 /);
    // A second message, taken: its notices come through the same queue after any of the first.
    expect(await send('bob@example.net', message('bob@example.net', 'Taken', 'second.bin'))).toMatch(/^250 /);
    const deadline = Date.now() + 30_000;
    while (heldNotices().length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const notices = heldNotices();
    expect(notices.map((m) => m.raw.toString('latin1').match(/Subject: Attachment held for review: (\S+)/)?.[1])).toEqual(['second.bin', 'second.bin']);
    expect(notices.flatMap((m) => m.to).sort()).toEqual(['alice@example.com', 'security@example.com']);
  }, 60_000);
});
