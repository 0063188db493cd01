import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { deleteEntry, listLinks, listQueue, type Db } from '../../storage/index.js';
import { freePort, listFiles, startFerry, tempDir, type TestFerry } from '../helpers/ferry.js';
import { dispositionName, download, fileLinks, landingLinks, parse, pseudoRandom, sha256 } from '../helpers/mail.js';
import { hasPython, parseDsn } from '../helpers/queue-dsn.js';
import { ferryReceived } from '../helpers/received.js';
import { Upstream, type ReceivedMessage } from '../helpers/upstream.js';
import { hasTool } from '../ops/helpers.js';

// Issue 17, item 1, end to end through the real gateway, web app and queue runner, against a
// real next hop (smtp-server): with offload.linkPerRecipient each envelope recipient gets its own
// copy, relayed in its own transaction, with a link of its own; the attachments are stored once.

const THRESHOLD = 100_000;
// Receipts are issue 17 item 2 (test/gateway/senders/); off here so the next hop sees only the copies.
const QUIET = { senders: { receipts: 'off' } };

let ferry: TestFerry;
let upstream: Upstream;

beforeAll(async () => {
  upstream = await new Upstream().start();
  ferry = await startFerry({ relay: { url: upstream.url }, offload: { minAttachmentSize: THRESHOLD }, ...QUIET });
});
afterAll(async () => {
  await ferry?.stopAndClean();
  await upstream?.stop();
});
beforeEach(() => {
  upstream.behaviour = {};
});

function client(port: number) {
  return nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true });
}

const big1 = pseudoRandom(600_000, 'per-recipient-1');
const big2 = pseudoRandom(250_000, 'per-recipient-2');

/** Two To recipients, one Bcc, two attachments over the threshold; nodemailer composes it and leaves Bcc out of the header. */
function send(port: number, subject: string) {
  return client(port).sendMail({
    from: 'alice@example.com',
    to: ['bob@example.net', 'carol@example.org'],
    bcc: 'dave@example.com',
    subject,
    text: 'Hello,\nthe plans are attached.\n',
    html: '<html><body><p>Hello, the plans are attached.</p></body></html>',
    attachments: [
      { filename: 'plans.pdf', content: big1, contentType: 'application/pdf' },
      { filename: 'photos.zip', content: big2, contentType: 'application/zip' },
    ],
  });
}

async function transferOf(db: Db, queueId: string) {
  const row = await db.selectFrom('transfers').select(['id']).where('queue_id', '=', queueId).executeTakeFirstOrThrow();
  return row.id;
}

/** Blobs under the transfer's folder: the stored attachments and the relayed copies. */
function transferBlobs(f: TestFerry, transferId: string) {
  const all = listFiles(path.join(f.dir, 'blobs', 't', transferId)).map((p) => path.basename(p));
  return { files: all.filter((n) => !n.startsWith('copy-')), copies: all.filter((n) => n.startsWith('copy-')) };
}

/** Everything a recipient can read in a copy, decoded, plus the raw bytes with soft line breaks joined. */
async function readable(raw: Buffer): Promise<string> {
  const mail = await parse(raw);
  const parts = [mail.text ?? '', String(mail.html || ''), ...mail.attachments.map((a) => a.content.toString('utf8'))];
  return [raw.toString('latin1').replace(/=\r\n/g, ''), ...parts].join('\n');
}

/** The parts standing in for offloaded files, as Python's email package reads them (mailparser folds inline text parts into the body). */
function placeholderParts(raw: Buffer): { idx: string; text: string }[] {
  const py = String.raw`
import sys, json, email
from email import policy
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=policy.default)
print(json.dumps([{'idx': p['X-Ferry-Offloaded-File'], 'text': p.get_content().replace('\r\n', '\n')} for p in m.walk() if p['X-Ferry-Offloaded-File']]))
`;
  return JSON.parse(execFileSync('python3', ['-c', py], { input: raw }).toString('utf8'));
}

/** The recipient Ferry's Received field names ("for <...>"), if any. */
const traceFor = (raw: Buffer) => /\tfor <([^>]*)>/.exec(ferryReceived(raw).field)?.[1];

const queueIdOf = (response: string) => /queued as ([0-9A-F]{16})/.exec(response)![1]!;

