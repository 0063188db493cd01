import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newToken, revokeLink } from '../../storage/index.js';
import { buildWebApp } from '../../web/app.js';
import { addTransfer, downloads, httpRequest, makeEnv, PUBLIC_URL, waitFor, type Env } from './helpers.js';

// Per-recipient links over one stored copy (issue 17): each recipient's token reaches the same
// files, the download limit is each recipient's own, revoking one recipient's link shuts out only
// that recipient, and the download log says whose link was used. Real sockets.

const BROWSER = 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0';

let env: Env;
let app: FastifyInstance;
let base: string;

beforeAll(async () => {
  env = await makeEnv();
  app = await buildWebApp({ publicUrl: PUBLIC_URL, db: env.db, blobs: env.blobs, rateLimit: false });
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await app.close();
  await env.close();
});

const FILES = [
  { name: 'plan.pdf', data: Buffer.from('%PDF-1.7 the plan') },
  { name: 'notes.txt', data: Buffer.from('the notes') },
];

/** A live transfer as the gateway stores it with linkPerRecipient: one token per recipient, the transfer's own token given to nobody. */
async function perRecipientTransfer(recipients: string[], opts: { maxDownloads?: number } = {}) {
  const t = await addTransfer(env, { files: FILES, recipients, linkPerRecipient: true, subject: 'Plans', messageId: null, maxDownloads: opts.maxDownloads ?? null });
  return { id: t.transferId, unused: t.token, links: t.links };
}

const get = (path: string, method = 'GET') => httpRequest(`${base}${path}`, { method, headers: { 'user-agent': BROWSER } });

describe('per-recipient links', () => {
  it("each recipient's link shows the files and downloads them, with links of its own token only", async () => {
    const { links } = await perRecipientTransfer(['bob@example.net', 'carol@example.org']);
    for (const l of links) {
      const page = await get(`/t/${l.token}`);
      expect(page.status).toBe(200);
      const html = page.body.toString();
      expect(html).toContain(`href="/t/${l.token}/1/plan.pdf"`);
      expect(html).toContain(`href="/t/${l.token}/zip"`);
      for (const other of links.filter((o) => o !== l)) expect(html).not.toContain(other.token);
      const file = await get(`/t/${l.token}/1/plan.pdf`);
      expect(file.status).toBe(200);
      expect(file.body.equals(FILES[0]!.data)).toBe(true);
    }
  });

  it("a download limit of 1 is each recipient's own: one recipient using it up leaves the other's whole", async () => {
    const { id, links } = await perRecipientTransfer(['bob@example.net', 'carol@example.org'], { maxDownloads: 1 });
    const [bob, carol] = links as [(typeof links)[0], (typeof links)[0]];
    expect((await get(`/t/${bob.token}/1/plan.pdf`)).status).toBe(200);
    await waitFor(async () => (await downloads(env.db, id)).some((r) => r.counted === 1) || undefined, "bob's counted download");
    expect((await get(`/t/${bob.token}/1/plan.pdf`)).status).toBe(410);
    expect((await get(`/t/${bob.token}/1/plan.pdf`, 'HEAD')).status).toBe(410);
    // Bob's zip would hand him file 1 again; file 2 he still has.
    expect((await get(`/t/${bob.token}/zip`)).status).toBe(410);
    expect((await get(`/t/${bob.token}/2/notes.txt`)).status).toBe(200);

    // Carol has the whole allowance: the zip (a download of every file), and then no more.
    expect((await get(`/t/${carol.token}/1/plan.pdf`, 'HEAD')).status).toBe(200);
    const page = (await get(`/t/${carol.token}`)).body.toString();
    expect(page).toContain(`href="/t/${carol.token}/zip"`);
    const zip = await get(`/t/${carol.token}/zip`);
    expect(zip.status).toBe(200);
    expect(zip.headers['content-type']).toBe('application/zip');
    await waitFor(async () => (await downloads(env.db, id)).filter((r) => r.counted === 1).length === 3 || undefined, 'three counted downloads');
    expect((await get(`/t/${carol.token}/2/notes.txt`)).status).toBe(410);
    // Both have used every file now: each landing page says so.
    expect((await get(`/t/${bob.token}`)).status).toBe(410);
    expect((await get(`/t/${carol.token}`)).status).toBe(410);
  });

  it('the download log records the link each request came through', async () => {
    const { id, links } = await perRecipientTransfer(['bob@example.net', 'carol@example.org']);
    const [bob, carol] = links as [(typeof links)[0], (typeof links)[0]];
    await httpRequest(`${base}/t/${bob.token}/1/plan.pdf`, { headers: { 'user-agent': 'bob-browser/1' } });
    await httpRequest(`${base}/t/${carol.token}/2/notes.txt`, { headers: { 'user-agent': 'carol-browser/1', range: 'bytes=0-2' } });
    await httpRequest(`${base}/t/${carol.token}/zip`, { headers: { 'user-agent': 'carol-browser/1' } });
    const rows = await waitFor(async () => {
      const r = await downloads(env.db, id);
      return r.length === 3 ? r : undefined;
    }, 'three records');
    expect(rows.map((r) => ({ link: r.link_id, file: r.file_idx, counted: r.counted }))).toEqual([
      { link: bob.id, file: 1, counted: 1 },
      { link: carol.id, file: 2, counted: 0 },
      { link: carol.id, file: null, counted: 1 },
    ]);
  });

  it("revoking one recipient's link makes it answer 410 everywhere while the other link still works", async () => {
    const { id, links } = await perRecipientTransfer(['bob@example.net', 'carol@example.org']);
    const [bob, carol] = links as [(typeof links)[0], (typeof links)[0]];
    expect((await get(`/t/${bob.token}`)).status).toBe(200);
    expect(await revokeLink(env.db, id, bob.id, 'sender:alice@example.org')).toBe(true);
    for (const path of [`/t/${bob.token}`, `/t/${bob.token}/1/plan.pdf`, `/t/${bob.token}/zip`]) {
      const res = await get(path);
      expect(res.status, path).toBe(410);
      expect(res.headers['content-type'], path).toBe('text/html; charset=utf-8');
      const html = res.body.toString();
      expect(html, path).toContain('withdrawn');
      expect(html, path).toContain('<a href="mailto:alice@example.org">alice@example.org</a>');
      expect(html, path).not.toContain(FILES[0]!.data.toString());
    }
    expect((await get(`/t/${bob.token}/1/plan.pdf`, 'HEAD')).status).toBe(410);
    expect((await get(`/t/${carol.token}`)).status).toBe(200);
    const file = await get(`/t/${carol.token}/1/plan.pdf`);
    expect(file.status).toBe(200);
    expect(file.body.equals(FILES[0]!.data)).toBe(true);
    // Only Carol's download is in the log: the revoked link served nothing.
    await waitFor(async () => (await downloads(env.db, id)).length === 1 || undefined, "carol's record");
    expect((await downloads(env.db, id)).map((r) => r.link_id)).toEqual([carol.id]);
  });

  it('tokens that are no link answer 404 as before: unknown, malformed, and the transfer token nobody was given', async () => {
    const { unused } = await perRecipientTransfer(['bob@example.net', 'carol@example.org']);
    for (const path of [`/t/${newToken()}`, `/t/${newToken()}/1/plan.pdf`, '/t/not-a-token', `/t/${unused}`, `/t/${unused}/1/plan.pdf`, `/t/${unused}/zip`]) {
      expect((await get(path)).status, path).toBe(404);
    }
  });
});
