#!/usr/bin/env node
// Creates an S3 bucket (Ferry never creates its bucket itself), and with --abort-incomplete-days N
// also a lifecycle rule that aborts multipart uploads left unfinished for N days: a second line of
// defence behind the worker's own sweep. Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
// (or the rest of the AWS chain). An existing bucket of yours is fine (exit status 0).
//
//   AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... \
//     node scripts/s3/create-bucket.mjs http://127.0.0.1:7480 ferry-files [--abort-incomplete-days 1]
import { CreateBucketCommand, PutBucketLifecycleConfigurationCommand, S3Client } from '@aws-sdk/client-s3';

const [endpoint, bucket, ...rest] = process.argv.slice(2);
if (!endpoint || !bucket) {
  console.error('usage: node scripts/s3/create-bucket.mjs ENDPOINT BUCKET [--abort-incomplete-days N] [--region R]');
  process.exit(2);
}
const opt = (name) => {
  const i = rest.indexOf(name);
  return i >= 0 ? rest[i + 1] : undefined;
};
const s3 = new S3Client({
  endpoint,
  region: opt('--region') ?? process.env.AWS_REGION ?? 'us-east-1',
  forcePathStyle: true,
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});
try {
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  console.error(`bucket ${bucket} created at ${endpoint}`);
} catch (err) {
  if (err.name !== 'BucketAlreadyOwnedByYou') {
    console.error(`cannot create bucket ${bucket}: ${err.name} (HTTP ${err.$metadata?.httpStatusCode ?? '?'})`);
    process.exit(1);
  }
  console.error(`bucket ${bucket} exists already (yours)`);
}
const days = opt('--abort-incomplete-days');
if (days) {
  await s3.send(
    new PutBucketLifecycleConfigurationCommand({
      Bucket: bucket,
      LifecycleConfiguration: {
        Rules: [{ ID: 'ferry-abort-incomplete-uploads', Status: 'Enabled', Filter: { Prefix: '' }, AbortIncompleteMultipartUpload: { DaysAfterInitiation: Number(days) } }],
      },
    }),
  );
  console.error(`lifecycle rule: incomplete multipart uploads are aborted after ${days} day(s)`);
}
s3.destroy();
