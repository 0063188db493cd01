import fs from 'node:fs';
import path from 'node:path';
import nodemailer, { type Transporter } from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startFerry, tempDir, type TestFerry } from '../helpers/ferry.js';
import { download, fileLinks, parse, pseudoRandom, sha256 } from '../helpers/mail.js';
import { postfixMissing, startPostfix, startSink, waitFor, type PostfixInstance, type Sink } from './postfix.js';

// The recipe of docs/recipes/postfix.md, run for real: an organisation's Postfix with
// `relayhost = [ferry]:port`, Ferry relaying to Postfix's smtp-sink as the next hop.
//   client --SMTP--> Postfix (relayhost) --SMTP--> Ferry --SMTP--> smtp-sink
// 1. A message with a large attachment arrives at the sink rewritten, and its link downloads
//    the exact bytes.
// 2. A message over Ferry's limit: Ferry advertises `SIZE 2000000` in its EHLO reply, and Postfix
//    honours it before MAIL FROM: it bounces the message at once with dsn=5.3.4, sends no data
//    and never retries. (A client that sends MAIL FROM with SIZE=n anyway gets 552 5.3.4 from
//    Ferry: test/smtp-size-policy.test.ts.)

const missing = postfixMissing();
if (missing) console.warn(`test/interop/postfix.test.ts: skipped: ${missing}`);

const MAX = 2_000_000;

