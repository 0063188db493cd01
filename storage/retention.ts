import { sql } from 'kysely';
import { formatDuration } from '../config/units.js';
import { appendAudit } from './audit.js';
import type { Db } from './database.js';
import type { RetentionRuleKind, RetentionRulesTable } from './schema.js';

// Retention: how long a transfer's files stay downloadable.
//
// Settings and rules are rows in retention_rules, editable at run time (admin API and UI,
// `ferry rules`), and seeded from the configuration at each start (seedRetentionRules): rows
// that came from the configuration follow it, rows an admin set at run time are kept. So the
// database is the truth for whatever an admin changed; the file seeds only what was never
// changed at run time. When the two together give bounds that contradict each other (a file's
// default above an admin's maximum), start-up is refused with both values, where each came
// from and the fix (RetentionConflictError), rather than silently clamping every message.
//
// Resolution, for one message (resolveRetention):
//   1. For each recipient, the most specific rule that applies:
//        sender address  >  recipient domain  >  sender domain  >  default.
//      A recipient domain beats a sender domain because on an outbound gateway nearly all mail
//      has the same few sender domains (a sender-domain rule is close to a default), while a
//      recipient domain singles out one partner. Domain rules also match subdomains; the
//      longest matching domain wins.
//   2. With several recipients, the shortest of those periods wins: a file meant for a
//      short-retention partner does not stay longer because a colleague was in Cc.
//   3. The period is clamped to [minimum, maximum].
// The rule that chose the period also sets the transfer's download limit. The expiry and the
// rule are stored on the transfer, so later rule changes do not touch it unless an admin asks
// (reapplyRetention).
//
// Two switches are not decided by that one rule (docs/passwords.md):
//   - requirePassword: true when ANY rule that matches the message says so (the sender's, a
//     recipient's domain, the sender's domain, the default), so a partner's password
//     requirement is never dropped because a more specific rule exists for the sender.
//   - receipts: the most specific matching rule that says anything (sender > recipient domain
//     > sender domain > default; between recipient domains, on wins); null when none does,
//     and then senders.receipts decides.

export const DAY_MS = 86_400_000;

export type MatchKind = 'sender' | 'sender_domain' | 'recipient_domain';
export type BoundKind = 'default' | 'minimum' | 'maximum';
export const MATCH_KINDS: readonly MatchKind[] = ['sender', 'sender_domain', 'recipient_domain'];
export const BOUND_KINDS: readonly BoundKind[] = ['default', 'minimum', 'maximum'];

export interface RetentionBounds {
  defaultMs: number;
  minMs: number;
  maxMs: number;
}

export interface RetentionRule {
  id: string;
  kind: RetentionRuleKind;
  /** Lower-case address or domain; '' for the bounds. */
  match: string;
  periodMs: number;
  downloadLimit: number | null;
  source: 'config' | 'admin';
  updatedAt: number;
  updatedBy: string;
  /** Transfers this rule matches get a password. Absent = false. */
  requirePassword?: boolean;
  /** Receipts to the sender on or off; null or absent = the rule is silent. */
  receipts?: boolean | null;
}

export interface RetentionPolicy extends RetentionBounds {
  rules: RetentionRule[];
}

export interface RetentionDecision {
  periodMs: number;
  /** Id of the rule that chose the period: "default", "sender:a@b.c", "recipient_domain:b.c"... */
  ruleId: string;
  downloadLimit: number | null;
  /** Set when the rule's period was outside the bounds and was brought into them. */
  clampedBy: 'minimum' | 'maximum' | null;
  /** Some matching rule requires a password for this transfer (see the top of this file). */
  requirePassword: boolean;
  /** Receipts to the sender by rule; null when no matching rule says (senders.receipts decides). */
  receipts: boolean | null;
}

/** A rule or setting that cannot be stored as given; the message says what to change. */
export class RetentionRuleError extends Error {
  readonly code = 'FERRY_ERR_RETENTION_RULE';
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'RetentionRuleError';
  }
}

