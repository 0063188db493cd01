import os from 'node:os';
import { z } from 'zod';
import { parseCidr } from './ip-ranges.js';
import { formatDuration, parseDuration, parseSize } from './units.js';
import { parseS3Url } from './s3-url.js';

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

/** A share of V8's heap limit ("80%", or 0.8) or a size ("1.5GB"); a number up to 1 is a share, above it bytes. */
const heapLimit = () =>
  z.union([z.number(), z.string()]).transform((v, ctx) => {
    const pct = typeof v === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(v) : null;
    const n = pct ? Number(pct[1]) / 100 : typeof v === 'number' ? v : /^\s*\d*\.\d+\s*$|^\s*[01]\s*$/.test(v) ? Number(v) : parseSize(v);
    if (n === undefined || !(n > 0) || (n > 1 && n < 16 * 1024 * 1024)) {
      ctx.addIssue({ code: 'custom', message: 'expected a share of the heap limit such as 80% or 0.8, or a size of at least 16MiB such as 1.5GB' });
      return z.NEVER;
    }
    return n;
  });

const durationList = () =>
  z
    .union([z.array(z.union([z.number(), z.string()])), z.string().transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean))])
    .pipe(z.array(duration()).min(1, { message: 'expected at least one duration, such as 5m, 10m, 1h' }));

const blobStoreUrl = () =>
  z.string().superRefine((s, ctx) => {
    if (/^file:.+/.test(s)) return;
    if (!s.startsWith('s3://')) {
      ctx.addIssue({ code: 'custom', message: 'expected file:DIRECTORY or s3://BUCKET[/PREFIX]?endpoint=https://HOST&region=REGION&forcePathStyle=true' });
      return;
    }
    try {
      parseS3Url(s);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });

const databaseUrl = () =>
  z.string().refine(
    (s) => {
      if (/^sqlite:.+/.test(s)) return true;
      if (!/^postgres(ql)?:\/\//.test(s)) return false;
      try {
        return !!new URL(s).hostname;
      } catch {
        return false;
      }
    },
    { message: 'expected sqlite:FILE or postgres://USER:PASSWORD@HOST:PORT/DATABASE (special characters in the password percent-encoded)' },
  );

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

// One transform rather than a union of literals: a union's failure reads "Invalid input", and
// the message must say what is allowed.
const bool = () =>
  z.union([z.boolean(), z.number(), z.string()]).transform((v, ctx) => {
    if (typeof v === 'boolean') return v;
    const s = String(v).trim().toLowerCase();
    if (['true', '1', 'yes', 'on'].includes(s)) return true;
    if (['false', '0', 'no', 'off'].includes(s)) return false;
    ctx.addIssue({ code: 'custom', message: 'expected true or false' });
    return z.NEVER;
  });

/** off | on (also true/false, yes/no, which YAML 1.1 readers turn on/off into). */
const onOff = () =>
  z.union([z.boolean(), z.string()]).transform((v, ctx) => {
    const s = String(v).trim().toLowerCase();
    if (['on', 'true', 'yes', '1'].includes(s)) return 'on' as const;
    if (['off', 'false', 'no', '0'].includes(s)) return 'off' as const;
    ctx.addIssue({ code: 'custom', message: 'expected on or off' });
    return z.NEVER;
  });

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


/** "TOKEN" or "NAME:TOKEN" strings, or one comma-separated string (admin.tokens, admin.readonlyTokens). */
function adminTokenList() {
  return z
    .union([z.array(z.string()), z.string().transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean))])
    .pipe(
      z.array(
        // "alice:short" must not pass as a 24-character token without a name: whatever looks
        // like NAME: is a name, and the token after it must be long enough on its own.
        z.string().refine((s) => /^(?:[A-Za-z0-9_.-]{1,40}:\S{24,}|(?![A-Za-z0-9_.-]{1,40}:)\S{24,})$/.test(s), {
          message: 'expected TOKEN or NAME:TOKEN, with a token of at least 24 characters and no spaces',
        }),
      ),
    )
    .default([]);
}

/** A list of strings, or one comma-separated string (as environment variables give it). */
function stringList() {
  return z
    .union([z.array(z.string()), z.string().transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean))])
    .pipe(z.array(z.string().min(1)))
    .default([]);
}