describe.skipIf(!!missing)('Postfix with Ferry as relayhost', () => {
  const dir = tempDir('ferry-postfix-');
  let ferry: TestFerry;
  let postfix: PostfixInstance;
  let sink: Sink;
  let submit: Transporter;

  beforeAll(async () => {
    sink = await startSink(path.join(dir, 'sink'), await freePort());
    ferry = await startFerry({
      smtp: { maxMessageSize: MAX },
      offload: { minAttachmentSize: '100KB' },
      relay: { url: `smtp://127.0.0.1:${sink.port}`, starttls: 'off' },
    });
    postfix = await startPostfix(path.join(dir, 'postfix'), await freePort(), ferry.smtpPort);
    submit = nodemailer.createTransport({ host: '127.0.0.1', port: postfix.port, secure: false, ignoreTLS: true });
  }, 120_000);

  afterAll(async () => {
    await postfix?.stop();
    await ferry?.stopAndClean();
    await sink?.stop();
    if (process.env.FERRY_KEEP_INTEROP) console.warn(`kept ${dir}`);
    else fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a message submitted to Postfix arrives at the next hop rewritten, and its link downloads the exact bytes', async () => {
    const file = pseudoRandom(700_000, 'postfix-interop');
    const info = await submit.sendMail({
      from: 'alice@example.com',
      to: 'bob@example.net',
      subject: 'Through Postfix and Ferry',
      text: 'The figures are attached.',
      attachments: [{ filename: 'figures.bin', content: file, contentType: 'application/octet-stream' }],
    });
    expect(info.response).toMatch(/^250 /);

    const raw = await waitFor('the message at smtp-sink', () => sink.messages().find((m) => m.includes('Through Postfix and Ferry')), 60_000);
    // It passed Postfix, then Ferry: Postfix's Received line, Ferry's header, and small.
    const mail = await parse(raw);
    expect(mail.headers.get('x-ferry-offloaded')).toBe('1 file; 700000 bytes');
    expect(String(mail.headers.get('received') ?? '')).toMatch(/mta\.ferry-interop\.test/);
    expect(raw.length).toBeLessThan(100_000);

    const [link] = await fileLinks(raw, ferry.publicUrl);
    expect(link).toBeDefined();
    const got = await download(link!);
    expect(got.status).toBe(200);
    expect(sha256(got.body)).toBe(sha256(file));

    // Postfix logged the delivery to Ferry with Ferry's reply.
    const log = await waitFor('the delivery in the Postfix log', () => /relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+.*status=sent \(250 2\.0\.0 Ok: queued as \w+, 1 attachment/.exec(postfix.log()) ?? undefined);
    expect(log[0]).toContain(`:${ferry.smtpPort},`);
  });

  it('a message over Ferry\'s limit is bounced by Postfix from the advertised SIZE, at once and without a retry', async () => {
    const before = ferry.storage ? (await ferry.storage.db.selectFrom('transfers').select('id').execute()).length : 0;
    const info = await submit.sendMail({
      from: 'alice@example.com',
      to: 'carol@example.net',
      subject: 'Too big for Ferry',
      text: 'x',
      attachments: [{ filename: 'big.bin', content: pseudoRandom(2_500_000, 'too-big') }],
    });
    expect(info.response).toMatch(/^250 /); // Postfix took it; Ferry is the next step.
    const queueId = /queued as (\w+)/.exec(String(info.response))![1]!;

    const line = await waitFor('the bounce in the Postfix log', () =>
      postfix
        .log()
        .split('\n')
        .find((l) => l.includes(`${queueId}:`) && l.includes('status=')),
    );
    expect(line).toContain('status=bounced');
    expect(line).toContain('dsn=5.3.4');
    expect(line).toMatch(/message size \d+ exceeds size limit 2000000 of server 127\.0\.0\.1\[127\.0\.0\.1\]/);

    // No retry: one attempt only, nothing deferred, nothing left in Postfix's queue for it.
    await new Promise((r) => setTimeout(r, 3000)); // longer than this instance's retry delay (2 s)
    const attempts = postfix
      .log()
      .split('\n')
      .filter((l) => l.includes(`${queueId}:`) && /status=(sent|deferred|bounced)/.test(l));
    expect(attempts).toHaveLength(1);
    expect(await postfix.queue()).not.toContain(queueId);
    // Ferry stored nothing and relayed nothing of it.
    expect((await ferry.storage.db.selectFrom('transfers').select('id').execute()).length).toBe(before);
    expect(sink.messages().some((m) => m.includes('X-Rcpt-Args: <carol@example.net>'))).toBe(false);
    // The sender heard at once: Postfix's bounce went back to alice (through Ferry, as all mail).
    const dsn = await waitFor('the bounce to the sender', () =>
      sink.messages().find((m) => m.includes('X-Mail-Args: <>') && m.includes('X-Rcpt-Args: <alice@example.com>') && m.includes('Too big for Ferry')),
    );
    expect(dsn.toString('latin1')).toMatch(/exceeds size limit 2000000/);
  });
});

// docs/recipes/postfix.md, second setup: Ferry as an after-queue content filter. Postfix hands
// every message to Ferry (content_filter = ferry:[127.0.0.1]:PORT), Ferry relays the rewritten
// message back to Postfix's return port (smtpd without the filter), and Postfix delivers it
// (here to its relayhost, the sink).
describe.skipIf(!!missing)('Postfix with Ferry as content filter and a return port', () => {
  const dir = tempDir('ferry-postfix-filter-');
  let ferry: TestFerry;
  let postfix: PostfixInstance;
  let sink: Sink;

  beforeAll(async () => {
    sink = await startSink(path.join(dir, 'sink'), await freePort());
    const [inPort, returnPort] = [await freePort(), await freePort()];
    ferry = await startFerry({
      smtp: { maxMessageSize: MAX },
      offload: { minAttachmentSize: '100KB' },
      relay: { url: `smtp://127.0.0.1:${returnPort}`, starttls: 'off' },
    });
    const master = `
ferry     unix  -       -       n       -       10      smtp
  -o smtp_send_xforward_command=no
  -o disable_mime_output_conversion=yes
127.0.0.1:${returnPort} inet n  -       n       -       10      smtpd
  -o content_filter=
  -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters
  -o smtpd_relay_restrictions=permit_mynetworks,reject
  -o mynetworks=127.0.0.0/8
`;
    postfix = await startPostfix(path.join(dir, 'postfix'), inPort, sink.port, { content_filter: `ferry:[127.0.0.1]:${ferry.smtpPort}` }, master);
  }, 120_000);

  afterAll(async () => {
    await postfix?.stop();
    await ferry?.stopAndClean();
    await sink?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a message goes Postfix -> Ferry -> Postfix return port -> next hop, rewritten, and its link downloads the exact bytes', async () => {
    const file = pseudoRandom(400_000, 'postfix-filter');
    const submit = nodemailer.createTransport({ host: '127.0.0.1', port: postfix.port, secure: false, ignoreTLS: true });
    await submit.sendMail({
      from: 'alice@example.com',
      to: 'dave@example.net',
      subject: 'Filtered by Ferry',
      text: 'See attachment.',
      attachments: [{ filename: 'plan.bin', content: file }],
    });
    const raw = await waitFor('the filtered message at the sink', () => sink.messages().find((m) => m.includes('Filtered by Ferry')), 60_000);
    const mail = await parse(raw);
    expect(mail.headers.get('x-ferry-offloaded')).toBe('1 file; 400000 bytes');
    // Postfix saw the message twice: once from the client, once back from Ferry on the return port.
    const received = [mail.headers.get('received')].flat().map(String);
    expect(received.filter((r) => r.includes('mta.ferry-interop.test (Postfix)')).length).toBe(2);
    const [link] = await fileLinks(raw, ferry.publicUrl);
    expect(sha256((await download(link!)).body)).toBe(sha256(file));
    expect(postfix.log()).toMatch(/relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*status=sent \(250 2\.0\.0 Ok: queued as \w+, 1 attachment/);
  });
});
