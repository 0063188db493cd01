import os from 'node:os';
import { z } from 'zod';
import { parseCidr } from './ip-ranges.js';
import { parseDuration, parseSize } from './units.js';

// The one configuration schema. Every key, its default and what it accepts is here; the
// README's configuration reference is written from this file. Keys whose default depends on
// another key (paths under dataDir, the hard limit) are optional here and filled in by
// resolveConfig() below.

const size = (what = 'a size such as 25MB, 1.5GB, 512KiB or a number of bytes') =>
  z.union([z.number(), z.string()]).transform((v, ctx) => {
    const n = parseSize(v);
    if (n === undefined) {
      ctx.addIssue({ code: 'custom', message: `expected ${what}` });
      return z.NEVER;
    }
    return n;
  });

const duration = () =>
  z.union([z.number(), z.string()]).transform((v, ctx) => {
    const n = parseDuration(v);
    if (n === undefined) {
      ctx.addIssue({ code: 'custom', message: 'expected a duration such as 30d, 12h, 10m, 90s or a number of milliseconds' });
      return z.NEVER;
    }
    return n;
  });

const port = () =>
  z.coerce
    .number({ message: 'expected a port number from 0 to 65535' })
    .int({ message: 'expected a port number from 0 to 65535' })
    .min(0, { message: 'expected a port number from 0 to 65535' })
    .max(65535, { message: 'expected a port number from 0 to 65535' });

const cidrList = () =>
  z
    .union([z.array(z.string()), z.string().transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean))])
    .pipe(
      z.array(
        z.string().refine((s) => parseCidr(s) !== undefined, {
          message: 'expected IP addresses or CIDR ranges such as 127.0.0.0/8, 10.0.0.0/8, ::1/128',
        }),
      ),
    );

const bool = () =>
  z.union([
    z.boolean(),
    z.enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'expected true or false' }).transform((s) => ['true', '1', 'yes'].includes(s)),
  ]);

const relayUrl = () =>
  z.string().refine((s) => /^(smtp|smtps):\/\/[^/]+/i.test(s) || /^outbox:.+/.test(s), {
    message: 'expected smtp://host:port, smtps://user:password@host:port or outbox:DIRECTORY',
  });

const httpUrl = () =>
  z.string().refine(
    (s) => {
      try {
        const u = new URL(s);
        return (u.protocol === 'http:' || u.protocol === 'https:') && !u.search && !u.hash;
      } catch {
        return false;
      }
    },
    { message: 'expected an http:// or https:// URL without query or fragment, such as https://files.example.com' },
  );

