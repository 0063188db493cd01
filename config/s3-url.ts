// The `s3://` blob store URL, parsed without loading the AWS SDK (the configuration checks it
// at load time, and `ferry check-config` should not pay for the SDK).

export interface S3Location {
  bucket: string;
  /** Key prefix inside the bucket, ending in "/" (e.g. "ferry/"), or absent. */
  prefix?: string;
  endpoint?: string;
  region?: string;
  forcePathStyle?: boolean;
  publicEndpoint?: string;
}

const URL_PARAMS = ['endpoint', 'region', 'forcePathStyle', 'publicEndpoint'] as const;
export const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const PREFIX_RE = /^[a-z0-9][a-z0-9_.-]*\/([a-z0-9][a-z0-9_.-]*\/)*$/;
const REGION_RE = /^[a-z0-9-]{1,40}$/;

/** An s3:// URL the configuration or a caller got wrong; the message says what to write instead. */
export class S3UrlError extends Error {
  readonly code = 'FERRY_ERR_S3_URL';
  constructor(message: string) {
    super(message);
    this.name = 'S3UrlError';
  }
}

/**
 * Reads `s3://BUCKET[/PREFIX]?endpoint=URL&region=R&forcePathStyle=true|false&publicEndpoint=URL`.
 * Credentials never go in the URL (it is logged and printed): they come from the storage.s3
 * settings or the AWS credential chain. Messages do not repeat the URL, so nothing pasted into it
 * by mistake ends up in a log.
 */
export function parseS3Url(url: string): S3Location {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new S3UrlError('expected s3://BUCKET[/PREFIX]?endpoint=https://HOST[:PORT]&region=REGION&forcePathStyle=true');
  }
  if (u.protocol !== 's3:') throw new S3UrlError('expected a URL starting with s3://');
  if (u.username || u.password) {
    throw new S3UrlError('credentials do not belong in the s3:// URL (it is logged): set storage.s3.accessKeyId and storage.s3.secretAccessKey, or the AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY environment variables');
  }
  const bucket = u.hostname;
  if (!BUCKET_RE.test(bucket)) throw new S3UrlError(`bucket name ${JSON.stringify(bucket)} is not valid: 3 to 63 lower-case letters, digits, dots and hyphens`);
  if (u.port) throw new S3UrlError('the s3:// URL names a bucket, not a host: put the server in ?endpoint=http(s)://HOST:PORT');
  const path = decodeURIComponent(u.pathname).replace(/^\/+/, '');
  const prefix = path ? (path.endsWith('/') ? path : `${path}/`) : '';
  if (prefix && !PREFIX_RE.test(prefix)) throw new S3UrlError(`key prefix ${JSON.stringify(prefix)} is not valid: lower-case letters, digits, "_", "." and "-", in segments separated by "/"`);
  for (const k of u.searchParams.keys()) {
    if (!(URL_PARAMS as readonly string[]).includes(k)) throw new S3UrlError(`unknown parameter ${JSON.stringify(k)} in the s3:// URL (known: ${URL_PARAMS.join(', ')}; credentials and limits go under storage.s3)`);
  }
  const q = (k: string) => u.searchParams.get(k) ?? undefined;
  const endpoint = q('endpoint');
  const publicEndpoint = q('publicEndpoint');
  for (const [k, v] of [['endpoint', endpoint], ['publicEndpoint', publicEndpoint]] as const) {
    if (v !== undefined && !/^https?:\/\/[^/?#@]+\/?$/.test(v)) throw new S3UrlError(`${k} must be http(s)://HOST[:PORT] without a path, e.g. ${k}=https://s3.example.com`);
  }
  const region = q('region');
  if (region !== undefined && !REGION_RE.test(region)) throw new S3UrlError('region must be a name such as us-east-1');
  const fps = q('forcePathStyle');
  if (fps !== undefined && fps !== 'true' && fps !== 'false') throw new S3UrlError('forcePathStyle must be true or false');
  return {
    bucket,
    ...(prefix && { prefix }),
    ...(endpoint && { endpoint: endpoint.replace(/\/$/, '') }),
    ...(region && { region }),
    ...(fps !== undefined && { forcePathStyle: fps === 'true' }),
    ...(publicEndpoint && { publicEndpoint: publicEndpoint.replace(/\/$/, '') }),
  };
}
