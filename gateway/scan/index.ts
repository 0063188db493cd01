import type { Config } from '../../config/schema.js';
import { ClamdScanner } from './clamd.js';
import { IcapScanner } from './icap.js';
import type { Scanner } from './types.js';

export type { EngineName, ScanOutcome, ScanResult, ScanSession, Scanner } from './types.js';
export { ClamdScanner } from './clamd.js';
export { IcapScanner } from './icap.js';

// One scanner client per configuration (the gateway's transactions and the rescan worker share
// it: it remembers the ICAP preview size and the last signature version).
const byConfig = new WeakMap<Config['scan'], Scanner>();

/** The scanner scan.* names, or undefined when scan.engine is off. */
export function scannerFor(scan: Config['scan']): Scanner | undefined {
  if (scan.engine === 'off') return undefined;
  let s = byConfig.get(scan);
  if (!s) {
    s = scan.engine === 'clamd' ? new ClamdScanner({ address: scan.clamd, timeoutMs: scan.timeout }) : new IcapScanner({ url: scan.icap!, timeoutMs: scan.timeout });
    byConfig.set(scan, s);
  }
  return s;
}

/** "Checked for malware by ClamAV" style name of an engine as recorded. */
export function engineLabel(engine: string | null): string {
  return engine === 'clamav' ? 'ClamAV' : engine === 'icap' ? 'the ICAP service' : 'a scanner';
}
