import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, envName, loadConfig, parseDuration, parseSize, settingPaths } from '../../config/index.js';
import { groupDigits } from '../../config/units.js';
import { tempDir } from '../helpers/ferry.js';

describe('sizes and durations', () => {
  it.each([
    ['25MB', 25_000_000],
    ['1.5GB', 1_500_000_000],
    ['512KiB', 524_288],
    ['2 MiB', 2_097_152],
    ['1000', 1000],
    [4096, 4096],
  ])('size %s = %d bytes', (v, n) => expect(parseSize(v)).toBe(n));
  it.each(['25 parsecs', '-5MB', 'MB', '1e3', '', 1.5])('size %s is refused', (v) => expect(parseSize(v)).toBeUndefined());
  it.each([
    ['30d', 30 * 86_400_000],
    ['10m', 600_000],
    ['90s', 90_000],
    ['12h', 43_200_000],
  ])('duration %s = %d ms', (v, n) => expect(parseDuration(v)).toBe(n));
  it.each([
    ['500', 500],
    [' 2500 ', 2500],
  ])('duration %s (a bare number from the environment) = %d ms', (v, n) => expect(parseDuration(v)).toBe(n));
  it.each(['10 minutes', '5x', 'd', '1.5', '-5'])('duration %s is refused', (v) => expect(parseDuration(v)).toBeUndefined());
  it.each([
    [0, '0'],
    [999, '999'],
    [1000, '1,000'],
    [100_000, '100,000'],
    [12_345_678, '12,345,678'],
    [1_099_511_627_776, '1,099,511,627,776'],
  ])('byte count %d is written %s, as the receipt shows it on every server', (n, text) => expect(groupDigits(n)).toBe(text));
  it('reads booleans in the usual spellings and says what is allowed otherwise', () => {
    expect(loadConfig({ env: { FERRY_WEB_TRUST_PROXY: 'off' } }).web.trustProxy).toBe(false);
    expect(loadConfig({ env: { FERRY_WEB_TRUST_PROXY: 'yes' } }).web.trustProxy).toBe(true);
    expect(loadConfig({ env: {}, overrides: { web: { trustProxy: true } } }).web.trustProxy).toBe(true);
    expect(() => loadConfig({ env: { FERRY_WEB_TRUST_PROXY: 'maybe' } })).toThrow(/^web\.trustProxy = "maybe" is not allowed \(set in FERRY_WEB_TRUST_PROXY\): expected true or false$/);
    expect(loadConfig({ env: { FERRY_SMTP_SOCKET_TIMEOUT: '500' } }).smtp.socketTimeout).toBe(500);
  });
});

