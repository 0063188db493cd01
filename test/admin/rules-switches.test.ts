import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSite } from '../../admin/site.js';
import { DAY_MS, decideRetention, getRule, listAudit, seedRetentionRules } from '../../storage/index.js';
import { makeEnv, PUBLIC_URL, type Env } from '../web/helpers.js';
import { chromiumMissing, launchChromium, screenshot, watchedContext } from '../browser/chromium.js';
import { postForm, uiLogin } from './admin-login.js';

// The two switches of a retention rule, requirePassword and receipts, in the admin API and UI:
// shown, set (audited under the admin's name), left alone when a client does not send them, and
// refused for the read-only role. The last part saves a row in Chromium on a phone: the switches
// sit in another cell than the row's form (tied to it by form="..."), so only a browser shows that
// the Save button really sends them.

declare const document: any;
const missing = chromiumMissing();
if (missing) console.warn(`SKIPPED rule switches browser test: ${missing}`);

const ADMIN = 'boss-rule-switches-token-0123456789';
const HELP = 'helpdesk-rule-switches-token-012345';
const bounds = { defaultMs: 30 * DAY_MS, minMs: DAY_MS, maxMs: 90 * DAY_MS };

let env: Env;
let app: FastifyInstance;

beforeAll(async () => {
  env = await makeEnv();
  await seedRetentionRules(env.db, { ...bounds, rules: [{ recipientDomain: 'partner.example', days: 14, requirePassword: true, receipts: false }] });
  app = await buildSite({ publicUrl: PUBLIC_URL, db: env.db, blobs: env.blobs, rateLimit: false, admin: { tokens: [`boss:${ADMIN}`], readonlyTokens: [`helpdesk:${HELP}`], retention: bounds } });
});
afterAll(async () => {
  await app?.close();
  await env?.close();
});

async function api(method: 'GET' | 'PUT', url: string, body?: object, token = ADMIN) {
  const r = await app.inject({ method, url: `/admin/api${url}`, headers: { authorization: `Bearer ${token}` }, ...(body ? { payload: body } : {}) });
  return { status: r.statusCode, json: r.json() as any };
}
const decide = (sender: string, recipients: string[]) => decideRetention(env.db, { sender, recipients, at: Date.now() }, bounds);

