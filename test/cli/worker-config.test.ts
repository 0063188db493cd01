import v8 from 'node:v8';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/index.js';
import { WORKER_CONFIG_ENV, configFromPrimary, workerConfigEnv } from '../../cli/worker-config.js';

// The primary hands its configuration to each worker (cli/worker-config.ts); that a replaced
// worker really runs with it is checked on a real node in test/ops/cluster.test.ts. Here: the
// copy is exact for a configuration that sets much (a file, secrets, lists, durations, sizes),
// and the variable that carries it is never read as a setting.

const ROOT = path.resolve(import.meta.dirname, '../..');

describe('the configuration handed to a worker', () => {
  it('arrives exactly as the primary read it', () => {
    const config = loadConfig({
      file: path.join(ROOT, 'deploy/compose/ferry.yaml'),
      env: {
        FERRY_RELAY_URL: 'smtp://relay-user:relay%20secret@relay.example:587',
        FERRY_ADMIN_TOKENS: 'alice:0123456789abcdef0123456789abcdef',
        FERRY_STORAGE_S3_ACCESS_KEY_ID: 'FERRYACCESSKEY',
        FERRY_STORAGE_S3_SECRET_ACCESS_KEY: 'secret-key-0123456789',
        FERRY_SMTP_MAX_MESSAGE_SIZE: '1GB',
        FERRY_RETENTION_DEFAULT: '14d',
      },
    });
    const env = workerConfigEnv(config);
    expect(Object.keys(env)).toEqual([WORKER_CONFIG_ENV]);
    const copy = v8.deserialize(Buffer.from(env[WORKER_CONFIG_ENV]!, 'base64'));
    expect(copy).toStrictEqual(config);
    expect(copy.relay.url).toBe('smtp://relay-user:relay%20secret@relay.example:587');
  });

  it('is not read as a setting, and outside a worker nothing is taken from it', () => {
    const env = workerConfigEnv(loadConfig({ env: {} }));
    expect(() => loadConfig({ env })).not.toThrow();
    const before = process.env[WORKER_CONFIG_ENV];
    process.env[WORKER_CONFIG_ENV] = env[WORKER_CONFIG_ENV];
    try {
      expect(configFromPrimary()).toBeUndefined();
    } finally {
      if (before === undefined) delete process.env[WORKER_CONFIG_ENV];
      else process.env[WORKER_CONFIG_ENV] = before;
    }
  });
});
