import fs from 'node:fs';

export interface ParsedArgs {
  command: string | undefined;
  config: string | undefined;
  /** --server URL: the admin commands through that Ferry's admin API (cli/admin-client.ts). */
  server: string | undefined;
  help: boolean;
  rest: string[];
}

/** `ferry <command> [--config FILE]`; `npm start` relies on ./ferry.yaml being picked up when present. */
export function parseArgs(argv: string[]): ParsedArgs {
  const out: ParsedArgs = { command: undefined, config: undefined, server: undefined, help: false, rest: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--config' || a === '-c') {
      const v = argv[++i];
      if (!v) throw new Error('--config needs a file name');
      out.config = v;
    } else if (a.startsWith('--config=')) out.config = a.slice('--config='.length);
    else if (a === '--server') {
      const v = argv[++i];
      if (!v) throw new Error('--server needs a URL (https://ferry.example.org)');
      out.server = v;
    } else if (a.startsWith('--server=')) out.server = a.slice('--server='.length);
    else if (a === '--help' || a === '-h') out.help = true;
    else if (!out.command && !a.startsWith('-')) out.command = a;
    else out.rest.push(a);
  }
  if (!out.config) {
    if (process.env.FERRY_CONFIG) out.config = process.env.FERRY_CONFIG;
    else if (fs.existsSync('ferry.yaml')) out.config = 'ferry.yaml';
  }
  return out;
}