describe('rule switches in the admin API', () => {
  it('GET /rules shows them; the OpenAPI document describes them in the rule and the request body', async () => {
    const r = await api('GET', '/rules', undefined, HELP);
    expect(r.status).toBe(200);
    const by = (id: string) => r.json.items.find((x: { id: string }) => x.id === id);
    expect(by('recipient_domain:partner.example')).toMatchObject({ requirePassword: true, receipts: false, source: 'config' });
    expect(by('default')).toMatchObject({ requirePassword: false, receipts: null });
    const doc = (await app.inject({ url: '/admin/api/openapi.json' })).json() as any;
    expect(doc.components.schemas.Rule.properties).toMatchObject({ requirePassword: { type: 'boolean' }, receipts: { type: ['boolean', 'null'] } });
    const body = doc.paths['/rules/{id}'].put.requestBody.content['application/json'].schema;
    expect(Object.keys(body.properties)).toEqual(expect.arrayContaining(['requirePassword', 'receipts']));
  });

  it('PUT sets them, audited as admin:NAME; absent leaves them, null hands receipts back to senders.receipts', async () => {
    let r = await api('PUT', '/rules/sender:cfo@corp.example', { days: 20, requirePassword: true, receipts: true });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ id: 'sender:cfo@corp.example', days: 20, requirePassword: true, receipts: true, source: 'admin', updatedBy: 'admin:boss' });
    const audit = (await listAudit(env.db, { action: 'rule_set', limit: 1 }))[0]!;
    expect(audit).toMatchObject({ actor: 'admin:boss', detail: { rule: 'sender:cfo@corp.example', requirePassword: true, receipts: true } });
    expect(await decide('cfo@corp.example', ['someone@elsewhere.example'])).toMatchObject({ requirePassword: true, receipts: true });

    r = await api('PUT', '/rules/sender:cfo@corp.example', { days: 25 });
    expect(r.json).toMatchObject({ days: 25, requirePassword: true, receipts: true });
    r = await api('PUT', '/rules/sender:cfo@corp.example', { days: 25, requirePassword: false, receipts: null });
    expect(r.json).toMatchObject({ requirePassword: false, receipts: null });
    expect(await decide('cfo@corp.example', ['someone@elsewhere.example'])).toMatchObject({ requirePassword: false, receipts: null });
    // The partner's rule still asks for a password when one of its addresses is in the mail.
    expect(await decide('cfo@corp.example', ['x@partner.example'])).toMatchObject({ requirePassword: true });
  });

  it('refuses wrong types and switches on a bound with 400, and the read-only role with 403; nothing changes', async () => {
    const before = await getRule(env.db, 'recipient_domain:partner.example');
    for (const body of [{ days: 14, requirePassword: 'yes' }, { days: 14, receipts: 'on' }, { days: 14, requirePassword: null }]) {
      const bad = await api('PUT', '/rules/recipient_domain:partner.example', body);
      expect(bad.status, JSON.stringify(body)).toBe(400);
    }
    const bound = await api('PUT', '/rules/maximum', { days: 90, requirePassword: true });
    expect(bound.status).toBe(400);
    expect(bound.json.error.message).toContain('maximum is a bound');
    const refused = await api('PUT', '/rules/recipient_domain:partner.example', { days: 14, requirePassword: false, receipts: true }, HELP);
    expect(refused.status).toBe(403);
    expect(refused.json.error.code).toBe('FERRY_ERR_READ_ONLY');
    expect((await listAudit(env.db, { action: 'admin_refused', limit: 1 }))[0]).toMatchObject({ actor: 'admin:helpdesk', detail: { request: 'PUT /admin/api/rules/:id' } });
    expect(await getRule(env.db, 'recipient_domain:partner.example')).toEqual(before);
  });
});