/** The file's bounds and the run-time bounds together contradict each other; nothing was changed. */
export class RetentionConflictError extends RetentionRuleError {
  override readonly code = 'FERRY_ERR_RETENTION_RULE';
  constructor(message: string) {
    super(message, 'bounds');
    this.name = 'RetentionConflictError';
  }
}

/** "30 days", "1 hour", "36 hours": never "0 days" for a period under a day. */
export function formatPeriod(ms: number): string {
  return formatDuration(ms, { words: true });
}

const DOMAIN_RE = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** Lower-cases and checks a rule's match; throws RetentionRuleError with the fix. */
export function normalizeMatch(kind: RetentionRuleKind, match: string): string {
  const m = match.trim().toLowerCase();
  if ((BOUND_KINDS as readonly string[]).includes(kind)) return '';
  if (kind === 'sender') {
    const at = m.lastIndexOf('@');
    if (at <= 0 || !DOMAIN_RE.test(m.slice(at + 1)) || /[\s<>"]/.test(m) || m.length > 320) {
      throw new RetentionRuleError(`"${match}" is not a mail address; a sender rule matches one address such as alice@example.com`, 'match');
    }
    return m;
  }
  const d = m.replace(/^@/, '').replace(/^\*\./, '').replace(/\.$/, '');
  if (!DOMAIN_RE.test(d)) {
    throw new RetentionRuleError(`"${match}" is not a domain; a domain rule matches a domain and its subdomains, such as example.com`, 'match');
  }
  return d;
}

export function ruleId(kind: RetentionRuleKind, match: string): string {
  return (BOUND_KINDS as readonly string[]).includes(kind) ? kind : `${kind}:${normalizeMatch(kind, match)}`;
}

/** "recipient_domain:example.com" -> kind and match; throws on anything else. */
export function parseRuleId(id: string): { kind: RetentionRuleKind; match: string } {
  if ((BOUND_KINDS as readonly string[]).includes(id)) return { kind: id as BoundKind, match: '' };
  const i = id.indexOf(':');
  const kind = id.slice(0, i) as MatchKind;
  if (i < 0 || !MATCH_KINDS.includes(kind)) {
    throw new RetentionRuleError(`"${id}" is not a rule id; expected default, minimum, maximum, or sender:ADDRESS, sender_domain:DOMAIN, recipient_domain:DOMAIN`, 'id');
  }
  return { kind, match: normalizeMatch(kind, id.slice(i + 1)) };
}

function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1).toLowerCase().replace(/\.$/, '');
}

/** The rule of `kind` whose domain is `domain` or its closest parent. */
function bestDomainRule(rules: readonly RetentionRule[], kind: MatchKind, domain: string): RetentionRule | undefined {
  if (!domain) return undefined;
  let best: RetentionRule | undefined;
  for (const r of rules) {
    if (r.kind !== kind) continue;
    if (domain === r.match || domain.endsWith(`.${r.match}`)) {
      if (!best || r.match.length > best.match.length) best = r;
    }
  }
  return best;
}

const SPECIFICITY: Record<string, number> = { sender: 3, recipient_domain: 2, sender_domain: 1, default: 0 };

