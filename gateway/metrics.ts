import { Counter, Gauge, Histogram, register } from 'prom-client';

// The gateway's Prometheus metrics, on prom-client's default registry (served at /metrics by the
// web role or by metrics.port; see cli/metrics-server.ts). Defined once per process at module
// load: prom-client refuses a second metric of the same name, and several Gateway instances in
// one process (tests, roles) add to the same counters.

/** Why a message (or, for relay_denied, one recipient) was refused. */
export type RejectReason =
  | 'size_mail_from'
  | 'size_after_data'
  | 'hard_limit'
  | 'relay_denied'
  | 'next_hop_refused'
  | 'next_hop_unavailable'
  | 'storage_error'
  | 'malformed'
  | 'local_error'
  | 'client_gone'
  | 'shutting_down';

export const REJECT_REASONS: readonly RejectReason[] = [
  'size_mail_from',
  'size_after_data',
  'hard_limit',
  'relay_denied',
  'next_hop_refused',
  'next_hop_unavailable',
  'storage_error',
  'malformed',
  'local_error',
  'client_gone',
  'shutting_down',
];

function once<T>(name: string, make: () => T): T {
  return (register.getSingleMetric(name) as T | undefined) ?? make();
}

export const smtpSessions = once(
  'ferry_smtp_sessions_total',
  () => new Counter({ name: 'ferry_smtp_sessions_total', help: 'SMTP connections accepted', labelNames: ['tls'] as const }),
);
export const smtpStarttls = once('ferry_smtp_starttls_total', () => new Counter({ name: 'ferry_smtp_starttls_total', help: 'SMTP connections upgraded with STARTTLS' }));
export const smtpSessionsActive = once('ferry_smtp_sessions_active', () => new Gauge({ name: 'ferry_smtp_sessions_active', help: 'SMTP connections open now' }));
export const smtpAuth = once(
  'ferry_smtp_auth_total',
  () => new Counter({ name: 'ferry_smtp_auth_total', help: 'SMTP AUTH attempts by result (ok, failed)', labelNames: ['result'] as const }),
);
export const messagesAccepted = once('ferry_messages_accepted_total', () => new Counter({ name: 'ferry_messages_accepted_total', help: 'Messages the client got 250 for (relayed at once, or queued)' }));
export const messagesQueued = once(
  'ferry_messages_queued_total',
  () => new Counter({ name: 'ferry_messages_queued_total', help: 'Accepted messages that went to the delivery queue because the next hop did not take them at once' }),
);
export const messagesRejected = once(
  'ferry_messages_rejected_total',
  () =>
    new Counter({
      name: 'ferry_messages_rejected_total',
      help: 'Messages refused, by reason (relay_denied counts refused recipients)',
      labelNames: ['reason'] as const,
    }),
);
export const bytesReceived = once('ferry_bytes_received_total', () => new Counter({ name: 'ferry_bytes_received_total', help: 'Message bytes received in DATA' }));
export const bytesOffloaded = once('ferry_bytes_offloaded_total', () => new Counter({ name: 'ferry_bytes_offloaded_total', help: 'Decoded attachment bytes moved to the blob store' }));
export const attachmentsOffloaded = once('ferry_attachments_offloaded_total', () => new Counter({ name: 'ferry_attachments_offloaded_total', help: 'Attachments moved to the blob store' }));
export const relayDuration = once(
  'ferry_relay_duration_seconds',
  () =>
    new Histogram({
      name: 'ferry_relay_duration_seconds',
      help: 'One relay attempt at the end of DATA, from connecting to the next hop to its answer to the data; result ok, refused (5xx passed back) or failed (queued or deferred)',
      labelNames: ['result'] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    }),
);

// Every reason appears at 0 from the start, so a dashboard sees the series before the first event.
for (const reason of REJECT_REASONS) messagesRejected.inc({ reason }, 0);
for (const result of ['ok', 'failed'] as const) smtpAuth.inc({ result }, 0);

export interface TransactionFigures {
  /** The summary line's result: sent, queued, bounced, deferred, rejected, aborted. */
  result: string;
  /** The summary line's detail (why, for the failures). */
  detail: string;
  bytes: number;
  offloaded: number;
  offloadedBytes: number;
  relayMs?: number;
}

/**
 * Counts one finished DATA transaction from the figures of its summary log line, so the log
 * and the metrics cannot disagree and the transaction code needs one call, not one per path.
 */
export function countTransaction(t: TransactionFigures): void {
  bytesReceived.inc(t.bytes);
  if (t.relayMs !== undefined) relayDuration.observe({ result: t.result === 'sent' ? 'ok' : t.result === 'bounced' ? 'refused' : 'failed' }, t.relayMs / 1000);
  if (t.result === 'sent' || t.result === 'queued') {
    messagesAccepted.inc();
    if (t.result === 'queued') messagesQueued.inc();
    // Only files that went out as links count: a failed message's blobs were deleted again.
    attachmentsOffloaded.inc(t.offloaded);
    bytesOffloaded.inc(t.offloadedBytes);
    return;
  }
  messagesRejected.inc({ reason: rejectReasonOf(t) });
}

function rejectReasonOf(t: TransactionFigures): RejectReason {
  switch (t.result) {
    case 'bounced':
      return 'next_hop_refused';
    case 'aborted':
      return t.detail.includes('shut') ? 'shutting_down' : 'client_gone';
    case 'rejected':
      if (t.detail === 'hard limit') return 'hard_limit';
      if (t.detail === 'over size limit') return 'size_after_data';
      if (t.detail === 'malformed MIME') return 'malformed';
      return 'local_error';
    default:
      if (t.detail === 'storage error' || t.detail.startsWith('queue write failed')) return 'storage_error';
      if (t.detail === 'local error') return 'local_error';
      return t.relayMs !== undefined ? 'next_hop_unavailable' : 'local_error';
  }
}
