import { z } from 'zod';
import { DAY_MS } from '../storage/index.js';

// Input of the admin API (and of the UI's forms), validated with zod. openapi.ts builds the
// OpenAPI description from these same schemas, so the two cannot disagree.

export const TRANSFER_STATES = ['live', 'expired', 'revoked', 'deleted', 'pending', 'held'] as const;

const BARE_DATE = /^\d{4}-\d{2}-\d{2}$/;
/** A date or time in UTC, as ms. `endOfDay`: a bare date means the end of that day (an upper bound that includes the day). */
const isoDate = (what: string, opts: { endOfDay?: boolean } = {}) =>
  z
    .string()
    .refine((s) => /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(s) && Number.isFinite(Date.parse(s)), {
      message: `${what}: expected a date such as 2026-12-01 or 2026-12-01T10:00:00Z`,
    })
    .transform((s) => (BARE_DATE.test(s) ? Date.parse(`${s}T00:00:00Z`) + (opts.endOfDay ? DAY_MS : 0) : Date.parse(s)));

const text = (max = 200) => z.string().trim().max(max).optional().transform((s) => (s ? s : undefined));

export const transferIdParam = z.object({ id: z.string().regex(/^[a-z0-9]{1,64}$/, { message: 'id: expected a transfer id (lower-case letters and digits)' }) });

export const transferSearchQuery = z.strictObject({
  sender: text().describe('part of the sender address'),
  recipient: text().describe('part of a recipient address'),
  file: text().describe('part of a file name'),
  from: isoDate('from').optional().describe('created at or after (UTC)'),
  // A bare date is the whole day, as in the CLI: from=D&to=D finds that day's transfers.
  to: isoDate('to', { endOfDay: true }).optional().describe('created before this time, or on or before this day for a bare date (UTC)'),
  state: z.enum(TRANSFER_STATES, { message: `state: expected one of ${TRANSFER_STATES.join(', ')}` }).optional(),
  limit: z.coerce.number().int().min(1, { message: 'limit: expected 1 to 200' }).max(200, { message: 'limit: expected 1 to 200' }).default(50),
  cursor: z.string().max(200).optional().describe('nextCursor of the previous page'),
});

export const reasonBody = z.strictObject({ reason: z.string().trim().max(500).optional() }).default({});

export const recipientRevokeBody = z
  .strictObject({
    recipient: z.string().trim().min(1, { message: 'recipient: expected an address' }).max(320).optional().describe("the recipient's address (case-insensitive), as in `recipients`"),
    linkId: z.string().regex(/^[a-z0-9]{1,64}$/, { message: 'linkId: expected a link id from `recipients`' }).optional().describe('one link by its id (also the shared link, recipient "")'),
  })
  .refine((b) => (b.recipient === undefined) !== (b.linkId === undefined), { message: 'give exactly one of recipient or linkId' });

export const expiryBody = z
  .strictObject({
    expiresAt: isoDate('expiresAt').optional().describe('the new expiry'),
    addDays: z.number({ message: 'addDays: expected a number of days' }).min(-36500).max(36500).optional().describe('move the expiry by this many days (negative shortens)'),
  })
  .refine((b) => (b.expiresAt === undefined) !== (b.addDays === undefined), { message: 'give exactly one of expiresAt or addDays' });

export const RULE_ID_RE = /^(default|minimum|maximum|sender:[^\s]+|sender_domain:[^\s]+|recipient_domain:[^\s]+)$/;

export const ruleIdParam = z.object({
  id: z.string().max(330).regex(RULE_ID_RE, { message: 'id: expected default, minimum, maximum, sender:ADDRESS, sender_domain:DOMAIN or recipient_domain:DOMAIN' }),
});

export const ruleBody = z.strictObject({
  days: z.number({ message: 'days: expected a number of days' }).positive({ message: 'days: expected more than 0' }).max(36500, { message: 'days: at most 36500' }),
  downloadLimit: z.number().int({ message: 'downloadLimit: expected a whole number' }).min(1, { message: 'downloadLimit: expected at least 1, or null for the site default' }).nullable().optional(),
  requirePassword: z.boolean({ message: 'requirePassword: expected true or false' }).optional().describe('transfers the rule matches get a password (docs/passwords.md); absent: unchanged (false for a new rule)'),
  receipts: z
    .boolean({ message: 'receipts: expected true, false or null' })
    .nullable()
    .optional()
    .describe('receipts to the sender for mail the rule matches; null: senders.receipts decides; absent: unchanged (null for a new rule)'),
  reapply: z.boolean().optional().describe('also recompute the expiry of live transfers'),
});

export const statsQuery = z.strictObject({
  days: z.coerce.number().int().min(1, { message: 'days: expected 1 to 366' }).max(366, { message: 'days: expected 1 to 366' }).default(30),
});

export const auditQuery = z.strictObject({
  action: z.string().max(40).optional(),
  transferId: z.string().max(64).optional(),
  actor: z.string().max(200).optional(),
  since: isoDate('since').optional(),
  until: isoDate('until').optional(),
  before: z.coerce.number().int().min(1).optional().describe('nextBefore of the previous page'),
  limit: z.coerce.number().int().min(1, { message: 'limit: expected 1 to 1000' }).max(1000, { message: 'limit: expected 1 to 1000' }).default(100),
});

export const auditExportQuery = auditQuery.omit({ before: true, limit: true }).extend({
  format: z.enum(['csv', 'jsonl'], { message: 'format: expected csv or jsonl' }).default('jsonl'),
});

/** The first problem of a zod error, as one sentence, plus every problem for API clients. */
export function describeIssues(err: z.ZodError): { message: string; issues: { path: string; message: string }[] } {
  const issues = err.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
  const first = issues[0];
  return { message: first ? (first.path && !first.message.startsWith(first.path) ? `${first.path}: ${first.message}` : first.message) : 'invalid input', issues };
}

// ---- the delivery queue ----

export const QUEUE_STATUSES = ['due', 'deferred', 'delivering', 'bouncing'] as const;

export const queueIdParam = z.object({ id: z.string().regex(/^[A-Za-z0-9]{1,64}$/, { message: 'id: expected a queue id (letters and digits, as in `ferry queue list`)' }) });

export const queueListQuery = z.strictObject({
  state: z.enum(QUEUE_STATUSES, { message: `state: expected one of ${QUEUE_STATUSES.join(', ')}` }).optional().describe('due: waiting for a worker; deferred: waiting for its next attempt; delivering: a worker has it now; bouncing: to be returned to its sender'),
  kind: z.enum(['message', 'dsn'], { message: 'kind: expected message or dsn' }).optional().describe('message: mail for recipients; dsn: a notice Ferry wrote to a sender'),
  sender: text().describe('part of the sender address'),
  recipient: text().describe('part of a recipient address'),
  limit: z.coerce.number().int().min(1, { message: 'limit: expected 1 to 200' }).max(200, { message: 'limit: expected 1 to 200' }).default(50),
  cursor: z.string().max(200).optional().describe('nextCursor of the previous page'),
});

export const queueDeleteQuery = z.strictObject({
  bounce: z.enum(['true', 'false'], { message: 'bounce: expected true (return the message to its sender with a failure notice) or false (delete silently)' }).describe('true: return to the sender with a failure DSN; false: delete silently. Required: there is no default'),
});