/** Pure resolution; see the top of this file. */
export function resolveRetention(policy: RetentionPolicy, input: { sender: string; recipients: readonly string[] }): RetentionDecision {
  const sender = input.sender.trim().toLowerCase();
  const senderRule = sender ? policy.rules.find((r) => r.kind === 'sender' && r.match === sender) : undefined;
  const senderDomainRule = bestDomainRule(policy.rules, 'sender_domain', domainOf(sender));
  const recipients = input.recipients.length ? input.recipients : [''];
  const defaultRule: Pick<RetentionRule, 'id' | 'kind' | 'periodMs' | 'downloadLimit'> = {
    id: 'default',
    kind: 'default',
    periodMs: policy.defaultMs,
    downloadLimit: policy.rules.find((r) => r.kind === 'default')?.downloadLimit ?? null,
  };
  let chosen: Pick<RetentionRule, 'id' | 'kind' | 'periodMs' | 'downloadLimit'> | undefined;
  for (const rcpt of recipients) {
    const rule = senderRule ?? bestDomainRule(policy.rules, 'recipient_domain', domainOf(rcpt)) ?? senderDomainRule ?? defaultRule;
    if (
      !chosen ||
      rule.periodMs < chosen.periodMs ||
      (rule.periodMs === chosen.periodMs && (SPECIFICITY[rule.kind] ?? 0) > (SPECIFICITY[chosen.kind] ?? 0))
    ) {
      chosen = rule;
    }
  }
  const c = chosen!;
  let periodMs = c.periodMs;
  let clampedBy: RetentionDecision['clampedBy'] = null;
  if (periodMs < policy.minMs) {
    periodMs = policy.minMs;
    clampedBy = 'minimum';
  } else if (periodMs > policy.maxMs) {
    periodMs = policy.maxMs;
    clampedBy = 'maximum';
  }
  return { periodMs, ruleId: c.id, downloadLimit: c.downloadLimit, clampedBy, ...ruleSwitches(policy, senderRule, senderDomainRule, recipients) };
}

/** requirePassword and receipts from every rule that matches the message (see the top of this file). */
function ruleSwitches(
  policy: RetentionPolicy,
  senderRule: RetentionRule | undefined,
  senderDomainRule: RetentionRule | undefined,
  recipients: readonly string[],
): Pick<RetentionDecision, 'requirePassword' | 'receipts'> {
  const recipientRules = recipients.map((r) => bestDomainRule(policy.rules, 'recipient_domain', domainOf(r))).filter((r): r is RetentionRule => !!r);
  const defaultRule = policy.rules.find((r) => r.kind === 'default');
  const matching = [senderRule, ...recipientRules, senderDomainRule, defaultRule].filter((r): r is RetentionRule => !!r);
  const requirePassword = matching.some((r) => r.requirePassword === true);
  const said = (r: RetentionRule | undefined) => (r && r.receipts !== undefined && r.receipts !== null ? r.receipts : null);
  const byRecipients = recipientRules.map(said).filter((v): v is boolean => v !== null);
  const receipts = said(senderRule) ?? (byRecipients.length ? byRecipients.includes(true) : null) ?? said(senderDomainRule) ?? said(defaultRule);
  return { requirePassword, receipts };
}

function toRule(r: RetentionRulesTable): RetentionRule {
  return {
    id: r.id,
    kind: r.kind,
    match: r.match,
    periodMs: Number(r.period_ms),
    downloadLimit: r.download_limit === null ? null : Number(r.download_limit),
    source: r.source,
    updatedAt: Number(r.updated_at),
    updatedBy: r.updated_by,
    requirePassword: Number(r.require_password ?? 0) === 1,
    receipts: r.receipts === null || r.receipts === undefined ? null : Number(r.receipts) === 1,
  };
}

const KIND_ORDER: Record<string, number> = { default: 0, minimum: 1, maximum: 2, sender: 3, sender_domain: 4, recipient_domain: 5 };

/**
 * Bounds first, then rules by kind and match, matches in code-unit order: the same list on every
 * server whatever its locale (localeCompare follows the process's ICU locale), and the gateway,
 * which loads the rules for every offloaded message, pages in no ICU collator for it
 * (docs/performance.md, "Code pages").
 */
function byKindAndMatch(a: RetentionRule, b: RetentionRule): number {
  return (KIND_ORDER[a.kind] ?? 9) - (KIND_ORDER[b.kind] ?? 9) || (a.match < b.match ? -1 : a.match > b.match ? 1 : 0);
}

