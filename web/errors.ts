// Errors the web routes throw on purpose. Each carries the HTTP status and a stable code, so the
// one error handler in app.ts can pick the page to render without looking at messages, and so
// logs can be searched by code. Messages are for logs only: pages never show them.

export type WebErrorCode =
  | 'FERRY_ERR_NOT_FOUND'
  | 'FERRY_ERR_GONE'
  | 'FERRY_ERR_UNAVAILABLE';

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

/** The link was real but its files are no longer served. */
export class GoneError extends WebError {
  readonly statusCode = 410;
  readonly code = 'FERRY_ERR_GONE';
  constructor(
    readonly reason: GoneReason,
    readonly expiresAt: number,
  ) {
    super(`transfer ${reason}`);
    this.name = 'GoneError';
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
