import fs from 'node:fs';
import { PassThrough } from 'node:stream';
import addressparser from 'nodemailer/lib/addressparser';
import type { Logger } from 'pino';
import type { SMTPServerSession } from 'smtp-server';
import type { Config } from '../config/schema.js';
import { makeResolver, seal, verifyOriginal, type DnsResolver, type OriginalAuth } from './arc.js';
import { chooseKey, loadKeys, signMessage, SigningKeyError, type SigningKey } from './dkim.js';
import { readHeaderBlock } from './dsn.js';
import type { Intake } from './intake.js';
import { withPrefix } from './prefixed-stream.js';
import { receivedField, receivedFromSession } from './received.js';

// The fields Ferry puts in front of a finished message before it leaves (relayed, written to
// the outbox or queued): its Received trace, and where configured its DKIM signature and ARC
// set. They are prepended and the message streams after them from its spool file, so nothing
// is copied or held in memory, and every byte after Ferry's fields is the message as it was.

export interface Signing {
  dkim: SigningKey[];
  signAll: boolean;
  /** Sealing keys (RSA only); empty when arc.enabled is false. */
  arc: SigningKey[];
  resolver: DnsResolver | undefined;
}

const loaded = new WeakMap<Config, Signing>();

/**
 * The keys of one configuration, read and checked once (the first call, at start-up). Throws a
 * SigningKeyError naming the key when a file cannot be used.
 */
export function signingFor(config: Config): Signing {
  let s = loaded.get(config);
  if (!s) {
    const dkim = loadKeys(config.dkim.keys, 'dkim.keys');
    const ed = (config.arc.keys ?? []).findIndex((k) => k.algorithm !== 'rsa-sha256');
    if (ed >= 0) throw new SigningKeyError(`arc.keys[${ed}].algorithm = "${config.arc.keys![ed]!.algorithm}" is not allowed: ARC (RFC 8617) seals with rsa-sha256 only; use an RSA key`);
    const arc = config.arc.enabled ? (config.arc.keys ? loadKeys(config.arc.keys, 'arc.keys') : dkim).filter((k) => k.algorithm === 'rsa-sha256') : [];
    s = { dkim, signAll: config.dkim.signAll, arc, resolver: makeResolver(config.arc.dnsServers) };
    loaded.set(config, s);
  }
  return s;
}

/**
 * Starts checking the signatures of the message as it arrives (for the ARC seal), fed by the
 * intake beside the rewrite. Only when there is a key to seal with; the answer is awaited only
 * if Ferry changed the message.
 */
export function checkOriginalWhileReceiving(intake: Intake, config: Config): Promise<OriginalAuth | undefined> | undefined {
  const s = signingFor(config);
  if (!s.arc.length) return undefined;
  const tee = new PassThrough({ highWaterMark: 64 * 1024 });
  intake.attach('arc-verify', tee);
  const result = verifyOriginal(tee, s.resolver).catch(() => undefined);
  return result;
}

export interface OutgoingInput {
  config: Config;
  session: SMTPServerSession;
  queueId: string;
  /** The finished message. */
  file: string;
  /** True when Ferry rewrote the message. */
  modified: boolean;
  original: Promise<OriginalAuth | undefined> | undefined;
  log: Logger;
  now?: Date;
}

/** Ferry's fields, in the order they go in front of the message (top first), ending in CRLF. */
export async function outgoingPrefix(o: OutgoingInput): Promise<Buffer> {
  const received = receivedField({
    ...receivedFromSession(o.session),
    by: o.config.smtp.hostname,
    queueId: o.queueId,
    recipients: o.session.envelope.rcptTo.map((r) => r.address),
    date: o.now ?? new Date(),
  });
  const s = signingFor(o.config);
  if (!s.dkim.length && !s.arc.length) return received;
  if (!o.modified && !s.signAll) return received;

  const fromDomain = await headerFromDomain(o.file);
  const open = () => fs.createReadStream(o.file, { highWaterMark: 64 * 1024 });
  let dkimField: Buffer = Buffer.alloc(0);
  const signer = o.modified || s.signAll ? chooseKey(s.dkim, fromDomain) : undefined;
  if (signer) dkimField = await signMessage(open, signer.key, signer.domain);

  let arcSet: Buffer = Buffer.alloc(0);
  const sealer = o.modified ? chooseKey(s.arc, fromDomain) ?? (s.arc[0] && s.arc[0].domain !== '*' ? { key: s.arc[0], domain: s.arc[0].domain } : undefined) : undefined;
  if (sealer && o.original) {
    const original = await o.original;
    // Sealed only what came signed (RFC 8617 is about keeping an earlier authentication result).
    if (original && (original.dkim.length || original.arc !== 'none')) {
      // The seal covers Ferry's own DKIM-Signature too (mailauth's ARC field list includes it).
      arcSet = await seal(() => withPrefix(dkimField, open), sealer.key, sealer.domain, o.config.smtp.hostname, original);
    }
  }
  return Buffer.concat([received, arcSet, dkimField]);
}


/** The domain of the first From address, from the message's header block. */
async function headerFromDomain(file: string): Promise<string | undefined> {
  const head = (await readHeaderBlock(fs.createReadStream(file, { highWaterMark: 64 * 1024 }))).toString('utf8');
  const m = /^from[ \t]*:(.*(?:\r?\n[ \t].*)*)/im.exec(head);
  if (!m) return undefined;
  const addrs = addressparser(m[1]!.replace(/\r?\n/g, ''), { flatten: true }) as { address?: string }[];
  const address = addrs.find((a) => a.address)?.address ?? '';
  const at = address.lastIndexOf('@');
  return at > 0 ? address.slice(at + 1).toLowerCase() : undefined;
}
