import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countTransfers } from '../../storage/index.js';
import { freePort, listFiles, startFerry, type TestFerry } from '../helpers/ferry.js';
import { download, fileLinks, landingLinks, pseudoRandom, sha256 } from '../helpers/mail.js';
import { sendOne as send } from '../helpers/smtp-client.js';
import { Upstream } from '../helpers/upstream.js';
import { CIcap, cicapSkip, Clamd, clamdSkip, EICAR } from './clamd-daemon.js';

// scan.engine: icap against Debian's c-icap with its virus_scan module (libc-icap-mod-virus-scan),
// which hands the file to the test's own clamd (clamd_mod). RESPMOD with preview and a chunked body.

const HEADER = 'From: alice@example.com\r\nTo: bob@example.net\r\nSubject: ICAP test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nHello Bob.\r\n';
const part = (name: string, c: Buffer) =>
  `--b1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="${name}"\r\nContent-Transfer-Encoding: base64\r\n\r\n${c.toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n`;

const skip = clamdSkip || cicapSkip;
if (skip) console.warn(`[skip] scan-icap: ${skip}`);

describe.skipIf(!!skip)('malware scanning through ICAP (c-icap + virus_scan)', () => {
  let clamd: Clamd;
  let icap: CIcap;
  let upstream: Upstream;
  let ferry: TestFerry;
  beforeAll(async () => {
    clamd = await Clamd.start();
    icap = await CIcap.start(clamd, await freePort());
    upstream = await new Upstream().start();
    ferry = await startFerry({ relay: { url: upstream.url }, offload: { minAttachmentSize: 50_000 }, scan: { engine: 'icap', icap: icap.url } });
  }, 90_000);
  afterAll(async () => {
    await ferry?.stopAndClean();
    await upstream?.stop();
    await icap?.stop();
    await clamd?.stop();
  });

  it('a clean file goes live with the ICAP verdict recorded', async () => {
    const data = pseudoRandom(400_000, 'icap-clean');
    expect(await send(ferry.smtpPort, `${HEADER}${part('data.bin', data)}--b1--\r\n`)).toMatch(/^250 /);
    const relayed = upstream.messages.find((m) => m.raw.toString('latin1').includes('Subject: ICAP test'))!;
    const [landing] = await landingLinks(relayed.raw, ferry.publicUrl);
    expect(await (await fetch(landing!)).text()).toContain('Checked for malware by the organisation’s ICAP scanner');
    const [link] = await fileLinks(relayed.raw, ferry.publicUrl);
    expect(sha256((await download(link!)).body)).toBe(sha256(data));
  });

  it('EICAR past the preview: 554 5.7.1 naming the file and the threat, nothing kept', async () => {
    const before = await countTransfers(ferry.storage.db);
    const blobsBefore = listFiles(path.join(ferry.dir, 'blobs')).sort();
    const reply = await send(ferry.smtpPort, `${HEADER}${part('setup.exe', Buffer.concat([pseudoRandom(90_000, 'icap-bad'), EICAR]))}--b1--\r\n`);
    expect(reply).toMatch(/^554 5\.7\.1 .*"setup\.exe".*Eicar-Test-Signature/);
    expect(await countTransfers(ferry.storage.db)).toBe(before);
    expect(listFiles(path.join(ferry.dir, 'blobs')).sort()).toEqual(blobsBefore);
  });
});