/** Every row, bounds first, then rules by kind and match. */
export async function listRules(db: Db): Promise<RetentionRule[]> {
  const rows = await db.selectFrom('retention_rules').selectAll().execute();
  return rows.map(toRule).sort(byKindAndMatch);
}

export async function getRule(db: Db, id: string): Promise<RetentionRule | undefined> {
  const r = await db.selectFrom('retention_rules').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? toRule(r) : undefined;
}

/** The rules in force; a bound missing from the table (never seeded) comes from `fallback`. */
export async function loadPolicy(db: Db, fallback: RetentionBounds): Promise<RetentionPolicy> {
  const rules = await listRules(db);
  const bound = (k: BoundKind, d: number) => rules.find((r) => r.kind === k)?.periodMs ?? d;
  return {
    defaultMs: bound('default', fallback.defaultMs),
    minMs: bound('minimum', fallback.minMs),
    maxMs: bound('maximum', fallback.maxMs),
    rules,
  };
}

/** The expiry for a new transfer: what the gateway stores and prints in the notice. */
export async function decideRetention(
  db: Db,
  input: { sender: string; recipients: readonly string[]; at: number },
  fallback: RetentionBounds,
): Promise<RetentionDecision & { expiresAt: number }> {
  const d = resolveRetention(await loadPolicy(db, fallback), input);
  return { ...d, expiresAt: input.at + d.periodMs };
}

export interface RuleInput {
  kind: RetentionRuleKind;
  /** Address or domain; ignored for default, minimum, maximum. */
  match?: string;
  periodMs: number;
  downloadLimit?: number | null;
  /** Absent: unchanged (false for a new rule). */
  requirePassword?: boolean;
  /** null: the rule is silent; absent: unchanged (silent for a new rule). */
  receipts?: boolean | null;
}

const MAX_PERIOD_MS = 36_500 * DAY_MS;

/** Creates or replaces a rule (or a bound) set at run time. Checks it against the bounds. */
export async function setRule(db: Db, input: RuleInput, actor: string, fallback: RetentionBounds, now = Date.now()): Promise<RetentionRule> {
  const id = ruleId(input.kind, input.match ?? '');
  const match = normalizeMatch(input.kind, input.match ?? '');
  if (!Number.isFinite(input.periodMs) || input.periodMs <= 0 || input.periodMs > MAX_PERIOD_MS) {
    throw new RetentionRuleError('days must be a number greater than 0 and at most 36500', 'days');
  }
  if (input.downloadLimit !== undefined && input.downloadLimit !== null && !(Number.isInteger(input.downloadLimit) && input.downloadLimit >= 1)) {
    throw new RetentionRuleError('download limit must be a whole number of at least 1, or empty for the site default', 'downloadLimit');
  }
  const policy = await loadPolicy(db, fallback);
  const next = { ...policy };
  if (input.kind === 'default') next.defaultMs = input.periodMs;
  if (input.kind === 'minimum') next.minMs = input.periodMs;
  if (input.kind === 'maximum') next.maxMs = input.periodMs;
  const days = formatPeriod;
  if (next.minMs > next.maxMs) throw new RetentionRuleError(`the minimum (${days(next.minMs)}) cannot be longer than the maximum (${days(next.maxMs)})`, 'days');
  if (next.defaultMs < next.minMs || next.defaultMs > next.maxMs) {
    throw new RetentionRuleError(`the default (${days(next.defaultMs)}) must lie between the minimum (${days(next.minMs)}) and the maximum (${days(next.maxMs)})`, 'days');
  }
  if ((MATCH_KINDS as readonly string[]).includes(input.kind) && (input.periodMs < next.minMs || input.periodMs > next.maxMs)) {
    throw new RetentionRuleError(`days must lie between the minimum (${days(next.minMs)}) and the maximum (${days(next.maxMs)})`, 'days');
  }
  const before = await getRule(db, id);
  // A caller that does not know a switch (an older form) leaves it as it was.
  const requirePassword = input.requirePassword ?? before?.requirePassword ?? false;
  const receipts = input.receipts !== undefined ? input.receipts : (before?.receipts ?? null);
  const values = {
    id,
    kind: input.kind,
    match,
    period_ms: Math.round(input.periodMs),
    download_limit: input.downloadLimit ?? null,
    source: 'admin' as const,
    updated_at: now,
    updated_by: actor,
    require_password: requirePassword ? 1 : 0,
    receipts: receipts === null ? null : receipts ? 1 : 0,
  };
  await db.transaction().execute(async (trx) => {
    await trx
      .insertInto('retention_rules')
      .values(values)
      .onConflict((oc) =>
        oc.column('id').doUpdateSet({
          period_ms: values.period_ms,
          download_limit: values.download_limit,
          require_password: values.require_password,
          receipts: values.receipts,
          source: 'admin',
          updated_at: now,
          updated_by: actor,
        }),
      )
      .execute();
    await appendAudit(trx as unknown as Db, {
      actor,
      action: 'rule_set',
      at: now,
      detail: {
        rule: id,
        days: values.period_ms / DAY_MS,
        downloadLimit: values.download_limit,
        requirePassword,
        receipts,
        before: before ? { days: before.periodMs / DAY_MS, downloadLimit: before.downloadLimit, requirePassword: before.requirePassword ?? false, receipts: before.receipts ?? null } : null,
      },
    });
  });
  return (await getRule(db, id))!;
}

