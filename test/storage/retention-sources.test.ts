import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DAY_MS,
  getRule,
  listRules,
  openDatabase,
  plannedRules,
  RetentionConflictError,
  rulesInEffect,
  seedRetentionRules,
  setRule,
  type Db,
} from '../../storage/index.js';
import { createDatabase, dropDatabase, pgUrl, warnSkip } from './backends.js';

// Issue 12, item 5: the file seeds only what an admin never changed at run time; bounds from the
// two sources that contradict each other are refused at start (nothing is changed), naming both
// values, where each came from and the fix. Item 6: rules a lowered maximum clamps say so.

const FILE = { defaultMs: 30 * DAY_MS, minMs: DAY_MS, maxMs: 365 * DAY_MS };

const backends: { name: string; missing?: string; open: () => Promise<{ db: Db; close: () => Promise<void> }> }[] = [
  {
    name: 'SQLite',
    async open() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-rsrc-'));
      const db = await openDatabase(`sqlite:${dir}/ferry.db`);
      return { db, close: async () => (await db.destroy(), fs.rmSync(dir, { recursive: true, force: true })) };
    },
  },
  {
    name: 'PostgreSQL',
    missing: pgUrl() ? undefined : 'no PostgreSQL (FERRY_TEST_POSTGRES_URL)',
    async open() {
      const url = await createDatabase(pgUrl()!, 'ferry_rsrc');
      const db = await openDatabase(url);
      return { db, close: async () => (await db.destroy(), await dropDatabase(pgUrl()!, url)) };
    },
  },
];

for (const backend of backends) {
  if (backend.missing) warnSkip(`retention sources on ${backend.name}`, backend.missing);
  describe.skipIf(!!backend.missing)(`retention rules from the file and from run time (${backend.name})`, () => {
    let db: Db;
    let close: () => Promise<void>;
    beforeAll(async () => ({ db, close } = await backend.open()));
    afterAll(async () => close?.());

    it('a restart whose file contradicts a run-time maximum is refused with both values and the fix; nothing changes', async () => {
      await seedRetentionRules(db, FILE);
      await setRule(db, { kind: 'maximum', periodMs: 365 * DAY_MS }, 'admin:alice', FILE);
      await setRule(db, { kind: 'recipient_domain', match: 'partner.example', periodMs: 300 * DAY_MS }, 'admin:alice', FILE);
      // The reproduction: default 400d and maximum 500d in the file, maximum 365d set at run time.
      const file = { defaultMs: 400 * DAY_MS, minMs: DAY_MS, maxMs: 500 * DAY_MS };
      const err = await seedRetentionRules(db, file).catch((e: Error) => e);
      expect(err).toBeInstanceOf(RetentionConflictError);
      expect((err as Error).message).toMatch(/retention\.default = 400d \(from the configuration\) is longer than the maximum of 365d \(set at run time by admin:alice on \d{4}-\d\d-\d\d\)/);
      expect((err as Error).message).toMatch(/set retention\.default to at most 365d in the configuration, or change it with `ferry rules set maximum --days N` \(N at least 400d\)/);
      // Rolled back: the default in force is still the old one, and rule changes keep working.
      expect((await getRule(db, 'default'))!.periodMs).toBe(30 * DAY_MS);
      await expect(setRule(db, { kind: 'sender', match: 'ceo@corp.example', periodMs: 60 * DAY_MS }, 'admin:alice', FILE)).resolves.toMatchObject({ id: 'sender:ceo@corp.example' });

      // A consistent file is applied to what the admin never changed; the admin's maximum stays.
      await seedRetentionRules(db, { defaultMs: 200 * DAY_MS, minMs: 2 * DAY_MS, maxMs: 500 * DAY_MS });
      expect((await getRule(db, 'default'))!).toMatchObject({ periodMs: 200 * DAY_MS, source: 'config' });
      expect((await getRule(db, 'minimum'))!).toMatchObject({ periodMs: 2 * DAY_MS, source: 'config' });
      expect((await getRule(db, 'maximum'))!).toMatchObject({ periodMs: 365 * DAY_MS, source: 'admin' });
    });

    it('the rules in effect say where each comes from, which file values are not used, and which are clamped', async () => {
      // An admin lowers the maximum below the 300-day partner rule set earlier.
      await setRule(db, { kind: 'maximum', periodMs: 250 * DAY_MS }, 'admin:bob', FILE);
      const file = { defaultMs: 30 * DAY_MS, minMs: DAY_MS, maxMs: 500 * DAY_MS, rules: [{ recipientDomain: 'slow.example', days: 3 }] };
      const planned = plannedRules(await listRules(db), file);
      const effect = rulesInEffect(planned, file);
      const by = (id: string) => effect.find((r) => r.id === id)!;
      expect(by('maximum')).toMatchObject({ from: 'run time' });
      expect(by('maximum').notes.join(' ')).toMatch(/the file says 500d; not used, an admin changed it at run time/);
      expect(by('default')).toMatchObject({ from: 'file', periodMs: 30 * DAY_MS });
      expect(by('recipient_domain:slow.example')).toMatchObject({ from: 'file', periodMs: 3 * DAY_MS });
      // Set at 300 days when the maximum was 365; the maximum is now lower: clamped, and it says so.
      expect(by('recipient_domain:partner.example').notes[0]).toBe('clamped: mail gets the maximum, 250d');
      expect(by('recipient_domain:slow.example').notes).toEqual([]);
    });
  });
}
