/**
 * The node options this process was given (node's command line and NODE_OPTIONS), as flag names
 * without values and with `_` spelled `-` as node accepts both: "--max_semi_space_size=4" is
 * "--max-semi-space-size". For settings Ferry applies only when the admin did not choose.
 */
export function givenNodeFlags(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): string[] {
  return [...execArgv, ...nodeOptions.split(/\s+/)].map((a) => a.replace(/_/g, '-').split('=')[0]!);
}
