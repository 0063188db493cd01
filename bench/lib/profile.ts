// Reads a V8 CPU profile (`node --cpu-prof`, a .cpuprofile JSON) of the Ferry child and says
// where the time went, by category: SMTP parsing, MIME splitting, base64 decoding, hashing,
// storage writes, and so on. Each sample's time goes to the innermost frame on its stack that
// belongs to a known category; frames without one (events, Buffer helpers, native code called
// from JavaScript) pass their time to the caller that asked for the work, so Buffer.from(...,
// 'base64') inside libbase64 counts as base64 decoding, and a native write under an fs stream
// as a storage write. Node's stream internals are a category of their own (the cost of piping).
// Start-up (loading modules) is left out of the percentages: it is paid once per process.
// Ferry runs as a bundle (scripts/build.mjs): each frame in dist/cli/ is first mapped back to the
// source file it came from (a package in node_modules or one of Ferry's own .ts files) through
// the source map beside the bundle, so the categories below see the same paths as before.

import fs from 'node:fs';
import { SourceMap } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** Wall time covered by the profile, ms (the whole life of the process). */
  profileMs: number;
  /** Busy CPU time, ms, without idle time and start-up. */
  busyMs: number;
  /** Busy time left out: loading modules, and everything outside the window when one was given. */
  startupMs: number;
  categories: { category: string; ms: number; pctOfBusy: number }[];
  topFunctions: { fn: string; where: string; category: string; ms: number; pctOfBusy: number }[];
  sendSeconds?: number;
  /** How many processes' profiles were summed (the primary and each worker of the node). */
  processes?: number;
  /** Only the samples from the message's first byte on were counted (ProfileWindow). */
  fromMessage?: boolean;
}

const STARTUP = 'start-up (loading modules)';
const FS_WRITES = 'storage writes (fs)';

