// The program of a node's worker processes (cli/cluster.ts forks it). Not process.argv[1]:
// under `node -e` or an embedding launcher that is not a script that runs Ferry.
import { main } from './main.js';

void main(process.argv.slice(2));
