// The admin pages use the download pages' stylesheet (same look: header, cards, buttons,
// colours, dark mode) plus these few rules for tables, forms and charts.

export const ADMIN_CSS = `.admin-wide .wrap { max-width: 72rem; }
header.site .admin-tag { color: var(--muted); font-weight: 600; font-size: 0.9rem; }
header.site nav.admin { margin-left: auto; display: flex; align-items: center; gap: 1rem; flex-wrap: wrap; }
header.site nav.admin a { text-decoration: none; font-weight: 600; }
header.site nav.admin a[aria-current] { color: var(--fg); text-decoration: underline; text-underline-offset: 0.35em; }
header.site nav.admin form { margin: 0; }
button.link { font: inherit; color: var(--accent); background: none; border: 0; padding: 0; cursor: pointer; text-decoration: underline; }
.stats { display: grid; grid-template-columns: repeat(auto-fit, minmax(12rem, 1fr)); gap: 1rem; margin: 0 0 1.5rem; }
.stat { padding: 1rem 1.25rem; }
.stat .n { font-size: 1.6rem; font-weight: 700; display: block; }
.stat .l { color: var(--muted); font-size: 0.9rem; }
figure.chart { margin: 0 0 1.25rem; padding: 1rem 1.25rem; }
figure.chart figcaption { font-weight: 650; margin-bottom: 0.5rem; }
figure.chart svg { display: block; height: auto; }
figure.chart .bar { fill: var(--accent); }
figure.chart .grid { stroke: var(--line); stroke-width: 1; }
figure.chart .axis { fill: var(--muted); font-size: 12px; font-family: inherit; }
.table-wrap { overflow-x: auto; }
table.data { width: 100%; border-collapse: collapse; font-size: 0.925rem; }
table.data th, table.data td { text-align: left; padding: 0.45rem 0.6rem; border-bottom: 1px solid var(--line); vertical-align: top; overflow-wrap: anywhere; }
table.data th { color: var(--muted); font-weight: 600; white-space: nowrap; }
table.data td.num, table.data th.num { text-align: right; white-space: nowrap; }
form.search, form.inline, form.stack { display: flex; flex-wrap: wrap; gap: 0.75rem 1rem; align-items: flex-end; margin: 0 0 1.25rem; }
form.inline { margin: 0; gap: 0.5rem; }
form.stack { flex-direction: column; align-items: stretch; }
label.field { display: flex; flex-direction: column; gap: 0.25rem; font-size: 0.875rem; color: var(--muted); }
label.field input, label.field select, label.field textarea, form.inline input, form.inline select {
  font: inherit; color: var(--fg); background: var(--card); border: 1px solid var(--line); border-radius: 0.375rem; padding: 0.45rem 0.6rem; min-height: 2.5rem;
}
label.field input:focus-visible, label.field select:focus-visible, form.inline input:focus-visible { outline: 3px solid var(--focus); outline-offset: 1px; }
label.check { display: inline-flex; gap: 0.4rem; align-items: center; font-size: 0.9rem; }
.btn.small { min-height: 2.25rem; padding: 0.25rem 0.75rem; font-size: 0.9rem; }
.btn.danger { border-color: #b3261e; color: #b3261e; background: transparent; }
.actions-grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(16rem, 1fr)); gap: 1rem; margin: 1rem 0 1.5rem; }
.actions-grid .card { padding: 1rem 1.25rem; }
.actions-grid h3 { margin: 0 0 0.5rem; font-size: 1rem; }
.flash { padding: 0.75rem 1rem; margin: 0 0 1rem; border-left: 4px solid var(--accent); }
.error { padding: 0.75rem 1rem; margin: 0 0 1rem; border-left: 4px solid #b3261e; background: var(--warn-bg); color: var(--warn-fg); }
.badge { display: inline-block; padding: 0.05rem 0.5rem; border-radius: 999px; font-size: 0.8rem; font-weight: 600; background: var(--soft); }
.badge.live { background: #e6f4ea; color: #1e5e2f; }
.badge.held { background: var(--warn-bg); color: var(--warn-fg); }
@media (prefers-color-scheme: dark) { .badge.live { background: #17351f; color: #b7e4c2; } }
.badge.r-delivered { background: #e6f4ea; color: #1e5e2f; }
.badge.r-failed, .badge.q-bouncing { background: var(--warn-bg); color: var(--warn-fg); }
@media (prefers-color-scheme: dark) { .badge.r-delivered { background: #17351f; color: #b7e4c2; } }
ul.rcpts { list-style: none; margin: 0; padding: 0; }
ul.rcpts li + li { margin-top: 0.2rem; }
.stat .n a { color: inherit; }
table.data td.nowrap { white-space: nowrap; overflow-wrap: normal; }
.pager { display: flex; gap: 1rem; margin: 1rem 0; }
.login { max-width: 28rem; padding: 1.25rem; }
section + section, .table-wrap + section { margin-top: 2rem; }
h2 { margin: 0 0 0.75rem; }
`;
