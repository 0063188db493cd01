import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

// Generates the test messages from real mail composers once per test run (see test/fixtures/).
export default function setup(): void {
  const root = path.resolve(import.meta.dirname, '..', '..');
  const script = path.join(root, 'test/fixtures/generate.mjs');
  const out = path.join(root, 'test/fixtures/generated');
  if (!fs.existsSync(script)) return;
  if (fs.existsSync(path.join(out, 'manifest.json')) && !process.env.CI) return;
  execFileSync(process.execPath, [script, out], { stdio: 'inherit', cwd: root, timeout: 300_000 });
}
