import { ensureBuilt } from './lib/build.js';
import { memoryScenario, type MemoryArgs } from './scenarios/memory.js';

// `npm run bench [-- <scenario>] [options]`. Each scenario runs Ferry as a child process from
// the compiled code (built first if dist/ is stale) and writes bench/results/<scenario>-<date>.json.

const USAGE = `Usage: npm run bench -- [scenario] [options]

Scenarios:
  memory     peak RSS of Ferry for one message with a large attachment, per attachment size
             (default scenario)

Options (memory):
  --large           add a 1 GiB attachment to the sizes
  --sizes A,B,...   attachment sizes in MiB (default 10,100,300)
  --runs N          runs per size (default 1); with N > 1 the table shows median (min-max)
  --relay KIND      next hop: sink (an SMTP server in the bench that counts and discards, default)
                    or outbox (files in Ferry's temp dir)
  --no-probe        do not preload the memoryUsage() probe into Ferry (heap/Buffer breakdown)
  -h, --help        this text`;

function fail(msg: string): never {
  console.error(`bench: ${msg}\n\n${USAGE}`);
  process.exit(2);
}

function parseMemoryArgs(argv: string[]): MemoryArgs {
  const args: MemoryArgs = { sizesMiB: [10, 100, 300], runs: 1, relay: 'sink', probe: true };
  let large = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v === undefined || v === '') fail(`${a} needs a value`);
      return v;
    };
    const name = a.split('=')[0];
    if (name === '--large') large = true;
    else if (name === '--no-probe') args.probe = false;
    else if (name === '--runs') {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 1 || n > 100) fail('--runs expects a whole number from 1 to 100');
      args.runs = n;
    } else if (name === '--sizes') {
      const sizes = value().split(',').map((s) => Number(s.trim()));
      if (!sizes.length || sizes.some((s) => !Number.isFinite(s) || s <= 0 || s > 16 * 1024)) fail('--sizes expects MiB values such as 10,100,300');
      args.sizesMiB = sizes;
    } else if (name === '--relay') {
      const r = value();
      if (r !== 'sink' && r !== 'outbox') fail('--relay expects sink or outbox');
      args.relay = r;
    } else fail(`unknown option ${a}`);
  }
  if (large && !args.sizesMiB.includes(1024)) args.sizesMiB.push(1024);
  args.sizesMiB.sort((a, b) => a - b);
  return args;
}

async function main(argv: string[]): Promise<number> {
  if (argv.includes('-h') || argv.includes('--help')) {
    console.log(USAGE);
    return 0;
  }
  const scenario = argv[0] && !argv[0].startsWith('-') ? argv[0] : 'memory';
  const rest = argv[0] === scenario ? argv.slice(1) : argv;
  if (scenario !== 'memory') fail(`unknown scenario "${scenario}"`);
  const args = parseMemoryArgs(rest);
  await ensureBuilt((m) => console.log(`bench: ${m}`));
  return memoryScenario(args);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`bench: ${err.stack ?? err.message}`);
    process.exit(1);
  },
);
