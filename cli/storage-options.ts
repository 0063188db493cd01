import type { Config } from '../config/schema.js';
import { s3UploadSlots, type PostgresOptions, type S3Settings } from '../storage/index.js';

/**
 * What openStorage() needs from the configuration: the two URLs plus the S3 and PostgreSQL
 * settings that do not belong in a (logged) URL. Also sizes the process-wide cap on concurrent
 * S3 uploads (storage.s3.maxConcurrentUploads), which is what bounds the gateway's memory.
 */
export function storageOptionsFrom(config: Config): { blobs: string; database: string; s3: S3Settings; postgres: PostgresOptions } {
  const s3 = config.storage.s3;
  const pg = config.storage.postgres;
  s3UploadSlots.resize(s3.maxConcurrentUploads);
  return {
    blobs: config.storage.blobs,
    database: config.storage.database,
    s3: {
      // Credentials from the configuration win; without them the SDK's chain runs
      // (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, container and instance roles).
      ...(s3.accessKeyId && s3.secretAccessKey && { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey }),
      ...(s3.sessionToken && { sessionToken: s3.sessionToken }),
      // An offloaded attachment is never larger than the message: the hard limit bounds it.
      maxObjectSize: config.smtp.hardLimit,
      partSize: s3.partSize,
      queueSize: s3.queueSize,
      connectionTimeoutMs: s3.connectTimeout,
      requestTimeoutMs: s3.requestTimeout,
      // A download gives up on a silent store after one request timeout (at most 10 s), so the
      // recipient gets a 503 page instead of waiting through every retry.
      openTimeoutMs: Math.min(10_000, s3.requestTimeout),
      readIdleTimeoutMs: s3.readIdleTimeout,
      maxAttempts: s3.maxAttempts,
      checksums: s3.checksums,
    },
    postgres: {
      maxConnections: pg.maxConnections,
      connectionTimeoutMs: pg.connectTimeout,
      statementTimeoutMs: pg.statementTimeout,
    },
  };
}