/** Removes a matching rule. The bounds cannot be removed, only changed. Returns false when absent. */
export async function deleteRule(db: Db, id: string, actor: string, now = Date.now()): Promise<boolean> {
  const { kind } = parseRuleId(id);
  if ((BOUND_KINDS as readonly string[]).includes(kind)) throw new RetentionRuleError(`${kind} cannot be deleted, only changed`, 'id');
  return db.transaction().execute(async (trx) => {
    const r = await trx.deleteFrom('retention_rules').where('id', '=', id).executeTakeFirst();
    if (Number(r.numDeletedRows) === 0) return false;
    await appendAudit(trx as unknown as Db, { actor, action: 'rule_deleted', at: now, detail: { rule: id } });
    return true;
  });
}

/** A rule from the configuration file (retention.rules). */
export interface ConfigRule {
  sender?: string;
  senderDomain?: string;
  recipientDomain?: string;
  days: number;
  downloadLimit?: number;
  /** Transfers this rule matches get a password (docs/passwords.md). */
  requirePassword?: boolean;
  /** Receipts to the sender for this rule; absent = senders.receipts decides. */
  receipts?: boolean;
}

export function configRuleInput(r: ConfigRule): RuleInput {
  const [kind, match] = r.sender
    ? (['sender', r.sender] as const)
    : r.senderDomain
      ? (['sender_domain', r.senderDomain] as const)
      : (['recipient_domain', r.recipientDomain ?? ''] as const);
  return { kind, match, periodMs: r.days * DAY_MS, downloadLimit: r.downloadLimit ?? null, requirePassword: r.requirePassword ?? false, receipts: r.receipts ?? null };
}

/**
 * Brings the configuration's values into the table at start: rows that came from the
 * configuration are updated (or removed when the configuration no longer has them); rows an
 * admin set at run time are kept as they are. Safe when several processes start at once.
 */
