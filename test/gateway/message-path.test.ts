import fs from 'node:fs';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { countTransfers, listQueue } from '../../storage/index.js';
import { freePort, listFiles, startFerry, type TestFerry } from '../helpers/ferry.js';
import { directFileLinks, dispositionName, download, fileLinks, landingLinks, parse, pseudoRandom, sha256 } from '../helpers/mail.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { Upstream } from '../helpers/upstream.js';
import { ferryReceived, stripFerryReceived } from '../helpers/received.js';

const THRESHOLD = 100_000;

let ferry: TestFerry;
let upstream: Upstream;

beforeAll(async () => {
  upstream = await new Upstream().start();
  ferry = await startFerry({ relay: { url: upstream.url }, offload: { minAttachmentSize: THRESHOLD } });
});
afterAll(async () => {
  await ferry?.stopAndClean();
  await upstream?.stop();
});
beforeEach(() => {
  upstream.behaviour = {};
});

function client(port = ferry.smtpPort) {
  return nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true });
}

async function sendRaw(raw: Buffer | string, opts: { from?: string; to?: string[] } = {}): Promise<string> {
  const c = await RawSmtp.connect(ferry.smtpPort);
  try {
    await c.cmd('EHLO client.test');
    await c.cmd(`MAIL FROM:<${opts.from ?? 'alice@example.com'}>`);
    for (const to of opts.to ?? ['bob@example.net']) await c.cmd(`RCPT TO:<${to}>`);
    return await c.data(raw);
  } finally {
    c.close();
  }
}

async function leftovers() {
  return { blobs: listFiles(path.join(ferry.dir, 'blobs')), spool: listFiles(path.join(ferry.dir, 'spool')), transfers: await countTransfers(ferry.storage.db) };
}

