import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countTransfers, fileScans, listAudit } from '../../storage/index.js';
import { listFiles, startFerry, type TestFerry } from '../helpers/ferry.js';
import { download, fileLinks, landingLinks, pseudoRandom, sha256 } from '../helpers/mail.js';
import { sendOne as send } from '../helpers/smtp-client.js';
import { Upstream } from '../helpers/upstream.js';
import { Clamd, clamdSkip, CUSTOM, EICAR, zipOf } from './clamd-daemon.js';

// Malware scanning at intake against a real clamd (Debian's clamav-daemon) started by the test
// with its own signature database: every verdict is known before the reply to DATA.

const THRESHOLD = 50_000;
const HEADER = 'From: alice@example.com\r\nTo: bob@example.net\r\nSubject: Scan test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nHello Bob.\r\n';

function part(name: string, content: Buffer, type = 'application/octet-stream'): string {
  const b64 = content.toString('base64').replace(/.{76}/g, '$&\r\n');
  return `--b1\r\nContent-Type: ${type}; name="${name}"\r\nContent-Disposition: attachment; filename="${name}"\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64}\r\n`;
}

const message = (...parts: string[]) => `${HEADER}${parts.join('')}--b1--\r\n`;

let clamd: Clamd;
let upstream: Upstream;
const ferries: TestFerry[] = [];

const ADMIN = 'scan-test-admin-token-0123456789';

