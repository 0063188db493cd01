import type { z } from 'zod';
import { AdminActionError, BadCursorError, RetentionRuleError } from '../storage/index.js';
import { QueueActionError } from './queue-actions.js';
import { describeIssues } from './schemas.js';

// The admin API's errors as named objects with codes: { "error": { "code", "message", "issues"? } }.
// Shared by the transfer, rule and queue routes and by the UI, which maps the same errors to pages.

export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly issues?: { path: string; message: string }[],
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function parseInput<S extends z.ZodType>(schema: S, data: unknown): z.output<S> {
  const r = schema.safeParse(data);
  if (!r.success) {
    const d = describeIssues(r.error);
    throw new ApiError(400, 'FERRY_ERR_BAD_INPUT', d.message, d.issues);
  }
  return r.data;
}


/** Maps storage errors to API errors. */
export function toApiError(err: unknown): ApiError | undefined {
  if (err instanceof ApiError) return err;
  if (err instanceof AdminActionError) return new ApiError(err.kind === 'not_found' ? 404 : err.kind === 'conflict' ? 409 : 400, err.code, err.message);
  if (err instanceof RetentionRuleError) return new ApiError(400, err.code, err.message, err.field ? [{ path: err.field, message: err.message }] : undefined);
  if (err instanceof BadCursorError) return new ApiError(400, err.code, err.message);
  if (err instanceof QueueActionError) return new ApiError(err.kind === 'not_found' ? 404 : 409, err.code, err.message);
  return undefined;
}
