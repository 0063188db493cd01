import type { Config } from '../config/schema.js';
import { scannerFor } from '../gateway/scan/index.js';
import { deleteHeldFile, listQuarantined, openStorage, releaseFile, requestRescan } from '../storage/index.js';
import { cliActor, printable } from './admin-output.js';
import { storageOptionsFrom } from './storage-options.js';

// `ferry scan ...`: the malware scanner and the files it holds, from the command line, against
// the configured database and blob store. Release and delete are the admin API's own functions
// (storage/scan.ts), audited as cli:USER.

export const SCAN_USAGE = `Usage: ferry scan <status|list|release|delete|rescan> [--config FILE]

  ferry scan status                 the scanner's address and signature version
  ferry scan list [--json]          files held for review or blocked after a rescan
  ferry scan release TRANSFER IDX   serve a held file again (audited)
  ferry scan delete TRANSFER IDX    delete a held file's bytes (audited)
  ferry scan rescan                 rescan every live file at the worker's next passes`;

export async function scanCommand(config: Config, args: string[], out: (s: string) => void = console.log, err: (s: string) => void = console.error): Promise<number> {
  const [sub, ...rest] = args;
  if (!sub || !['status', 'list', 'release', 'delete', 'rescan'].includes(sub)) {
    err(SCAN_USAGE);
    return 2;
  }
  if (sub === 'status') {
    const scanner = scannerFor(config.scan);
    if (!scanner) {
      out('scan.engine is off: files go live without a malware check');
      return 0;
    }
    try {
      out(`${config.scan.engine} at ${config.scan.engine === 'clamd' ? config.scan.clamd : config.scan.icap}: ${await scanner.version()}`);
      return 0;
    } catch (e) {
      err(`the scanner did not answer: ${(e as Error).message}`);
      return 1;
    }
  }
  const storage = await openStorage(storageOptionsFrom(config));
  try {
    if (sub === 'list') {
      const items = await listQuarantined(storage.db, 10_000);
      if (rest.includes('--json')) out(JSON.stringify({ items }, null, 2));
      else if (!items.length) out('no files are held');
      else for (const f of items) out(`${f.transferId} ${f.idx}  ${printable(f.name)}  ${printable(f.signature ?? '')}  ${f.reason === 'rescan' ? 'blocked after a rescan' : 'held at intake'}  ${new Date(f.blockedAt).toISOString()}  from ${printable(f.sender)}`);
      return 0;
    }
    if (sub === 'rescan') {
      out(`${await requestRescan(storage.db)} files will be rescanned by the worker (at most scan.rescanPerMinute = ${config.scan.rescanPerMinute} a minute)`);
      return 0;
    }
    const [id, idxText] = rest.filter((a) => !a.startsWith('--'));
    const idx = Number(idxText);
    if (!id || !Number.isInteger(idx) || idx < 1) {
      err(SCAN_USAGE);
      return 2;
    }
    const ok = sub === 'release' ? await releaseFile(storage.db, id, idx, cliActor()) : await deleteHeldFile(storage.db, storage.blobs, id, idx, cliActor());
    if (!ok) {
      err(`file ${idx} of transfer ${id} is not held`);
      return 1;
    }
    out(sub === 'release' ? `released file ${idx} of ${id}` : `deleted file ${idx} of ${id}`);
    return 0;
  } finally {
    await storage.close();
  }
}
