import { z } from 'zod';
import { auditExportQuery, auditQuery, expiryBody, queueDeleteQuery, queueListQuery, reasonBody, recipientRevokeBody, ruleBody, statsQuery, transferSearchQuery } from './schemas.js';

// The OpenAPI 3.1 description of /admin/api, served at /admin/api/openapi.json. Parameters and
// request bodies are generated from the zod schemas the routes validate with (schemas.ts).

type JsonSchema = Record<string, unknown>;

function schemaOf(s: z.ZodType): JsonSchema {
  const j = z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  delete j.$schema;
  return j;
}

function queryParams(s: z.ZodType): unknown[] {
  const j = schemaOf(s) as { properties?: Record<string, JsonSchema>; required?: string[] };
  return Object.entries(j.properties ?? {}).map(([name, schema]) => ({
    name,
    in: 'query',
    required: (j.required ?? []).includes(name) && !('default' in schema),
    ...(typeof schema.description === 'string' ? { description: schema.description } : {}),
    schema,
  }));
}

const json = (schema: JsonSchema | { $ref: string }, description = 'OK') => ({ description, content: { 'application/json': { schema } } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const errors = {
  '400': json(ref('Error'), 'Bad input: the message names the field and what it accepts'),
  '401': json(ref('Error'), 'No or wrong bearer token'),
};
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^[a-z0-9]{1,64}$' } };
const ruleIdParam = {
  name: 'id',
  in: 'path',
  required: true,
  description: 'default, minimum, maximum, sender:ADDRESS, sender_domain:DOMAIN or recipient_domain:DOMAIN',
  schema: { type: 'string' },
};
const transferAction = (summary: string, body?: z.ZodType) => ({
  summary,
  parameters: [idParam],
  ...(body ? { requestBody: { required: false, content: { 'application/json': { schema: schemaOf(body) } } } } : {}),
  responses: { '200': json(ref('Transfer')), ...errors, '404': json(ref('Error'), 'No such transfer'), '409': json(ref('Error'), 'The transfer is not in a state that allows this (or is being swept right now)') },
});

const queueIdParam = { name: 'id', in: 'path', required: true, description: 'the queue id, as in `ferry queue list`', schema: { type: 'string', pattern: '^[A-Za-z0-9]{1,64}$' } };
const queueErrors = {
  ...errors,
  '404': json(ref('Error'), 'No such queue entry (delivered, returned or deleted already)'),
  '409': json(ref('Error'), 'A worker is delivering the entry right now (try again in a minute); a retry of an entry being returned to its sender; or a bounce asked for a notice with a null sender'),
};

function queuePaths(): Record<string, unknown> {
  return {
    '/queue': {
      get: {
        summary: 'Messages waiting for the next hop, oldest first (keyset pagination: pass nextCursor as cursor)',
        parameters: queryParams(queueListQuery),
        responses: {
          '200': json({ type: 'object', properties: { items: { type: 'array', items: ref('QueueEntry') }, total: { type: 'integer', description: 'entries matching the filters' }, nextCursor: { type: ['string', 'null'] } } }),
          ...errors,
        },
      },
    },
    '/queue/retry': {
      post: { summary: 'Make every entry due now: workers try them within queue.pollInterval', responses: { '200': json({ type: 'object', properties: { retried: { type: 'integer' } } }), ...errors } },
    },
    '/queue/{id}': {
      get: {
        summary: 'One queue entry: envelope, each recipient\'s state and last reply, attempts, next attempt, last error and the transfer its links point to',
        parameters: [queueIdParam],
        responses: { '200': json(ref('QueueEntryDetail')), ...errors, '404': queueErrors['404'] },
      },
      delete: {
        summary: 'Remove an entry: silently (bounce=false: the record and the stored copy go now) or returned to its sender with a failure DSN (bounce=true: the next worker pass sends the notice and removes it)',
        parameters: [queueIdParam, ...queryParams(queueDeleteQuery)],
        responses: { '200': json({ type: 'object', properties: { id: { type: 'string' }, result: { type: 'string', enum: ['deleted', 'bounce-scheduled'] } } }), ...queueErrors },
      },
    },
    '/queue/{id}/retry': {
      post: {
        summary: 'Make one entry due now: a worker tries it within queue.pollInterval',
        parameters: [queueIdParam],
        responses: { '200': json({ type: 'object', properties: { retried: { type: 'integer' }, entry: ref('QueueEntry') } }), ...queueErrors },
      },
    },
  };
}

const queueSchemas = {
  QueueEntry: {
    type: 'object',
    properties: {
      id: { type: 'string' },
      kind: { type: 'string', enum: ['message', 'dsn'], description: 'dsn: a delivery status notice Ferry wrote to a sender' },
      state: { type: 'string', enum: ['due', 'deferred', 'delivering', 'bouncing'] },
      sender: { type: 'string', description: 'envelope sender; "" is the null sender <>' },
      recipients: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            address: { type: 'string' },
            state: { type: 'string', enum: ['pending', 'delivered', 'failed'] },
            code: { type: ['integer', 'null'], description: 'the next hop\'s last reply code for this recipient' },
            response: { type: ['string', 'null'] },
            notify: { type: ['array', 'null'], items: { type: 'string' } },
            orcpt: { type: ['string', 'null'] },
          },
        },
      },
      size: { type: 'integer', description: 'bytes of the queued (rewritten) message' },
      createdAt: { type: 'string', format: 'date-time' },
      ageSeconds: { type: 'integer' },
      attempts: { type: 'integer' },
      nextAttemptAt: { type: 'string', format: 'date-time' },
      lastError: { type: ['string', 'null'] },
      transferId: { type: ['string', 'null'] },
      leaseUntil: { type: ['string', 'null'], format: 'date-time', description: 'while a worker is delivering it' },
      bounceRequested: { type: 'boolean' },
      delayNoticeSent: { type: 'boolean' },
      dsnRet: { type: ['string', 'null'] },
      dsnEnvid: { type: ['string', 'null'] },
    },
  },
  QueueEntryDetail: { allOf: [ref('QueueEntry'), { type: 'object', properties: { transfer: { oneOf: [ref('Transfer'), { type: 'null' }] } } }] },
};