describe('one copy per recipient', () => {
  it.skipIf(!hasPython)('two To and one Bcc: three transactions of one recipient each, three links, the files stored once, no copy names the Bcc', async () => {
    const before = upstream.messages.length;
    const info = await send(ferry.smtpPort, 'Plans');
    expect(info.response).toMatch(/^250 2\.0\.0 Ok: queued as [0-9A-F]{16}, 2 attachments turned into download links/);
    const queueId = queueIdOf(info.response);
    const copies = upstream.messages.slice(before);
    expect(copies.map((m) => m.to)).toEqual([['bob@example.net'], ['carol@example.org'], ['dave@example.com']]);
    expect(copies.every((m) => m.from === 'alice@example.com')).toBe(true);

    // Each copy: exactly one landing link, its own.
    const linksByRecipient = new Map<string, string>();
    for (const m of copies) {
      const links = await landingLinks(m.raw, ferry.publicUrl);
      expect(links).toHaveLength(1);
      linksByRecipient.set(m.to[0]!, links[0]!);
    }
    expect(new Set(linksByRecipient.values()).size).toBe(3);

    for (const m of copies) {
      const text = await readable(m.raw);
      const me = m.to[0]!;
      // Nothing about the other envelope recipients' links, and the Bcc recipient only in its own copy.
      for (const [who, link] of linksByRecipient) if (who !== me) expect(text).not.toContain(link.split('/t/')[1]);
      if (me !== 'dave@example.com') expect(text.toLowerCase()).not.toContain('dave');
      expect(m.raw.toString('latin1')).not.toMatch(/^bcc:/im);
      // Ferry's trace names this copy's recipient alone.
      expect(ferryReceived(m.raw).id).toBe(queueId);
      expect(traceFor(m.raw)).toBe(me);
      // The placeholder parts carry the same link as the notice.
      const placeholders = placeholderParts(m.raw);
      expect(placeholders.map((p) => p.idx).sort()).toEqual(['1', '2']);
      for (const p of placeholders) expect(p.text).toContain(`was sent as a download link:\n${linksByRecipient.get(me)}\n`);
      const mail = await parse(m.raw);
      expect(mail.text).toContain(`Download: ${linksByRecipient.get(me)}`);
      expect(String(mail.html)).toContain(linksByRecipient.get(me));
    }

    // The attachments are stored once; beside them, one copy per recipient, byte for byte what that recipient got.
    const transferId = await transferOf(ferry.storage.db, queueId);
    const blobs = transferBlobs(ferry, transferId);
    expect(blobs.files).toHaveLength(2);
    expect(blobs.copies).toHaveLength(3);
    const links = await listLinks(ferry.storage.db, transferId);
    expect(links.map((l) => l.recipient).sort()).toEqual(['bob@example.net', 'carol@example.org', 'dave@example.com']);
    for (const l of links) {
      expect(l.copyBlobKey).toBe(`t/${transferId}/copy-${l.id}`);
      const stored = fs.readFileSync(path.join(ferry.dir, 'blobs', l.copyBlobKey!));
      const relayed = copies.find((m) => m.to[0] === l.recipient)!;
      expect(stored.equals(relayed.raw)).toBe(true);
    }

    // Every recipient's landing page works and gives the exact files.
    for (const m of copies) {
      const files = await fileLinks(m.raw, ferry.publicUrl);
      expect(files).toHaveLength(2);
      const got = new Map<string, string>();
      for (const url of files) {
        const r = await download(url);
        expect(r.status).toBe(200);
        got.set(dispositionName(r.headers.get('content-disposition'))!, sha256(r.body));
      }
      expect(Object.fromEntries(got)).toEqual({ 'plans.pdf': sha256(big1), 'photos.zip': sha256(big2) });
    }
  });

  it('a single recipient gets a link of its own, named after it', async () => {
    const before = upstream.messages.length;
    const info = await client(ferry.smtpPort).sendMail({ from: 'alice@example.com', to: 'bob@example.net', subject: 'one', text: 'x', attachments: [{ filename: 'a.bin', content: big2 }] });
    const transferId = await transferOf(ferry.storage.db, queueIdOf(info.response));
    expect(upstream.messages.length - before).toBe(1);
    expect((await listLinks(ferry.storage.db, transferId)).map((l) => l.recipient)).toEqual(['bob@example.net']);
  });
});

