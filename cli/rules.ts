import type { Config } from '../config/schema.js';
import { formatDuration } from '../config/units.js';
import { DAY_MS, deleteRule, ruleJson, formatPeriod, listRules, parseRuleId, reapplyRetention, retentionBounds, RetentionRuleError, rulesInEffect, setRule } from '../storage/index.js';
import { cliActor, openAdminStorage, parseFlags, parseNumber, table, UsageError, when } from './admin-output.js';

// `ferry rules list|set|delete`: retention rules and bounds, against the configured database.

export const RULES_USAGE = `Usage: ferry rules <command> [options] [--config FILE]

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
  several recipients the shortest period wins. See docs/retention.md.`;

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
  config: Config,
  args: string[],
  io: { out: (s: string) => void; err: (s: string) => void } = { out: console.log, err: console.error },
): Promise<number> {
  const [sub, ...rest] = args;
  if (!sub || !['list', 'set', 'delete'].includes(sub)) {
    io.err(RULES_USAGE);
    return 2;
  }
  let storage;
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
    storage = await openAdminStorage(config, io.err);
    const { db } = storage;
    const bounds = retentionBounds(config);
    switch (sub) {
      case 'list': {
        const rules = await listRules(db);
        // Notes say what the bare numbers do not: a rule the bounds clamp, a file value overridden.
        const effect = new Map(rulesInEffect(rules, { ...bounds, rules: config.retention.rules }).map((r) => [r.id, r]));
        if (v.json) io.out(JSON.stringify(rules.map((r) => ({ ...ruleJson(r), notes: effect.get(r.id)?.notes ?? [] })), null, 2));
        else
          io.out(
            table(
              ['RULE', 'PERIOD', 'DOWNLOAD LIMIT', 'SET BY', 'UPDATED', 'PASSWORD', 'RECEIPTS', 'NOTE'],
              rules.map((r) => [
                r.id,
                formatDuration(r.periodMs),
                r.downloadLimit ?? '-',
                r.source === 'config' ? 'config' : r.updatedBy,
                when(r.updatedAt),
                switchWords(r).password,
                switchWords(r).receipts,
                (effect.get(r.id)?.notes ?? []).filter((n) => !n.startsWith('set by ')).join('; '),
              ]),
            ),
          );
        return 0;
      }
      case 'set': {
        if (!v.days) throw new UsageError('ferry rules set: --days N is required');
        const { kind, match } = parseRuleId(id!);
        const switches = parseSwitches(kind, v);
        const limit = v['download-limit'];
        const rule = await setRule(
          db,
          {
            kind,
            match,
            periodMs: parseNumber('days', v.days) * DAY_MS,
            downloadLimit: limit === undefined || limit === '' || limit === 'none' ? null : parseNumber('download-limit', limit, { integer: true, min: 1 }),
            ...switches,
          },
          cliActor(),
          bounds,
        );
        const said = [
          rule.downloadLimit ? `, ${rule.downloadLimit} downloads per file` : '',
          rule.requirePassword ? ', password required' : '',
          rule.receipts === true ? ', receipts on' : rule.receipts === false ? ', receipts off' : '',
        ].join('');
        io.out(v.json ? JSON.stringify(ruleJson(rule), null, 2) : `${rule.id}: ${formatPeriod(rule.periodMs)}${said}`);
        if (v.reapply) io.out(`Expiry recomputed for ${await reapplyRetention(db, cliActor(), bounds)} live transfer(s).`);
        return 0;
      }
      case 'delete': {
        const gone = await deleteRule(db, id!, cliActor());
        if (!gone) {
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
    throw err;
  } finally {
    await storage?.close();
  }
}
