// For test/cli/young-generation.test.ts: allocates garbage with the young generation held, then
// released, and prints the young generation's size (MB) before and after each:
// "start N held M released K".
import v8 from 'node:v8';
import { holdYoungGeneration, releaseYoungGeneration } from '../../cli/young-generation.js';

const youngMb = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_size / 1048576;
const churn = () => {
  // Objects that survive a scavenge or two (a tenth kept a while): what makes V8 grow the space.
  let keep: object[] = [];
  for (let i = 0; i < 3e6; i++) {
    const o = { i, a: [i, i + 1] };
    if (i % 10 === 0) keep.push(o);
    if (keep.length > 50_000) keep = [];
  }
};
holdYoungGeneration();
const start = youngMb();
churn();
const held = youngMb();
releaseYoungGeneration();
churn();
console.log(`start ${start.toFixed(1)} held ${held.toFixed(1)} released ${youngMb().toFixed(1)}`);
