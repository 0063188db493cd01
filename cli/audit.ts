import type { Config } from '../config/schema.js';
import { openStorage, verifyAuditChain } from '../storage/index.js';
import { parseFlags, UsageError } from './admin-output.js';
import { storageOptionsFrom } from './storage-options.js';

// `ferry audit verify`: walks the audit log's hash chain (storage/audit.ts) and names the first
// entry that does not fit. What that proves and what not: docs/admin.md#audit-verify.

export const AUDIT_USAGE = `Usage: ferry audit verify [--json] [--expect-head HASH] [--config FILE]

  Checks that no audit entry was changed, removed or slipped in since it was written: every
  entry carries the hash of the one before it. Prints the newest entry's hash: keep a copy
  somewhere else and pass it back with --expect-head to catch a log rewritten from scratch.
  Exit status 0 when the chain is intact, 1 when it is broken.`;

export async function auditCommand(config: Config, args: string[], io: { out: (s: string) => void; err: (s: string) => void } = { out: console.log, err: console.error }): Promise<number> {
  const [sub, ...rest] = args;
  let f;
  try {
    if (sub !== 'verify') throw new UsageError(AUDIT_USAGE);
    f = parseFlags('audit verify', rest, { json: { type: 'boolean' }, 'expect-head': { type: 'string' } });
    if (f.positionals.length) throw new UsageError(`ferry audit verify: unexpected "${f.positionals[0]}"\n\n${AUDIT_USAGE}`);
  } catch (err) {
    io.err((err as Error).message);
    return 2;
  }
  const storage = await openStorage(storageOptionsFrom(config));
  try {
    const r = await verifyAuditChain(storage.db);
    const expected = f.values['expect-head']?.trim().toLowerCase();
    // A head kept elsewhere that is no longer in the chain: the log was rewritten after it.
    const headMismatch = r.ok && expected !== undefined && expected !== r.headHash;
    if (f.values.json) {
      io.out(JSON.stringify({ ...r, ok: r.ok && !headMismatch, expectedHead: expected ?? null }, null, 2));
    } else if (!r.ok) {
      io.out(`Audit log BROKEN after ${r.rows} intact ${r.rows === 1 ? 'entry' : 'entries'}: ${r.broken!.reason}.`);
    } else if (headMismatch) {
      io.out(`Audit log chain is consistent (${r.rows} entries), but its newest hash is ${r.headHash}, not the ${expected} you kept: the log was rewritten or is another log.`);
    } else {
      io.out(`Audit log intact: ${r.rows} ${r.rows === 1 ? 'entry' : 'entries'}${r.lastId !== null ? `, newest #${r.lastId}` : ''}.`);
      io.out(`Newest hash: ${r.headHash}${expected ? ' (matches --expect-head)' : ' (keep a copy elsewhere; pass it with --expect-head next time)'}`);
    }
    return r.ok && !headMismatch ? 0 : 1;
  } finally {
    await storage.close();
  }
}
