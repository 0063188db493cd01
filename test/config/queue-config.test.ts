import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/index.js';

// The queue's and the relay's configuration keys: defaults, the old relay.timeout name,
// lists from one environment variable, and errors that name the key and the fix.

const MIN = 60_000;

describe('queue and relay settings', () => {
  it('defaults: attempt 60 s, Postfix-like schedule, 5 days, warning after 4 h', () => {
    const c = loadConfig({ env: {} });
    expect(c.relay.attemptTimeout).toBe(60_000);
    expect(c.relay.timeout).toBe(60_000);
    expect(c.relay.poolSize).toBe(16);
    expect(c.queue).toEqual({
      retrySchedule: [5 * MIN, 10 * MIN, 20 * MIN, 40 * MIN, 60 * MIN, 120 * MIN, 240 * MIN],
      maxAge: 5 * 24 * 60 * MIN,
      delayWarning: 240 * MIN,
      leaseTimeout: 10 * MIN,
      pollInterval: 10_000,
      concurrency: 4,
    });
  });

  it('relay.timeout, the earlier name, still sets the attempt timeout; both set and different is an error', () => {
    expect(loadConfig({ env: { FERRY_RELAY_TIMEOUT: '30s' } }).relay.attemptTimeout).toBe(30_000);
    expect(loadConfig({ env: { FERRY_RELAY_ATTEMPT_TIMEOUT: '45s' } }).relay).toMatchObject({ attemptTimeout: 45_000, timeout: 45_000 });
    expect(() => loadConfig({ env: { FERRY_RELAY_TIMEOUT: '30s', FERRY_RELAY_ATTEMPT_TIMEOUT: '45s' } })).toThrow(/relay\.timeout .* relay\.attemptTimeout .*disagree.*set only relay\.attemptTimeout/);
  });

  it('a schedule from one environment variable; delay warnings off with 0 or off', () => {
    const c = loadConfig({ env: { FERRY_QUEUE_RETRY_SCHEDULE: '1m, 15m,2h', FERRY_QUEUE_DELAY_WARNING: 'off' } });
    expect(c.queue.retrySchedule).toEqual([MIN, 15 * MIN, 120 * MIN]);
    expect(c.queue.delayWarning).toBe(0);
    expect(loadConfig({ env: { FERRY_QUEUE_DELAY_WARNING: '0' } }).queue.delayWarning).toBe(0);
  });

  it('errors name the key and the fix', () => {
    expect(() => loadConfig({ env: { FERRY_QUEUE_RETRY_SCHEDULE: '5m, soon' } })).toThrow(/queue\.retrySchedule = .* is not allowed \(set in FERRY_QUEUE_RETRY_SCHEDULE\): expected a duration/);
    expect(() => loadConfig({ env: { FERRY_QUEUE_LEASE_TIMEOUT: '1m', FERRY_RELAY_ATTEMPT_TIMEOUT: '60s' } })).toThrow(
      /queue\.leaseTimeout = 60000 ms is too short for relay\.attemptTimeout = 60000 ms: it must be at least 2 x attemptTimeout \+ 10s \(130000 ms\)/,
    );
    expect(() => loadConfig({ env: { FERRY_QUEUE_CONCURRENCY: '0' } })).toThrow(/queue\.concurrency = "0" is not allowed .*at least 1/);
  });
});
