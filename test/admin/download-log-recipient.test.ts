import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { transfersCommand } from '../../cli/transfers.js';
import { loadConfig, type Config } from '../../config/index.js';
import { hashToken, recordDownload } from '../../storage/index.js';
import { addTransfer, downloads, httpRequest, waitFor, type Env } from '../web/helpers.js';
import { startAdminSite } from './admin-site.js';
import { chromiumMissing, launchChromium, screenshot, watchedContext } from '../browser/chromium.js';
import { uiLogin } from './admin-login.js';

// Issue 17 item 1: the download log says whose link each download came through, in the admin
// API, the admin UI's transfer page and `ferry transfers show`. Downloads go through the real web
// routes over a socket, so the link the web resolved is the one the log names. The last part
// renders the page in Chromium on a phone and a laptop: the extra column still fits the screen.

declare const document: any, window: any;
const missing = chromiumMissing();
if (missing) console.warn(`SKIPPED download log recipient browser test: ${missing}`);

const ADMIN = 'boss-dl-recipient-token-0123456789ab';
const HELP = 'helpdesk-dl-recipient-token-0123456';
const BROWSER = 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0';
const FILE = { name: 'plan.pdf', data: Buffer.from('%PDF-1.7 the plan for the download log test') };

let env: Env;
let app: FastifyInstance;
let base: string;
let config: Config;

beforeAll(async () => {
  ({ env, app, base } = await startAdminSite({ admin: ADMIN, readonly: HELP }));
  const configFile = path.join(env.dir, 'ferry.yaml');
  fs.writeFileSync(configFile, [`dataDir: ${env.dir}`, 'storage:', `  database: sqlite:${env.dir}/db.sqlite`, `  blobs: file:${env.dir}/blobs`, 'log:', '  level: silent'].join('\n'));
  config = loadConfig({ file: configFile, env: {} });
});
afterAll(async () => {
  await app?.close();
  await env?.close();
});

/** A live transfer of one file with one link per recipient, as the gateway stores it. */
async function perRecipientTransfer(recipients: string[]) {
  const t = await addTransfer(env, { files: [{ ...FILE, contentType: 'application/pdf' }], recipients, linkPerRecipient: true, subject: 'Plans', messageId: null });
  return { id: t.transferId, links: t.links };
}

const web = (p: string) => httpRequest(`${base}${p}`, { headers: { 'user-agent': BROWSER } });

async function cli(args: string[]): Promise<{ code: number; out: string }> {
  const out: string[] = [];
  const code = await transfersCommand(config, args, { out: (s) => out.push(s), err: () => {} });
  return { code, out: out.join('\n') };
}

/** Two recipients with links of their own: Bob downloads the file, Carol the zip, then Bob again. */
async function twoRecipientsDownloaded() {
  const long = 'carol.with.a.rather.long.name@subsidiary.partner.example';
  const { id, links } = await perRecipientTransfer(['bob@example.net', long]);
  const [bob, carol] = links as [(typeof links)[0], (typeof links)[0]];
  expect((await web(`/t/${bob.token}/1/plan.pdf`)).status).toBe(200);
  await waitFor(async () => ((await downloads(env.db, id)).length === 1 ? true : undefined), "bob's download");
  expect((await web(`/t/${carol.token}/zip`)).status).toBe(200);
  await waitFor(async () => ((await downloads(env.db, id)).length === 2 ? true : undefined), "carol's zip");
  return { id, bob, carol };
}