export function openApiDocument(publicUrl: string): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Ferry admin API',
      version: '1',
      description:
        'Transfers, retention rules, legal hold, the delivery queue, statistics and the audit log of a Ferry gateway. Every request needs `Authorization: Bearer <token>` (admin.token or admin.tokens). Changes are recorded in the audit log under the token\'s name. See docs/admin.md.',
    },
    servers: [{ url: `${publicUrl.replace(/\/+$/, '')}/admin/api` }],
    security: [{ bearer: [] }],
    paths: {
      '/transfers': {
        get: {
          summary: 'List and search transfers, newest first (keyset pagination: pass nextCursor as cursor)',
          parameters: queryParams(transferSearchQuery),
          responses: { '200': json({ type: 'object', properties: { items: { type: 'array', items: ref('Transfer') }, nextCursor: { type: ['string', 'null'] } } }), ...errors },
        },
      },
      '/transfers/{id}': {
        get: {
          summary: 'A transfer with its files, whether a password guards it, each recipient\'s downloads, the download log and audit entries',
          parameters: [idParam],
          responses: { '200': json(ref('TransferDetail')), ...errors, '404': json(ref('Error'), 'No such transfer') },
        },
        delete: transferAction('Delete the files now; links answer 404 from then on. Refused (409) while on legal hold'),
      },
      '/transfers/{id}/revoke': { post: transferAction('Revoke: links answer 410 at once; files go at the next sweep', reasonBody) },
      '/transfers/{id}/recipients/revoke': {
        post: {
          summary: "Revoke one recipient's link: it answers 410 at once, the other recipients' links keep working",
          parameters: [idParam],
          requestBody: { required: true, content: { 'application/json': { schema: schemaOf(recipientRevokeBody) } } },
          responses: {
            '200': json({ type: 'object', properties: { revoked: { type: 'array', items: { type: 'string' }, description: 'ids of the links revoked now' }, recipients: { type: 'array', items: ref('RecipientStatus') } } }),
            ...errors,
            '404': json(ref('Error'), 'No such transfer (FERRY_ERR_TRANSFER_NOT_FOUND), or it has no link for that recipient (FERRY_ERR_RECIPIENT_NOT_FOUND)'),
            '409': json(ref('Error'), 'That link was revoked already (FERRY_ERR_LINK_REVOKED)'),
          },
        },
      },
      '/transfers/{id}/expiry': {
        post: transferAction('Extend or shorten: the new retention period (from creation) must lie within the minimum and maximum', expiryBody),
      },
      '/transfers/{id}/hold': { post: transferAction('Place a legal hold: never swept until released', reasonBody) },
      '/transfers/{id}/release': { post: transferAction('Release a legal hold') },
      '/rules': {
        get: { summary: 'Retention settings (default, minimum, maximum) and rules', responses: { '200': json({ type: 'object', properties: { items: { type: 'array', items: ref('Rule') } } }), ...errors } },
      },
      '/rules/{id}': {
        put: {
          summary: 'Create or change a rule or setting. New mail follows it at once; live transfers only with reapply: true',
          parameters: [ruleIdParam],
          requestBody: { required: true, content: { 'application/json': { schema: schemaOf(ruleBody) } } },
          responses: { '200': json(ref('Rule')), ...errors },
        },
        delete: { summary: 'Delete a sender or domain rule', parameters: [ruleIdParam], responses: { '200': json({ type: 'object', properties: { deleted: { type: 'string' } } }), ...errors, '404': json(ref('Error'), 'No such rule') } },
      },
      '/rules/reapply': {
        post: { summary: 'Recompute the expiry of live transfers from the current rules (held and hand-set ones are kept)', responses: { '200': json({ type: 'object', properties: { reappliedTransfers: { type: 'integer' } } }), ...errors } },
      },
      '/stats': {
        get: { summary: 'Live transfers, stored bytes, and transfers, downloads and bytes offloaded per day (UTC)', parameters: queryParams(statsQuery), responses: { '200': json(ref('Stats')), ...errors } },
      },
      '/audit': {
        get: {
          summary: 'Audit log, newest first (pass nextBefore as before for the next page)',
          parameters: queryParams(auditQuery),
          responses: { '200': json({ type: 'object', properties: { items: { type: 'array', items: ref('AuditEntry') }, nextBefore: { type: ['integer', 'null'] } } }), ...errors },
        },
      },
      '/audit/export': {
        get: {
          summary: 'The whole (filtered) audit log, oldest first, as CSV or JSON lines',
          parameters: queryParams(auditExportQuery),
          responses: {
            '200': { description: 'The export', content: { 'text/csv': { schema: { type: 'string' } }, 'application/x-ndjson': { schema: { type: 'string' } } } },
            ...errors,
          },
        },
      },
      ...queuePaths(),
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        Error: {
          type: 'object',
          properties: {
            error: {
              type: 'object',
              properties: { code: { type: 'string' }, message: { type: 'string' }, issues: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } } } },
              required: ['code', 'message'],
            },
          },
        },
        Transfer: {
          type: 'object',
          properties: {
            id: { type: 'string' },
            state: { type: 'string', enum: ['pending', 'live', 'expired', 'revoked', 'deleted'], description: 'a live transfer past its expiry shows as expired' },
            storedState: { type: 'string' },
            sender: { type: 'string' },
            recipients: { type: 'array', items: { type: 'string' } },
            subject: { type: ['string', 'null'] },
            messageId: { type: ['string', 'null'] },
            queueId: { type: 'string' },
            createdAt: { type: 'string', format: 'date-time' },
            expiresAt: { type: 'string', format: 'date-time' },
            retentionRule: { type: ['string', 'null'], description: 'the rule that chose the expiry; "admin" after a manual change' },
            maxDownloads: { type: ['integer', 'null'] },
            fileCount: { type: 'integer' },
            totalBytes: { type: 'integer' },
            held: { type: 'boolean' },
            heldAt: { type: ['string', 'null'], format: 'date-time' },
            heldBy: { type: ['string', 'null'] },
            holdReason: { type: ['string', 'null'] },
            filesDeletedAt: { type: ['string', 'null'], format: 'date-time' },
          },
        },
        TransferDetail: {
          allOf: [
            ref('Transfer'),
            {
              type: 'object',
              properties: {
                effectiveMaxDownloads: { type: 'integer', description: '0 = unlimited' },
                files: { type: 'array', items: { type: 'object', properties: { idx: { type: 'integer' }, name: { type: 'string' }, contentType: { type: 'string' }, size: { type: 'integer' }, sha256: { type: 'string' }, scan: { type: ['object', 'null'], description: 'The malware check (docs/scanning.md); null when the file was never scanned', properties: { verdict: { type: ['string', 'null'], enum: ['clean', 'infected', 'unscanned', 'too_large', null] }, engine: { type: ['string', 'null'] }, signatureVersion: { type: ['string', 'null'] }, signature: { type: ['string', 'null'] }, at: { type: ['string', 'null'], format: 'date-time' }, blocked: { type: 'boolean' }, blockedReason: { type: ['string', 'null'], enum: ['quarantine', 'rescan', 'deleted', null] }, blockedAt: { type: ['string', 'null'], format: 'date-time' }, releasedAt: { type: ['string', 'null'], format: 'date-time' }, releasedBy: { type: ['string', 'null'] } } } } } },
                passwordProtected: { type: 'boolean', description: 'a password guards the files (the password and its hash are never shown)' },
                recipients: { type: 'array', items: ref('RecipientStatus'), description: 'one entry per link: each envelope recipient with a link of its own, or one shared link (recipient "")' },
                countedDownloads: { type: 'integer' },
                downloads: {
                  type: 'array',
                  items: {
                    type: 'object',
                    properties: {
                      at: { type: 'string', format: 'date-time' },
                      fileIdx: { type: ['integer', 'null'] },
                      status: { type: 'integer' },
                      bytesSent: { type: 'integer' },
                      range: { type: ['string', 'null'] },
                      client: { type: ['string', 'null'] },
                      userAgent: { type: ['string', 'null'] },
                      counted: { type: 'boolean' },
                      scanner: { type: 'boolean' },
                      method: { type: ['string', 'null'] },
                      linkId: { type: ['string', 'null'], description: 'the link the request came through; null for downloads logged before links existed (they came through the shared link)' },
                      recipient: { type: ['string', 'null'], description: 'whose link it was: the envelope address, or null for the shared link' },
                    },
                  },
                },
                audit: { type: 'array', items: ref('AuditEntry') },
              },
            },
          ],
        },
        RecipientStatus: {
          type: 'object',
          properties: {
            linkId: { type: 'string' },
            recipient: { type: 'string', description: '"" for the shared link' },
            revokedAt: { type: ['string', 'null'], format: 'date-time' },
            files: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  idx: { type: 'integer' },
                  name: { type: 'string' },
                  completeAt: { type: ['string', 'null'], format: 'date-time', description: 'first complete download through this link (a zip counts for every file; scanners never)' },
                  completeCount: { type: 'integer' },
                  scannerFetches: { type: 'integer', description: 'requests by mail security scanners and link prefetchers' },
                  partialFetches: { type: 'integer', description: 'GETs that sent bytes without completing a download (broken downloads, single ranges)' },
                },
              },
            },
          },
        },
        Rule: {
          type: 'object',
          properties: {
            id: { type: 'string' },
            kind: { type: 'string', enum: ['default', 'minimum', 'maximum', 'sender', 'sender_domain', 'recipient_domain'] },
            match: { type: ['string', 'null'] },
            days: { type: 'number' },
            downloadLimit: { type: ['integer', 'null'] },
            requirePassword: { type: 'boolean', description: 'transfers the rule matches get a password' },
            receipts: { type: ['boolean', 'null'], description: 'receipts to the sender for mail the rule matches; null: senders.receipts decides' },
            source: { type: 'string', enum: ['config', 'admin'] },
            updatedAt: { type: 'string', format: 'date-time' },
            updatedBy: { type: 'string' },
          },
        },
        Stats: {
          type: 'object',
          properties: {
            liveTransfers: { type: 'integer' },
            heldTransfers: { type: 'integer' },
            storedBytes: { type: 'integer' },
            storedFiles: { type: 'integer' },
            downloadsPerDay: { type: 'array', items: ref('DayValue') },
            transfersPerDay: { type: 'array', items: ref('DayValue') },
            bytesOffloadedPerDay: { type: 'array', items: ref('DayValue') },
          },
        },
        ...queueSchemas,
        DayValue: { type: 'object', properties: { day: { type: 'string', format: 'date' }, value: { type: 'number' } } },
        AuditEntry: {
          type: 'object',
          properties: {
            id: { type: 'integer' },
            at: { type: 'string', format: 'date-time' },
            actor: { type: 'string' },
            action: { type: 'string' },
            transferId: { type: ['string', 'null'] },
            detail: { type: ['object', 'null'] },
          },
        },
      },
    },
  };
}
