import { brandColors, DARK_BG, DARK_CARD, LIGHT_BG, LIGHT_CARD, type BrandColors } from '../brand.js';

// The one stylesheet, built once per app with the brand's colours, and kept as a string so the
// compiled package carries it without a copy step. System fonts only: pages load nothing from
// other hosts. Contrast: body text and muted text meet WCAG AA on both backgrounds, in light and
// dark mode; the accent colours are adjusted in brand.ts to do the same.

export function buildCss(colors: BrandColors = brandColors('#0b57d0')): string {
  return `:root {
  color-scheme: light dark;
  --fg: #1b1f24;
  --muted: #555f6b;
  --bg: ${LIGHT_BG};
  --card: ${LIGHT_CARD};
  --line: #dfe3e8;
  --soft: #eef1f4;
  --accent: ${colors.accent};
  --on-accent: ${colors.onAccent};
  --focus: ${colors.accent};
  --warn-bg: #fff4e5;
  --warn-fg: #7a3e00;
}
@media (prefers-color-scheme: dark) {
  :root {
    --fg: #e8eaed;
    --muted: #a9b1bb;
    --bg: ${DARK_BG};
    --card: ${DARK_CARD};
    --line: #30353c;
    --soft: #24282e;
    --accent: ${colors.accentDark};
    --on-accent: ${colors.onAccentDark};
    --focus: ${colors.accentDark};
    --warn-bg: #3a2a12;
    --warn-fg: #ffd8a8;
  }
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body {
  margin: 0;
  font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "Noto Sans", "DejaVu Sans", Arial, sans-serif;
  color: var(--fg);
  background: var(--bg);
  min-height: 100vh;
  display: flex;
  flex-direction: column;
}
.wrap { width: 100%; max-width: 48rem; margin: 0 auto; padding: 0 1rem; }
header.site { border-top: 4px solid var(--accent); border-bottom: 1px solid var(--line); background: var(--card); }
header.site .wrap { display: flex; align-items: center; gap: 0.625rem; min-height: 3.5rem; }
header.site img.logo { height: 2rem; width: auto; max-width: 12rem; object-fit: contain; }
.brand { font-weight: 650; font-size: 1.05rem; letter-spacing: 0.01em; }
main { flex: 1 0 auto; padding-top: 0.75rem; padding-bottom: 2.5rem; }
footer.site { color: var(--muted); font-size: 0.875rem; padding: 1.25rem 0 2rem; border-top: 1px solid var(--line); }
footer.site p { margin: 0 0 0.75rem; }
footer.site nav ul { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: 0.25rem 1rem; }
footer.site nav a[aria-current] { color: var(--fg); font-weight: 600; text-decoration: none; }
h1 { font-size: 1.6rem; line-height: 1.25; margin: 1rem 0 1.25rem; overflow-wrap: anywhere; font-weight: 680; }
h2 { font-size: 1.1rem; line-height: 1.3; margin: 0; font-weight: 650; }
p { margin: 0.75rem 0; }
a { color: var(--accent); text-underline-offset: 0.15em; }
a:focus-visible, button:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; border-radius: 0.375rem; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 0.75rem; }
.summary { padding: 1rem 1.25rem; }
dl.meta { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 0.375rem 1.25rem; margin: 0; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; overflow-wrap: anywhere; }
.left { color: var(--muted); white-space: nowrap; }
.local-time { color: var(--muted); }
.files-head { display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between; gap: 0.75rem 1rem; margin: 2rem 0 0.875rem; }
.zip { display: flex; flex-direction: column; align-items: flex-end; gap: 0.25rem; }
.zip .hint { color: var(--muted); font-size: 0.8125rem; }
ul.files { list-style: none; margin: 0; padding: 0; }
li.file { display: grid; grid-template-columns: 2.5rem minmax(0, 1fr) auto; gap: 0.5rem 1rem; align-items: start; padding: 1rem 1.25rem; }
li.file + li.file { border-top: 1px solid var(--line); }
.ficon { display: block; width: 2.5rem; height: 3rem; }
.ficon .page { fill: var(--soft); stroke: var(--kind, var(--muted)); stroke-width: 1.5; }
.ficon .fold { fill: none; stroke: var(--kind, var(--muted)); stroke-width: 1.5; }
.ficon text { fill: var(--kind, var(--muted)); font-family: inherit; font-weight: 700; letter-spacing: 0.02em; }
.k-pdf { --kind: #c5221f; } .k-doc { --kind: #1a5fb4; } .k-sheet { --kind: #1e7b34; } .k-slides { --kind: #b54708; }
.k-image { --kind: #8a3ab9; } .k-video { --kind: #a4266d; } .k-audio { --kind: #0f6e7a; } .k-archive { --kind: #6b5a00; }
.k-text { --kind: #4a5560; } .k-other { --kind: #4a5560; }
@media (prefers-color-scheme: dark) {
  .k-pdf { --kind: #ff8a80; } .k-doc { --kind: #8ab4f8; } .k-sheet { --kind: #81c995; } .k-slides { --kind: #fdba74; }
  .k-image { --kind: #d7aefb; } .k-video { --kind: #ff8bcb; } .k-audio { --kind: #78d9ec; } .k-archive { --kind: #fde293; }
  .k-text { --kind: #bdc1c6; } .k-other { --kind: #bdc1c6; }
}
.fname { font-weight: 600; font-size: 1.05rem; line-height: 1.35; margin: 0.125rem 0 0.25rem; overflow-wrap: anywhere; }
.facts { color: var(--muted); font-size: 0.9rem; margin: 0; overflow-wrap: anywhere; }
.facts .sep { padding: 0 0.375rem; }
.nw { white-space: nowrap; }
.hashrow { display: grid; grid-template-columns: auto minmax(0, 1fr) auto; grid-template-areas: "label hash copy"; align-items: start; gap: 0.25rem 0.625rem; margin-top: 0.5rem; }
.hashrow .label { grid-area: label; color: var(--muted); font-size: 0.8125rem; padding-top: 0.05rem; }
.hashrow code.hash { grid-area: hash; }
.hashrow button.copy { grid-area: copy; }
code.hash { font: 0.8125rem/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace; word-break: break-all; user-select: all; -webkit-user-select: all; color: var(--fg); min-width: 0; }
.actions { align-self: center; }
.btn {
  display: inline-flex; align-items: center; justify-content: center; gap: 0.5rem;
  min-height: 2.75rem; padding: 0.5rem 1.125rem; border-radius: 0.5rem;
  font: inherit; font-weight: 600; text-decoration: none; white-space: nowrap; cursor: pointer;
  border: 1px solid var(--accent);
}
.btn.primary { background: var(--accent); color: var(--on-accent); }
.btn.primary:hover { filter: brightness(1.08); }
.btn.secondary { background: transparent; color: var(--accent); }
.btn.secondary:hover { background: var(--soft); }
.btn svg { width: 1.125rem; height: 1.125rem; flex: none; }
button.copy {
  font: inherit; font-size: 0.8125rem; line-height: 1.2; color: var(--accent); background: transparent;
  border: 1px solid var(--line); border-radius: 0.375rem; padding: 0.2rem 0.5rem; cursor: pointer; flex: none;
}
button.copy:hover { background: var(--soft); }
button.copy.done { color: var(--fg); }
.used { color: var(--warn-fg); background: var(--warn-bg); border-radius: 0.375rem; padding: 0.25rem 0.5rem; font-size: 0.875rem; font-weight: 600; white-space: nowrap; }
.note { color: var(--muted); font-size: 0.9rem; margin-top: 1.5rem; }
.notice { padding: 1.25rem; }
.notice p:first-child { margin-top: 0; }
.notice p:last-child { margin-bottom: 0; }
.status-code { color: var(--muted); font-size: 0.875rem; margin: 1.5rem 0 0; }
/* The sender's management page (web/pages/manage.ts): per-recipient status, forms. */
ul.fstatus { list-style: none; margin: 0.5rem 0 0; padding: 0; font-size: 0.9rem; }
ul.fstatus li { margin: 0.25rem 0; overflow-wrap: anywhere; }
ul.fstatus .fn { font-weight: 600; }
ul.fstatus .extra { color: var(--muted); }
.actions form { margin: 0; }
.actions form + form { margin-top: 0.5rem; }
.actions form .btn { width: 100%; }
.panel { padding: 1rem 1.25rem; }
.panel p:first-child { margin-top: 0; }
h2.section { margin: 2rem 0 0.875rem; }
form.row { display: flex; flex-wrap: wrap; align-items: flex-end; gap: 0.75rem 1rem; margin: 0.75rem 0 0; }
label.field { display: flex; flex-direction: column; gap: 0.25rem; font-weight: 600; }
input.num { font: inherit; min-height: 2.75rem; width: 7rem; padding: 0.375rem 0.625rem; border: 1px solid var(--muted); border-radius: 0.5rem; background: var(--card); color: var(--fg); }
label.check { display: flex; align-items: center; gap: 0.625rem; min-height: 2.75rem; }
label.check input { width: 1.25rem; height: 1.25rem; margin: 0; accent-color: var(--accent); flex: none; }
input:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.btn.danger { background: var(--warn-bg); color: var(--warn-fg); border-color: var(--warn-fg); }
.flash { padding: 0.875rem 1.25rem; margin: 0 0 1rem; font-weight: 600; }
.flash.error { color: var(--warn-fg); background: var(--warn-bg); border-color: var(--warn-fg); }
/* The password prompt of a protected transfer (web/pages/password.ts). */
form.unlock { display: flex; flex-direction: column; align-items: flex-start; gap: 0.5rem; margin: 1rem 0 0; }
input.pw { font: inherit; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace; letter-spacing: 0.04em; min-height: 2.75rem; width: 100%; max-width: 24rem; padding: 0.375rem 0.625rem; border: 1px solid var(--muted); border-radius: 0.5rem; background: var(--card); color: var(--fg); }
form.unlock .hint { margin: 0 0 0.5rem; color: var(--muted); font-size: 0.875rem; }
.vh { position: absolute !important; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
[hidden] { display: none !important; }
@media (max-width: 36rem) {
  h1 { font-size: 1.35rem; margin-top: 0.75rem; }
  .summary { padding: 0.875rem 1rem; }
  dl.meta { grid-template-columns: 1fr; gap: 0; }
  dl.meta dd { margin-bottom: 0.5rem; }
  dl.meta dd:last-child { margin-bottom: 0; }
  .files-head { flex-direction: column; align-items: stretch; }
  .zip { align-items: stretch; }
  .zip .btn { width: 100%; }
  .zip .hint { text-align: center; }
  li.file { grid-template-columns: 2.5rem minmax(0, 1fr); padding: 1rem; }
  .actions { grid-column: 1 / -1; grid-row: auto; margin-top: 0.5rem; }
  .actions .btn { width: 100%; }
  .hashrow { grid-template-columns: minmax(0, 1fr) auto; grid-template-areas: "label copy" "hash hash"; align-items: center; }
}
@media (prefers-reduced-motion: no-preference) {
  .btn, button.copy { transition: background-color 120ms ease, filter 120ms ease; }
}
`;
}

/** The stylesheet with the default brand colour (for callers that do not build an app). */
export const FERRY_CSS = buildCss();
