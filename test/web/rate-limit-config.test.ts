import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../config/index.js';
import { newToken } from '../../storage/index.js';
import { startFerry, type TestFerry } from '../helpers/ferry.js';
import { landingLinks } from '../helpers/mail.js';
import { RawSmtp } from '../helpers/smtp-client.js';

// web.rateLimit.* reaches the running web service: a whole Ferry is started with a configured
// limit, a real message goes through the gateway, and the recipient's look-ups over HTTP hit the
// configured limits (not the defaults of 300 a minute and 20 misses in 10 minutes).

let ferry: TestFerry | undefined;
afterEach(async () => {
  await ferry?.stopAndClean();
  ferry = undefined;
});

/** Sends a message with one 3 kB attachment through the gateway and returns the landing link from the outbox. */
async function sendOne(f: TestFerry): Promise<string> {
  const attachment = Buffer.alloc(3000, 'x').toString('base64').replace(/.{76}/g, '$&\r\n');
  const message = [
    'From: alice@example.com',
    'To: bob@example.net',
    'Subject: Rate limit',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b"',
    '',
    '--b',
    'Content-Type: text/plain',
    '',
    'Hi Bob.',
    '--b',
    'Content-Type: application/octet-stream',
    'Content-Disposition: attachment; filename="a.bin"',
    'Content-Transfer-Encoding: base64',
    '',
    attachment,
    '--b--',
    '',
  ].join('\r\n');
  const c = await RawSmtp.connect(f.smtpPort);
  try {
    await c.cmd('EHLO client.test');
    await c.cmd('MAIL FROM:<alice@example.com>');
    await c.cmd('RCPT TO:<bob@example.net>');
    expect(await c.data(message)).toMatch(/^250 2\.0\.0 .*1 attachment/);
  } finally {
    c.close();
  }
  const eml = fs.readdirSync(f.outbox).find((n) => n.endsWith('.eml'))!;
  const [link] = await landingLinks(fs.readFileSync(path.join(f.outbox, eml)), f.publicUrl);
  expect(link).toBeDefined();
  return link!;
}

const get = (url: string) => fetch(url, { redirect: 'manual' });

describe('web.rateLimit in a running Ferry', () => {
  it('cuts an address off after web.rateLimit.maxMisses failed look-ups, for web.rateLimit.missWindow', async () => {
    ferry = await startFerry({ offload: { minAttachmentSize: '1KB' }, web: { rateLimit: { maxMisses: 2, missWindow: '5m' } } });
    const landing = await sendOne(ferry);
    expect((await get(landing)).status).toBe(200);
    for (let i = 0; i < 2; i++) expect((await get(`${ferry.publicUrl}/t/${newToken()}`)).status).toBe(404);
    // From the second miss on, even the real link is refused, for the configured 5 minutes.
    const refused = await get(landing);
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(240);
    expect(retryAfter).toBeLessThanOrEqual(300);
  });

  it('refuses look-ups past web.rateLimit.max per web.rateLimit.window', async () => {
    ferry = await startFerry({ offload: { minAttachmentSize: '1KB' }, web: { rateLimit: { max: 3, window: '30s' } } });
    const landing = await sendOne(ferry);
    for (let i = 0; i < 3; i++) expect((await get(i === 1 ? `${landing}/1/a.bin` : landing)).status, `request ${i + 1}`).toBe(200);
    const refused = await get(landing);
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(30);
    // Pages outside /t/ are not limited.
    expect((await get(`${ferry.publicUrl}/`)).status).toBe(200);
  });

  it('has no limits with web.rateLimit.enabled: false', async () => {
    ferry = await startFerry({ offload: { minAttachmentSize: '1KB' }, web: { rateLimit: { enabled: false } } });
    const landing = await sendOne(ferry);
    // More misses than the default 20 allows: every one still gets its 404, the real link its 200.
    for (let i = 0; i < 25; i++) expect((await get(`${ferry.publicUrl}/t/${newToken()}`)).status).toBe(404);
    expect((await get(landing)).status).toBe(200);
  });
});

describe('web.rateLimit settings', () => {
  it('default to 300 a minute and 20 misses in 10 minutes, and are read from FERRY_WEB_RATE_LIMIT_*', () => {
    expect(loadConfig({ env: {} }).web.rateLimit).toEqual({ enabled: true, max: 300, window: 60_000, maxMisses: 20, missWindow: 600_000 });
    const c = loadConfig({
      env: {
        FERRY_WEB_RATE_LIMIT_ENABLED: 'false',
        FERRY_WEB_RATE_LIMIT_MAX: '1000',
        FERRY_WEB_RATE_LIMIT_WINDOW: '2m',
        FERRY_WEB_RATE_LIMIT_MAX_MISSES: '5',
        FERRY_WEB_RATE_LIMIT_MISS_WINDOW: '1h',
      },
    });
    expect(c.web.rateLimit).toEqual({ enabled: false, max: 1000, window: 120_000, maxMisses: 5, missWindow: 3_600_000 });
  });

  it.each([
    ['FERRY_WEB_RATE_LIMIT_MAX', '0', /^web\.rateLimit\.max = "0" is not allowed \(set in FERRY_WEB_RATE_LIMIT_MAX\): expected a whole number from 1/],
    ['FERRY_WEB_RATE_LIMIT_WINDOW', '10 minutes', /^web\.rateLimit\.window = "10 minutes" is not allowed .*expected a duration/],
    ['FERRY_WEB_RATE_LIMIT_MISS_WINDOW', '500ms', /^web\.rateLimit\.missWindow = "500ms" is not allowed .*from 1s to 24h/],
    ['FERRY_WEB_RATE_LIMIT_ENABLED', 'sometimes', /^web\.rateLimit\.enabled = "sometimes" is not allowed \(set in FERRY_WEB_RATE_LIMIT_ENABLED\): expected true or false$/],
  ])('%s=%s is refused with one line naming the key', (name, value, message) => {
    expect(() => loadConfig({ env: { [name]: value } })).toThrow(ConfigError);
    expect(() => loadConfig({ env: { [name]: value } })).toThrow(message);
  });
});