const RULES: [RegExp, string][] = [
  [/\/smtp-server\/|\/gateway\/dot-unstuffing\.[jt]s/, 'SMTP parsing (smtp-server)'],
  [/libbase64|\/gateway\/(uudecode|decode-base64|decode-qp)\.[jt]s/, 'decoding (base64, quoted-printable)'],
  [/mailsplit|\/gateway\/(mime-parts|line-ends|bulk-splitter|mime-limits)\.[jt]s/, 'MIME splitting (mailsplit)'],
  [/internal\/crypto\/hash|\/gateway\/hash-counter\.[jt]s/, 'hashing (SHA-256)'],
  [/internal\/fs\/|node:fs|\/storage\/(fs-blob-store|durable-file)\.[jt]s|\/gateway\/spool\.[jt]s/, FS_WRITES],
  [/better-sqlite3|kysely|\/storage\/(records|database|open|migrations)\.[jt]s/, 'database (SQLite)'],
  [/\/nodemailer\/|\/gateway\/relay\.[jt]s/, 'relay to the next hop (nodemailer)'],
  [/pino|thread-stream|sonic-boom/, 'logging (pino)'],
  [/\/gateway\/notice/, 'notice (rewritten message)'],
  [/\/gateway\//, 'Ferry gateway, other'],
  [/\/web\//, 'Ferry web (download routes)'],
  [/\/fastify\/|\/@fastify\/|avvio|find-my-way|light-my-request/, 'Fastify (HTTP framework)'],
  [/_http_|internal\/http|node:http/, 'HTTP (node:http)'],
  [/internal\/stream_base_commons|node:net|internal\/net/, 'socket I/O'],
  [/internal\/modules\/|cjs-module-lexer|node:internal\/bootstrap/, STARTUP],
  [/internal\/streams\/|node:stream/, 'stream plumbing (Node streams)'],
];

function categoryOf(cf: CallFrame): string | undefined {
  if (cf.functionName === '(garbage collector)') return 'garbage collection';
  if (cf.functionName === '(idle)') return 'idle';
  if (cf.functionName === '(program)') return 'native / unattributed (program)';
  for (const [re, cat] of RULES) {
    if (!re.test(cf.url)) continue;
    // One rule matches fs reads and writes alike (same modules); the function says which.
    if (cat === FS_WRITES && /read/i.test(cf.functionName)) return 'storage reads (fs)';
    return cat;
  }
  return undefined;
}

const ROOT_URL = pathToFileURL(path.resolve(import.meta.dirname, '..', '..')).href + '/';

function shortUrl(url: string): string {
  const i = url.lastIndexOf('/node_modules/');
  if (i >= 0) return url.slice(i + 14);
  if (url.startsWith(ROOT_URL)) return url.slice(ROOT_URL.length);
  return url || '(native)';
}

/** Rewrites the frames of bundled files (dist/cli/*.js) to the source files their maps name. */
function mapBundleFrames(p: CpuProfile): void {
  const maps = new Map<string, { map: SourceMap; dir: string } | null>();
  for (const n of p.nodes) {
    const cf = n.callFrame;
    if (!/\/dist\/cli\/[^/]+\.js$/.test(cf.url)) continue;
    let m = maps.get(cf.url);
    if (m === undefined) {
      try {
        const file = fileURLToPath(cf.url);
        m = { map: new SourceMap(JSON.parse(fs.readFileSync(`${file}.map`, 'utf8'))), dir: path.dirname(file) };
      } catch {
        m = null;
      }
      maps.set(cf.url, m);
    }
    const e = m?.map.findEntry(cf.lineNumber, cf.columnNumber) as { originalSource?: string; originalLine?: number } | undefined;
    if (!m || !e?.originalSource) continue;
    cf.url = e.originalSource.startsWith('file:') ? e.originalSource : pathToFileURL(path.resolve(m.dir, e.originalSource)).href;
    cf.lineNumber = e.originalLine ?? cf.lineNumber;
  }
}

export interface ProfileWindow {
  /**
   * Leave out the samples taken before this moment (µs of CLOCK_MONOTONIC, as
   * `process.hrtime.bigint() / 1000n` in the bench: V8's profiler stamps its samples with the
   * same clock on Linux). For a profile of one message, the process's start (migrations,
   * Fastify's routes) is otherwise a good part of what it shows.
   */
  fromUs?: number;
  /** And those after this moment (the shutdown that writes the profile). */
  toUs?: number;
}

export function summariseProfile(p: CpuProfile, window: ProfileWindow = {}): ProfileSummary {
  mapBundleFrames(p);
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const self = new Map<number, number>();
  // NB a window that misses the profile entirely (another clock) would leave nothing: ignored then.
  const from = window.fromUs !== undefined && window.fromUs > p.startTime && window.fromUs < p.endTime ? window.fromUs : undefined;
  let outside = 0;
  let at = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    // timeDeltas[i] is the time since the previous sample: spent in what sample i shows.
    const dt = Math.max(0, p.timeDeltas[i] ?? 0);
    at += p.timeDeltas[i] ?? 0;
    if (from !== undefined && (at < from || (window.toUs !== undefined && at > window.toUs))) {
      if (categoryOf(byId.get(p.samples[i]!)!.callFrame) !== 'idle') outside += dt;
      continue;
    }
    self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + dt);
  }
  const catMemo = new Map<number, string>();
  const category = (id: number): string => {
    const memo = catMemo.get(id);
    if (memo) return memo;
    const chain: number[] = [];
    let cur: number | undefined = id;
    let found: string | undefined;
    while (cur !== undefined) {
      const m = catMemo.get(cur);
      if (m) {
        found = m;
        break;
      }
      chain.push(cur);
      found = categoryOf(byId.get(cur)!.callFrame);
      if (found) break;
      cur = parent.get(cur);
    }
    const c = found ?? 'other JavaScript (events, timers, Fastify, ...)';
    for (const x of chain) catMemo.set(x, c);
    return c;
  };
  const cats = new Map<string, number>();
  const fns = new Map<string, { fn: string; where: string; category: string; us: number }>();
  let busy = 0;
  for (const [id, us] of self) {
    const c = category(id);
    cats.set(c, (cats.get(c) ?? 0) + us);
    if (c === 'idle' || c === STARTUP) continue;
    busy += us;
    const cf = byId.get(id)!.callFrame;
    const key = `${cf.functionName}@${cf.url}:${cf.lineNumber}`;
    const f = fns.get(key) ?? { fn: cf.functionName || '(anonymous)', where: `${shortUrl(cf.url)}${cf.url ? `:${cf.lineNumber + 1}` : ''}`, category: c, us: 0 };
    f.us += us;
    fns.set(key, f);
  }
  const pct = (us: number) => (busy ? (100 * us) / busy : 0);
  return {
    profileMs: (p.endTime - p.startTime) / 1000,
    busyMs: busy / 1000,
    startupMs: ((cats.get(STARTUP) ?? 0) + outside) / 1000,
    categories: [...cats]
      .filter(([c]) => c !== 'idle' && c !== STARTUP)
      .sort((a, b) => b[1] - a[1])
      .map(([category, us]) => ({ category, ms: us / 1000, pctOfBusy: pct(us) })),
    topFunctions: [...fns.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, 15)
      .map((f) => ({ fn: f.fn, where: f.where, category: f.category, ms: f.us / 1000, pctOfBusy: pct(f.us) })),
  };
}

