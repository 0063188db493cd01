import dns from 'node:dns';
import type { Readable } from 'node:stream';
import type { SigningKey } from './dkim.js';

// ARC (RFC 8617) for messages Ferry rewrites: the DKIM signatures (and any ARC chain) of the
// message as it arrived are checked on the original bytes, which stream past once during
// DATA, and the result is sealed onto the rewritten message, so a receiver that trusts Ferry's
// seal can accept a message whose original signature the rewrite broke.

export type DnsResolver = (name: string, rrtype: string) => Promise<unknown>;

/** What the original message's signatures said, for ARC-Authentication-Results. */
export interface OriginalAuth {
  /** One "dkim=pass header.d=... ..." entry per DKIM signature (empty: the message had none). */
  dkim: string[];
  /** The chain the message arrived with: none, pass or fail (the seal's cv= follows it). */
  arc: 'none' | 'pass' | 'fail';
  /** A comment for the ARC chain result. */
  arcInfo?: string;
}

/**
 * A resolver for mailauth: the system's, or the DNS servers in arc.dnsServers ("host" or
 * "host:port"; the port lets tests run their own server on loopback).
 */
export function makeResolver(servers: string[] | undefined): DnsResolver | undefined {
  if (!servers?.length) return undefined;
  const r = new dns.promises.Resolver({ timeout: 5000, tries: 2 });
  try {
    r.setServers(servers);
  } catch (err) {
    throw new Error(`arc.dnsServers = "${servers.join(',')}" is not allowed (${(err as Error).message}): give IP addresses, each optionally with :port`);
  }
  return (name, rrtype) => r.resolve(name, rrtype as 'TXT');
}

/** Verifies the DKIM signatures and ARC chain of the message `input` streams (read to its end). */
export async function verifyOriginal(input: Readable, resolver: DnsResolver | undefined): Promise<OriginalAuth> {
  // mailauth is imported when first needed (see dkim.ts).
  const { dkimVerify } = await import('mailauth/lib/dkim/verify.js');
  const res = await dkimVerify(input, { resolver } as never);
  const results = (res.results ?? []) as { info?: string; status?: { result?: string } }[];
  const dkim = results.filter((r) => r.info && r.status?.result !== 'none').map((r) => r.info!);
  const chain = (res as { arc?: { chain?: unknown[] | false } }).arc;
  if (!chain?.chain || !chain.chain.length) return { dkim, arc: 'none' };
  const { arc: verifyArcChain } = await import('mailauth/lib/arc/index.js');
  const checked = (await verifyArcChain(chain as never, { resolver } as never)) as { status?: { result?: string }; info?: string };
  return { dkim, arc: checked.status?.result === 'pass' ? 'pass' : 'fail', arcInfo: checked.info };
}

/**
 * The three ARC fields (ARC-Seal, ARC-Message-Signature, ARC-Authentication-Results), ending in
 * CRLF, for the rewritten message `open()` streams. `authServ` is Ferry's name (the authserv-id).
 */
export async function seal(open: () => Readable, key: SigningKey, domain: string, authServ: string, original: OriginalAuth): Promise<Buffer> {
  const results = original.dkim.length ? original.dkim : ['dkim=none'];
  const authResults = [authServ, ...results, original.arcInfo ?? `arc=${original.arc}`].join(';\r\n\t');
  const { sealMessage } = await import('mailauth/lib/arc/index.js');
  const out = await sealMessage(open(), {
    signingDomain: domain,
    selector: key.selector,
    privateKey: key.pem,
    algorithm: 'rsa-sha256',
    authResults,
    cv: original.arc,
  } as never);
  if (!out.length) throw new Error(`ARC sealing as ${domain} produced nothing`);
  return out;
}
