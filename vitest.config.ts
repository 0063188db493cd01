import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // SMTP and HTTP servers bind real ports; files run in parallel processes, tests inside a file in order.
    pool: 'forks',
    reporters: ['default', ['json', { outputFile: 'test/artifacts/vitest.json' }]],
  },
});
