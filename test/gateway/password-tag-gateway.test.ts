import fs from 'node:fs';
import MailComposer from 'nodemailer/lib/mail-composer';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRoles, type RunningRoles } from '../../cli/start.js';
import { loadConfig } from '../../config/index.js';
import { getTransfer, listLinks, type Db } from '../../storage/index.js';
import { verifyTransferPassword } from '../../storage/transfer-passwords.js';
import { freePort, tempDir } from '../helpers/ferry.js';
import { landingLinks, parse, pseudoRandom } from '../helpers/mail.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { stripFerryReceived } from '../helpers/received.js';
import { Upstream, type ReceivedMessage } from '../helpers/upstream.js';

// Issue 17, item 5, the gateway's part: a sender who writes the password tag (offload.passwordTag,
// default "[secure]") in the subject, or a retention rule with requirePassword, gets a transfer
// with a generated password. The tag leaves the relayed and the stored subject; the rest of the
// header block stays as the sender's client wrote it; the password is in the sender's receipt
// and nowhere else (not in any recipient's copy, not in the logs).

const THRESHOLD = 100_000;

interface Running {
  ferry: RunningRoles;
  dir: string;
  publicUrl: string;
  logs: string[];
}

const upstream = new Upstream();
let main: Running;

/** A whole Ferry whose log lines are kept, to show the password never reaches them. */
async function start(overrides: Record<string, unknown> = {}): Promise<Running> {
  const dir = tempDir();
  const webPort = await freePort();
  const publicUrl = `http://127.0.0.1:${webPort}`;
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir: dir,
      smtp: { host: '127.0.0.1', port: 0, hostname: 'ferry.test' },
      web: { host: '127.0.0.1', port: webPort, publicUrl },
      relay: { url: upstream.url },
      offload: { minAttachmentSize: THRESHOLD },
      queue: { pollInterval: '200ms' },
      ...overrides,
    },
  });
  const logs: string[] = [];
  const ferry = await startRoles(config, pino({ level: 'debug' }, { write: (l: string) => void logs.push(l) }), ['gateway', 'web', 'worker']);
  return { ferry, dir, publicUrl, logs };
}

async function stop(r: Running | undefined) {
  if (!r) return;
  await r.ferry.stop();
  fs.rmSync(r.dir, { recursive: true, force: true });
}

beforeAll(async () => {
  await upstream.start();
  main = await start({ retention: { rules: [{ recipientDomain: 'vault.example', days: 7, requirePassword: true }] } });
});
afterAll(async () => {
  await stop(main);
  await upstream.stop();
});