describe('the download log names the recipient whose link was used', () => {
  it('in the admin API (read-only role too), newest first, with the link id', async () => {
    const { id, bob, carol } = await twoRecipientsDownloaded();
    const r = await app.inject({ url: `/admin/api/transfers/${id}`, headers: { authorization: `Bearer ${HELP}` } });
    expect(r.statusCode).toBe(200);
    const log = (r.json() as { downloads: { fileIdx: number | null; linkId: string | null; recipient: string | null }[] }).downloads;
    expect(log.map((d) => [d.fileIdx, d.linkId, d.recipient])).toEqual([
      [null, carol.id, carol.recipient],
      [1, bob.id, 'bob@example.net'],
    ]);
    // The answer names recipients, never their tokens.
    for (const secret of [bob.token, carol.token, hashToken(bob.token)]) expect(r.body).not.toContain(secret);
  });

  it('says "shared link" (null in the API) for the shared link and for downloads logged before links existed', async () => {
    const t = await addTransfer(env, { files: [FILE] });
    expect((await web(`/t/${t.token}/1/plan.pdf`)).status).toBe(200);
    await waitFor(async () => ((await downloads(env.db, t.transferId)).length === 1 ? true : undefined), 'the shared-link download');
    // A row from before migration 0080: no link at all.
    await recordDownload(env.db, { transferId: t.transferId, fileIdx: 1, status: 200, bytesSent: FILE.data.length, range: null, client: '192.0.2.7', userAgent: BROWSER, counted: false, linkId: null });
    const r = await app.inject({ url: `/admin/api/transfers/${t.transferId}`, headers: { authorization: `Bearer ${ADMIN}` } });
    const log = (r.json() as { downloads: { linkId: string | null; recipient: string | null }[] }).downloads;
    expect(log).toHaveLength(2);
    expect(log.map((d) => d.recipient)).toEqual([null, null]);
    // Newest first: the row without a link, then the one through the shared link.
    expect(log.map((d) => d.linkId)).toEqual([null, expect.any(String)]);

    const { cookie } = await uiLogin(app, ADMIN);
    const page = await app.inject({ url: `/admin/transfers/${t.transferId}`, headers: { cookie } });
    const table = /<table class="data" id="downloads">[\s\S]*?<\/table>/.exec(page.body)![0];
    expect(table.match(/<td data-label="Recipient"><span class="note">shared link<\/span><\/td>/g)).toHaveLength(2);

    const shown = await cli(['show', t.transferId]);
    const lines = shown.out.split('\n');
    const header = lines.findIndex((l) => /^WHEN\s+RECIPIENT\s+FILE\s+STATUS/.test(l));
    expect(header).toBeGreaterThan(0);
    expect(lines.slice(header + 1, header + 3).every((l) => /\sshared link\s/.test(l))).toBe(true);
  });

  it("in the admin UI's download log: a Recipient cell per row that can wrap on a phone", async () => {
    const { id, carol } = await twoRecipientsDownloaded();
    const { cookie } = await uiLogin(app, HELP);
    const page = await app.inject({ url: `/admin/transfers/${id}`, headers: { cookie } });
    expect(page.statusCode).toBe(200);
    const table = /<table class="data" id="downloads">[\s\S]*?<\/table>/.exec(page.body)![0];
    expect(table).toContain('<th>When</th><th>Recipient</th><th>File</th>');
    const rows = table.split('<tr>').slice(2);
    expect(rows).toHaveLength(2);
    // Every cell carries its column's name, so the phone layout shows "Recipient: ..." in each card;
    // long addresses break at their dots and @ rather than widening the page.
    expect(rows[0]).toContain(`<td data-label="Recipient">${carol.recipient.replace(/([.@])/g, '<wbr>$1')}</td>`);
    expect(rows[0]).toContain('<td data-label="File">zip</td>');
    expect(rows[1]).toContain('<td data-label="Recipient">bob<wbr>@example<wbr>.net</td>');
    expect(rows[1]).toContain('<td data-label="File">1</td>');
  });

  it('in `ferry transfers show` and its --json', async () => {
    const { id, bob, carol } = await twoRecipientsDownloaded();
    const shown = await cli(['show', id]);
    expect(shown.code).toBe(0);
    const lines = shown.out.split('\n');
    const header = lines.findIndex((l) => /^WHEN\s+RECIPIENT\s+FILE\s+STATUS\s+BYTES\s+COUNTED\s+CLIENT\s+USER AGENT$/.test(l));
    expect(header, shown.out).toBeGreaterThan(0);
    expect(lines[header + 1]).toMatch(new RegExp(`\\s${carol.recipient.replace(/\./g, '\\.')}\\s+zip\\s+200\\s`));
    expect(lines[header + 2]).toMatch(/\sbob@example\.net\s+1\s+200\s/);
    const json = JSON.parse((await cli(['show', id, '--json'])).out) as { downloads: { linkId: string; recipient: string }[] };
    expect(json.downloads.map((d) => [d.linkId, d.recipient])).toEqual([
      [carol.id, carol.recipient],
      [bob.id, 'bob@example.net'],
    ]);
  });
});

describe.skipIf(Boolean(missing))('the download log with its Recipient column in Chromium', () => {
  let browser: Browser;
  const AXE_SOURCE = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  beforeAll(async () => {
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => browser?.close());

  for (const size of [
    { name: 'phone', width: 390, height: 844 },
    { name: 'desktop', width: 1280, height: 800 },
  ]) {
    it(`at ${size.width}x${size.height}: fits the screen, no serious axe finding, every row names its recipient`, async () => {
      const long = 'procurement.department.head@subsidiary.partner-company.example';
      const { id, links } = await perRecipientTransfer([long, 'bob@example.net']);
      const log = (link: number, fileIdx: number | null) =>
        recordDownload(env.db, { transferId: id, linkId: links[link]!.id, fileIdx, status: 200, bytesSent: FILE.data.length, range: null, client: '2001:db8:85a3::8a2e:370:7334', userAgent: BROWSER, counted: true, method: 'GET' });
      await log(0, 1);
      await log(1, null);
      const { context, problems } = await watchedContext(browser, { viewport: { width: size.width, height: size.height } });
      try {
        const page = await context.newPage();
        await page.goto(`${base}/admin/login`);
        await page.getByLabel(/Admin token/).fill(ADMIN);
        await page.getByRole('button', { name: /Log in/ }).click();
        // Let the dashboard finish loading (its icon comes after 'load'): leaving it early aborts its requests, which would read as failures.
        await page.waitForURL(`${base}/admin`, { waitUntil: 'networkidle' });
        await page.goto(`${base}/admin/transfers/${id}`);
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
        expect(overflow, `scrolls sideways by ${overflow}px`).toBeLessThanOrEqual(0);
        const cells = page.locator('#downloads td');
        for (let i = 0; i < (await cells.count()); i++) {
          const box = await cells.nth(i).boundingBox();
          expect(box!.x + box!.width, `cell ${i}`).toBeLessThanOrEqual(size.width);
        }
        const rows = await page.locator('#downloads tbody tr').allInnerTexts();
        expect(rows).toHaveLength(2);
        expect(rows[0]!.replace(/\s+/g, '')).toContain('bob@example.net');
        expect(rows[1]!.replace(/\s+/g, '')).toContain(long);
        await page.evaluate(AXE_SOURCE);
        const violations = (await page.evaluate(async () => (await window.axe.run(document.querySelector('#downloads'), { resultTypes: ['violations'] })).violations)) as { id: string; impact: string }[];
        expect(violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id)).toEqual([]);
        await screenshot(page, `admin-download-log-${size.width}x${size.height}`);
        expect(problems, JSON.stringify(problems)).toEqual([]);
      } finally {
        await context.close();
      }
    }, 60_000);
  }
});
