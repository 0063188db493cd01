import { html, type Html } from '../web/html.js';

// Server-rendered SVG bar charts for the dashboard: no script, no external resource, nothing
// inline the page CSP would block (colours come from classes in the admin stylesheet, not
// style attributes). Each bar has a <title> (hover text) and the chart a text summary for
// screen readers.

export interface ChartPoint {
  /** YYYY-MM-DD */
  day: string;
  value: number;
}

/** 1, 2, 5 x 10^n at or above `v`, so the axis reads in round numbers. */
export function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function barChart(opts: { id: string; title: string; points: readonly ChartPoint[]; format?: (n: number) => string }): Html {
  const fmt = opts.format ?? ((n: number) => String(n));
  const W = 720;
  const H = 200;
  const left = 64;
  const right = 8;
  const top = 12;
  const bottom = 28;
  const plotW = W - left - right;
  const plotH = H - top - bottom;
  const n = Math.max(opts.points.length, 1);
  const max = niceMax(Math.max(0, ...opts.points.map((p) => p.value)));
  const slot = plotW / n;
  const barW = Math.max(1, slot * 0.7);
  const total = opts.points.reduce((s, p) => s + p.value, 0);
  const bars = opts.points.map((p, i) => {
    const h = p.value > 0 ? Math.max(1, (p.value / max) * plotH) : 0;
    const x = left + i * slot + (slot - barW) / 2;
    const y = top + plotH - h;
    return html`<rect class="bar" x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${barW.toFixed(1)}" height="${h.toFixed(1)}"><title>${p.day}: ${fmt(p.value)}</title></rect>`;
  });
  const grid = [0, 0.5, 1].map((f) => {
    const y = top + plotH - f * plotH;
    return html`<line class="grid" x1="${left}" x2="${W - right}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}"/><text class="axis" x="${left - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end">${fmt(max * f)}</text>`;
  });
  const labelAt = (i: number, anchor: string) =>
    opts.points[i] ? html`<text class="axis" x="${(left + i * slot + slot / 2).toFixed(1)}" y="${H - 8}" text-anchor="${anchor}">${opts.points[i]!.day.slice(5)}</text>` : '';
  const titleId = `${opts.id}-title`;
  const descId = `${opts.id}-desc`;
  return html`<figure class="chart card" id="${opts.id}">
<figcaption id="${titleId}">${opts.title}</figcaption>
<svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-labelledby="${titleId} ${descId}" xmlns="http://www.w3.org/2000/svg">
<desc id="${descId}">${opts.points.length} days from ${opts.points[0]?.day ?? '-'} to ${opts.points.at(-1)?.day ?? '-'}; total ${fmt(total)}; highest day ${fmt(Math.max(0, ...opts.points.map((p) => p.value)))}.</desc>
${grid}${bars}${labelAt(0, 'start')}${labelAt(Math.floor((n - 1) / 2), 'middle')}${labelAt(n - 1, 'end')}
</svg>
</figure>`;
}