export async function seedRetentionRules(db: Db, cfg: RetentionBounds & { rules?: readonly ConfigRule[] }, now = Date.now()): Promise<void> {
  const rows = seedRows(cfg, now);
  const ids = rows.map((r) => r.id);
  await db.transaction().execute(async (trx) => {
    for (const row of rows) {
      await trx
        .insertInto('retention_rules')
        .values(row)
        .onConflict((oc) =>
          oc
            .column('id')
            .doUpdateSet({ period_ms: row.period_ms, download_limit: row.download_limit, require_password: row.require_password, receipts: row.receipts, updated_at: now })
            .where('retention_rules.source', '=', 'config')
            // Only when something changed, so a restart does not rewrite every row.
            .where((eb) =>
              eb.or([
                eb('retention_rules.period_ms', '!=', row.period_ms),
                sql<boolean>`coalesce(retention_rules.download_limit, -1) != ${row.download_limit ?? -1}`,
                eb('retention_rules.require_password', '!=', row.require_password),
                sql<boolean>`coalesce(retention_rules.receipts, -1) != ${row.receipts ?? -1}`,
              ]),
            ),
        )
        .execute();
    }
    await trx.deleteFrom('retention_rules').where('source', '=', 'config').where('id', 'not in', ids).execute();
    // Checked inside the transaction: when it throws, the table stays as it was.
    const conflict = boundsConflict(await listRules(trx as unknown as Db));
    if (conflict) throw new RetentionConflictError(conflict);
  });
}

/**
 * The rules as seedRetentionRules would leave them, without writing: the admin's rows from the
 * database, the file's for everything else (for check-config, which changes nothing).
 */
export function plannedRules(dbRules: readonly RetentionRule[], cfg: RetentionBounds & { rules?: readonly ConfigRule[] }, now = Date.now()): RetentionRule[] {
  const admin = dbRules.filter((r) => r.source === 'admin');
  const fromFile = seedRows(cfg, now)
    .filter((r) => !admin.some((a) => a.id === r.id))
    .map(toRule);
  return [...admin, ...fromFile].sort(byKindAndMatch);
}

function seedRows(cfg: RetentionBounds & { rules?: readonly ConfigRule[] }, now: number): RetentionRulesTable[] {
  const rows: RetentionRulesTable[] = [
    { id: 'default', kind: 'default', match: '', period_ms: cfg.defaultMs, download_limit: null, source: 'config', updated_at: now, updated_by: 'config', require_password: 0, receipts: null },
    { id: 'minimum', kind: 'minimum', match: '', period_ms: cfg.minMs, download_limit: null, source: 'config', updated_at: now, updated_by: 'config', require_password: 0, receipts: null },
    { id: 'maximum', kind: 'maximum', match: '', period_ms: cfg.maxMs, download_limit: null, source: 'config', updated_at: now, updated_by: 'config', require_password: 0, receipts: null },
  ];
  for (const r of cfg.rules ?? []) {
    const input = configRuleInput(r);
    rows.push({
      id: ruleId(input.kind, input.match!),
      kind: input.kind,
      match: normalizeMatch(input.kind, input.match!),
      period_ms: Math.round(input.periodMs),
      download_limit: input.downloadLimit ?? null,
      source: 'config',
      updated_at: now,
      updated_by: 'config',
      require_password: input.requirePassword ? 1 : 0,
      receipts: input.receipts === undefined || input.receipts === null ? null : input.receipts ? 1 : 0,
    });
  }
  return rows;
}

/** The key or command that sets a bound, and where its value came from, for messages. */
function boundSource(r: RetentionRule): string {
  return r.source === 'config'
    ? `retention.${r.kind} = ${formatDuration(r.periodMs)} (from the configuration)`
    : `the ${r.kind} of ${formatDuration(r.periodMs)} (set at run time by ${r.updatedBy} on ${new Date(r.updatedAt).toISOString().slice(0, 10)})`;
}

function boundFix(r: RetentionRule, want: string): string {
  return r.source === 'config' ? `set retention.${r.kind} to ${want} in the configuration` : `change it with \`ferry rules set ${r.kind} --days N\` (N ${want})`;
}

