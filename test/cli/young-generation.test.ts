import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { adminSizedYoungGeneration } from '../../cli/young-generation.js';

// cli/young-generation.ts keeps a node's primary small at rest by holding V8's young generation
// at its initial size while the node starts, and lets it grow once the node runs (the queue
// runner works in that process). V8 flags are process-wide, so each case runs in a child.

const CHILD = path.join(import.meta.dirname, 'young-generation-child.ts');
const run = (nodeOptions = '') => {
  const out = execFileSync(process.execPath, ['--import', 'tsx', CHILD], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: nodeOptions } });
  const m = /start ([\d.]+) held ([\d.]+) released ([\d.]+)/.exec(out)!;
  return { start: Number(m[1]), held: Number(m[2]), released: Number(m[3]) };
};

describe("the primary's young generation", () => {
  it('does not grow while held, and grows again once released', () => {
    const r = run();
    // The same churn grows an unheld young generation to 16 MiB a semi-space and more.
    expect(r.held).toBeLessThanOrEqual(r.start);
    expect(r.released).toBeGreaterThan(r.held * 2);
  });

  it("is left alone when the admin sized it (NODE_OPTIONS or node's command line)", () => {
    const r = run('--max-semi-space-size=16');
    expect(r.held).toBeGreaterThan(r.start);
    expect(adminSizedYoungGeneration([], '--max_semi_space_size=4')).toBe(true);
    expect(adminSizedYoungGeneration(['--semi-space-growth-factor=4'], '')).toBe(true);
    expect(adminSizedYoungGeneration(['--max-old-space-size=512'], '--enable-source-maps')).toBe(false);
  });
});
