// `ferry` from the TypeScript sources, for tests that need Ferry as a child process (signals,
// exit status): node --import tsx test/ops/run-ferry.ts start
import { main } from '../../cli/main.js';

void main(process.argv.slice(2));