/** One DKIM or ARC key: {domain, selector, privateKeyFile, algorithm}; the file is checked at start (gateway/dkim.ts). */
const signingKey = () =>
  z.strictObject({
    domain: z.string().regex(/^(\*|[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+)$/, { message: 'expected a domain name such as example.com, or * for any From domain' }),
    selector: z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9_-]*)(\.[A-Za-z0-9_-]+)*$/, { message: 'expected a selector such as ferry2026 (letters, digits, -, _ and dots)' }),
    privateKeyFile: z.string().min(1, { message: 'expected the path of a PEM private key file' }),
    algorithm: z.enum(['rsa-sha256', 'ed25519-sha256'], { message: 'expected rsa-sha256 or ed25519-sha256' }).default('rsa-sha256'),
  });

export const configSchema = z.strictObject({
  /** Where the embedded defaults keep their files (blobs, SQLite database, outbox, spool). */
  dataDir: z.string().min(1).default('./data'),
  /** Processes sharing the SMTP and HTTP listeners (cli/cluster.ts); unset: one per core (os.availableParallelism()); 1: one process. */
  processes: z.coerce
    .number({ message: 'expected a whole number of processes from 1 to 256' })
    .int({ message: 'expected a whole number of processes from 1 to 256' })
    .min(1, { message: 'expected a whole number of processes from 1 to 256' })
    .max(256, { message: 'expected a whole number of processes from 1 to 256' })
    .optional(),
  memory: z
    .strictObject({
      /**
       * Buffers no longer in use that a process lets pile up (beyond what a scavenge frees) before
       * it runs a full collection (cli/buffer-collector.ts); 0 leaves it to V8, which waits for 64 MB.
       */
      bufferGarbage: size().default(8 * 1024 * 1024),
    })
    .prefault({}),
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
      /** SMTP connections open at once; more are greeted with 421 4.7.0 and closed (against connection floods). */
      maxConnections: z.coerce.number().int().min(1, { message: 'expected a whole number of at least 1' }).default(500),
      /** Idle time before an SMTP client is disconnected. */
      socketTimeout: duration().prefault('5m'),
      /**
       * Pause before the greeting, to catch spam bots that talk first (they get 421). Clients in
       * trustedNetworks are greeted at once: an MTA of one's own does not talk early.
       */
      greetingDelay: duration().prefault('100ms'),
      /** Connections open at once from one client address (IPv6: one /64); more get 421 4.7.0 (gateway/connection-limits.ts). */
      maxConnectionsPerAddress: z.coerce.number().int().min(1, { message: 'expected a whole number of at least 1' }).default(20),
      /** Slots of maxConnections only clients in trustedNetworks (and clients once logged in) may fill; default a tenth of maxConnections. */
      reservedConnections: z.coerce.number().int().min(0, { message: 'expected a whole number of at least 0, less than smtp.maxConnections' }).optional(),
      /** Idle time before a client outside trustedNetworks that has not logged in is disconnected. */
      untrustedIdleTimeout: duration().prefault('30s'),
      /** MAIL FROM gets 451 4.3.0 while the V8 heap in use is above this: a share ("80%", 0.8) of the heap limit or a size ("1.5GB"). */
      heapLimit: heapLimit().default(0.8),
      /** A working copy of a message (raw, rewritten) up to this size is kept in memory, not in a spool file (gateway/spool.ts); 0 = always on disk. */
      memorySpoolLimit: size().default(256 * 1024),
      /** Memory all such copies of one process may take together; past it they go to disk. */
      memorySpoolBudget: size().default(64 * 1024 * 1024),
      /** STARTTLS on smtp.port (and the certificate of smtp.tlsPort): PEM files. Both or neither. */
      tls: z
        .strictObject({
          cert: z.string().min(1).optional(),
          key: z.string().min(1).optional(),
        })
        .prefault({})
        .refine((t) => !!t.cert === !!t.key, { message: 'set both smtp.tls.cert and smtp.tls.key (PEM files), or neither' }),
      /** A second listener speaking TLS from the first byte (implicit TLS, usually 465); needs smtp.tls. */
      tlsPort: port().optional(),
      auth: z
        .strictObject({
          /** SMTP AUTH (PLAIN, LOGIN) users: "name:hash" lines, scrypt or bcrypt (ferry hash-password). */
          usersFile: z.string().min(1).optional(),
          /** Offer AUTH without TLS. Passwords then cross the network in clear: only for tests and loopback. */
          allowInsecure: bool().default(false),
        })
        .prefault({}),
    })
    .prefault({})
    .refine((s) => s.reservedConnections === undefined || s.reservedConnections < s.maxConnections, {
      message: 'expected fewer reserved connections than smtp.maxConnections (some slots must stay open to everyone else)',
      path: ['reservedConnections'],
    })
    .refine((s) => s.tlsPort === undefined || !!s.tls.cert, {
      message: 'smtp.tlsPort needs a certificate: set smtp.tls.cert and smtp.tls.key',
      path: ['tlsPort'],
    })
    .refine((s) => !s.auth.usersFile || !!s.tls.cert || s.auth.allowInsecure, {
      message: 'smtp.auth.usersFile needs TLS so that passwords are not sent in clear: set smtp.tls.cert and smtp.tls.key (or smtp.auth.allowInsecure: true for a test setup)',
      path: ['auth', 'usersFile'],
    }),
  web: z
    .strictObject({
      host: z.string().default('0.0.0.0'),
      port: port().default(8080),
      /** The address recipients reach, used in every link. */
      publicUrl: httpUrl().default('http://localhost:8080'),
      trustProxy: bool().default(false),
      /** Show the message subject on the landing page. */
      showSubject: bool().default(true),
      /** Complete downloads allowed per file (a zip of all counts for each file in it; scanners, HEAD and partial ranges never count); 0 = unlimited. */
      maxDownloads: z.coerce.number().int().min(0, { message: 'expected a whole number, 0 for unlimited' }).default(0),
      /**
       * Limits on token look-ups (requests under /t/) per client address (IPv6: per /64), kept in
       * each web process's memory (docs/downloads.md#rate-limits): max requests per window, and
       * after maxMisses failed look-ups within missWindow the address gets 429 for every look-up
       * until that window ends. enabled: false only when a proxy in front already limits.
       */
      rateLimit: z
        .strictObject({
          enabled: bool().default(true),
          max: z.coerce.number().int().min(1, { message: 'expected a whole number from 1 to 1000000' }).max(1_000_000, { message: 'expected a whole number from 1 to 1000000' }).default(300),
          window: duration()
            .prefault('1m')
            .refine((ms) => ms >= 1000 && ms <= 86_400_000, { message: 'expected a duration from 1s to 24h' }),
          maxMisses: z.coerce.number().int().min(1, { message: 'expected a whole number from 1 to 100000' }).max(100_000, { message: 'expected a whole number from 1 to 100000' }).default(20),
          missWindow: duration()
            .prefault('10m')
            .refine((ms) => ms >= 1000 && ms <= 86_400_000, { message: 'expected a duration from 1s to 24h' }),
        })
        .prefault({}),
      /**
       * How file bytes reach the recipient: proxy (through Ferry, default) or redirect (a 302 to a
       * short-lived presigned URL of the S3 store, so the bytes bypass Ferry; needs s3:// blobs).
       */
      downloads: z.enum(['proxy', 'redirect'], { message: 'expected proxy or redirect' }).default('proxy'),
      /**
       * Password-protected transfers (docs/passwords.md): wrong guesses from one client address
       * (IPv6: one /64) before that address is locked out of the transfer for passwordLockout,
       * the right password included; five times as many from all addresses together lock
       * everyone out. The sender is told.
       */
      passwordMaxFailures: z.coerce.number().int().min(1, { message: 'expected a whole number from 1 to 1000' }).max(1000, { message: 'expected a whole number from 1 to 1000' }).default(10),
      passwordLockout: duration()
        .prefault('1h')
        .refine((ms) => ms >= 1000 && ms <= 7 * 86_400_000, { message: 'expected a duration from 1s to 7d' }),
      /** How long the right password keeps a transfer open in that browser (the unlock cookie). */
      unlockTtl: duration()
        .prefault('12h')
        .refine((ms) => ms >= 60_000 && ms <= 30 * 86_400_000, { message: 'expected a duration from 1m to 30d' }),
      /** redirect mode: how long a presigned URL works. Keep it short: until then it bypasses revocation and limits. */
      presignExpiry: duration()
        .prefault('5m')
        .refine((ms) => ms >= 1000 && ms <= 7 * 24 * 3600 * 1000, { message: 'expected a duration from 1s to 7d (the longest S3 allows); minutes are best' }),
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
          /** A logo image file (.png, .jpg, .gif, .webp, .avif or .svg, at most 512 KiB) that Ferry serves itself, so pages load nothing from other sites. */
          logoFile: z.string().min(1).optional(),
          /** Accent colour, #rgb or #rrggbb. */
          color: z
            .string()
            .regex(/^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/, { message: 'expected a colour such as #0b57d0' })
            .default('#0b57d0'),
        })
        .prefault({})
        .refine((b) => !(b.logoUrl && b.logoFile), { message: 'set web.brand.logoFile or web.brand.logoUrl, not both', path: ['logoFile'] }),
    })
    .prefault({}),
  dkim: z
    .strictObject({
      /** Signing keys, chosen by the From domain (its own, a parent domain's, else the "*" entry); docs/dkim.md. */
      keys: z.array(signingKey()).default([]),
      /** Sign every message with a key for its From domain, not only those Ferry rewrote. */
      signAll: bool().default(false),
    })
    .prefault({}),
  arc: z
    .strictObject({
      /** Seal rewritten messages that arrived with a DKIM signature or an ARC chain (RFC 8617). */
      enabled: bool().default(true),
      /** Sealing keys (rsa-sha256 only, as RFC 8617 defines); default: the rsa-sha256 keys of dkim.keys. */
      keys: z.array(signingKey()).optional(),
      /** DNS servers ("host" or "host:port") for checking the incoming signatures; default: the system's. */
      dnsServers: z.union([z.array(z.string().min(1)), z.string().transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean))]).optional(),
    })
    .prefault({}),
  mime: z
    .strictObject({
      /** Deepest nesting of MIME parts (the message itself is level 0); deeper messages are handled as malformed MIME. */
      maxDepth: z.coerce.number().int().min(1, { message: 'expected a whole number from 1 to 1000' }).max(1000, { message: 'expected a whole number from 1 to 1000' }).default(50),
      /** Most MIME parts in one message, containers included; more are handled as malformed MIME. */
      maxParts: z.coerce.number().int().min(1, { message: 'expected a whole number from 1 to 100000' }).max(100_000, { message: 'expected a whole number from 1 to 100000' }).default(1000),
    })
    .prefault({}),
  offload: z
    .strictObject({
      /** An attachment whose decoded size reaches this is moved to storage and linked. */
      minAttachmentSize: size().default(5_000_000),
      /** Signed or encrypted messages: leave untouched (passthrough) or offload anyway. */
      signed: z.enum(['passthrough', 'offload'], { message: 'expected passthrough or offload' }).default('passthrough'),
      /**
       * Each envelope recipient gets a link of its own (and its own copy of the message), so a
       * download shows whose link it was and one recipient's link can be revoked alone. Off: one
       * link shared by all recipients, one copy.
       */
      linkPerRecipient: bool().default(true),
      /** Above this many envelope recipients, one shared link instead of one per recipient (one copy, not hundreds). */
      maxPerRecipientLinks: z.coerce.number().int().min(1, { message: 'expected a whole number of at least 1' }).default(50),
      /**
       * A sender who writes this in the subject (any case) gets a password-protected transfer; the
       * tag is removed from the relayed subject. '' turns the tag off.
       */
      passwordTag: z.string().max(100, { message: 'expected at most 100 characters' }).default('[secure]'),
    })
    .prefault({}),
  relay: z
    .strictObject({
      /** Next hop: smtp://host:port, smtps://user:pass@host:port, or outbox:DIR. Default outbox:<dataDir>/outbox. */
      url: relayUrl().optional(),
      /**
       * How long one delivery attempt may take, from connect to the next hop's reply to the data.
       * At end of DATA the client waits at most this long; then the message is queued.
       */
      attemptTimeout: duration().optional(),
      /** The earlier name of relay.attemptTimeout, still accepted (default 60s). */
      timeout: duration().optional(),
      /**
       * Idle connections kept open per next hop for reuse (0 = a new connection per message), per
       * process, each for at most 5 s. Under load each is reused within milliseconds; four were
       * too few for ten sessions a process (a fifth of a small message's CPU went on new
       * connections, docs/performance.md).
       */
      poolSize: z.coerce.number().int().min(0, { message: 'expected a whole number, 0 for no reuse' }).max(50, { message: 'expected at most 50' }).default(16),
      /** STARTTLS towards an smtp:// next hop: opportunistic, required or off. */
      starttls: z.enum(['opportunistic', 'required', 'off'], { message: 'expected opportunistic, required or off' }).default('opportunistic'),
      /** Check the next hop's certificate. */
      tlsVerify: bool().default(true),
    })
    .prefault({}),
  storage: z
    .strictObject({
      /** Blob store: file:DIR, or s3://BUCKET[/PREFIX]?endpoint=URL&region=R&forcePathStyle=true. Default file:<dataDir>/blobs. */
      blobs: blobStoreUrl().optional(),
      /** Records: sqlite:FILE or postgres://USER:PASSWORD@HOST:PORT/DATABASE. Default sqlite:<dataDir>/ferry.db. */
      database: databaseUrl().optional(),
      /** Settings of an s3:// blob store that do not belong in its (logged) URL. */
      s3: z
        .strictObject({
          /** Static credentials; without them the AWS chain is used (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, instance or task role). */
          accessKeyId: z.string().min(1).optional(),
          secretAccessKey: z.string().min(1).optional(),
          sessionToken: z.string().min(1).optional(),
          /** Multipart part size (the S3 minimum by default: memory per upload is a few parts); grows on its own so that smtp.hardLimit fits in 10,000 parts. */
          partSize: size().default(5 * 1024 * 1024).refine((n) => n >= 5 * 1024 * 1024 && n <= 5 * 1024 * 1024 * 1024, { message: 'expected a part size from 5MiB to 5GiB (S3 limits)' }),
          /** Parts of one attachment uploaded at once. Memory per upload is about (queueSize + 1) x partSize. */
          queueSize: z.coerce.number().int().min(1, { message: 'expected a whole number from 1 to 16' }).max(16, { message: 'expected a whole number from 1 to 16' }).default(2),
          /** Attachments uploaded at once by one process; more wait (and their senders with them). Bounds the gateway's memory. */
          maxConcurrentUploads: z.coerce.number().int().min(1, { message: 'expected a whole number from 1 to 256' }).max(256, { message: 'expected a whole number from 1 to 256' }).default(8),
          connectTimeout: duration().prefault('5s'),
          /** One S3 request, until its answer's headers; a hung server then fails instead of hanging. */
          requestTimeout: duration().prefault('30s'),
          /** A download whose S3 body sends nothing for this long is broken off. */
          readIdleTimeout: duration().prefault('30s'),
          /** Attempts per S3 request (the SDK's retries). */
          maxAttempts: z.coerce.number().int().min(1, { message: 'expected a whole number from 1 to 10' }).max(10, { message: 'expected a whole number from 1 to 10' }).default(3),
          /** The SDK's checksum mode. WHEN_SUPPORTED breaks most S3-compatible servers (Ceph, MinIO, R2, Swift). */
          checksums: z.enum(['WHEN_REQUIRED', 'WHEN_SUPPORTED'], { message: 'expected WHEN_REQUIRED (works with every S3-compatible server) or WHEN_SUPPORTED (AWS only)' }).default('WHEN_REQUIRED'),
        })
        .prefault({})
        .refine((s) => !!s.accessKeyId === !!s.secretAccessKey, {
          message: 'set both storage.s3.accessKeyId and storage.s3.secretAccessKey, or neither (then the AWS environment variables or credential chain are used)',
          path: ['accessKeyId'],
        }),
      /** Settings of a postgres:// database. */
      postgres: z
        .strictObject({
          /** Connections per process. */
          maxConnections: z.coerce.number().int().min(1, { message: 'expected a whole number from 1 to 1000' }).max(1000, { message: 'expected a whole number from 1 to 1000' }).default(10),
          /** Waiting for a connection (and for a server that is down): MAIL FROM then gets 452 4.3.1. */
          connectTimeout: duration().prefault('5s'),
          /** Any single statement. */
          statementTimeout: duration().prefault('30s'),
        })
        .prefault({}),
    })
    .prefault({}),
  retention: z
    .strictObject({
      /** How long links stay downloadable when no rule matches (docs/retention.md). */
      default: duration().prefault('30d'),
      /** No rule, and no admin change of an expiry, goes below this... */
      minimum: duration().prefault('1d'),
      /** ...or above this. */
      maximum: duration().prefault('365d'),
      /** Rules by sender address, sender domain or recipient domain; seeded into the database at start. */
      rules: z
        .array(
          z
            .strictObject({
              sender: z.string().min(3).optional(),
              senderDomain: z.string().min(1).optional(),
              recipientDomain: z.string().min(1).optional(),
              days: z.coerce.number({ message: 'expected a number of days' }).positive({ message: 'expected a number of days greater than 0' }).max(36500),
              downloadLimit: z.coerce.number().int().min(1, { message: 'expected a whole number of at least 1' }).optional(),
              /** Transfers this rule matches get a password, whatever the subject says (docs/passwords.md). */
              requirePassword: bool().optional(),
              /** Receipts to the sender on or off for this rule; absent: senders.receipts decides. */
              receipts: bool().optional(),
            })
            .refine((r) => [r.sender, r.senderDomain, r.recipientDomain].filter((x) => x !== undefined).length === 1, {
              message: 'each retention rule needs exactly one of sender, senderDomain or recipientDomain',
            }),
        )
        .default([]),
      /** How often the worker sweeps expired transfers. */
      sweepInterval: duration().prefault('10m'),
      /** How long the record of a transfer is kept after its files are deleted. */
      keepRecords: duration().prefault('180d'),
    })
    .prefault({})
    .superRefine((r, ctx) => {
      // The values as read, with their unit, so a bare number read as milliseconds shows itself.
      if (!(r.minimum <= r.default && r.default <= r.maximum)) {
        ctx.addIssue({ code: 'custom', path: ['default'], message: `retention.default (${formatDuration(r.default)}) must lie between retention.minimum (${formatDuration(r.minimum)}) and retention.maximum (${formatDuration(r.maximum)})` });
      }
    })
    .refine((r) => r.sweepInterval >= 1000, { message: 'retention.sweepInterval must be at least 1s', path: ['sweepInterval'] }),
  admin: z
    .strictObject({
      /** Bearer token for /admin and /admin/api; admin is off when no token is set. At least 24 characters. */
      token: z.string().min(24, { message: 'expected a token of at least 24 characters, e.g. from `openssl rand -base64 32`' }).optional(),
      /** Several tokens (one per admin, for the audit log): "TOKEN" or "NAME:TOKEN" strings, or a comma-separated list. */
      tokens: adminTokenList(),
      /** Read-only tokens (helpdesk): search and view, but no change. Same form as admin.tokens. */
      readonlyTokens: adminTokenList(),
      session: z
        .strictObject({
          /** A UI session ends after this long without a request. */
          idleTimeout: duration().prefault('1h'),
          /** ...and at the latest this long after login. */
          maxAge: duration().prefault('12h'),
        })
        .prefault({}),
      /** After 20 wrong tokens from one address, how long each further login waits before it is checked (a right token still gets in). */
      lockoutDelay: duration().prefault('2s'),
      /** Single sign-on for the admin UI (OpenID Connect, authorization code with PKCE). Bearer tokens stay for the API and CLI. */
      oidc: z
        .strictObject({
          /** The provider's issuer URL (its /.well-known/openid-configuration is read at start). */
          issuer: z.url({ message: 'expected the issuer URL, e.g. https://login.example.com/realms/staff' }).optional(),
          clientId: z.string().min(1).optional(),
          clientSecret: z.string().min(1).optional(),
          /** Addresses that may log in (as full admins, unless a group says read-only); compared case-insensitively. */
          allowedEmails: stringList(),
          /** The ID token claim listing the user's groups, e.g. "groups" or "roles". */
          groupsClaim: z.string().min(1).optional(),
          adminGroups: stringList(),
          readonlyGroups: stringList(),
        })
        .prefault({})
        .refine((o) => !o.issuer || o.clientId, { message: 'admin.oidc.issuer needs admin.oidc.clientId too', path: ['clientId'] })
        .refine((o) => !o.issuer || o.allowedEmails.length > 0 || (o.groupsClaim && o.adminGroups.length + o.readonlyGroups.length > 0), {
          message: 'admin.oidc needs allowedEmails, or groupsClaim with adminGroups or readonlyGroups: otherwise nobody may log in',
          path: ['allowedEmails'],
        }),
    })
    .prefault({}),
  queue: z
    .strictObject({
      /** Waits between delivery attempts of a queued message; the last one repeats. */
      retrySchedule: durationList().prefault(['5m', '10m', '20m', '40m', '1h', '2h', '4h']),
      /** A message still undelivered this long after it came in is returned to its sender. */
      maxAge: duration().prefault('5d'),
      /** Tell the sender once that the message is delayed, after this long; 0 or off = never. */
      delayWarning: z.union([z.enum(['0', 'off', 'never']).transform(() => 0), duration()]).prefault('4h'),
      /** How long a worker owns an entry it is delivering; after that another worker may retry it. */
      leaseTimeout: duration().prefault('10m'),
      /** How often a worker looks for entries that are due. */
      pollInterval: duration().prefault('10s'),
      /** Deliveries one worker runs at the same time. */
      concurrency: z.coerce.number().int().min(1, { message: 'expected a whole number of at least 1' }).max(64, { message: 'expected at most 64' }).default(4),
    })
    .prefault({}),
  // What Ferry tells the sender of an offloaded message (gateway/senders/, worker/download-notices.ts, docs/senders.md).
  senders: z
    .strictObject({
      /** Mail the sender a receipt (files, SHA-256, expiry, recipients, the private management link); a retention rule's receipts overrides it. */
      receipts: onOff().default('on'),
      /** From: of receipts and notices; default ferry@<smtp.hostname>. Their envelope sender is always null (never bounced). */
      from: z
        .string()
        .trim()
        .refine((s) => /^[^@\s<>]+@[^@\s<>]+$/.test(s) || /^[^<>\r\n]*<[^@\s<>]+@[^@\s<>]+>$/.test(s), { message: 'expected an address such as ferry@example.com or "Ferry <ferry@example.com>"' })
        .optional(),
      /** Tell the sender about downloads: off, first (a mail at each recipient's first complete download) or digest (one mail a day). */
      notifyOnDownload: z.preprocess((v) => (v === false ? 'off' : v), z.enum(['off', 'first', 'digest'], { message: 'expected off, first or digest' })).default('off'),
      /** When the daily digest goes out, server time (HH:MM, 24-hour clock). */
      digestAt: z
        .string()
        .trim()
        .regex(/^([01]?\d|2[0-3]):[0-5]\d$/, { message: 'expected a time of day such as 08:00 (HH:MM, 24-hour clock)' })
        .default('08:00'),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { message: 'expected one of fatal, error, warn, info, debug, trace, silent' }).default('info'),
    })
    .prefault({}),
  metrics: z
    .strictObject({
      /** Serve /metrics (Prometheus) and /readyz's reasons on the public web port too (off: message counts are not for everyone). */
      onWebPort: bool().default(false),
      /** A separate listener for /metrics, /healthz and /readyz, e.g. for a `ferry gateway` process. */
      port: port().optional(),
      host: z.string().default('0.0.0.0'),
      /** When set, /metrics (and /readyz's reasons) answer only requests with `Authorization: Bearer <token>`. */
      token: z.string().min(24, { message: 'expected a token of at least 24 characters, e.g. from `openssl rand -base64 32`' }).optional(),
    })
    .prefault({}),
  // Malware scanning of offloaded files (gateway/scan/, worker/rescan.ts, docs/scanning.md).
  scan: z
    .strictObject({
      /** off | clamd | icap. Off means links go live unchecked (a warning at start). */
      engine: z.enum(['off', 'clamd', 'icap'], { message: 'expected off, clamd or icap' }).default('off'),
      /** Where clamd listens: unix:/run/clamav/clamd.ctl or tcp://127.0.0.1:3310. */
      clamd: z
        .string()
        .refine((s) => /^unix:.+/.test(s) || /^tcp:\/\/[^/:]+:\d+\/?$/.test(s), { message: 'expected unix:/path/to/clamd.ctl or tcp://host:port' })
        .default('unix:/run/clamav/clamd.ctl'),
      /** The ICAP service that scans (RESPMOD): icap://host:port/service. */
      icap: z
        .string()
        .refine((s) => /^icap:\/\/[^/]+\/.+/.test(s), { message: 'expected icap://host:port/service, such as icap://127.0.0.1:1344/virus_scan' })
        .optional(),
      /** A scanner silent this long (connecting, reading or answering) counts as failed. */
      timeout: duration().prefault('60s'),
      onInfected: z.enum(['reject', 'quarantine'], { message: 'expected reject or quarantine' }).default('reject'),
      onError: z.enum(['tempfail', 'accept'], { message: 'expected tempfail or accept' }).default('tempfail'),
      /** A file over the scanner's stream limit: accept (marked "not scanned: too large") or reject. */
      tooLarge: z.enum(['accept', 'reject'], { message: 'expected accept or reject' }).default('accept'),
      /** How often the worker asks the scanner for its signature version (it is also read at every scan). */
      versionCheckInterval: duration().prefault('10m'),
      /** Files the worker rescans per minute after a signature update; 0 = no rescans. */
      rescanPerMinute: z.coerce.number().int().min(0, { message: 'expected a whole number of at least 0' }).default(60),
      /** Admin addresses told when a file is held or blocked (comma-separated in the environment). */
      notify: z
        .union([z.array(z.string()), z.string().transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean))])
        .pipe(z.array(z.string().regex(/^[^@\s<>]+@[^@\s<>]+$/, { message: 'expected e-mail addresses such as security@example.com' })))
        .default([]),
    })
    .superRefine((s, ctx) => {
      if (s.engine === 'icap' && !s.icap) ctx.addIssue({ code: 'custom', path: ['icap'], message: 'scan.engine is icap, so scan.icap must name the service, such as icap://127.0.0.1:1344/virus_scan' });
    })
    .prefault({}),
  shutdown: z
    .strictObject({
      /** On SIGTERM/SIGINT, how long messages and downloads in flight may run on before they are cut. */
      timeout: duration().prefault('30s'),
    })
    .prefault({}),
});