describe('rule switches in the admin UI', () => {
  const rowOf = (body: string, id: string) => new RegExp(`<tr id="rule-${id.replace(/[^a-z0-9]/gi, '-')}">[\\s\\S]*?</tr>`).exec(body)![0];

  it('each rule row and the new-rule form have a password checkbox and a receipts choice; saving a row sets them, audited', async () => {
    const { cookie, csrf } = await uiLogin(app, ADMIN);
    let page = await app.inject({ url: '/admin/rules', headers: { cookie } });
    expect(page.statusCode).toBe(200);
    const partner = rowOf(page.body, 'recipient_domain:partner.example');
    const fid = 'rule-recipient-domain-partner-example';
    expect(partner).toMatch(new RegExp(`<input type="checkbox" id="${fid}-pw" name="requirePassword" value="yes" form="${fid}-form" checked>`));
    expect(partner).toMatch(/<option value="off" selected>off<\/option>/);
    expect(partner).toContain(`<form class="inline" method="post" action="/admin/rules" id="${fid}-form">`);
    // The bounds only clamp periods: no switches there.
    expect(rowOf(page.body, 'maximum')).not.toContain('requirePassword');
    const form = /<form[^>]*id="new-rule">[\s\S]*?<\/form>/.exec(page.body)![0];
    expect(form).toContain('name="requirePassword"');
    expect(form).toContain('name="receipts"');

    // Unticking the box and choosing "site setting" clears both.
    let res = await app.inject(postForm(cookie, '/admin/rules', { _csrf: csrf, id: 'recipient_domain:partner.example', days: '14', downloadLimit: '', switches: 'yes', receipts: '' }));
    expect(res.statusCode).toBe(303);
    expect(await getRule(env.db, 'recipient_domain:partner.example')).toMatchObject({ requirePassword: false, receipts: null, source: 'admin', updatedBy: 'admin:boss' });
    expect((await listAudit(env.db, { action: 'rule_set', limit: 1 }))[0]).toMatchObject({ actor: 'admin:boss', detail: { requirePassword: false, receipts: null, before: { requirePassword: true, receipts: false } } });

    // A new rule with both set.
    res = await app.inject(postForm(cookie, '/admin/rules', { _csrf: csrf, id: '', kind: 'recipient_domain', match: 'law.example', days: '10', switches: 'yes', requirePassword: 'yes', receipts: 'on' }));
    expect(res.statusCode).toBe(303);
    expect(await getRule(env.db, 'recipient_domain:law.example')).toMatchObject({ requirePassword: true, receipts: true });
    page = await app.inject({ url: '/admin/rules', headers: { cookie } });
    const law = rowOf(page.body, 'recipient_domain:law.example');
    expect(law).toMatch(/name="requirePassword" value="yes" form="[^"]+" checked>/);
    expect(law).toMatch(/<option value="on" selected>on<\/option>/);

    // A form without the switches (the bounds' rows, an older page) leaves them alone.
    res = await app.inject(postForm(cookie, '/admin/rules', { _csrf: csrf, id: 'recipient_domain:law.example', days: '12' }));
    expect(res.statusCode).toBe(303);
    expect(await getRule(env.db, 'recipient_domain:law.example')).toMatchObject({ periodMs: 12 * DAY_MS, requirePassword: true, receipts: true });

    // A receipts value the form never offers is refused with the form shown again.
    res = await app.inject(postForm(cookie, '/admin/rules', { _csrf: csrf, id: 'recipient_domain:law.example', days: '12', switches: 'yes', receipts: 'sometimes' }));
    expect(res.statusCode).toBe(400);
    expect(res.body).toContain('Receipts must be on, off or the site setting.');
    expect(await getRule(env.db, 'recipient_domain:law.example')).toMatchObject({ receipts: true });
  });

  it('the read-only role sees the switches as words and its POST is refused', async () => {
    const { cookie, csrf } = await uiLogin(app, HELP);
    const page = await app.inject({ url: '/admin/rules', headers: { cookie } });
    expect(rowOf(page.body, 'recipient_domain:law.example')).toContain('<td data-label="Options">password required · receipts: on</td>');
    expect(rowOf(page.body, 'default')).toContain('<td data-label="Options">no password · receipts: site setting</td>');
    expect(page.body).not.toContain('name="requirePassword"');
    const before = await getRule(env.db, 'recipient_domain:law.example');
    const res = await app.inject(postForm(cookie, '/admin/rules', { _csrf: csrf, id: 'recipient_domain:law.example', days: '12', switches: 'yes', receipts: 'off' }));
    expect(res.statusCode).toBe(403);
    expect(await getRule(env.db, 'recipient_domain:law.example')).toEqual(before);
  });
});

describe.skipIf(Boolean(missing))('rule switches in Chromium on a phone', () => {
  it("ticking the box and choosing receipts in the default's row, then its Save, sets both; the page fits 390 px", async () => {
    await app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const browser = await launchChromium();
    const { context, problems } = await watchedContext(browser, { viewport: { width: 390, height: 844 } });
    try {
      const page = await context.newPage();
      await page.goto(`${base}/admin/login`);
      await page.getByLabel(/Admin token/).fill(ADMIN);
      await page.getByRole('button', { name: /Log in/ }).click();
      // Let the dashboard finish loading (its icon comes after 'load'): leaving it early aborts its requests, which would read as failures.
      await page.waitForURL(`${base}/admin`, { waitUntil: 'networkidle' });
      await page.goto(`${base}/admin/rules`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      expect(overflow, `scrolls sideways by ${overflow}px`).toBeLessThanOrEqual(0);
      await page.getByLabel('require a password for default').check();
      await page.getByLabel('Receipts for default').selectOption('off');
      await page.locator('#rule-default').getByRole('button', { name: 'Save' }).click();
      await expect(page.getByRole('status').textContent()).resolves.toContain('Rule saved');
      expect(await getRule(env.db, 'default')).toMatchObject({ requirePassword: true, receipts: false, updatedBy: 'admin:boss' });
      expect(await page.getByLabel('require a password for default').isChecked()).toBe(true);
      await screenshot(page, 'admin-rules-switches-390x844');
      expect(problems, JSON.stringify(problems)).toEqual([]);
    } finally {
      await context.close();
      await browser.close();
    }
  }, 60_000);
});
