import fs from 'node:fs';
import nodemailer from 'nodemailer';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRoles, type RunningRoles } from '../cli/start.js';
import { loadConfig } from '../config/index.js';
import { freePort, tempDir } from './helpers/ferry.js';
import { download, fileLinks, pseudoRandom, sha256 } from './helpers/mail.js';
import { Upstream } from './helpers/upstream.js';

// No role keeps state another needs: two gateways and two web services share one storage
// (here the embedded filesystem blobs and SQLite file), and a link written by gateway 1
// downloads from web 2.

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