describe('offload, rewrite, relay, download', () => {
  it('relays the rewritten message upstream and every link downloads the exact attached bytes', async () => {
    const big1 = pseudoRandom(1_500_000, 'big1');
    const big2 = pseudoRandom(400_000, 'big2');
    const small = pseudoRandom(20_000, 'small');
    const info = await client().sendMail({
      from: 'alice@example.com',
      to: ['bob@example.net', 'carol@example.org'],
      subject: 'Quarterly figures',
      text: 'Hi Bob,\nthe figures are attached.\n',
      html: '<html><head><title>x</title></head><body class="m"><p>Hi Bob, the figures are attached.</p></body></html>',
      attachments: [
        { filename: 'Q3 report.pdf', content: big1, contentType: 'application/pdf' },
        { filename: 'Präsentation ünd Daten.zip', content: big2, contentType: 'application/zip' },
        { filename: 'small.bin', content: small },
      ],
    });
    expect(info.response).toMatch(/^250 2\.0\.0 Ok: queued as [0-9A-F]{16}, 2 attachments turned into download links/);
    // One copy per recipient (offload.linkPerRecipient), each in a transaction of its own.
    const copies = upstream.messages.slice(-2);
    expect(copies.map((m) => m.to)).toEqual([['bob@example.net'], ['carol@example.org']]);
    const got = copies[0]!;
    expect(got.from).toBe('alice@example.com');
    expect(got.raw.length).toBeLessThan(60_000);

    const mail = await parse(got.raw);
    expect(mail.subject).toBe('Quarterly figures');
    expect(mail.headers.get('x-ferry-offloaded')).toBe('2 files; 1900000 bytes');
    // The notice leads the text body, the original text follows intact.
    expect(mail.text).toMatch(/^-{60}\s+2 attachments were sent as download links, available until \d{4}-\d\d-\d\d \d\d:\d\d UTC:/);
    expect(mail.text).toContain('* Q3 report.pdf (1.5 MB)');
    expect(mail.text).toContain('* Präsentation ünd Daten.zip (400 kB)');
    expect(mail.text).toContain('Hi Bob,\nthe figures are attached.');
    // HTML: after <body>, before the original content.
    const html = String(mail.html);
    expect(html.indexOf('<body class="m"><div')).toBeGreaterThan(0);
    expect(html.indexOf('sent as download links')).toBeLessThan(html.indexOf('<p>Hi Bob'));
    expect(html).toContain('Pr&#xE4;sentation &#xFC;nd Daten.zip');
    // The small attachment is still attached, unchanged; the big ones are gone.
    const atts = mail.attachments.filter((a) => a.contentDisposition === 'attachment');
    expect(atts.map((a) => a.filename)).toEqual(['small.bin']);
    expect(sha256(atts[0]!.content)).toBe(sha256(small));

    // The mail links only to the landing page (scanners fetch every link in a message).
    expect(await landingLinks(got.raw, ferry.publicUrl)).toHaveLength(1);
    expect(await directFileLinks(got.raw, ferry.publicUrl)).toEqual([]);
    const links = await fileLinks(got.raw, ferry.publicUrl);
    expect(links).toHaveLength(2);
    const expected = new Map([
      ['Q3 report.pdf', sha256(big1)],
      ['Präsentation ünd Daten.zip', sha256(big2)],
    ]);
    for (const link of links) {
      const r = await download(link);
      expect(r.status).toBe(200);
      const name = dispositionName(r.headers.get('content-disposition'))!;
      expect(expected.get(name)).toBe(sha256(r.body));
      expected.delete(name);
    }
    expect(expected.size).toBe(0);
  });

  it('writes to an outbox folder: the exact relayed bytes plus the envelope', async () => {
    const f = await startFerry({ offload: { minAttachmentSize: THRESHOLD } });
    try {
      const big = pseudoRandom(300_000, 'outbox');
      await client(f.smtpPort).sendMail({ from: 'alice@example.com', to: 'bob@example.net', subject: 'outbox', text: 'hello', attachments: [{ filename: 'a.bin', content: big }] });
      const files = fs.readdirSync(f.outbox).sort();
      expect(files).toHaveLength(2);
      const [eml, json] = files;
      expect(eml).toMatch(/^[0-9A-F]{16}\.eml$/);
      expect(json).toBe(eml!.replace('.eml', '.json'));
      expect(JSON.parse(fs.readFileSync(path.join(f.outbox, json!), 'utf8'))).toMatchObject({ from: 'alice@example.com', to: ['bob@example.net'] });
      const raw = fs.readFileSync(path.join(f.outbox, eml!));
      const [link] = await fileLinks(raw, f.publicUrl);
      const r = await download(link!);
      expect(sha256(r.body)).toBe(sha256(big));
    } finally {
      await f.stopAndClean();
    }
  });

  it('relays a message with nothing to offload byte for byte, odd formatting included', async () => {
    const raw = [
      'Received: from x by y; Tue, 1 Jan 2030 00:00:00 +0000',
      'DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s1;',
      '\th=from:to:subject; bh=abc=; b=def',
      'From: "Alice" <alice@example.com>',
      'To: bob@example.net',
      'Subject: =?utf-8?q?caf=C3=A9?=  folded',
      '   here',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary=XYZ',
      '',
      'preamble text',
      '--XYZ',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
      '',
      'Grüße. Trailing spaces   ',
      '.leading dot line',
      '--XYZ',
      'Content-Type: application/octet-stream; name=small.dat',
      'Content-Transfer-Encoding: base64',
      '',
      pseudoRandom(3000, 'nooff').toString('base64').replace(/.{60}/g, '$&\r\n'),
      '--XYZ--',
      'epilogue',
      '',
    ].join('\r\n');
    const r = await sendRaw(raw);
    expect(r).toMatch(/^250 2\.0\.0 Ok: queued as [0-9A-F]{16}$/);
    // Byte for byte after Ferry's one Received field, which names this transaction.
    const got = upstream.messages.at(-1)!.raw;
    expect(ferryReceived(got)).toMatchObject({ by: 'ferry.test', id: r.split(' ').at(-1) });
    expect(stripFerryReceived(got).equals(Buffer.from(raw))).toBe(true);
  });

  it('keeps parts under the threshold byte-identical and an inline cid image referenced by the HTML', async () => {
    const smallB64 = pseudoRandom(30_000, 'under').toString('base64').replace(/.{72}/g, '$&\r\n');
    const imgB64 = pseudoRandom(8_000, 'img').toString('base64').replace(/.{76}/g, '$&\r\n');
    const bigB64 = pseudoRandom(200_000, 'over').toString('base64').replace(/.{76}/g, '$&\r\n');
    const smallPart = ['Content-Type: application/octet-stream; name="under.bin"', 'Content-Disposition: attachment; filename="under.bin"', 'Content-Transfer-Encoding: base64', '', smallB64].join('\r\n');
    const imgPart = ['Content-Type: image/png; name="logo.png"', 'Content-ID: <logo@x>', 'Content-Disposition: inline; filename="logo.png"', 'Content-Transfer-Encoding: base64', '', imgB64].join('\r\n');
    const raw = [
      'From: alice@example.com',
      'To: bob@example.net',
      'Subject: cid',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="M"',
      '',
      '--M',
      'Content-Type: multipart/related; boundary="R"',
      '',
      '--R',
      'Content-Type: text/html; charset=utf-8',
      '',
      '<html><body><img src="cid:logo@x"><p>see logo</p></body></html>',
      '--R',
      imgPart,
      '--R--',
      '--M',
      smallPart,
      '--M',
      'Content-Type: application/octet-stream; name="over.bin"',
      'Content-Disposition: attachment; filename="over.bin"',
      'Content-Transfer-Encoding: base64',
      '',
      bigB64,
      '--M--',
      '',
    ].join('\r\n');
    expect(await sendRaw(raw)).toMatch(/^250 /);
    const out = upstream.messages.at(-1)!.raw.toString('latin1');
    expect(out).toContain(`\r\n${smallPart}\r\n--M`);
    expect(out).toContain(`\r\n${imgPart}\r\n--R--`);
    const mail = await parse(Buffer.from(out, 'latin1'));
    expect(String(mail.html)).toContain('cid:logo@x');
    expect(mail.attachments.find((a) => a.contentId === '<logo@x>')?.content.length).toBe(8_000);
    expect(await fileLinks(Buffer.from(out, 'latin1'), ferry.publicUrl)).toHaveLength(1);
  });

  it('puts a notice part first when the message has no text body', async () => {
    // Two attachments and no text: nodemailer builds multipart/mixed with no body part.
    await client().sendMail({
      from: 'alice@example.com',
      to: 'bob@example.net',
      subject: 'only files',
      attachments: [
        { filename: 'data.csv', content: pseudoRandom(250_000, 'nobody') },
        { filename: 'notes.txt', content: 'short notes' },
      ],
    });
    const raw = upstream.messages.at(-1)!.raw;
    const mail = await parse(raw);
    expect(mail.text).toMatch(/^-{60}\s+1 attachment was sent as a download link/);
    expect(mail.text).toContain('* data.csv (250 kB)');
    // The notice is the first part, so mail programs show it as the body.
    const firstPart = raw.toString('latin1').split(/\r\n--[^\r\n]+\r\n/)[1]!;
    expect(firstPart).toMatch(/^Content-Type: text\/plain; charset=utf-8\r\n/);
  });

  it('turns a message that is itself the attachment into a text part with the link', async () => {
    const big = pseudoRandom(180_000, 'root');
    const raw = [
      'From: alice@example.com',
      'To: bob@example.net',
      'Subject: bare',
      'MIME-Version: 1.0',
      'Content-Type: application/octet-stream; name="scan.tif"',
      'Content-Disposition: attachment; filename="scan.tif"',
      'Content-Transfer-Encoding: base64',
      '',
      big.toString('base64').replace(/.{76}/g, '$&\r\n'),
      '',
    ].join('\r\n');
    expect(await sendRaw(raw)).toMatch(/^250 /);
    const got = upstream.messages.at(-1)!.raw;
    const mail = await parse(got);
    expect(mail.subject).toBe('bare');
    expect(mail.text).toContain('The attachment "scan.tif" (180 kB) was sent as a download link:');
    const [link] = await fileLinks(got, ferry.publicUrl);
    expect(sha256((await download(link!)).body)).toBe(sha256(big));
  });

  it('shows hostile file names cleaned and escaped in the notice, and downloads them under a safe name', async () => {
    const names = ['<script>alert(1)</script>.pdf', '../../etc/passwd', 'say "hi" \\ there.txt', 'invoice\u202Efdp.exe'];
    await client().sendMail({
      from: 'alice@example.com',
      to: 'bob@example.net',
      subject: 'names',
      text: 'files',
      html: '<p>files</p>',
      attachments: names.map((n, i) => ({ filename: n, content: pseudoRandom(120_000, `n${i}`), contentType: 'application/octet-stream' })),
    });
    const raw = upstream.messages.at(-1)!.raw;
    const mail = await parse(raw);
    const html = String(mail.html);
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;.pdf');
    expect(mail.text).toContain('invoicefdp.exe');
    expect(mail.text).not.toContain('\u202E');
    for (const link of await fileLinks(raw, ferry.publicUrl)) {
      expect(link).not.toMatch(/\/\.\.\//);
      const r = await download(link);
      expect(r.status).toBe(200);
      const cd = r.headers.get('content-disposition')!;
      expect(cd).toMatch(/^attachment;/);
      expect(cd).not.toMatch(/[\r\n\u202E]/);
      const saved = dispositionName(cd)!;
      expect(saved).not.toContain('/');
      expect(saved).not.toContain('\u202E');
    }
  });
});

describe('failures leave nothing behind', () => {
  it('a client that drops the connection mid-DATA leaves no pending transfer, blob or spool file', async () => {
    const before = await leftovers();
    const c = await RawSmtp.connect(ferry.smtpPort);
    await c.cmd('EHLO client.test');
    await c.cmd('MAIL FROM:<alice@example.com>');
    await c.cmd('RCPT TO:<bob@example.net>');
    await c.cmd('DATA');
    c.write(['From: a@example.com', 'Subject: drop', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary=B', '', '--B', 'Content-Type: application/octet-stream', 'Content-Transfer-Encoding: base64', '', ''].join('\r\n'));
    c.write(pseudoRandom(600_000, 'drop').toString('base64').replace(/.{76}/g, '$&\r\n'));
    await new Promise((r) => setTimeout(r, 300));
    c.close();
    await expect.poll(async () => leftovers(), { timeout: 10_000, interval: 100 }).toEqual({ ...before, spool: [] });
  });

  it('a permanent refusal by the next hop is passed back with its code, and the blobs are deleted', async () => {
    const before = await leftovers();
    upstream.behaviour = { data: () => ({ code: 554, message: 'Message rejected by policy' }) };
    const err = await client()
      .sendMail({ from: 'alice@example.com', to: 'bob@example.net', subject: 'refused', text: 'x', attachments: [{ filename: 'f.bin', content: pseudoRandom(300_000, 'refused') }] })
      .catch((e: { responseCode: number; response: string }) => e);
    expect((err as { responseCode: number }).responseCode).toBe(554);
    expect((err as { response: string }).response).toMatch(/^554 5\.6\.0 Next hop said: Message rejected by policy/);
    expect(await leftovers()).toEqual({ ...before, spool: [] });
  });

  it('recipients all refused permanently at RCPT by the next hop: the 5xx comes back, nothing is kept', async () => {
    const before = await leftovers();
    upstream.behaviour = { rcpt: () => ({ code: 550, message: 'No such user here' }) };
    const r = await sendRaw(['From: a@example.com', 'Subject: x', 'MIME-Version: 1.0', 'Content-Type: application/pdf; name=x.pdf', 'Content-Transfer-Encoding: base64', '', pseudoRandom(150_000).toString('base64').replace(/.{76}/g, '$&\r\n'), ''].join('\r\n'));
    expect(r).toMatch(/^550 5\.1\.1 Next hop said: No such user here/);
    expect(await leftovers()).toEqual({ ...before, spool: [] });
  });

  it('an unreachable next hop: the client gets 250 with the queue id, the small message is queued, the transfer is live', async () => {
    const port = await freePort();
    const f = await startFerry({ relay: { url: `smtp://127.0.0.1:${port}` }, offload: { minAttachmentSize: THRESHOLD } });
    try {
      const info = await client(f.smtpPort).sendMail({ from: 'alice@example.com', to: 'bob@example.net', subject: 'down', text: 'x', attachments: [{ filename: 'f.bin', content: pseudoRandom(300_000, 'down') }] });
      expect(info.response).toMatch(/^250 2\.0\.0 Ok: queued as ([0-9A-F]{16}), 1 attachment turned into download links; the next mail server is not available now, Ferry will retry delivery/);
      const queueId = /queued as ([0-9A-F]{16})/.exec(info.response)![1]!;
      const { entries } = await listQueue(f.storage.db);
      expect(entries.map((e) => [e.id, e.sender, e.recipients.map((r) => [r.address, r.state]), e.attempts])).toEqual([[queueId, 'alice@example.com', [['bob@example.net', 'pending']], 1]]);
      // The attachment blob and the queued small message are both in the blob store, beside the
      // recipient's copy kept for the management page's "send again".
      const blobs = listFiles(path.join(f.dir, 'blobs'));
      expect(blobs.some((b) => b.includes(`${path.sep}queue${path.sep}${queueId.toLowerCase()}.eml`))).toBe(true);
      expect(blobs.filter((b) => !path.basename(b).startsWith('copy-')).length).toBe(2);
      expect(listFiles(path.join(f.dir, 'spool'))).toEqual([]);
      expect(await countTransfers(f.storage.db)).toBe(1);
    } finally {
      await f.stopAndClean();
    }
  });
});

describe('next hop size limit', () => {
  it('a message still too big for the next hop after offloading is refused permanently (552 5.3.4), not retried', async () => {
    // The next hop advertises SIZE 50000; the message keeps 80 kB of small attachments.
    const { SMTPServer } = await import('smtp-server');
    const small = new SMTPServer({ size: 50_000, authOptional: true, disabledCommands: ['STARTTLS', 'AUTH'], logger: false, onData: (s, _x, cb) => s.on('end', () => cb()).resume() });
    await new Promise<void>((r) => small.listen(0, '127.0.0.1', () => r()));
    const port = (small.server.address() as { port: number }).port;
    const f = await startFerry({ relay: { url: `smtp://127.0.0.1:${port}` }, offload: { minAttachmentSize: THRESHOLD } });
    try {
      const err = await client(f.smtpPort)
        .sendMail({
          from: 'alice@example.com',
          to: 'bob@example.net',
          subject: 'many small files',
          text: 'x',
          attachments: [1, 2, 3, 4].map((i) => ({ filename: `part${i}.bin`, content: pseudoRandom(20_000, `s${i}`) })).concat([{ filename: 'big.bin', content: pseudoRandom(200_000, 'b') }]),
        })
        .catch((e: { response: string }) => e);
      expect((err as { response: string }).response).toMatch(/^552 5\.3\.4 .*still too large for the next mail server.*50000 bytes/);
      expect(listFiles(path.join(f.dir, 'blobs'))).toEqual([]);
    } finally {
      await f.stopAndClean();
      await new Promise<void>((r) => small.close(() => r()));
    }
  });
});
