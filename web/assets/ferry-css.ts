// The one stylesheet, kept as a string so the compiled package carries it without a copy step.
// System fonts only: pages load nothing from other hosts.

export const FERRY_CSS = `:root {
  color-scheme: light dark;
  --fg: #1d232b;
  --muted: #5b6673;
  --bg: #f6f7f9;
  --card: #ffffff;
  --line: #dde1e6;
  --accent: #0b5cad;
}
@media (prefers-color-scheme: dark) {
  :root {
    --fg: #e6e9ed;
    --muted: #a2acb7;
    --bg: #14181d;
    --card: #1c2128;
    --line: #313842;
    --accent: #6cb0f5;
  }
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body {
  margin: 0;
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--fg);
  background: var(--bg);
}
header.site, main, footer.site { max-width: 46rem; margin: 0 auto; padding: 0 1rem; }
header.site { padding-top: 1.25rem; }
.brand { font-weight: 700; letter-spacing: 0.02em; color: var(--muted); }
main { padding-top: 0.5rem; padding-bottom: 2rem; }
footer.site { color: var(--muted); font-size: 0.875rem; padding-bottom: 2rem; }
h1 { font-size: 1.6rem; line-height: 1.25; margin: 0.75rem 0 1rem; overflow-wrap: anywhere; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 0.75rem; }
p { margin: 0.75rem 0; }
a { color: var(--accent); }
dl { margin: 0; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 0.25rem 1rem; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; overflow-wrap: anywhere; }
ul.files { list-style: none; margin: 0; padding: 0; }
li.file {
  background: var(--card);
  border: 1px solid var(--line);
  border-radius: 0.5rem;
  padding: 0.75rem 1rem;
  margin: 0 0 0.75rem;
}
li.file a.download { font-weight: 600; font-size: 1.05rem; overflow-wrap: anywhere; }
li.file dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.125rem 0.75rem; margin-top: 0.5rem; font-size: 0.9rem; }
li.file dt { color: var(--muted); }
li.file dd { margin: 0; min-width: 0; overflow-wrap: anywhere; }
.exact { color: var(--muted); }
code.hash { font: 0.8rem/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; word-break: break-all; }
.note { color: var(--muted); font-size: 0.9rem; }
@media (max-width: 30rem) {
  dl.meta, li.file dl { grid-template-columns: 1fr; }
  dl.meta dd, li.file dd { margin-bottom: 0.375rem; }
}
`;
