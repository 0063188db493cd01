// Whether dist/ is older than what it is built from, for `npm start`'s prestart
// (scripts/build-if-stale.mjs) and for the bench and the tests that run the built CLI
// (bench/lib/build.ts): one rule for both.
//
// Stale means: dist/cli/main.js is missing, or a source (the folders tsconfig.build.json
// includes), a tsconfig file, package-lock.json or the build script is newer than it. The build
// (scripts/build.mjs) writes dist/ afresh, so main.js's time is the time of the last build. A
// `git pull` or checkout gives the files it changes a fresh mtime, so it is seen too.
import fs from 'node:fs';
import path from 'node:path';

// A runaway tree (a symlink loop) must not hang a start.
const MAX_FILES = 20_000;

/** Why `root`'s dist/ must be built again, or undefined when it is current. */
export function whyStale(root) {
  let builtAt;
  try {
    builtAt = fs.statSync(path.join(root, 'dist', 'cli', 'main.js')).mtimeMs;
  } catch {
    return 'dist/ is missing';
  }
  const build = JSON.parse(fs.readFileSync(path.join(root, 'tsconfig.build.json'), 'utf8'));
  const inputs = ['tsconfig.json', 'tsconfig.build.json', 'package-lock.json', 'scripts/build.mjs'].map((f) => path.join(root, f));
  let seen = 0;
  const walk = (dir) => {
    let entries;
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (++seen > MAX_FILES) return;
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'node_modules') walk(p);
      } else if (e.isFile() && p.endsWith('.ts') && !p.endsWith('.test.ts')) inputs.push(p);
    }
  };
  for (const dir of build.include ?? []) walk(path.join(root, dir));
  for (const p of inputs) {
    let m;
    try {
      m = fs.statSync(p).mtimeMs;
    } catch {
      continue;
    }
    if (m > builtAt) return `${path.relative(root, p)} changed since the last build`;
  }
  return undefined;
}
