// Errors the web routes throw on purpose. Each carries the HTTP status and a stable code, so the
// one error handler in app.ts can pick the page to render without looking at messages, and so
// logs can be searched by code. Messages are for logs only: pages never show them.

export type WebErrorCode =
  | 'FERRY_ERR_NOT_FOUND'
  | 'FERRY_ERR_GONE'
  | 'FERRY_ERR_UNAVAILABLE'
  | 'FERRY_ERR_LIMIT_REACHED'
  | 'FERRY_ERR_RATE_LIMITED'
  | 'FERRY_ERR_BLOCKED';

export abstract class WebError extends Error {
  abstract readonly statusCode: number;
  abstract readonly code: WebErrorCode;
}

/** Unknown, malformed, pending or deleted token; no such file. One answer for all, so a probe learns nothing. */
export class NotFoundError extends WebError {
  readonly statusCode = 404;
  readonly code = 'FERRY_ERR_NOT_FOUND';
  constructor(message = 'not found') {
    super(message);
    this.name = 'NotFoundError';
  }
}

export type GoneReason = 'expired' | 'revoked';

/** The link was real but its files are no longer served. `sender` is who the recipient can ask. */
export class GoneError extends WebError {
  readonly statusCode = 410;
  readonly code = 'FERRY_ERR_GONE';
  constructor(
    readonly reason: GoneReason,
    readonly expiresAt: number,
    readonly sender?: string,
  ) {
    super(`transfer ${reason}`);
    this.name = 'GoneError';
  }
}

/** web.maxDownloads: the file (or, for the landing page and the zip, every file) was downloaded as often as allowed. */
export class LimitReachedError extends WebError {
  readonly statusCode = 410;
  readonly code = 'FERRY_ERR_LIMIT_REACHED';
  constructor(
    readonly maxDownloads: number,
    readonly sender?: string,
  ) {
    super('download limit reached');
    this.name = 'LimitReachedError';
  }
}

/** Too many token look-ups (or failed look-ups) from one client address. */
export class RateLimitedError extends WebError {
  readonly statusCode = 429;
  readonly code = 'FERRY_ERR_RATE_LIMITED';
  constructor(readonly retryAfterSeconds: number) {
    super('rate limited');
    this.name = 'RateLimitedError';
  }
}

/** Storage cannot serve right now; the recipient should try again later. */
export class UnavailableError extends WebError {
  readonly statusCode = 503;
  readonly code = 'FERRY_ERR_UNAVAILABLE';
  constructor(message = 'storage unavailable', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UnavailableError';
  }
}
