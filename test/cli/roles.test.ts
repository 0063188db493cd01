import fs from 'node:fs';
import nodemailer from 'nodemailer';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRoles, type RunningRoles } from '../../cli/start.js';
import { loadConfig } from '../../config/index.js';
import { freePort, tempDir } from '../helpers/ferry.js';
import { download, fileLinks, pseudoRandom, sha256 } from '../helpers/mail.js';
import { Upstream } from '../helpers/upstream.js';
import { spawnFerry, type FerryProcess } from '../storage/ferry-process.js';
import { bucketContents, createBucket, createDatabase, dropBucket, dropDatabase, PG_MISSING, pgUrl, S3_MISSING, s3Env, s3Url, warnSkip } from '../storage/backends.js';

// No role keeps state another needs: two gateways and two web services share one storage
// (the embedded filesystem blobs and SQLite file, and the scale-out pair S3 + PostgreSQL), and
// a link written by gateway 1 downloads from web 2.

const s3 = s3Env();
const pg = pgUrl();
const sharedReason = !s3 ? S3_MISSING : !pg ? PG_MISSING : '';
if (sharedReason) warnSkip('roles sharing S3 + PostgreSQL', sharedReason);

const dir = tempDir();
let upstream: Upstream;
const nodes: RunningRoles[] = [];
let publicUrl2 = '';

async function node(roles: ('gateway' | 'web' | 'worker')[], webPort: number, publicUrl: string): Promise<RunningRoles> {
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir: dir,
      smtp: { host: '127.0.0.1', port: 0, hostname: 'ferry.test' },
      web: { host: '127.0.0.1', port: webPort, publicUrl },
      relay: { url: upstream.url },
      offload: { minAttachmentSize: 100_000 },
    },
  });
  const r = await startRoles(config, pino({ level: 'silent' }), roles);
  nodes.push(r);
  return r;
}

beforeAll(async () => {
  upstream = await new Upstream().start();
});
afterAll(async () => {
  for (const n of nodes.reverse()) await n.stop();
  await upstream?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('roles', () => {
  it('a gateway role opens no web port and a web role no SMTP port', async () => {
    const port = await freePort();
    const g = await node(['gateway', 'worker'], port, `http://127.0.0.1:${port}`);
    expect(g.smtpPort).toBeGreaterThan(0);
    expect(g.web).toBeUndefined();
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });

  it('a message sent to gateway 1 downloads from web 2, and from web 1', async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    publicUrl2 = `http://127.0.0.1:${p2}`;
    // Both gateways write links with the public URL of web 2 (the load balancer's address in real life).
    const gw1 = await node(['gateway'], p1, publicUrl2);
    await node(['gateway'], p1, publicUrl2);
    await node(['web'], p1, publicUrl2);
    await node(['web'], p2, publicUrl2);

    const big = pseudoRandom(400_000, 'roles');
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: gw1.smtpPort!, secure: false, ignoreTLS: true });
    await t.sendMail({ from: 'alice@example.com', to: 'bob@example.net', subject: 'shared', text: 'x', attachments: [{ filename: 'shared.bin', content: big }] });
    const raw = upstream.messages.at(-1)!.raw;
    const [link] = await fileLinks(raw, publicUrl2);
    expect(link).toMatch(new RegExp(`^${publicUrl2}/t/`));
    expect(sha256((await download(link!)).body)).toBe(sha256(big));
    expect(sha256((await download(link!.replace(publicUrl2, `http://127.0.0.1:${p1}`))).body)).toBe(sha256(big));
  });
});

describe.skipIf(!!sharedReason)('roles in separate processes sharing S3 (Ceph RGW) + PostgreSQL', () => {
  let bucket = '';
  let database = '';
  const procs: FerryProcess[] = [];
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    if (bucket) await dropBucket(s3!, bucket);
    if (database) await dropDatabase(pg!, database);
  });

  it('two gateway and two web processes: a message sent to gateway 1 downloads from web 2 (and from web 1)', async () => {
    bucket = await createBucket(s3!, 'ferry-roles');
    database = await createDatabase(pg!);
    const [p1, p2] = [await freePort(), await freePort()];
    const url2 = `http://127.0.0.1:${p2}`;
    // Each process has its own data directory: nothing on local disk is shared, only S3 and PostgreSQL.
    const config = (webPort: number) => ({
      storage: { blobs: s3Url(s3!, bucket), database, s3: { accessKeyId: s3!.accessKeyId, secretAccessKey: s3!.secretAccessKey } },
      web: { host: '127.0.0.1', port: webPort, publicUrl: url2 },
      relay: { url: upstream.url },
      offload: { minAttachmentSize: 100_000 },
    });
    // All four start at once against an empty database: the migrations must cope.
    procs.push(
      ...(await Promise.all([
        spawnFerry('gateway', config(p1)),
        spawnFerry('gateway', config(p1)),
        spawnFerry('web', config(p1)),
        spawnFerry('web', config(p2)),
      ])),
    );
    const [gw1, gw2] = procs;

    const files = [pseudoRandom(600_000, 'roles-s3-a'), pseudoRandom(300_000, 'roles-s3-b')];
    for (const [i, gw] of [gw1!, gw2!].entries()) {
      const t = nodemailer.createTransport({ host: '127.0.0.1', port: gw.smtpPort!, secure: false, ignoreTLS: true });
      await t.sendMail({ from: 'alice@example.com', to: 'bob@example.net', subject: `shared ${i}`, text: 'x', attachments: [{ filename: `f${i}.bin`, content: files[i]! }] });
      // Its own message, by subject: the upstream is shared with the other processes of this file.
      const mine = upstream.messages.find((m) => m.raw.toString('latin1').includes(`Subject: shared ${i}\r\n`));
      expect(mine, `the message "shared ${i}" reached the next hop`).toBeDefined();
      const [link] = await fileLinks(mine!.raw, url2);
      expect(link).toMatch(new RegExp(`^${url2}/t/`));
      // Served by web 2 (the link's host) and by web 1 alike.
      expect(sha256((await download(link!)).body)).toBe(sha256(files[i]!));
      expect(sha256((await download(link!.replace(url2, `http://127.0.0.1:${p1}`))).body)).toBe(sha256(files[i]!));
    }
    // The two files; beside them each recipient's relayed copy (kept for the sender's "send again").
    expect((await bucketContents(s3!, bucket)).keys.filter((k) => !/\/copy-[^/]+$/.test(k))).toHaveLength(2);
  });
});