describe('one shared link', () => {
  for (const [what, offload] of [
    ['offload.linkPerRecipient off', { linkPerRecipient: false }],
    ['more recipients than offload.maxPerRecipientLinks', { maxPerRecipientLinks: 2 }],
  ] as const) {
    it(`${what}: one transaction to every recipient, one link, one copy`, async () => {
      const f = await startFerry({ relay: { url: upstream.url }, offload: { minAttachmentSize: THRESHOLD, ...offload }, ...QUIET });
      try {
        const before = upstream.messages.length;
        const info = await send(f.smtpPort, 'Shared');
        expect(info.response).toMatch(/^250 2\.0\.0 Ok: queued as/);
        const copies = upstream.messages.slice(before);
        expect(copies.map((m) => m.to)).toEqual([['bob@example.net', 'carol@example.org', 'dave@example.com']]);
        expect(await landingLinks(copies[0]!.raw, f.publicUrl)).toHaveLength(1);
        // Several recipients: the trace names none of them.
        expect(traceFor(copies[0]!.raw)).toBeUndefined();
        expect(copies[0]!.raw.toString('latin1').toLowerCase()).not.toContain('dave');
        const transferId = await transferOf(f.storage.db, queueIdOf(info.response));
        expect((await listLinks(f.storage.db, transferId)).map((l) => l.recipient)).toEqual(['']);
        expect(transferBlobs(f, transferId)).toMatchObject({ files: expect.any(Array), copies: [expect.any(String)] });
        expect(transferBlobs(f, transferId).files).toHaveLength(2);
        const files = await fileLinks(copies[0]!.raw, f.publicUrl);
        expect(files).toHaveLength(2);
      } finally {
        await f.stopAndClean();
      }
    });
  }
});

describe('refusals and the queue across copies', () => {
  it.skipIf(!hasPython)('the next hop refuses one recipient permanently: the others get their copies, the sender one DSN naming only that one', async () => {
    upstream.behaviour = { rcpt: (a) => (a === 'carol@example.org' ? { code: 550, message: '5.1.1 No such user here' } : undefined) };
    const before = upstream.messages.length;
    const info = await send(ferry.smtpPort, 'Partly refused');
    // Delivered to some: the client gets 250, not a bounce and not "queued".
    expect(info.response).toMatch(/^250 2\.0\.0 Ok: queued as [0-9A-F]{16}, 2 attachments/);
    expect(info.response).not.toMatch(/not available now/);
    const isDsn = (m: ReceivedMessage) => m.to[0] === 'alice@example.com' && /multipart\/report/i.test(m.raw.toString('latin1'));
    // The DSN is queued and sent by the queue runner.
    await expect.poll(() => upstream.messages.slice(before).filter(isDsn).length, { timeout: 20_000, interval: 100 }).toBe(1);
    const got = upstream.messages.slice(before);
    expect(got.filter((m) => !isDsn(m)).map((m) => m.to)).toEqual([['bob@example.net'], ['dave@example.com']]);
    const dsn = await parseDsn(got.find(isDsn)!.raw);
    expect(dsn.recipients.map((r) => [r.finalRecipient, r.action, r.status])).toEqual([['rfc822; carol@example.org', 'failed', '5.1.1']]);
    // The transfer stays: two recipients have working links.
    const transferId = await transferOf(ferry.storage.db, queueIdOf(info.response));
    const t = await ferry.storage.db.selectFrom('transfers').select(['state']).where('id', '=', transferId).executeTakeFirstOrThrow();
    expect(t.state).toBe('live');
    // Nothing more arrives (no second DSN).
    await new Promise((r) => setTimeout(r, 500));
    expect(upstream.messages.slice(before).filter(isDsn)).toHaveLength(1);
  });

  it('every recipient of every copy refused permanently: the client gets the refusal and nothing is kept', async () => {
    upstream.behaviour = { rcpt: () => ({ code: 550, message: '5.1.1 No such user here' }) };
    const blobsBefore = listFiles(path.join(ferry.dir, 'blobs', 't')).length;
    const err = await send(ferry.smtpPort, 'All refused').catch((e: { responseCode: number; response: string }) => e);
    expect((err as { responseCode: number }).responseCode).toBe(550);
    expect((err as { response: string }).response).toMatch(/^550 5\.1\.1 Next hop said: /);
    expect(listFiles(path.join(ferry.dir, 'blobs', 't')).length).toBe(blobsBefore);
  });

  it('next hop down: one queue entry per copy, which the queue runner delivers once it is back', async () => {
    const port = await freePort();
    const f = await startFerry({ relay: { url: `smtp://127.0.0.1:${port}` }, offload: { minAttachmentSize: THRESHOLD }, queue: { retrySchedule: '1s', pollInterval: '200ms' }, ...QUIET });
    const later = new Upstream();
    try {
      const info = await send(f.smtpPort, 'Later');
      expect(info.response).toMatch(/^250 2\.0\.0 Ok: queued as [0-9A-F]{16}, 2 attachments turned into download links; the next mail server is not available now/);
      const queueId = queueIdOf(info.response);
      const { entries } = await listQueue(f.storage.db);
      expect(entries.map((e) => [e.id, e.kind, e.recipients.map((r) => [r.address, r.state])]).sort()).toEqual(
        [
          [queueId, 'message', [['bob@example.net', 'pending']]],
          [`${queueId}-2`, 'message', [['carol@example.org', 'pending']]],
          [`${queueId}-3`, 'message', [['dave@example.com', 'pending']]],
        ].sort(),
      );
      const transferId = await transferOf(f.storage.db, queueId);
      expect(new Set(entries.map((e) => e.transferId))).toEqual(new Set([transferId]));

      await later.start(port);
      await expect.poll(() => later.messages.length, { timeout: 20_000, interval: 100 }).toBe(3);
      await expect.poll(async () => (await listQueue(f.storage.db)).entries.length, { timeout: 10_000, interval: 100 }).toBe(0);
      expect(later.messages.map((m) => m.to).sort()).toEqual([['bob@example.net'], ['carol@example.org'], ['dave@example.com']]);
      const links = new Set<string>();
      for (const m of later.messages) for (const l of await landingLinks(m.raw, f.publicUrl)) links.add(l);
      expect(links.size).toBe(3);
      for (const m of later.messages) {
        if (m.to[0] !== 'dave@example.com') expect(m.raw.toString('latin1').toLowerCase()).not.toContain('dave');
        const files = await fileLinks(m.raw, f.publicUrl);
        expect(files).toHaveLength(2);
        expect((await download(files[0]!)).status).toBe(200);
      }
      // The queued copies were the stored ones, byte for byte.
      for (const l of await listLinks(f.storage.db, transferId)) {
        const stored = fs.readFileSync(path.join(f.dir, 'blobs', l.copyBlobKey!));
        expect(stored.equals(later.messages.find((m) => m.to[0] === l.recipient)!.raw)).toBe(true);
      }
    } finally {
      await f.stopAndClean();
      await later.stop().catch(() => undefined);
    }
  });
});