describe('loading', () => {
  it('has the documented defaults, with paths and the hard limit derived from the keys they depend on', () => {
    const c = loadConfig({ env: {} });
    expect(c.smtp.port).toBe(2525);
    expect(c.web.port).toBe(8080);
    expect(c.web.publicUrl).toBe('http://localhost:8080');
    expect(c.smtp.maxMessageSize).toBe(500_000_000);
    expect(c.smtp.hardLimit).toBe(1_500_000_000);
    expect(c.offload.minAttachmentSize).toBe(5_000_000);
    expect(c.relay.url).toBe('outbox:./data/outbox');
    expect(c.dataDir).toBe('./data');
    expect(c.smtp.trustedNetworks).toEqual(['127.0.0.0/8', '::1/128']);
    expect(c.storage).toMatchObject({ blobs: 'file:./data/blobs', database: 'sqlite:./data/ferry.db' });
    expect(c.retention.default).toBe(30 * 86_400_000);
    // The hard limit never goes under 50 MB.
    expect(loadConfig({ env: { FERRY_SMTP_MAX_MESSAGE_SIZE: '10MB' } }).smtp.hardLimit).toBe(50_000_000);
  });

  it('reads YAML and lets FERRY_* environment variables override it', () => {
    const dir = tempDir();
    const file = path.join(dir, 'ferry.yaml');
    fs.writeFileSync(file, 'dataDir: /srv/ferry\nsmtp:\n  port: 2626\n  maxMessageSize: 100MB\noffload:\n  minAttachmentSize: 2MiB\n');
    const c = loadConfig({ file, env: { FERRY_SMTP_PORT: '2727', FERRY_RELAY_URL: 'smtp://mx.example.com:25', FERRY_SMTP_TRUSTED_NETWORKS: '10.0.0.0/8, 192.168.1.0/24' } });
    expect(c.smtp.port).toBe(2727);
    expect(c.smtp.maxMessageSize).toBe(100_000_000);
    expect(c.offload.minAttachmentSize).toBe(2 * 1024 * 1024);
    expect(c.relay.url).toBe('smtp://mx.example.com:25');
    expect(c.smtp.trustedNetworks).toEqual(['10.0.0.0/8', '192.168.1.0/24']);
    expect(c.storage.blobs).toBe('file:/srv/ferry/blobs');
    fs.rmSync(dir, { recursive: true });
  });

  it('names environment variables after the key path', () => {
    expect(envName(['smtp', 'port'])).toBe('FERRY_SMTP_PORT');
    expect(envName(['offload', 'minAttachmentSize'])).toBe('FERRY_OFFLOAD_MIN_ATTACHMENT_SIZE');
    expect(envName(['relay', 'url'])).toBe('FERRY_RELAY_URL');
    expect(envName(['dataDir'])).toBe('FERRY_DATA_DIR');
    expect(settingPaths().map((p) => p.join('.'))).toContain('smtp.trustedNetworks');
  });

  const bad: [string, Record<string, string>, RegExp][] = [
    ['a port that is not a number', { FERRY_SMTP_PORT: 'abc' }, /^smtp\.port = "abc" is not allowed \(set in FERRY_SMTP_PORT\): expected a port number from 0 to 65535$/],
    ['a size with an unknown unit', { FERRY_OFFLOAD_MIN_ATTACHMENT_SIZE: '5 parsecs' }, /^offload\.minAttachmentSize = "5 parsecs" .*FERRY_OFFLOAD_MIN_ATTACHMENT_SIZE.*expected a size such as 25MB/],
    ['a relay URL of the wrong kind', { FERRY_RELAY_URL: 'http://x' }, /^relay\.url = "http:\/\/x" .*expected smtp:\/\/host:port/],
    ['a bad network range', { FERRY_SMTP_TRUSTED_NETWORKS: '10.0.0.0/8,not-an-ip' }, /^smtp\.trustedNetworks = "10\.0\.0\.0\/8,not-an-ip" .*CIDR/],
    ['a misspelt variable', { FERRY_SMTP_PROT: '25' }, /^FERRY_SMTP_PROT is not a Ferry setting/],
    ['a hard limit below the size limit', { FERRY_SMTP_MAX_MESSAGE_SIZE: '100MB', FERRY_SMTP_HARD_LIMIT: '10MB' }, /^smtp\.hardLimit = 10000000 is below smtp\.maxMessageSize/],
    ['a public URL with a query', { FERRY_WEB_PUBLIC_URL: 'https://x.example/?a=1' }, /^web\.publicUrl = .*without query/],
  ];
  it.each(bad)('stops on %s with one line naming the key, the value and what is allowed', (_what, env, re) => {
    let err: unknown;
    try {
      loadConfig({ env });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    expect(msg).toMatch(re);
    expect(msg).not.toContain('\n');
  });

  it('refuses unknown keys in the file, naming them and the file', () => {
    const dir = tempDir();
    const file = path.join(dir, 'ferry.yaml');
    fs.writeFileSync(file, 'smtp:\n  prot: 25\n');
    expect(() => loadConfig({ file, env: {} })).toThrow(/^smtp\.prot is not a known setting \(in .*ferry\.yaml\)/);
    fs.writeFileSync(file, 'smtp: [1, 2\n');
    expect(() => loadConfig({ file, env: {} })).toThrow(/ferry\.yaml is not valid YAML/);
    fs.rmSync(dir, { recursive: true });
  });
});
