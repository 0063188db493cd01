import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './build.js';
import { spread, table, type Spread } from './stats.js';

// One shape for every scenario's figures: a metric (msgs/s, seconds, MB/s, peak RSS) measured
// for several systems (Ferry, Postfix, nginx, the raw ceiling) in interleaved rounds. The
// printed table, the JSON file and the SVG chart are all made from it, so the three never
// disagree.

export interface Series {
  system: string;
  /** One value per round, in round order (NaN for a round that failed). */
  values: number[];
}

export interface Metric {
  id: string;
  title: string;
  unit: string;
  better: 'higher' | 'lower';
  /** The system the ratios are about (Ferry's series); undefined for a Ferry-only metric. */
  subject?: string;
  series: Series[];
  /** The target of the issue this metric is read against, in words (not asserted). */
  target?: string;
  note?: string;
}

export interface SummarisedSeries extends Series {
  spread: Spread;
  /** subject median / this median (absent for the subject itself). */
  ratio?: number;
  /** subject / this, per round where both were measured: the interleaved ratios. */
  roundRatios?: Spread;
}

export interface SummarisedMetric extends Omit<Metric, 'series'> {
  series: SummarisedSeries[];
}

export interface ScenarioReport {
  scenario: string;
  title: string;
  started: string;
  finished: string;
  environment: ReturnType<typeof environment>;
  options: unknown;
  metrics: SummarisedMetric[];
  notes: string[];
  /** Scenario-specific detail (per-round records, profile summaries). */
  detail?: unknown;
  /** Extra text printed after the tables (e.g. the profile summary). */
  printable?: string[];
}

export function summarise(m: Metric): SummarisedMetric {
  const finite = (xs: number[]) => xs.filter((x) => Number.isFinite(x));
  const subject = m.subject ? m.series.find((s) => s.system === m.subject) : undefined;
  const subjectMedian = subject ? spread(finite(subject.values)).median : NaN;
  return {
    ...m,
    series: m.series.map((s) => {
      const sp = spread(finite(s.values));
      if (!subject || s === subject) return { ...s, spread: sp };
      const per: number[] = [];
      for (let i = 0; i < Math.min(s.values.length, subject.values.length); i++) {
        const a = subject.values[i]!;
        const b = s.values[i]!;
        if (Number.isFinite(a) && Number.isFinite(b) && b !== 0) per.push(a / b);
      }
      return { ...s, spread: sp, ratio: subjectMedian / sp.median, roundRatios: spread(per) };
    }),
  };
}

export function fmtNumber(x: number): string {
  if (!Number.isFinite(x)) return '-';
  const a = Math.abs(x);
  if (a >= 1000) return x.toFixed(0);
  if (a >= 100) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toPrecision(3);
}

/** The metric as a plain-text table: median, min, max, rounds, and Ferry / reference. */
export function formatMetric(m: SummarisedMetric): string {
  const rows = m.series.map((s) => [
    s.system,
    fmtNumber(s.spread.median),
    fmtNumber(s.spread.min),
    fmtNumber(s.spread.max),
    String(s.spread.n),
    s.ratio === undefined ? (m.subject === s.system ? '(subject)' : '') : fmtNumber(s.ratio),
    s.roundRatios && s.roundRatios.n ? `${fmtNumber(s.roundRatios.min)}-${fmtNumber(s.roundRatios.max)}` : '',
  ]);
  const ratioHead = m.subject ? `${m.subject} / this` : '';
  const head = `${m.title} (${m.unit}, ${m.better} is better)${m.target ? `\n  target: ${m.target}` : ''}${m.note ? `\n  ${m.note}` : ''}`;
  return `${head}\n${table(['system', 'median', 'min', 'max', 'n', ratioHead, m.subject ? 'per-round ratios' : ''], rows)
    .split('\n')
    .map((l) => `  ${l.trimEnd()}`)
    .join('\n')}`;
}

export function environment() {
  let commit: string | undefined;
  let dirty: boolean | undefined;
  try {
    commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8', timeout: 5000 }).trim();
    dirty = execFileSync('git', ['status', '--porcelain'], { cwd: ROOT, encoding: 'utf8', timeout: 5000 }).trim() !== '';
  } catch {
    /* not a git checkout */
  }
  return {
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    totalMemBytes: os.totalmem(),
    loadAverage: os.loadavg(),
    ferryNodeFlags: process.env.BENCH_FERRY_NODE_FLAGS || undefined,
    commit,
    dirty,
  };
}

function stampOf(when: Date): string {
  return when.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
}

function writeAtomically(file: string, text: string): void {
  fs.writeFileSync(`${file}.tmp`, text);
  fs.renameSync(`${file}.tmp`, file);
}

export const RESULTS_DIR = path.join(ROOT, 'bench', 'results');

/**
 * bench/results/<name>-<UTC time>.json and .svg, plus <name>-latest.json/.svg (overwritten) for
 * docs to point at. Written under .tmp and renamed so a reader never sees half a file.
 */
export function writeReport(report: ScenarioReport): { json: string; svg: string } {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const base = path.join(RESULTS_DIR, `${report.scenario}-${stampOf(new Date(report.started))}`);
  const json = JSON.stringify(report, null, 2) + '\n';
  const svg = renderSvg(report);
  writeAtomically(`${base}.json`, json);
  writeAtomically(`${base}.svg`, svg);
  writeAtomically(path.join(RESULTS_DIR, `${report.scenario}-latest.json`), json);
  writeAtomically(path.join(RESULTS_DIR, `${report.scenario}-latest.svg`), svg);
  return { json: `${base}.json`, svg: `${base}.svg` };
}

