import { afterEach, describe, expect, it } from 'vitest';
import { freePort, startFerry, type TestFerry } from '../helpers/ferry.js';

// Issue 15.11: message counts, bytes and downloads are not for everyone who can reach the
// download port. By default /metrics is only on metrics.port; /healthz stays public; /readyz on
// the public port says ready or not ready, and why only where metrics are served; metrics.token
// puts /metrics (and /readyz's reason) behind a bearer token.

const TOKEN = 'metrics-token-0123456789abcdef';
let ferry: TestFerry | undefined;
afterEach(async () => {
  await ferry?.stopAndClean();
  ferry = undefined;
});

/** Makes /readyz fail with a reason that names the storage. */
function breakBlobStore(f: TestFerry): void {
  f.storage.blobs.check = async () => {
    throw new Error('bucket gone (injected)');
  };
}

describe('where /metrics and /readyz details are served', () => {
  it('by default: no /metrics on the download port, /healthz public, /readyz without its reason; metrics.port has both', async () => {
    const metricsPort = await freePort();
    ferry = await startFerry({ metrics: { port: metricsPort, host: '127.0.0.1' } });
    expect((await fetch(`${ferry.publicUrl}/metrics`)).status).toBe(404);
    const health = await fetch(`${ferry.publicUrl}/healthz`);
    expect([health.status, await health.text()]).toEqual([200, 'ok\n']);
    const m = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(m.status).toBe(200);
    expect(await m.text()).toMatch(/^ferry_messages_accepted_total \d+$/m);

    breakBlobStore(ferry);
    const pub = await fetch(`${ferry.publicUrl}/readyz`);
    expect([pub.status, await pub.text()]).toEqual([503, 'not ready\n']);
    const priv = await fetch(`http://127.0.0.1:${metricsPort}/readyz`);
    expect([priv.status, await priv.text()]).toEqual([503, 'not ready: blob store: bucket gone (injected)\n']);
  });

  it('metrics.token: /metrics and /readyz reasons only with Authorization: Bearer <token>, on every listener', async () => {
    const metricsPort = await freePort();
    ferry = await startFerry({ metrics: { port: metricsPort, host: '127.0.0.1', onWebPort: true, token: TOKEN } });
    for (const base of [ferry.publicUrl, `http://127.0.0.1:${metricsPort}`]) {
      const none = await fetch(`${base}/metrics`);
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toBe('Bearer realm="metrics"');
      expect(await none.text()).not.toMatch(/ferry_/);
      expect((await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}x` } })).status).toBe(401);
      expect((await fetch(`${base}/metrics`, { headers: { authorization: TOKEN } })).status).toBe(401);
      const ok = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(ok.status).toBe(200);
      expect(await ok.text()).toMatch(/^ferry_messages_accepted_total \d+$/m);
    }
    breakBlobStore(ferry);
    expect(await (await fetch(`${ferry.publicUrl}/readyz`)).text()).toBe('not ready\n');
    expect(await (await fetch(`${ferry.publicUrl}/readyz`, { headers: { authorization: `Bearer ${TOKEN}` } })).text()).toBe('not ready: blob store: bucket gone (injected)\n');
    expect((await fetch(`${ferry.publicUrl}/healthz`)).status).toBe(200);
  });

  it('metrics.onWebPort: true serves /metrics on the download port without a token, as before', async () => {
    ferry = await startFerry({ metrics: { onWebPort: true } });
    const r = await fetch(`${ferry.publicUrl}/metrics`);
    expect(r.status).toBe(200);
    expect(await r.text()).toMatch(/^ferry_messages_accepted_total \d+$/m);
  });
});
