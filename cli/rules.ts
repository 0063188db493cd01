import type { Config } from '../config/schema.js';
import { formatDuration } from '../config/units.js';
import { DAY_MS, deleteRule, ruleJson, formatPeriod, listRules, parseRuleId, reapplyRetention, retentionBounds, RetentionRuleError, rulesInEffect, setRule, type RetentionRule } from '../storage/index.js';
import { AdminApiClient, AdminApiError } from './admin-client.js';
import { cliActor, openAdminStorage, parseFlags, parseNumber, table, UsageError, when } from './admin-output.js';

// `ferry rules list|set|delete`: retention rules and bounds, against the configured database.

export const RULES_USAGE = `Usage: ferry rules <command> [options] [--config FILE | --server URL]

  list [--json]                            the default, minimum, maximum and every rule
  set RULE --days N [--download-limit N] [--require-password on|off]
           [--receipts on|off|unset] [--reapply]
                                           create or change a rule; RULE is one of
                                             default | minimum | maximum
                                             sender:ADDRESS
                                             sender_domain:DOMAIN     (and its subdomains)
                                             recipient_domain:DOMAIN  (and its subdomains)
                                           --require-password on: transfers the rule matches
                                           get a password (docs/passwords.md)
                                           --receipts on|off: receipts to the sender for mail
                                           the rule matches; unset: senders.receipts decides
                                           (a switch not given stays as it was)
                                           --reapply also recomputes the expiry of live
                                           transfers (otherwise only new mail is affected)
  delete RULE                              remove a sender or domain rule

  Most specific wins: sender address > recipient domain > sender domain > default; with
  several recipients the shortest period wins. See docs/retention.md.

  --server https://ferry.example.org: through that Ferry's admin API, with the token in
  FERRY_CLI_TOKEN (docs/admin.md).`;

type RuleChange = { kind: RetentionRule['kind']; match: string; periodMs: number; downloadLimit: number | null; requirePassword?: boolean; receipts?: boolean | null };

/** Where `ferry rules` reads and changes the rules: the database, or a Ferry's admin API (--server). */
interface RulesSource {
  /** Every rule, with what the list shows beside it (clamped by a bound, set by the file, ...). */
  list(): Promise<{ rule: RetentionRule; notes: string[] }[]>;
  set(id: string, change: RuleChange, reapply: boolean): Promise<{ rule: RetentionRule; reapplied: number | null }>;
  delete(id: string): Promise<boolean>;
  close(): Promise<void>;
}

async function localRules(config: Config, warn: (s: string) => void): Promise<RulesSource> {
  const storage = await openAdminStorage(config, warn);
  const { db } = storage;
  const bounds = retentionBounds(config);
  return {
    async list() {
      const rules = await listRules(db);
      const effect = new Map(rulesInEffect(rules, { ...bounds, rules: config.retention.rules }).map((r) => [r.id, r]));
      return rules.map((rule) => ({ rule, notes: effect.get(rule.id)?.notes ?? [] }));
    },
    async set(_id, change, reapply) {
      const rule = await setRule(db, change, cliActor(), bounds);
      return { rule, reapplied: reapply ? await reapplyRetention(db, cliActor(), bounds) : null };
    },
    delete: (id) => deleteRule(db, id, cliActor()),
    close: () => storage.close(),
  };
}

type RuleJson = ReturnType<typeof ruleJson>;
const ruleFromJson = (j: RuleJson): RetentionRule => ({
  id: j.id,
  kind: j.kind,
  match: j.match ?? '',
  periodMs: j.days * DAY_MS,
  downloadLimit: j.downloadLimit,
  source: j.source,
  updatedAt: Date.parse(j.updatedAt),
  updatedBy: j.updatedBy,
  requirePassword: j.requirePassword,
  receipts: j.receipts,
});

function remoteRules(api: AdminApiClient): RulesSource {
  const path = (id: string) => `/rules/${encodeURIComponent(id)}`;
  return {
    // The notes need the server's configuration file; the API lists the rules themselves.
    list: async () => (await api.call<{ items: RuleJson[] }>('GET', '/rules')).items.map((j) => ({ rule: ruleFromJson(j), notes: [] })),
    async set(id, c, reapply) {
      const body = { days: c.periodMs / DAY_MS, downloadLimit: c.downloadLimit, requirePassword: c.requirePassword, receipts: c.receipts, ...(reapply ? { reapply: true } : {}) };
      const j = await api.call<RuleJson & { reappliedTransfers?: number }>('PUT', path(id), { body });
      return { rule: ruleFromJson(j), reapplied: j.reappliedTransfers ?? null };
    },
    async delete(id) {
      try {
        await api.call('DELETE', path(id));
        return true;
      } catch (err) {
        if (err instanceof AdminApiError && err.status === 404) return false;
        throw err;
      }
    },
    close: async () => undefined,
  };
}

/** The switches as words for tables: "required" / "-", "on" / "off" / "-" (senders.receipts decides). */
export function switchWords(r: { requirePassword?: boolean; receipts?: boolean | null }): { password: string; receipts: string } {
  return { password: r.requirePassword ? 'required' : '-', receipts: r.receipts === true ? 'on' : r.receipts === false ? 'off' : '-' };
}

