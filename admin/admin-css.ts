// The admin pages use the download pages' stylesheet (same look: header, cards, buttons,
// colours, dark mode) plus these few rules for tables, forms and charts.

export const ADMIN_CSS = `.admin-wide .wrap { max-width: 72rem; }
header.site .admin-tag { color: var(--muted); font-weight: 600; font-size: 0.9rem; }
/* Phone first: brand and logout on one line, the navigation one scrollable row below it
   (it took a third of a 390x844 screen when it wrapped onto four lines). */
.admin-wide header.site .wrap { flex-wrap: wrap; row-gap: 0; }
header.site form.logout { margin: 0 0 0 auto; }
header.site form.logout .who { color: var(--muted); }
header.site nav.admin { order: 3; flex: 1 0 100%; display: flex; gap: 1.1rem; overflow-x: auto; white-space: nowrap; padding: 0.2rem 0 0.6rem; scrollbar-width: thin; }
header.site nav.admin a { text-decoration: none; font-weight: 600; padding: 0.35rem 0; }
header.site nav.admin a[aria-current] { color: var(--fg); text-decoration: underline; text-underline-offset: 0.35em; }
@media (min-width: 62rem) {
  header.site nav.admin { order: 2; flex: 0 1 auto; margin-left: auto; padding: 0; }
  header.site form.logout { order: 3; margin-left: 1.25rem; }
}
button.link { font: inherit; color: var(--accent); background: none; border: 0; padding: 0; cursor: pointer; text-decoration: underline; }
/* Two or three columns, never auto-fit: six dashboard cards fill two rows of three (or three of
   two) instead of five and one left alone. */
.stats { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 0.75rem; margin: 0 0 1.5rem; }
@media (min-width: 48rem) { .stats { grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 1rem; } }
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
/* break-word, not anywhere: a word breaks only when it cannot fit a line on its own, so narrow
   columns no longer split "downloa/ded" while long addresses still wrap. */
table.data th, table.data td { text-align: left; padding: 0.45rem 0.6rem; border-bottom: 1px solid var(--line); vertical-align: top; overflow-wrap: break-word; word-break: normal; hyphens: none; }
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
dl.detail { margin: 0; display: grid; gap: 0.1rem; }
dl.detail div { display: flex; flex-wrap: wrap; gap: 0 0.4rem; }
dl.detail dt { color: var(--muted); }
dl.detail dt::after { content: ":"; }
dl.detail dd { margin: 0; min-width: 0; overflow-wrap: anywhere; }
/* On a phone each row is a card of "Column: value" lines (the cells carry data-label, layout.ts
   td()): no column is cut off and nothing scrolls sideways. */
@media (max-width: 47.99rem) {
  table.data thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
  table.data, table.data tbody, table.data tr { display: block; width: 100%; }
  table.data tr { border: 1px solid var(--line); border-radius: 0.5rem; padding: 0.35rem 0.75rem; margin: 0 0 0.75rem; background: var(--card); }
  /* The label sits in the cell's left padding: the cell stays one block, so its text, badges and
     line breaks flow as on the desktop (a grid would make each of them a cell of its own). */
  table.data td { display: block; position: relative; border: 0; padding: 0.3rem 0 0.3rem 8.25rem; min-height: 1.9rem; }
  table.data td.num, table.data td.nowrap { text-align: left; white-space: normal; }
  table.data td::before { content: attr(data-label); position: absolute; left: 0; top: 0.3rem; width: 7.5rem; color: var(--muted); font-weight: 600; }
  table.data td[data-label=""]::before, table.data td:not([data-label])::before { content: none; }
  table.data td:not([data-label]), table.data td[data-label=""] { padding-left: 0; min-height: 0; }
  table.data td input { max-width: 100%; box-sizing: border-box; }
  .table-wrap { overflow-x: visible; }
}
.pager { display: flex; gap: 1rem; margin: 1rem 0; }
.login { max-width: 28rem; padding: 1.25rem; }
section + section, .table-wrap + section { margin-top: 2rem; }
h2 { margin: 0 0 0.75rem; }
`;