export type ConfigInput = z.input<typeof configSchema>;
type Parsed = z.output<typeof configSchema>;

/** The effective configuration: every derived default filled in. */
export type Config = Omit<Parsed, 'smtp' | 'relay' | 'storage' | 'senders'> & {
  smtp: Parsed['smtp'] & { hardLimit: number };
  relay: Omit<Parsed['relay'], 'attemptTimeout' | 'timeout'> & { url: string; attemptTimeout: number; /** Same as attemptTimeout (the earlier name). */ timeout: number };
  storage: Parsed['storage'] & { blobs: string; database: string };
  senders: Parsed['senders'] & { from: string };
};

export function resolveConfig(parsed: Parsed): Config {
  const dataDir = parsed.dataDir;
  const join = (p: string) => `${dataDir.replace(/\/+$/, '')}/${p}`;
  return {
    ...parsed,
    smtp: { ...parsed.smtp, hardLimit: parsed.smtp.hardLimit ?? Math.max(3 * parsed.smtp.maxMessageSize, 50_000_000) },
    relay: (() => {
      const attemptTimeout = parsed.relay.attemptTimeout ?? parsed.relay.timeout ?? 60_000;
      return { ...parsed.relay, url: parsed.relay.url ?? `outbox:${join('outbox')}`, attemptTimeout, timeout: attemptTimeout };
    })(),
    storage: {
      ...parsed.storage,
      blobs: parsed.storage.blobs ?? `file:${join('blobs')}`,
      database: parsed.storage.database ?? `sqlite:${join('ferry.db')}`,
    },
    senders: { ...parsed.senders, from: parsed.senders.from ?? `ferry@${parsed.smtp.hostname}` },
  };
}
