#!/usr/bin/env node
// The package's bin: the compiled CLI (built by `npm run build`, which `npm ci` runs as `prepare`).
import('../dist/cli/main.js').then((m) => m.main(process.argv.slice(2))).catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cli/main.js')) {
    console.error('ferry: the compiled code is missing; run `npm run build` (or `npm ci`) first.');
  } else {
    console.error(err && err.stack ? err.stack : err);
  }
  process.exit(1);
});
