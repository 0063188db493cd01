import { describe, expect, it } from 'vitest';
import { summariseProfile, type CpuProfile } from '../../bench/lib/profile.js';

// The bench's profile of one message (bench/scenarios/large.ts) counts only the samples between
// the client's first byte and the 250: what the process did while it started (migrations,
// Fastify's routes) or stopped is left out and reported as such, so the categories are the
// message's own.

function frame(id: number, functionName: string, url: string, children: number[] = []) {
  return { id, callFrame: { functionName, url, scriptId: '0', lineNumber: 0, columnNumber: 0 }, children };
}

/** A profile from t=1,000,000 µs: 10 ms of SQLite (start-up), 20 ms hashing (the message), 5 ms of SQLite again (shutdown). */
function profile(): CpuProfile {
  const nodes = [
    frame(1, '(root)', '', [2, 3, 4]),
    frame(2, 'executeQuery', 'file:///x/node_modules/kysely/dist/esm/dialect/sqlite/sqlite-driver.js'),
    frame(3, 'update', 'node:internal/crypto/hash'),
    frame(4, '(idle)', ''),
  ];
  const samples: number[] = [];
  const timeDeltas: number[] = [];
  const run = (id: number, ms: number) => {
    for (let i = 0; i < ms; i++) {
      samples.push(id);
      timeDeltas.push(1000);
    }
  };
  run(2, 10);
  run(4, 5);
  run(3, 20);
  run(2, 5);
  return { nodes, startTime: 1_000_000, endTime: 1_000_000 + 40_000, samples, timeDeltas } as unknown as CpuProfile;
}

describe('bench profile window', () => {
  it('without a window, every busy sample counts', () => {
    const s = summariseProfile(profile());
    expect(s.busyMs).toBeCloseTo(35, 5);
    expect(s.categories.find((c) => c.category === 'database (SQLite)')?.ms).toBeCloseTo(15, 5);
  });

  it('with the message\'s window, only the message counts; the rest is reported as left out', () => {
    const s = summariseProfile(profile(), { fromUs: 1_015_000, toUs: 1_035_000 });
    expect(s.busyMs).toBeCloseTo(20, 5);
    expect(s.categories.map((c) => c.category)).toEqual(['hashing (SHA-256)']);
    expect(s.startupMs).toBeCloseTo(15, 5);
  });

  it('a window outside the profile (another clock) is ignored rather than leaving nothing', () => {
    const s = summariseProfile(profile(), { fromUs: 5, toUs: 10 });
    expect(s.busyMs).toBeCloseTo(35, 5);
  });
});