describe('a copy that is never delivered', () => {
  const linkState = async (f: TestFerry, transferId: string) =>
    Object.fromEntries((await listLinks(f.storage.db, transferId)).map((l) => [l.recipient, l.revokedAt === null ? 'live' : 'revoked']));

  it('deleting one queued copy revokes that recipient\'s link only: the transfer stays for the copies still queued', async () => {
    const port = await freePort();
    const f = await startFerry({ relay: { url: `smtp://127.0.0.1:${port}` }, offload: { minAttachmentSize: THRESHOLD }, queue: { retrySchedule: '1h' }, ...QUIET });
    try {
      const info = await send(f.smtpPort, 'One copy dropped');
      const queueId = queueIdOf(info.response);
      const transferId = await transferOf(f.storage.db, queueId);
      const carol = (await listQueue(f.storage.db)).entries.find((e) => e.recipients[0]!.address === 'carol@example.org')!;
      expect(await deleteEntry(f.storage.db, f.storage.blobs, carol.id, { actor: 'admin:test' })).toBe('deleted');
      const t = await f.storage.db.selectFrom('transfers').select(['state']).where('id', '=', transferId).executeTakeFirstOrThrow();
      expect(t.state).toBe('live');
      expect(await linkState(f, transferId)).toEqual({ 'bob@example.net': 'live', 'carol@example.org': 'revoked', 'dave@example.com': 'live' });
      expect(transferBlobs(f, transferId).files).toHaveLength(2);
    } finally {
      await f.stopAndClean();
    }
  });

  it('a copy given up after others were delivered at end of DATA: the delivered recipients keep their links and files', async () => {
    upstream.behaviour = { rcpt: (a) => (a === 'carol@example.org' ? { code: 450, message: '4.2.1 Try again later' } : undefined) };
    const info = await send(ferry.smtpPort, 'One copy deferred');
    const queueId = queueIdOf(info.response);
    const transferId = await transferOf(ferry.storage.db, queueId);
    const carol = (await listQueue(ferry.storage.db)).entries.find((e) => e.transferId === transferId)!;
    expect(carol.recipients.map((r) => r.address)).toEqual(['carol@example.org']);
    expect(await deleteEntry(ferry.storage.db, ferry.storage.blobs, carol.id, { actor: 'admin:test' })).toBe('deleted');
    const t = await ferry.storage.db.selectFrom('transfers').select(['state']).where('id', '=', transferId).executeTakeFirstOrThrow();
    expect(t.state).toBe('live');
    expect((await linkState(ferry, transferId))['carol@example.org']).toBe('revoked');
    expect((await linkState(ferry, transferId))['bob@example.net']).toBe('live');
    expect(transferBlobs(ferry, transferId).files).toHaveLength(2);
  });
});