/** A sentence naming both bounds that contradict each other and the fix; undefined when consistent. */
export function boundsConflict(rules: readonly RetentionRule[]): string | undefined {
  const get = (k: BoundKind) => rules.find((r) => r.kind === k);
  const def = get('default');
  const min = get('minimum');
  const max = get('maximum');
  const pair = (low: RetentionRule, high: RetentionRule, what: string) =>
    `retention: ${boundSource(low)} is ${what} ${boundSource(high)}. What an admin set at run time stays in force; the file seeds only what was never changed. ` +
    `Fix: ${boundFix(low, `at most ${formatDuration(high.periodMs)}`)}, or ${boundFix(high, `at least ${formatDuration(low.periodMs)}`)}`;
  if (min && max && min.periodMs > max.periodMs) return pair(min, max, 'longer than');
  if (def && max && def.periodMs > max.periodMs) return pair(def, max, 'longer than');
  if (def && min && def.periodMs < min.periodMs) {
    return (
      `retention: ${boundSource(def)} is shorter than ${boundSource(min)}. What an admin set at run time stays in force; the file seeds only what was never changed. ` +
      `Fix: ${boundFix(def, `at least ${formatDuration(min.periodMs)}`)}, or ${boundFix(min, `at most ${formatDuration(def.periodMs)}`)}`
    );
  }
  return undefined;
}

/** One row of the rules in effect, as check-config and `ferry rules list` show them. */
export interface RuleInEffect {
  id: string;
  periodMs: number;
  downloadLimit: number | null;
  /** The rule's two switches (see the top of this file); false and null for the bounds. */
  requirePassword: boolean;
  receipts: boolean | null;
  /** Where the value in force comes from. */
  from: 'file' | 'run time' | 'file (not in the database yet)';
  /** What else an admin should know: a file value that is not used, a clamp. */
  notes: string[];
}

/**
 * The rules in effect: the database's rows (or, before the first start, the file's), each
 * saying where it came from, which file values an admin's run-time change overrides, and
 * which rules the bounds clamp.
 */
export function rulesInEffect(dbRules: readonly RetentionRule[] | undefined, cfg: RetentionBounds & { rules?: readonly ConfigRule[] }): RuleInEffect[] {
  type FileRow = Pick<RuleInEffect, 'periodMs' | 'downloadLimit' | 'requirePassword' | 'receipts'>;
  const noSwitches = { requirePassword: false, receipts: null };
  const fileRows = new Map<string, FileRow>([
    ['default', { periodMs: cfg.defaultMs, downloadLimit: null, ...noSwitches }],
    ['minimum', { periodMs: cfg.minMs, downloadLimit: null, ...noSwitches }],
    ['maximum', { periodMs: cfg.maxMs, downloadLimit: null, ...noSwitches }],
  ]);
  for (const r of cfg.rules ?? []) {
    const input = configRuleInput(r);
    fileRows.set(ruleId(input.kind, input.match!), { periodMs: input.periodMs, downloadLimit: input.downloadLimit ?? null, requirePassword: input.requirePassword ?? false, receipts: input.receipts ?? null });
  }
  const rows: RuleInEffect[] = [];
  if (!dbRules) {
    for (const [id, v] of fileRows) rows.push({ id, ...v, from: 'file (not in the database yet)', notes: [] });
  } else {
    for (const r of dbRules) {
      const notes: string[] = [];
      const file = fileRows.get(r.id);
      if (r.source === 'admin' && file && file.periodMs !== r.periodMs) notes.push(`the file says ${formatDuration(file.periodMs)}; not used, an admin changed it at run time`);
      if (r.source === 'admin') notes.push(`set by ${r.updatedBy} on ${new Date(r.updatedAt).toISOString().slice(0, 10)}`);
      rows.push({ id: r.id, periodMs: r.periodMs, downloadLimit: r.downloadLimit, requirePassword: r.requirePassword ?? false, receipts: r.receipts ?? null, from: r.source === 'admin' ? 'run time' : 'file', notes });
    }
    for (const [id, v] of fileRows) if (!dbRules.some((r) => r.id === id)) rows.push({ id, ...v, from: 'file (not in the database yet)', notes: [] });
  }
  const bound = (k: BoundKind) => rows.find((r) => r.id === k)?.periodMs;
  const min = bound('minimum') ?? cfg.minMs;
  const max = bound('maximum') ?? cfg.maxMs;
  for (const r of rows) {
    if ((BOUND_KINDS as readonly string[]).includes(r.id)) continue;
    if (r.periodMs > max) r.notes.unshift(`clamped: mail gets the maximum, ${formatDuration(max)}`);
    else if (r.periodMs < min) r.notes.unshift(`clamped: mail gets the minimum, ${formatDuration(min)}`);
  }
  return rows;
}

