import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queueCommand } from '../../cli/queue.js';
import { transfersCommand } from '../../cli/transfers.js';
import { loadConfig, type Config } from '../../config/index.js';
import { enqueue, newQueueId } from '../../storage/index.js';
import { addTransfer, makeEnv, type Env, type Fixture } from '../web/helpers.js';

// `ferry transfers` and `ferry queue` print values that come from senders' messages (file
// names, subjects, addresses) and from next hops (their replies). Printed raw, an ESC in them
// drives the admin's terminal (retitle it, hide lines, write the clipboard with OSC 52), and a
// CR or LF forges table rows. They are shown escaped (\x1b), never sent as control characters.

const ESC = '\x1b';
const HOSTILE_NAME = `report${ESC}]52;c;ZWNobyBwd25lZA==\x07${ESC}[2J.pdf`;
const HOSTILE_SUBJECT = `Invoice${ESC}[8m hidden\rfake line`;
let env: Env;
let config: Config;
let t: Fixture;

async function run(fn: (config: Config, args: string[], io: { out: (s: string) => void; err: (s: string) => void }) => Promise<number>, args: string[]) {
  const out: string[] = [];
  const code = await fn(config, args, { out: (s) => out.push(s), err: (s) => out.push(s) });
  return { code, out: out.join('\n') };
}

beforeAll(async () => {
  env = await makeEnv();
  const configFile = path.join(env.dir, 'ferry.yaml');
  fs.writeFileSync(configFile, [`dataDir: ${env.dir}`, 'storage:', `  database: sqlite:${env.dir}/db.sqlite`, `  blobs: file:${env.dir}/blobs`, 'log:', '  level: silent'].join('\n'));
  config = loadConfig({ file: configFile, env: {} });
  t = await addTransfer(env, { files: [{ name: HOSTILE_NAME, data: Buffer.from('x') }], sender: `evil${ESC}[31m@example.org`, subject: HOSTILE_SUBJECT });
  // Names are cleaned of control characters when stored (storage/filenames.ts), but records
  // written before that rule, or by hand, can still hold them: the CLI must escape on its own.
  await env.db.updateTable('files').set({ name: HOSTILE_NAME }).where('transfer_id', '=', t.transferId).execute();
  await enqueue(env.db, {
    id: newQueueId(),
    kind: 'message',
    transferId: t.transferId,
    sender: `q${ESC}]0;owned\x07@example.org`,
    recipients: [{ address: 'bob@example.net', state: 'pending' }],
    blobKey: 'q/abc',
    size: 10,
    createdAt: Date.now(),
    nextAttemptAt: Date.now() + 60_000,
    lastError: `451 4.3.0 ${ESC}[2Jbusy`,
  });
});
afterAll(async () => env?.close());

function expectNoControls(out: string) {
  // Line breaks between lines are the command's own; nothing else below 0x20 (nor DEL/C1).
  expect(out).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
}

describe('CLI output never carries control characters from messages or next hops', () => {
  it('ferry transfers show and list', async () => {
    const show = await run(transfersCommand, ['show', t.transferId]);
    expect(show.code).toBe(0);
    expectNoControls(show.out);
    expect(show.out).toContain('report\\x1b]52;c;ZWNobyBwd25lZA==\\x07\\x1b[2J.pdf');
    expect(show.out).toContain('subject:     Invoice\\x1b[8m hidden\\x0dfake line');
    const list = await run(transfersCommand, ['list']);
    expect(list.code).toBe(0);
    expectNoControls(list.out);
    expect(list.out).toContain('evil\\x1b[31m@example.org');
  });

  it('ferry queue list', async () => {
    const list = await run((c, a, io) => queueCommand(c, a, io.out, io.err), ['list']);
    expect(list.code).toBe(0);
    expectNoControls(list.out);
    expect(list.out).toContain('451 4.3.0 \\x1b[2Jbusy');
  });
});
