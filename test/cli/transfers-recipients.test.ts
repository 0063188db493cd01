import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { transfersCommand } from '../../cli/transfers.js';
import { loadConfig, type Config } from '../../config/index.js';
import {
  findLinkByTokenHash,
  hashToken,
  hashTransferPassword,
  listAudit,
  recordDownload,
} from '../../storage/index.js';
import { addTransfer, makeEnv, type Env } from '../web/helpers.js';

// `ferry transfers show` and `ferry transfers revoke --recipient` (issue 17 item 6), as an admin
// types them, against the configured database and blob store.

let env: Env;
let config: Config;

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await transfersCommand(config, args, { out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

beforeAll(async () => {
  env = await makeEnv();
  const configFile = path.join(env.dir, 'ferry.yaml');
  fs.writeFileSync(configFile, [`dataDir: ${env.dir}`, 'storage:', `  database: sqlite:${env.dir}/db.sqlite`, `  blobs: file:${env.dir}/blobs`, 'log:', '  level: silent'].join('\n'));
  config = loadConfig({ file: configFile, env: {} });
});
afterAll(async () => env?.close());

/** A live transfer of two files, one link per recipient, as the gateway stores it. */
async function perRecipientTransfer(recipients: string[], opts: { passwordHash?: string } = {}) {
  const files = ['plan.pdf', 'notes.txt'].map((name) => ({ name, data: Buffer.from(`${name} contents`) }));
  const t = await addTransfer(env, { files, recipients, linkPerRecipient: true, sender: 'alice@example.org', subject: 'Plans', messageId: null, passwordHash: opts.passwordHash ?? null });
  return { id: t.transferId, links: t.links };
}

const download = (transferId: string, linkId: string, fileIdx: number | null, r: { counted: boolean; scanner?: boolean; bytes: number; range?: string }) =>
  recordDownload(env.db, { transferId, linkId, fileIdx, status: r.range ? 206 : 200, bytesSent: r.bytes, range: r.range ?? null, client: '192.0.2.7', userAgent: r.scanner ? 'Mimecast' : 'Mozilla/5.0', counted: r.counted, scanner: r.scanner ?? false, method: 'GET' });

describe('ferry transfers show', () => {
  it('prints each recipient with its link and, per file, the first complete download and the scanner and partial fetches apart', async () => {
    const { id, links } = await perRecipientTransfer(['bob@example.net', 'carol@example.org']);
    const [bob, carol] = links as [(typeof links)[0], (typeof links)[0]];
    await download(id, bob.id, null, { counted: true, bytes: 300 });
    await download(id, carol.id, 1, { counted: false, scanner: true, bytes: 17 });
    await download(id, carol.id, 2, { counted: false, bytes: 4, range: 'bytes=0-3' });
    const r = await cli(['show', id]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^ {2}password protected: no$/m);
    const lines = r.out.split('\n');
    const head = lines.findIndex((l) => /^RECIPIENT\s+LINK\s+FILE\s+FIRST COMPLETE\s+COMPLETE\s+SCANNER\s+PARTIAL$/.test(l));
    expect(head).toBeGreaterThan(0);
    const rows = lines.slice(head + 1, head + 5).map((l) => l.trim().split(/\s{2,}/));
    const stamp = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}Z$/;
    // Bob's zip counts for both files; the scanner and Carol's range download count for nothing.
    expect(rows[0]).toEqual(['bob@example.net', 'active', 'plan.pdf', expect.stringMatching(stamp), '1', '0', '0']);
    expect(rows[1]).toEqual(['notes.txt', expect.stringMatching(stamp), '1', '0', '0']);
    expect(rows[2]).toEqual(['carol@example.org', 'active', 'plan.pdf', '-', '0', '1', '0']);
    expect(rows[3]).toEqual(['notes.txt', '-', '0', '0', '1']);
  });

  it('says yes for a password-protected transfer and never prints the password or its hash; --json has the same fields as the API', async () => {
    const password = 'Quartz-Meadow-Lantern-Pivot-2718';
    const hash = await hashTransferPassword(password);
    const { id, links } = await perRecipientTransfer(['bob@example.net', 'carol@example.org'], { passwordHash: hash });
    const text = await cli(['show', id]);
    expect(text.out).toMatch(/^ {2}password protected: yes$/m);
    const json = await cli(['show', id, '--json']);
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.out) as { passwordProtected: boolean; recipients: { linkId: string; recipient: string; revokedAt: string | null; files: unknown[] }[] };
    expect(parsed.passwordProtected).toBe(true);
    expect(parsed.recipients.map((x) => [x.linkId, x.recipient, x.revokedAt])).toEqual(links.map((l) => [l.id, l.recipient, null]));
    expect(parsed.recipients[0]!.files[0]).toEqual({ idx: 1, name: 'plan.pdf', completeAt: null, completeCount: 0, scannerFetches: 0, partialFetches: 0 });
    for (const out of [text.out, json.out]) {
      expect(out).not.toContain(password);
      expect(out).not.toContain(hash);
      for (const l of links) expect(out).not.toContain(hashToken(l.token));
    }
  });
});

describe('ferry transfers revoke --recipient', () => {
  it("revokes only that recipient's link, audited as cli:USER; the other link stays usable", async () => {
    const { id, links } = await perRecipientTransfer(['bob@example.net', 'carol@example.org']);
    const [bob, carol] = links as [(typeof links)[0], (typeof links)[0]];
    const r = await cli(['revoke', id, '--recipient', 'BOB@example.net']);
    expect(r.code).toBe(0);
    expect(r.out).toBe(`${id}: link of bob@example.net revoked; it answers 410 from now on, the other links keep working`);
    expect((await findLinkByTokenHash(env.db, hashToken(bob.token)))!.link.revokedAt).not.toBeNull();
    const other = (await findLinkByTokenHash(env.db, hashToken(carol.token)))!;
    expect(other.link.revokedAt).toBeNull();
    expect(other.transfer.state).toBe('live');
    const audit = await listAudit(env.db, { transferId: id, action: 'link_revoked' });
    expect(audit).toHaveLength(1);
    expect(audit[0]!.actor).toMatch(/^cli:./);
    const shown = await cli(['show', id]);
    expect(shown.out).toMatch(/^bob@example\.net\s+revoked \d{4}-\d{2}-\d{2} \d{2}:\d{2}Z\s+plan\.pdf/m);
    expect(shown.out).toMatch(/^carol@example\.org\s+active\s+plan\.pdf/m);
  });

  it('exits 1 naming the recipients for an unknown address or a link revoked already, and 2 for bad usage', async () => {
    const { id } = await perRecipientTransfer(['bob@example.net', 'carol@example.org']);
    const unknown = await cli(['revoke', id, '--recipient', 'mallory@example.com']);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toBe(`ferry transfers revoke: transfer ${id} has no link of its own for mallory@example.com; its recipients with links of their own: bob@example.net, carol@example.org`);
    expect((await cli(['revoke', id, '--recipient', 'carol@example.org'])).code).toBe(0);
    const again = await cli(['revoke', id, '--recipient', 'carol@example.org']);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/^ferry transfers revoke: the link of carol@example\.org was revoked already \(.+ by cli:.+\)$/);
    expect((await cli(['revoke', id, '--recipient', ''])).code).toBe(2);
    const withReason = await cli(['revoke', id, '--recipient', 'bob@example.net', '--reason', 'left the company']);
    expect(withReason.code).toBe(2);
    expect(withReason.err).toContain('--reason goes with revoking the whole transfer');
    expect((await listAudit(env.db, { transferId: id, action: 'link_revoked' })).length).toBe(1);
  });
});