async function ferryWith(scan: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<TestFerry> {
  const f = await startFerry({ ...extra, relay: { url: upstream.url }, offload: { minAttachmentSize: THRESHOLD }, scan: { engine: 'clamd', clamd: clamd.address, ...scan } });
  ferries.push(f);
  return f;
}

/** The test message relayed after index `before` (notices from the worker arrive in between). */
function relayedSince(before: number) {
  return upstream.messages.slice(before).find((m) => m.raw.toString('latin1').includes('Subject: Scan test'))!;
}

async function waitFor<T>(probe: () => T | undefined, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function nothingKept(f: TestFerry) {
  expect(listFiles(path.join(f.dir, 'blobs'))).toEqual([]);
  expect(await countTransfers(f.storage.db)).toBe(0);
}

describe.skipIf(!!clamdSkip)('malware scanning with clamd', () => {
  beforeAll(async () => {
    upstream = await new Upstream().start();
    clamd = await Clamd.start({ streamMaxLength: '1M' });
  }, 90_000);
  afterAll(async () => {
    for (const f of ferries) await f.stopAndClean();
    await upstream?.stop();
    await clamd?.stop();
  });

  it('a clean file goes live, with its verdict, engine, signature version and time recorded and shown', async () => {
    const f = await ferryWith({});
    const before = upstream.messages.length;
    const data = pseudoRandom(300_000, 'clean');
    const reply = await send(f.smtpPort, message(part('report.pdf', data, 'application/pdf')));
    expect(reply).toMatch(/^250 /);
    const relayed = relayedSince(before);
    const [landing] = await landingLinks(relayed.raw, f.publicUrl);
    const page = await (await fetch(landing!)).text();
    expect(page).toMatch(/Checked for malware by ClamAV, signatures of \d{1,2} [A-Z][a-z]{2} \d{4}/);
    const [link] = await fileLinks(relayed.raw, f.publicUrl);
    const got = await download(link!);
    expect(got.status).toBe(200);
    expect(sha256(got.body)).toBe(sha256(data));
    const transfer = await f.storage.db.selectFrom('transfers').select('id').executeTakeFirstOrThrow();
    const s = (await fileScans(f.storage.db, transfer.id)).get(1)!;
    expect(s.verdict).toBe('clean');
    expect(s.engine).toBe('clamav');
    expect(s.version).toMatch(/^ClamAV \d/);
    expect(s.at).toBeGreaterThan(Date.now() - 60_000);
    expect(s.blocked).toBe(false);
  });

  it('EICAR in a base64 attachment, split across the 64 KiB chunk boundary: 554 5.7.1 naming file and signature, nothing kept', async () => {
    const f = await ferryWith({});
    // Place the test string so its base64 straddles byte 65536 of the message.
    const pre = HEADER.length + part('invoice.exe', Buffer.alloc(0)).length - 2;
    let d = 0;
    const enc = (n: number) => pre + Math.floor(n / 57) * 78 + Math.floor(((n % 57) * 4) / 3);
    while (!(enc(d) < 65536 && enc(d + EICAR.length) > 65536 + 8)) d++;
    const content = Buffer.concat([pseudoRandom(d, 'a'), EICAR, pseudoRandom(200_000, 'b')]);
    const raw = message(part('invoice.exe', content));
    expect(enc(d)).toBeLessThan(65536);
    const before = upstream.messages.length;
    const reply = await send(f.smtpPort, raw);
    expect(reply).toMatch(/^554 5\.7\.1 .*"invoice\.exe".*Eicar-Test-Signature/);
    expect(relayedSince(before)).toBeUndefined();
    await nothingKept(f);
  });

  it('EICAR inside a zip attachment is found (clamd unpacks archives)', async (ctx) => {
    // Random padding keeps the zip over the offload threshold; deflated, so the test string is
    // only found by unpacking the archive.
    const zip = zipOf([
      ['padding.bin', pseudoRandom(200_000, 'pad')],
      ['readme.com', EICAR],
    ]);
    if (!zip) return ctx.skip();
    const f = await ferryWith({});
    const reply = await send(f.smtpPort, message(part('bundle.zip', zip, 'application/zip')));
    expect(reply).toMatch(/^554 5\.7\.1 .*"bundle\.zip".*Eicar-Test-Signature/);
    await nothingKept(f);
  });

  it('two attachments, one infected, scan.onInfected reject: the whole message is refused', async () => {
    const f = await ferryWith({ onInfected: 'reject' });
    const before = upstream.messages.length;
    const reply = await send(f.smtpPort, message(part('clean.bin', pseudoRandom(120_000, 'c1')), part('tool.bin', Buffer.concat([pseudoRandom(80_000, 'c2'), CUSTOM]))));
    expect(reply).toMatch(/^554 5\.7\.1 .*"tool\.bin".*Ferry-Test-Custom/);
    expect(relayedSince(before)).toBeUndefined();
    await nothingKept(f);
  });

  it('two attachments, one infected, scan.onInfected quarantine: relayed, the clean file downloads, the infected one never returns its bytes', async () => {
    const f = await ferryWith({ onInfected: 'quarantine', notify: ['security@example.com'] }, { admin: { token: ADMIN } });
    const clean = pseudoRandom(120_000, 'q1');
    const bad = Buffer.concat([pseudoRandom(80_000, 'q2'), CUSTOM]);
    const before = upstream.messages.length;
    const reply = await send(f.smtpPort, message(part('clean.bin', clean), part('tool.bin', bad)));
    expect(reply).toMatch(/^250 /);
    const relayed = relayedSince(before);
    expect(relayed.raw.toString('latin1')).toMatch(/tool\.bin \[held for review: malware found\]/);
    const [landing] = await landingLinks(relayed.raw, f.publicUrl);
    const page = await (await fetch(landing!)).text();
    expect(page).toContain('Held for review');
    const links = await fileLinks(relayed.raw, f.publicUrl);
    expect(links).toHaveLength(1); // only the clean file has a download button
    const ok = await download(links[0]!);
    expect(sha256(ok.body)).toBe(sha256(clean));
    // Any URL naming file 2, with or without its name, and the zip: never its bytes.
    for (const url of [`${landing}/2/tool.bin`, `${landing}/2/anything`]) {
      const r = await download(url);
      expect(r.status).toBe(403);
      expect(r.body.includes(bad.subarray(0, 64))).toBe(false);
      expect(r.body.toString()).toContain('held for review');
    }
    const zip = await download(`${landing}/zip`);
    expect(zip.status).toBe(200);
    expect(zip.body.includes(CUSTOM)).toBe(false);
    expect(zip.body.includes(clean.subarray(1000, 1100))).toBe(true);
    // The sender and the admins are told.
    // The sender and the admins are told (queued, then sent by the worker through the relay).
    const notices = await waitFor(() => {
      const n = upstream.messages.filter((m) => m.raw.toString('latin1').includes('Subject: Attachment held for review: tool.bin'));
      return n.length >= 2 ? n : undefined;
    });
    expect(notices.flatMap((m) => m.to).sort()).toEqual(['alice@example.com', 'security@example.com']);
    expect(notices.every((m) => m.from === '')).toBe(true);

    // An admin sees it in the API and releases it: from then on it downloads, and it is audited.
    const api = (method: string, p: string) => fetch(`${f.publicUrl}/admin/api${p}`, { method, headers: { authorization: `Bearer ${ADMIN}` } });
    const list = (await (await api('GET', '/quarantine')).json()) as { items: { transferId: string; idx: number; name: string; signature: string }[] };
    expect(list.items).toHaveLength(1);
    expect(list.items[0]).toMatchObject({ idx: 2, name: 'tool.bin' });
    expect(list.items[0]!.signature).toMatch(/^Ferry-Test-Custom/);
    const id = list.items[0]!.transferId;
    expect((await api('POST', `/quarantine/${id}/2/release`)).status).toBe(200);
    expect((await api('POST', `/quarantine/${id}/2/release`)).status).toBe(404); // released already
    const released = await download(`${landing}/2/tool.bin`);
    expect(released.status).toBe(200);
    expect(sha256(released.body)).toBe(sha256(bad));
    const audit = await listAudit(f.storage.db, { transferId: id });
    expect(audit.map((e) => e.action)).toEqual(expect.arrayContaining(['file_quarantined', 'file_released']));
    expect(audit.find((e) => e.action === 'file_released')!.actor).toMatch(/^admin:/);
  });

  it('clamd down: 451 4.7.0 with scan.onError tempfail; accepted and marked unscanned with accept', async () => {
    const gone = `unix:${path.join(clamd.dir, 'no-such.sock')}`;
    const f1 = await ferryWith({ clamd: gone });
    expect(await send(f1.smtpPort, message(part('a.bin', pseudoRandom(100_000, 'd1'))))).toMatch(/^451 4\.7\.0 /);
    await nothingKept(f1);
    const f2 = await ferryWith({ clamd: gone, onError: 'accept' });
    const before = upstream.messages.length;
    expect(await send(f2.smtpPort, message(part('a.bin', pseudoRandom(100_000, 'd2'))))).toMatch(/^250 /);
    const [landing] = await landingLinks(relayedSince(before).raw, f2.publicUrl);
    expect(await (await fetch(landing!)).text()).toContain('Not checked for malware: the scanner was unavailable');
  });

  it('clamd stalling (accepts, never answers): 451 4.7.0 after scan.timeout', async () => {
    const stall = net.createServer(() => {
      /* accept and say nothing; never read */
    });
    await new Promise<void>((r) => stall.listen(0, '127.0.0.1', r));
    try {
      const port = (stall.address() as net.AddressInfo).port;
      const f = await ferryWith({ clamd: `tcp://127.0.0.1:${port}`, timeout: '1s' });
      // Large enough to fill the socket buffers, so the stall reaches the upload too.
      expect(await send(f.smtpPort, message(part('a.bin', pseudoRandom(3_000_000, 's'))))).toMatch(/^451 4\.7\.0 /);
      await nothingKept(f);
    } finally {
      stall.close();
    }
  });

  it('a file over clamd StreamMaxLength: accepted as "not scanned: too large", or refused with scan.tooLarge reject', async () => {
    const big = pseudoRandom(1_500_000, 'big'); // clamd here has StreamMaxLength 1M
    const f1 = await ferryWith({});
    const before = upstream.messages.length;
    expect(await send(f1.smtpPort, message(part('huge.bin', big)))).toMatch(/^250 /);
    const [landing] = await landingLinks(relayedSince(before).raw, f1.publicUrl);
    expect(await (await fetch(landing!)).text()).toContain('Not checked for malware: the file is too large');
    const [link] = await fileLinks(relayedSince(before).raw, f1.publicUrl);
    expect(sha256((await download(link!)).body)).toBe(sha256(big));
    const f2 = await ferryWith({ tooLarge: 'reject' });
    expect(await send(f2.smtpPort, message(part('huge.bin', big)))).toMatch(/^552 5\.3\.4 .*"huge\.bin"/);
    await nothingKept(f2);
  });
});