describe('each copy as a message of its own', () => {
  it('an outbox next hop gets one file pair per copy: <id>.eml, <id>-2.eml, ..., each envelope with its one recipient', async () => {
    const f = await startFerry({ offload: { minAttachmentSize: THRESHOLD }, ...QUIET });
    try {
      const info = await send(f.smtpPort, 'Outbox');
      const queueId = queueIdOf(info.response);
      const files = fs.readdirSync(f.outbox).sort();
      expect(files).toEqual([`${queueId}-2.eml`, `${queueId}-2.json`, `${queueId}-3.eml`, `${queueId}-3.json`, `${queueId}.eml`, `${queueId}.json`].sort());
      const envelopes = [queueId, `${queueId}-2`, `${queueId}-3`].map((id) => JSON.parse(fs.readFileSync(path.join(f.outbox, `${id}.json`), 'utf8')).to);
      expect(envelopes).toEqual([['bob@example.net'], ['carol@example.org'], ['dave@example.com']]);
      const links = new Set<string>();
      for (const id of [queueId, `${queueId}-2`, `${queueId}-3`]) for (const l of await landingLinks(fs.readFileSync(path.join(f.outbox, `${id}.eml`)), f.publicUrl)) links.add(l);
      expect(links.size).toBe(3);
    } finally {
      await f.stopAndClean();
    }
  });

  it.skipIf(!hasTool('openssl'))('with DKIM signing each copy is signed over its own bytes, and every signature verifies', async () => {
    const dir = tempDir('ferry-copies-dkim-');
    const keyFile = path.join(dir, 'ferry.pem');
    execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', keyFile], { stdio: 'pipe' });
    const record = `v=DKIM1; k=rsa; p=${execFileSync('openssl', ['pkey', '-in', keyFile, '-pubout', '-outform', 'DER']).toString('base64')}`;
    const resolver = async (name: string) => {
      if (name.toLowerCase() !== 'ferry._domainkey.example.com') throw Object.assign(new Error(`no ${name}`), { code: 'ENOTFOUND' });
      return [[record]];
    };
    const f = await startFerry({
      relay: { url: upstream.url },
      offload: { minAttachmentSize: THRESHOLD },
      dkim: { keys: [{ domain: 'example.com', selector: 'ferry', privateKeyFile: keyFile, algorithm: 'rsa-sha256' }] },
      ...QUIET,
    });
    try {
      const before = upstream.messages.length;
      await send(f.smtpPort, 'Signed copies');
      const copies = upstream.messages.slice(before);
      expect(copies).toHaveLength(3);
      const bodyHashes = new Set<string>();
      for (const m of copies) {
        const r = await dkimVerify(m.raw, { resolver } as never);
        const mine = (r.results as { signingDomain: string; status: { result: string } }[]).filter((x) => x.signingDomain === 'example.com');
        expect(mine.map((x) => x.status.result)).toEqual(['pass']);
        bodyHashes.add(/\bbh=([^;]+);/.exec(m.raw.toString('latin1').replace(/\r\n[ \t]+/g, ' '))![1]!.replace(/\s/g, ''));
      }
      // The copies differ (their links), so each has a signature of its own.
      expect(bodyHashes.size).toBe(3);
    } finally {
      await f.stopAndClean();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