/** Older result files written before this format (e.g. memory-<date>.json) are left alone. */

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const COLORS = ['#0b57d0', '#e37400', '#188038', '#a142f4', '#d93025', '#5f6368'];

/**
 * A horizontal bar chart, one panel per metric: a bar at each system's median, a whisker from
 * min to max, and the ratio to the subject at the end. Hand-written SVG because a charting
 * library would be a dependency for one picture, and SVG is text the repository can diff.
 */
export function renderSvg(report: ScenarioReport): string {
  const W = 760;
  const labelW = 210;
  const barW = W - labelW - 150;
  const rowH = 22;
  const out: string[] = [];
  let y = 34;
  out.push(`<text x="10" y="22" font-size="15" font-weight="bold">${esc(report.title)}</text>`);
  for (const m of report.metrics) {
    y += 14;
    out.push(`<text x="10" y="${y}" font-size="12" font-weight="bold">${esc(`${m.title} (${m.unit}, ${m.better} is better)`)}</text>`);
    y += 8;
    const max = Math.max(...m.series.map((s) => (Number.isFinite(s.spread.max) ? s.spread.max : 0)), 1e-9);
    m.series.forEach((s, i) => {
      const color = s.system === m.subject || !m.subject ? COLORS[0]! : COLORS[(i % (COLORS.length - 1)) + 1]!;
      const scale = (v: number) => labelW + (Number.isFinite(v) ? (v / max) * barW : 0);
      const top = y + 3;
      out.push(`<text x="${labelW - 6}" y="${top + 12}" font-size="11" text-anchor="end">${esc(s.system)}</text>`);
      if (s.spread.n) {
        out.push(`<rect x="${labelW}" y="${top}" width="${Math.max(1, scale(s.spread.median) - labelW).toFixed(1)}" height="${rowH - 8}" fill="${color}" opacity="0.85"/>`);
        if (s.spread.n > 1) {
          const a = scale(s.spread.min).toFixed(1);
          const b = scale(s.spread.max).toFixed(1);
          const mid = top + (rowH - 8) / 2;
          out.push(`<line x1="${a}" y1="${mid}" x2="${b}" y2="${mid}" stroke="#202124" stroke-width="1.2"/>`);
          out.push(`<line x1="${a}" y1="${mid - 4}" x2="${a}" y2="${mid + 4}" stroke="#202124"/><line x1="${b}" y1="${mid - 4}" x2="${b}" y2="${mid + 4}" stroke="#202124"/>`);
        }
        const ratio = s.ratio !== undefined && Number.isFinite(s.ratio) ? `  (${m.subject}/this ${fmtNumber(s.ratio)})` : '';
        out.push(`<text x="${(scale(s.spread.max) + 6).toFixed(1)}" y="${top + 12}" font-size="11">${esc(fmtNumber(s.spread.median) + ratio)}</text>`);
      } else {
        out.push(`<text x="${labelW + 4}" y="${top + 12}" font-size="11" fill="#d93025">not measured</text>`);
      }
      y += rowH;
    });
    if (m.target) {
      y += 12;
      out.push(`<text x="${labelW}" y="${y}" font-size="10" fill="#5f6368">${esc(`target: ${m.target}`)}</text>`);
    }
    y += 6;
  }
  y += 16;
  const env = report.environment;
  out.push(
    `<text x="10" y="${y}" font-size="10" fill="#5f6368">${esc(`${report.started} · ${env.cpus} × ${env.cpuModel ?? 'CPU'} · Node ${env.node} · commit ${(env.commit ?? '?').slice(0, 10)}${env.dirty ? '+' : ''}${env.ferryNodeFlags ? ` · Ferry: node ${env.ferryNodeFlags}` : ''} · bars: median of interleaved rounds, whiskers: min-max`)}</text>`,
  );
  y += 10;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="#fff"/>\n${out.join('\n')}\n</svg>\n`;
}

/** The report's metrics as Markdown tables (for docs/performance.md). */
export function formatMarkdown(report: ScenarioReport): string {
  const out = [`### ${report.title}`, ''];
  for (const m of report.metrics) {
    out.push(`**${m.title}** (${m.unit}, ${m.better} is better${m.target ? `; target: ${m.target}` : ''})`, '');
    const ratioCol = m.subject ? [`${m.subject} / this (per-round range)`] : [];
    out.push(`| system | median | min | max | n |${ratioCol.map((c) => ` ${c} |`).join('')}`);
    out.push(`|---|---:|---:|---:|---:|${ratioCol.map(() => '---:|').join('')}`);
    for (const s of m.series) {
      const ratio = m.subject
        ? [s.ratio === undefined ? '' : `${fmtNumber(s.ratio)}${s.roundRatios?.n ? ` (${fmtNumber(s.roundRatios.min)}-${fmtNumber(s.roundRatios.max)})` : ''}`]
        : [];
      out.push(`| ${s.system} | ${fmtNumber(s.spread.median)} | ${fmtNumber(s.spread.min)} | ${fmtNumber(s.spread.max)} | ${s.spread.n} |${ratio.map((c) => ` ${c} |`).join('')}`);
    }
    out.push('');
  }
  return out.join('\n');
}
