// `ferry` from the TypeScript sources as a child process, for the CLI tests:
// node --import tsx test/admin/run-cli.ts purge --dry-run --config FILE
import { main } from '../../cli/main.js';

void main(process.argv.slice(2));
