// Preloaded into the Ferry child with `node --import` (never into production): reports
// process.memoryUsage() on stderr, because VmHWM says how much memory the process held at its
// peak but not what kind (V8 heap, Buffers outside the heap, or native code such as SQLite).
// Plain JavaScript, because the child runs compiled code without a TypeScript loader.
const interval = Number(process.env.BENCH_PROBE_INTERVAL_MS) || 100;
const emit = () => {
  const m = process.memoryUsage();
  process.stderr.write(`BENCH_PROBE ${JSON.stringify({ t: Date.now(), rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers })}\n`);
};
setInterval(emit, interval).unref();