/** --require-password / --receipts as setRule wants them; undefined = flag not given (unchanged). */
function parseSwitches(kind: string, v: { 'require-password'?: string; receipts?: string }): { requirePassword?: boolean; receipts?: boolean | null } {
  const out: { requirePassword?: boolean; receipts?: boolean | null } = {};
  const pw = v['require-password'];
  if (pw !== undefined) {
    if (pw !== 'on' && pw !== 'off') throw new UsageError(`ferry rules set: --require-password: expected on or off, not "${pw}"`);
    out.requirePassword = pw === 'on';
  }
  if (v.receipts !== undefined) {
    if (!['on', 'off', 'unset'].includes(v.receipts)) throw new UsageError(`ferry rules set: --receipts: expected on, off or unset (senders.receipts decides), not "${v.receipts}"`);
    out.receipts = v.receipts === 'unset' ? null : v.receipts === 'on';
  }
  // The bounds only clamp periods; no message is ever decided by them, so a switch there would do nothing.
  if ((kind === 'minimum' || kind === 'maximum') && (out.requirePassword || (out.receipts !== undefined && out.receipts !== null))) {
    throw new UsageError(`ferry rules set: ${kind} is a bound; --require-password and --receipts belong to the default or a sender or domain rule`);
  }
  return out;
}

export async function rulesCommand(
  from: Config | AdminApiClient,
  args: string[],
  io: { out: (s: string) => void; err: (s: string) => void } = { out: console.log, err: console.error },
): Promise<number> {
  const [sub, ...rest] = args;
  if (!sub || !['list', 'set', 'delete'].includes(sub)) {
    io.err(RULES_USAGE);
    return 2;
  }
  let source: RulesSource | undefined;
  try {
    const f = parseFlags(`rules ${sub}`, rest, {
      json: { type: 'boolean' },
      days: { type: 'string' },
      'download-limit': { type: 'string' },
      'require-password': { type: 'string' },
      receipts: { type: 'string' },
      reapply: { type: 'boolean' },
    });
    const v = f.values;
    const id = f.positionals[0];
    if (sub !== 'list' && !id) throw new UsageError(`ferry rules ${sub}: which rule? e.g. recipient_domain:example.com or default`);
    let change: RuleChange | undefined;
    if (sub === 'set') {
      if (!v.days) throw new UsageError('ferry rules set: --days N is required');
      const { kind, match } = parseRuleId(id!);
      const limit = v['download-limit'];
      change = {
        kind,
        match,
        periodMs: parseNumber('days', v.days) * DAY_MS,
        downloadLimit: limit === undefined || limit === '' || limit === 'none' ? null : parseNumber('download-limit', limit, { integer: true, min: 1 }),
        ...parseSwitches(kind, v),
      };
    }
    source = from instanceof AdminApiClient ? remoteRules(from) : await localRules(from, io.err);
    switch (sub) {
      case 'list': {
        const rules = await source.list();
        if (v.json) io.out(JSON.stringify(rules.map(({ rule, notes }) => ({ ...ruleJson(rule), notes })), null, 2));
        else
          io.out(
            table(
              ['RULE', 'PERIOD', 'DOWNLOAD LIMIT', 'SET BY', 'UPDATED', 'PASSWORD', 'RECEIPTS', 'NOTE'],
              rules.map(({ rule: r, notes }) => [
                r.id,
                formatDuration(r.periodMs),
                r.downloadLimit ?? '-',
                r.source === 'config' ? 'config' : r.updatedBy,
                when(r.updatedAt),
                switchWords(r).password,
                switchWords(r).receipts,
                notes.filter((n) => !n.startsWith('set by ')).join('; '),
              ]),
            ),
          );
        return 0;
      }
      case 'set': {
        const { rule, reapplied } = await source.set(id!, change!, !!v.reapply);
        const said = [
          rule.downloadLimit ? `, ${rule.downloadLimit} downloads per file` : '',
          rule.requirePassword ? ', password required' : '',
          rule.receipts === true ? ', receipts on' : rule.receipts === false ? ', receipts off' : '',
        ].join('');
        io.out(v.json ? JSON.stringify(ruleJson(rule), null, 2) : `${rule.id}: ${formatPeriod(rule.periodMs)}${said}`);
        if (reapplied !== null) io.out(`Expiry recomputed for ${reapplied} live transfer(s).`);
        return 0;
      }
      case 'delete': {
        if (!(await source.delete(id!))) {
          io.err(`ferry rules delete: no rule ${id}`);
          return 1;
        }
        io.out(`${id}: deleted`);
        return 0;
      }
    }
    return 2;
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(err.message);
      return 2;
    }
    if (err instanceof RetentionRuleError) {
      io.err(`ferry rules ${sub}: ${err.message}`);
      return 1;
    }
    if (err instanceof AdminApiError) {
      io.err(`ferry rules ${sub}: ${err.message}`);
      return err.exitCode;
    }
    throw err;
  } finally {
    await source?.close();
  }
}
