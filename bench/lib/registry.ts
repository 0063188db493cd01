import type { OptionSpec, Parsed } from './args.js';
import type { ScenarioReport } from './report.js';
import type { NEEDED } from './services.js';

// What a scenario is to bench/run.ts: a name, its options, the Debian packages it needs (the
// runner installs them once, before the first scenario) and a run() that returns its report.
// The runner prints the report, writes the JSON and the SVG, and stops on nothing: a scenario
// that fails is reported and the next one runs.

export interface RunContext {
  log(msg: string): void;
}

export interface ScenarioDef {
  name: string;
  /** One line for --help. */
  summary: string;
  /** Part of a plain `npm run bench`. */
  inDefault: boolean;
  options: Record<string, OptionSpec>;
  needs?: (keyof typeof NEEDED)[];
  /** Why the scenario cannot run here (e.g. no /proc), or undefined. */
  unavailable?(): string | undefined;
  run(opts: Parsed, ctx: RunContext): Promise<ScenarioReport>;
}

/** The value of a numeric option, or its default. */
export const num = (o: Parsed, k: string, d: number): number => (typeof o[k] === 'number' ? (o[k] as number) : d);
export const flag = (o: Parsed, k: string): boolean => o[k] === true;