/**
 * Every process's profile in `dir` (`--cpu-prof-dir`: the primary and each worker write one),
 * summed into one summary of the node: with two workers sharing the messages, one process's
 * profile would show half the work, or none of it (the primary). Undefined when there is none.
 */
export function summariseProfileDir(dir: string, window: ProfileWindow = {}): ProfileSummary | undefined {
  const parts = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => summariseProfile(JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as CpuProfile, window));
  if (!parts.length) return undefined;
  const busyMs = parts.reduce((a, p) => a + p.busyMs, 0);
  const pct = (ms: number) => (busyMs ? (100 * ms) / busyMs : 0);
  const cats = new Map<string, number>();
  const fns = new Map<string, { fn: string; where: string; category: string; ms: number }>();
  for (const p of parts) {
    for (const c of p.categories) cats.set(c.category, (cats.get(c.category) ?? 0) + c.ms);
    for (const f of p.topFunctions) {
      const key = `${f.fn}@${f.where}`;
      const e = fns.get(key) ?? { fn: f.fn, where: f.where, category: f.category, ms: 0 };
      e.ms += f.ms;
      fns.set(key, e);
    }
  }
  return {
    profileMs: Math.max(...parts.map((p) => p.profileMs)),
    busyMs,
    startupMs: parts.reduce((a, p) => a + p.startupMs, 0),
    categories: [...cats].sort((a, b) => b[1] - a[1]).map(([category, ms]) => ({ category, ms, pctOfBusy: pct(ms) })),
    topFunctions: [...fns.values()].sort((a, b) => b.ms - a.ms).slice(0, 15).map((f) => ({ ...f, pctOfBusy: pct(f.ms) })),
    processes: parts.length,
  };
}

export function formatProfile(s: ProfileSummary): string {
  const lines = [`CPU profile of Ferry${s.processes && s.processes > 1 ? ` (${s.processes} processes summed)` : ''}: ${s.busyMs.toFixed(0)} ms busy (plus ${s.startupMs.toFixed(0)} ms ${s.fromMessage ? 'before and after the message' : 'start-up'}, left out) over ${(s.profileMs / 1000).toFixed(1)} s of process life${s.sendSeconds ? ` (message: ${s.sendSeconds.toFixed(2)} s under the profiler)` : ''}`];
  for (const c of s.categories) lines.push(`  ${c.pctOfBusy.toFixed(1).padStart(5)} %  ${c.ms.toFixed(0).padStart(7)} ms  ${c.category}`);
  lines.push('  top functions (self time):');
  for (const f of s.topFunctions.slice(0, 10)) lines.push(`  ${f.pctOfBusy.toFixed(1).padStart(5)} %  ${f.fn} (${f.where}) [${f.category}]`);
  return lines.join('\n');
}