/**
 * Applies the current rules to live transfers already stored: each gets the expiry the rules
 * would give it now (from its creation time). Transfers on hold, already purged, or whose
 * expiry an admin set by hand are left alone. Returns how many changed.
 */
export async function reapplyRetention(db: Db, actor: string, fallback: RetentionBounds, now = Date.now()): Promise<number> {
  const policy = await loadPolicy(db, fallback);
  let changed = 0;
  let after = '';
  for (;;) {
    const rows = await db
      .selectFrom('transfers')
      .select(['id', 'sender', 'recipients', 'created_at', 'expires_at', 'retention_rule', 'max_downloads'])
      .where('state', '=', 'live')
      .where('held', '=', 0)
      .where('purged_at', 'is', null)
      .where((eb) => eb.or([eb('retention_rule', 'is', null), eb('retention_rule', '!=', 'admin')]))
      .where('id', '>', after)
      .orderBy('id')
      .limit(500)
      .execute();
    for (const r of rows) {
      const d = resolveRetention(policy, { sender: r.sender, recipients: JSON.parse(r.recipients) as string[] });
      const expiresAt = Number(r.created_at) + d.periodMs;
      if (expiresAt === Number(r.expires_at) && d.ruleId === r.retention_rule && d.downloadLimit === (r.max_downloads === null ? null : Number(r.max_downloads))) continue;
      const u = await db
        .updateTable('transfers')
        .set({ expires_at: expiresAt, retention_rule: d.ruleId, max_downloads: d.downloadLimit })
        .where('id', '=', r.id)
        .where('state', '=', 'live')
        .where('held', '=', 0)
        .where('sweep_claim', 'is', null)
        .executeTakeFirst();
      if (Number(u.numUpdatedRows) !== 1) continue;
      changed++;
      await appendAudit(db, {
        actor,
        action: 'extended',
        transferId: r.id,
        at: now,
        detail: { reason: 'rules reapplied', from: new Date(Number(r.expires_at)).toISOString(), to: new Date(expiresAt).toISOString(), rule: d.ruleId },
      });
    }
    if (rows.length < 500) break;
    after = rows[rows.length - 1]!.id;
  }
  await appendAudit(db, { actor, action: 'rules_reapplied', at: now, detail: { changed } });
  return changed;
}

/** The bounds from the configuration (retention.default, .minimum, .maximum), the fallback when the table has none. */
export function retentionBounds(config: { retention: { default: number; minimum?: number; maximum?: number } }): RetentionBounds {
  const r = config.retention;
  return { defaultMs: r.default, minMs: r.minimum ?? Math.min(DAY_MS, r.default), maxMs: r.maximum ?? Math.max(365 * DAY_MS, r.default) };
}

/** A rule as the admin API and `ferry rules --json` show it (one shape for both). */
export function ruleJson(r: RetentionRule) {
  return {
    id: r.id,
    kind: r.kind,
    match: r.match || null,
    days: r.periodMs / DAY_MS,
    downloadLimit: r.downloadLimit,
    requirePassword: r.requirePassword ?? false,
    receipts: r.receipts ?? null,
    source: r.source,
    updatedAt: new Date(r.updatedAt).toISOString(),
    updatedBy: r.updatedBy,
  };
}