export const configSchema = z.strictObject({
  /** Where the embedded defaults keep their files (blobs, SQLite database, outbox, spool). */
  dataDir: z.string().min(1).default('./data'),
  smtp: z
    .strictObject({
      host: z.string().default('0.0.0.0'),
      port: port().default(2525),
      /** Name used in the greeting and EHLO reply. */
      hostname: z.string().min(1).default(os.hostname()),
      maxMessageSize: size().default(500_000_000),
      /** Past this the connection is dropped (421); default max(3 x maxMessageSize, 50MB). */
      hardLimit: size().optional(),
      trustedNetworks: cidrList().default(['127.0.0.0/8', '::1/128']),
      maxRecipients: z.coerce.number().int().min(1, { message: 'expected a whole number of at least 1' }).default(1000),
      /** Idle time before an SMTP client is disconnected. */
      socketTimeout: duration().prefault('5m'),
    })
    .prefault({}),
  web: z
    .strictObject({
      host: z.string().default('0.0.0.0'),
      port: port().default(8080),
      /** The address recipients reach, used in every link. */
      publicUrl: httpUrl().default('http://localhost:8080'),
      trustProxy: bool().default(false),
      /** Show the message subject on the landing page. */
      showSubject: bool().default(true),
      /** Downloads allowed per transfer (full file bodies or zips); 0 = unlimited. */
      maxDownloads: z.coerce.number().int().min(0, { message: 'expected a whole number, 0 for unlimited' }).default(0),
      /** Serve HTTPS directly: PEM files. Both or neither. */
      tls: z
        .strictObject({
          cert: z.string().min(1).optional(),
          key: z.string().min(1).optional(),
        })
        .prefault({})
        .refine((t) => !!t.cert === !!t.key, { message: 'set both web.tls.cert and web.tls.key (PEM files), or neither' }),
      brand: z
        .strictObject({
          name: z.string().min(1).max(80).default('Ferry'),
          /** An https:// or /path URL of a logo served by your own site; shown on every page. */
          logoUrl: z
            .string()
            .refine((s) => /^(https:\/\/|\/)[^\s"'<>]*$/.test(s), { message: 'expected an https:// URL or a /path, without quotes or spaces' })
            .optional(),
          /** Accent colour, #rgb or #rrggbb. */
          color: z
            .string()
            .regex(/^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/, { message: 'expected a colour such as #0b57d0' })
            .default('#0b57d0'),
        })
        .prefault({}),
    })
    .prefault({}),
  offload: z
    .strictObject({
      /** An attachment whose decoded size reaches this is moved to storage and linked. */
      minAttachmentSize: size().default(5_000_000),
      /** Signed or encrypted messages: leave untouched (passthrough) or offload anyway. */
      signed: z.enum(['passthrough', 'offload'], { message: 'expected passthrough or offload' }).default('passthrough'),
    })
    .prefault({}),
  relay: z
    .strictObject({
      /** Next hop: smtp://host:port, smtps://user:pass@host:port, or outbox:DIR. Default outbox:<dataDir>/outbox. */
      url: relayUrl().optional(),
      /** How long one relay attempt may take from connect to the next hop's reply to the data. */
      timeout: duration().prefault('60s'),
      /** STARTTLS towards an smtp:// next hop: opportunistic, required or off. */
      starttls: z.enum(['opportunistic', 'required', 'off'], { message: 'expected opportunistic, required or off' }).default('opportunistic'),
      /** Check the next hop's certificate. */
      tlsVerify: bool().default(true),
    })
    .prefault({}),
  storage: z
    .strictObject({
      /** Blob store: file:DIR. Default file:<dataDir>/blobs. */
      blobs: z
        .string()
        .refine((s) => /^file:.+/.test(s), { message: 'expected file:DIRECTORY (S3 support is planned)' })
        .optional(),
      /** Records: sqlite:FILE. Default sqlite:<dataDir>/ferry.db. */
      database: z
        .string()
        .refine((s) => /^sqlite:.+/.test(s), { message: 'expected sqlite:FILE (PostgreSQL support is planned)' })
        .optional(),
    })
    .prefault({}),
  retention: z
    .strictObject({
      /** How long links stay downloadable. */
      default: duration().prefault('30d'),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { message: 'expected one of fatal, error, warn, info, debug, trace, silent' }).default('info'),
    })
    .prefault({}),
});

export type ConfigInput = z.input<typeof configSchema>;
type Parsed = z.output<typeof configSchema>;

/** The effective configuration: every derived default filled in. */
export type Config = Omit<Parsed, 'smtp' | 'relay' | 'storage'> & {
  smtp: Parsed['smtp'] & { hardLimit: number };
  relay: Parsed['relay'] & { url: string };
  storage: { blobs: string; database: string };
};

export function resolveConfig(parsed: Parsed): Config {
  const dataDir = parsed.dataDir;
  const join = (p: string) => `${dataDir.replace(/\/+$/, '')}/${p}`;
  return {
    ...parsed,
    smtp: { ...parsed.smtp, hardLimit: parsed.smtp.hardLimit ?? Math.max(3 * parsed.smtp.maxMessageSize, 50_000_000) },
    relay: { ...parsed.relay, url: parsed.relay.url ?? `outbox:${join('outbox')}` },
    storage: {
      blobs: parsed.storage.blobs ?? `file:${join('blobs')}`,
      database: parsed.storage.database ?? `sqlite:${join('ferry.db')}`,
    },
  };
}
