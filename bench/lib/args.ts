// Options of one scenario: --name value, --name=value and --flag. Every value is checked and a
// bad one stops the bench with a message that names the option and what it expects.

export class UsageError extends Error {
  override name = 'UsageError';
}

export interface OptionSpec {
  /** "int" and "number" with inclusive bounds; "flag" takes no value. */
  kind: 'int' | 'number' | 'flag' | 'string';
  min?: number;
  max?: number;
  help: string;
}

export type Parsed = Record<string, number | boolean | string | undefined>;

export function parseOptions(argv: string[], specs: Record<string, OptionSpec>, scenario: string): Parsed {
  const out: Parsed = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new UsageError(`${scenario}: unexpected argument "${a}"`);
    const eq = a.indexOf('=');
    const name = (eq >= 0 ? a.slice(2, eq) : a.slice(2)).trim();
    const spec = specs[name];
    if (!spec) throw new UsageError(`${scenario}: unknown option --${name} (options: ${Object.keys(specs).map((k) => `--${k}`).join(', ')})`);
    if (spec.kind === 'flag') {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`);
      out[name] = true;
      continue;
    }
    const v = eq >= 0 ? a.slice(eq + 1) : argv[++i];
    if (v === undefined || v === '') throw new UsageError(`--${name} needs a value`);
    if (spec.kind === 'string') {
      out[name] = v;
      continue;
    }
    const n = Number(v);
    const bounds = `${spec.min ?? '-inf'} to ${spec.max ?? 'inf'}`;
    if (!Number.isFinite(n) || (spec.kind === 'int' && !Number.isInteger(n)) || (spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
      throw new UsageError(`--${name} expects ${spec.kind === 'int' ? 'a whole number' : 'a number'} from ${bounds}, got "${v}"`);
    }
    out[name] = n;
  }
  return out;
}

export function describeOptions(specs: Record<string, OptionSpec>): string {
  const rows = Object.entries(specs).map(([k, s]) => [`--${k}${s.kind === 'flag' ? '' : ' N'.replace('N', s.kind === 'string' ? 'X' : 'N')}`, s.help]);
  const w = Math.max(...rows.map((r) => r[0]!.length));
  return rows.map(([a, b]) => `    ${a!.padEnd(w)}  ${b}`).join('\n');
}
