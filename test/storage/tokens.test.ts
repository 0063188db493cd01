import { describe, expect, it } from 'vitest';
import { newQueueId } from '../../storage/tokens.js';

// storage/tokens.ts: queue ids come from a pool of random bytes refilled every 512 ids; the
// ids across refills must still be distinct and of the shape clients and logs show.

describe('queue ids', () => {
  it('are 16 upper-case hex digits, distinct across several refills of the pool', () => {
    const ids = Array.from({ length: 5000 }, () => newQueueId());
    for (const id of ids) expect(id).toMatch(/^[0-9A-F]{16}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });

});
