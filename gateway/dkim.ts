import crypto from 'node:crypto';
import fs from 'node:fs';
import type { Readable } from 'node:stream';

// DKIM signing (RFC 6376, RFC 8463) of what Ferry relays, with mailauth's signer: the
// canonicalisation is the library's, never hand-written. Keys are read and checked once (at
// start, and by `ferry check-config`); a key that cannot sign stops start-up naming the key.

export type DkimAlgorithm = 'rsa-sha256' | 'ed25519-sha256';

export interface KeyEntry {
  domain: string;
  selector: string;
  privateKeyFile: string;
  algorithm: DkimAlgorithm;
}

export interface SigningKey {
  /** The configured domain, or "*" (then d= is the From domain). */
  domain: string;
  selector: string;
  algorithm: DkimAlgorithm;
  privateKey: crypto.KeyObject;
  /** The PEM text, as mailauth takes it. */
  pem: string;
}

/**
 * Header fields signed, as RFC 6376 section 5.4.1 recommends, plus Ferry's X-Ferry-Offloaded.
 * NB mailauth's signer lists each field as many times as it occurs and cannot oversign (add a
 * name once more to lock out a second From); the h= tag therefore names only fields present.
 */
export const SIGNED_FIELDS = [
  'From',
  'Reply-To',
  'Subject',
  'Date',
  'To',
  'Cc',
  'Message-ID',
  'In-Reply-To',
  'References',
  'MIME-Version',
  'Content-Type',
  'Content-Transfer-Encoding',
  'X-Ferry-Offloaded',
].join(':');

/** Thrown for a key that cannot be used; the message names the setting, the value and the fix. */
export class SigningKeyError extends Error {
  override name = 'SigningKeyError';
}

/** Reads and checks the keys of one list (`dkim.keys` or `arc.keys`). */
export function loadKeys(entries: KeyEntry[], key: string, firstIndex = 0): SigningKey[] {
  return entries.map((e, n) => {
    const i = firstIndex + n;
    const where = `${key}[${i}].privateKeyFile`;
    let pem: string;
    try {
      pem = fs.readFileSync(e.privateKeyFile, 'utf8');
    } catch (err) {
      throw new SigningKeyError(`${where} = "${e.privateKeyFile}" cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): give a PEM private key file Ferry's user can read`);
    }
    let privateKey: crypto.KeyObject;
    try {
      privateKey = crypto.createPrivateKey(pem);
    } catch {
      throw new SigningKeyError(`${where} = "${e.privateKeyFile}" is not a PEM private key: make one with "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out ${e.privateKeyFile}" (or -algorithm ed25519)`);
    }
    const type = privateKey.asymmetricKeyType;
    const want = e.algorithm === 'ed25519-sha256' ? 'ed25519' : 'rsa';
    if (type !== want) {
      throw new SigningKeyError(`${where} = "${e.privateKeyFile}" is an ${type ?? 'unknown'} key but ${key}[${i}].algorithm is ${e.algorithm}: set algorithm to ${type === 'ed25519' ? 'ed25519-sha256' : 'rsa-sha256'} or use an ${want === 'rsa' ? 'RSA' : 'Ed25519'} key`);
    }
    const bits = privateKey.asymmetricKeyDetails?.modulusLength;
    if (want === 'rsa' && bits !== undefined && bits < 1024) {
      throw new SigningKeyError(`${where} = "${e.privateKeyFile}" is a ${bits}-bit RSA key; receivers ignore signatures with keys under 1024 bits: make a 2048-bit key`);
    }
    return { domain: e.domain.toLowerCase(), selector: e.selector, algorithm: e.algorithm, privateKey, pem };
  });
}

/**
 * The key for a From domain: its own, else one of a parent domain (still aligned for DMARC),
 * else the "*" entry. Returns the key with the d= domain it signs as.
 */
export function chooseKey(keys: SigningKey[], fromDomain: string | undefined): { key: SigningKey; domain: string } | undefined {
  const from = (fromDomain ?? '').toLowerCase();
  if (from) {
    const exact = keys.find((k) => k.domain === from);
    if (exact) return { key: exact, domain: from };
    const parent = keys
      .filter((k) => k.domain !== '*' && from.endsWith(`.${k.domain}`))
      .sort((a, b) => b.domain.length - a.domain.length)[0];
    if (parent) return { key: parent, domain: parent.domain };
  }
  const any = keys.find((k) => k.domain === '*');
  return any && from ? { key: any, domain: from } : undefined;
}

/**
 * The DKIM-Signature field (ending in CRLF) for the message `open()` streams. Relaxed/relaxed,
 * no l= tag. The message is read once, as a stream: nothing is held in memory.
 */
export async function signMessage(open: () => Readable, key: SigningKey, domain: string): Promise<Buffer> {
  // mailauth (about 34 MB once loaded) is imported at the first signature, so a Ferry without
  // dkim.keys, and every CLI command, never loads it.
  const { dkimSign } = await import('mailauth/lib/dkim/sign.js');
  const res = await dkimSign(open(), {
    canonicalization: 'relaxed/relaxed',
    headerList: SIGNED_FIELDS,
    signatureData: [{ signingDomain: domain, selector: key.selector, privateKey: key.pem, algorithm: key.algorithm, canonicalization: 'relaxed/relaxed' }],
  } as never);
  const errors = (res.errors ?? []) as { err?: Error }[];
  if (errors.length || !res.signatures.trim()) throw new Error(`DKIM signing as ${domain} failed: ${errors[0]?.err?.message ?? 'no signature'}`);
  return Buffer.from(res.signatures);
}
