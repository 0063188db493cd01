// Ferry puts exactly one field in front of every message it relays: its Received trace
// (gateway/received.ts). "Byte for byte" means the rest of the message; these helpers take
// that one field off, and fail when the message does not start with it.

const FERRY_RECEIVED = /^Received: from [^\r\n]*\r\n\tby (\S+) \(Ferry\) with (E?SMTPS?A?) id ([0-9A-Za-z]+)[^\r\n]*\r\n(?:\t[^\r\n]*\r\n)*/;

export interface FerryReceived {
  /** The whole field, CRLF included. */
  field: string;
  by: string;
  protocol: string;
  id: string;
}

/** Ferry's Received field at the top of `raw`; throws when the message does not start with one. */
export function ferryReceived(raw: Buffer | string): FerryReceived {
  const head = (typeof raw === 'string' ? raw : raw.subarray(0, 4096).toString('latin1'));
  const m = FERRY_RECEIVED.exec(head);
  if (!m) throw new Error(`the message does not start with Ferry's Received field: ${JSON.stringify(head.slice(0, 200))}`);
  return { field: m[0], by: m[1]!, protocol: m[2]!, id: m[3]! };
}

/** `raw` without Ferry's Received field (exactly that field; it must be there). */
export function stripFerryReceived(raw: Buffer): Buffer;
export function stripFerryReceived(raw: string): string;
export function stripFerryReceived(raw: Buffer | string): Buffer | string {
  const { field } = ferryReceived(raw);
  return typeof raw === 'string' ? raw.slice(field.length) : raw.subarray(Buffer.byteLength(field, 'latin1'));
}
