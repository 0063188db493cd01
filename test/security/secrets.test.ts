import fs from 'node:fs';
import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { startAll } from '../../cli/start.js';
import { loadConfig, redactConfig, redactUrlPassword } from '../../config/index.js';
import { redactUrl } from '../../storage/database.js';
import { tempDir } from '../helpers/ferry.js';

// Passwords inside URLs (relay.url, storage.database) must never be printed: not by
// `ferry check-config`, not in a configuration error, not in the start-up log line, not in a
// database error. URL parsers take the user info up to the LAST "@" of the authority, so a raw
// "@" in a user name (a smart host login such as alice@example.com) or in a password is a
// working URL, and the masking must cut where the parser does.

const CASES: [url: string, secret: string, masked: string][] = [
  ['smtp://alice@example.com:Sup3rSecret@smtp.office365.example:587', 'Sup3rSecret', 'smtp://alice@example.com:***@smtp.office365.example:587'],
  ['smtps://relayuser:p@ssw0rd@smtp.example.com:465', 'ssw0rd', 'smtps://relayuser:***@smtp.example.com:465'],
  ['postgres://ferry:s3cr3t@db.internal:5432/ferry', 's3cr3t', 'postgres://ferry:***@db.internal:5432/ferry'],
  ['postgres://ferry@corp:s3cr3t@db.internal/ferry', 's3cr3t', 'postgres://ferry@corp:***@db.internal/ferry'],
];

// pg reads every URL parameter into its connection options, the password included.
const PARAM_CASES: [url: string, secret: string, masked: string][] = [
  ['postgres://ferry@db.internal/ferry?password=s3cr3t&sslmode=require', 's3cr3t', 'postgres://ferry@db.internal/ferry?password=***&sslmode=require'],
  ['postgres://ferry@db.internal/ferry?sslmode=verify-full&sslpassword=k3ypass&PASSWORD=other', 'k3ypass', 'postgres://ferry@db.internal/ferry?sslmode=verify-full&sslpassword=***&PASSWORD=***'],
];

describe('URL passwords are masked where URL parsers end the user info', () => {
  it.each(CASES)('%s', (url, secret, masked) => {
    // The URL is one the relay and the database driver accept, with this password.
    expect(decodeURIComponent(new URL(url).password)).toContain(secret);
    expect(redactUrlPassword(url)).toBe(masked);
    expect(redactUrl(url)).toBe(masked);
    const printed = JSON.stringify(redactConfig({ relay: { url }, storage: { database: url } }));
    expect(printed).not.toContain(secret);
  });

  it.each(PARAM_CASES)('%s (password as a URL parameter)', (url, secret, masked) => {
    expect(new URL(url).searchParams.toString()).toContain(secret);
    expect(redactUrlPassword(url)).toBe(masked);
    expect(redactUrl(url)).toBe(masked);
    expect(JSON.stringify(redactConfig({ storage: { database: url } }))).not.toContain(secret);
  });

  it('leaves URLs without a password alone', () => {
    for (const url of ['smtp://mx.example.com:25', 'smtp://user@mx.example.com', 'outbox:./data/outbox', 'sqlite:./data/ferry.db', 'https://files.example.com/t/a@b']) {
      expect(redactUrlPassword(url)).toBe(url);
      expect(redactUrl(url)).toBe(url);
    }
  });
});

describe('the start-up log line', () => {
  it('"Ferry is running" names the relay and database without their passwords', async () => {
    const dir = tempDir('ferry-sec-startlog-');
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const config = loadConfig({
      env: {},
      overrides: {
        dataDir: dir,
        smtp: { host: '127.0.0.1', port: 0, hostname: 'ferry.test' },
        web: { host: '127.0.0.1', port: 0, publicUrl: 'http://127.0.0.1' },
        relay: { url: 'smtp://alice@example.com:Sup3rSecret@127.0.0.1:2' },
      },
    });
    const running = await startAll(config, pino({ level: 'info' }, sink));
    try {
      const line = lines.find((l) => l.includes('Ferry is running'));
      expect(line).toBeDefined();
      expect(JSON.parse(line!).relay).toBe('smtp://alice@example.com:***@127.0.0.1:2');
      expect(lines.join('')).not.toContain('Sup3rSecret');
    } finally {
      await running.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('configuration errors', () => {
  it('an item of admin.tokens in a YAML list is named, never shown', () => {
    const dir = tempDir('ferry-sec-cfg-');
    const file = `${dir}/ferry.yaml`;
    fs.writeFileSync(file, 'admin:\n  tokens:\n    - "alice:good-secret-0123456789abcdef"\n    - "bob:short-bob-secret"\n');
    try {
      expect(() => loadConfig({ file, env: {} })).toThrow('admin.tokens.1 = "***" is not allowed');
      let message = '';
      try {
        loadConfig({ file, env: {} });
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).not.toContain('short-bob-secret');
      expect(message).not.toContain('good-secret');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