/** The message as nodemailer's composer writes it (CRLF), with one attachment over the threshold. */
async function compose(subject: string, to = ['bob@example.net', 'carol@example.org']): Promise<Buffer> {
  const raw = await new MailComposer({
    from: 'alice@example.com',
    to,
    subject,
    text: 'The contract is attached.\n',
    attachments: [{ filename: 'contract.pdf', content: pseudoRandom(300_000, subject), contentType: 'application/pdf' }],
  })
    .compile()
    .build();
  return Buffer.from(raw.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
}

/** Sends `raw` to `to` and returns the queue id and what the next hop got for it. */
async function send(r: Running, raw: Buffer, to = ['bob@example.net', 'carol@example.org']): Promise<{ queueId: string; copies: ReceivedMessage[] }> {
  const before = upstream.messages.length;
  const c = await RawSmtp.connect(r.ferry.smtpPort!);
  let reply: string;
  try {
    await c.cmd('EHLO client.test');
    await c.cmd('MAIL FROM:<alice@example.com>');
    for (const t of to) await c.cmd(`RCPT TO:<${t}>`);
    reply = await c.data(raw);
  } finally {
    c.close();
  }
  expect(reply).toMatch(/^250 2\.0\.0 Ok: queued as [0-9A-F]{16}/);
  const queueId = /queued as ([0-9A-F]{16})/.exec(reply)![1]!;
  return { queueId, copies: upstream.messages.slice(before).filter((m) => !m.to.includes('alice@example.com')) };
}

async function transferOf(db: Db, queueId: string) {
  const row = await db.selectFrom('transfers').select(['id', 'password_hash']).where('queue_id', '=', queueId).executeTakeFirstOrThrow();
  return { ...(await getTransfer(db, row.id))!, passwordHash: row.password_hash as string | null };
}

/** The receipt to alice for `queueId`, once the queue runner has sent it. */
async function receipt(queueId: string): Promise<string> {
  let found: ReceivedMessage | undefined;
  await expect
    .poll(
      () => {
        found = upstream.messages.find((m) => m.to[0] === 'alice@example.com' && m.raw.toString('latin1').replace(/=\r\n/g, '').includes(queueId));
        return !!found;
      },
      { timeout: 20_000, interval: 100 },
    )
    .toBe(true);
  return (await parse(found!.raw)).text ?? '';
}

/** The header fields of a message, unfolded, without Ferry's Received field. */
function headerFields(raw: Buffer): string[] {
  const s = raw.toString('latin1');
  const head = s.slice(0, s.indexOf('\r\n\r\n'));
  return head.split(/\r\n(?![ \t])/);
}

const without = (fields: string[], ...names: string[]) => fields.filter((f) => !names.some((n) => f.toLowerCase().startsWith(`${n.toLowerCase()}:`)));

describe('the password tag in the subject', () => {
  it('"[secure]" leaves the relayed and the stored subject, the transfer gets a password, which only the receipt shows', async () => {
    const raw = await compose('[secure] Contract for signature');
    const { queueId, copies } = await send(main, raw);
    expect(copies).toHaveLength(2);
    const t = await transferOf(main.ferry.storage.db, queueId);
    expect(t.passwordProtected).toBe(true);
    expect(t.subject).toBe('Contract for signature');
    for (const copy of copies) {
      expect((await parse(copy.raw)).subject).toBe('Contract for signature');
      // Every other field is as the sender's client wrote it.
      const sent = without(headerFields(raw), 'Subject');
      const relayed = without(headerFields(stripFerryReceived(copy.raw)), 'Subject', 'X-Ferry-Offloaded');
      expect(relayed).toEqual(sent);
      expect(copy.raw.toString('latin1')).not.toMatch(/\[secure\]/i);
    }

    const text = await receipt(queueId);
    const password = /^Password: (\S+)$/m.exec(text)?.[1];
    expect(password).toBeDefined();
    expect(await verifyTransferPassword(password!, t.passwordHash!)).toBe(true);
    // Never in a recipient's copy (decoded or not), never in the logs.
    for (const copy of copies) {
      expect(copy.raw.toString('latin1').replace(/=\r\n/g, '')).not.toContain(password);
      expect(JSON.stringify(await parse(copy.raw))).not.toContain(password);
    }
    expect(main.logs.length).toBeGreaterThan(0);
    expect(main.logs.join('\n')).not.toContain(password);
    // Nor the management link the receipt carries, nor a recipient's token.
    const manage = /\/m\/([A-Za-z0-9_-]{27})/.exec(text)![1]!;
    expect(main.logs.join('\n')).not.toContain(manage);
    for (const copy of copies) for (const l of await landingLinks(copy.raw, main.publicUrl)) expect(main.logs.join('\n')).not.toContain(l.split('/t/')[1]);
    // Each recipient kept its own link.
    expect((await listLinks(main.ferry.storage.db, t.id)).map((l) => l.recipient).sort()).toEqual(['bob@example.net', 'carol@example.org']);
  });

  it('any case, anywhere, in an encoded non-ASCII subject: taken out, the rest decoded the same', async () => {
    const raw = await compose('Vertrag für Müller [SECURE] – bitte prüfen');
    expect(raw.toString('latin1')).toMatch(/^Subject: =\?UTF-8\?/m);
    const { queueId, copies } = await send(main, raw);
    const t = await transferOf(main.ferry.storage.db, queueId);
    expect(t.passwordProtected).toBe(true);
    expect(t.subject).toBe('Vertrag für Müller – bitte prüfen');
    for (const copy of copies) {
      expect((await parse(copy.raw)).subject).toBe('Vertrag für Müller – bitte prüfen');
      // Still a 7-bit header: encoded words, not raw UTF-8.
      const subject = headerFields(copy.raw).find((f) => /^subject:/i.test(f))!;
      expect(subject).toMatch(/^Subject: .*=\?UTF-8\?Q\?/i);
      expect(/^[\x20-\x7e\r\n\t]*$/.test(subject)).toBe(true);
    }
  });

  it('no tag: no password, and the Subject field is relayed byte for byte', async () => {
    const raw = await compose('Contract, not secure');
    const { queueId, copies } = await send(main, raw);
    expect((await transferOf(main.ferry.storage.db, queueId)).passwordProtected).toBe(false);
    const sentSubject = headerFields(raw).find((f) => /^subject:/i.test(f));
    for (const copy of copies) expect(headerFields(copy.raw).find((f) => /^subject:/i.test(f))).toBe(sentSubject);
    expect(await receipt(queueId)).not.toMatch(/^Password:/m);
  });

  it('a word that only contains the tag ("insecure") is no tag', async () => {
    const f = await start({ offload: { minAttachmentSize: THRESHOLD, passwordTag: 'secure' }, senders: { receipts: 'off' } });
    try {
      const { queueId, copies } = await send(f, await compose('An insecure channel'));
      expect((await transferOf(f.ferry.storage.db, queueId)).passwordProtected).toBe(false);
      expect((await parse(copies[0]!.raw)).subject).toBe('An insecure channel');
    } finally {
      await stop(f);
    }
  });

  it('offload.passwordTag set to "" turns the tag off: the subject stays, no password', async () => {
    const f = await start({ offload: { minAttachmentSize: THRESHOLD, passwordTag: '' }, senders: { receipts: 'off' } });
    try {
      const { queueId, copies } = await send(f, await compose('[secure] Contract'));
      expect((await transferOf(f.ferry.storage.db, queueId)).passwordProtected).toBe(false);
      expect((await parse(copies[0]!.raw)).subject).toBe('[secure] Contract');
    } finally {
      await stop(f);
    }
  });

  it('nothing offloaded: there is no transfer to protect, and the message is relayed as it came (tag included)', async () => {
    const raw = Buffer.from((await new MailComposer({ from: 'alice@example.com', to: 'bob@example.net', subject: '[secure] small', text: 'hi' }).compile().build()).toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
    const { copies } = await send(main, raw, ['bob@example.net']);
    expect(stripFerryReceived(copies[0]!.raw).equals(raw)).toBe(true);
  });
});

describe('a retention rule with requirePassword', () => {
  it('protects the transfer without a tag and leaves the subject alone', async () => {
    const { queueId, copies } = await send(main, await compose('Statement', ['bob@vault.example']), ['bob@vault.example']);
    const t = await transferOf(main.ferry.storage.db, queueId);
    expect(t.passwordProtected).toBe(true);
    expect(t.subject).toBe('Statement');
    expect((await parse(copies[0]!.raw)).subject).toBe('Statement');
    const password = /^Password: (\S+)$/m.exec(await receipt(queueId))?.[1];
    expect(await verifyTransferPassword(password!, t.passwordHash!)).toBe(true);
    expect(copies[0]!.raw.toString('latin1').replace(/=\r\n/g, '')).not.toContain(password);
  });
});
