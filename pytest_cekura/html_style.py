"""The HTML report's style sheet and Content-Security-Policy (``html_report.py``)."""

from __future__ import annotations

#: No script may run and nothing may be fetched but the recordings (when played): the page
#: has no script of its own, so this costs nothing and contains any markup a transcript
#: might smuggle past the escaping.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; media-src http: https:; "
    "base-uri 'none'; form-action 'none'"
)

CSS = """
:root { --ok: #2e7d32; --bad: #c62828; --err: #ef6c00; --skip: #757575; --line: #ddd;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; }
body { margin: 0 auto; max-width: 1200px; padding: 1rem 1.5rem 3rem; line-height: 1.4; }
h1 { margin: 0 0 .4rem; font-size: 1.5rem; }
header .meta { color: #555; font-size: .9rem; margin: .3rem 0 0; word-break: break-all; }
header .interrupted { color: #b00020; font-weight: 600; margin: .3rem 0 0; }
ul.totals { list-style: none; display: flex; gap: .5rem; padding: 0; margin: 0; }
ul.totals li { padding: .15rem .6rem; border-radius: 1rem; color: #fff; background: var(--skip);
  font-weight: 600; }
.passed { --c: var(--ok); } .failed { --c: var(--bad); } .error { --c: var(--err); }
.skipped { --c: var(--skip); }
ul.totals li, .badge { background: var(--c, var(--skip)); }
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; margin: 1rem 0; }
@media (max-width: 900px) { .charts { grid-template-columns: 1fr; } }
figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: .5rem; }
figcaption { font-size: .85rem; color: #444; margin-bottom: .3rem; }
svg.chart { display: block; height: auto; }
svg text { font-size: 13px; fill: #444; }
svg text.mark { fill: #1565c0; font-weight: 600; paint-order: stroke; stroke: #fff;
  stroke-width: 3px; stroke-dasharray: none; }
svg .grid { stroke: #eee; stroke-width: 1; }
svg .needed { stroke: #111; stroke-width: 2; }
svg .band { opacity: .12; } svg .band.thin { opacity: .6; }
svg .bar, svg .band { shape-rendering: crispEdges; }
svg .bin { fill: #64b5f6; }
svg .mark { stroke: #1565c0; stroke-width: 2; stroke-dasharray: 4 3; }
svg.trend { vertical-align: middle; margin-left: .5rem; }
svg.trend polyline { fill: none; stroke: #1565c0; stroke-width: 1.5; }
svg.trend circle { fill: #1565c0; }
input.filter { margin: .5rem .3rem .5rem 0; }
label.filter { font-weight: 600; }
#only-failures:checked ~ main .card.passed,
#only-failures:checked ~ main .card.skipped { display: none; }
.card { border: 1px solid var(--line); border-left: 6px solid var(--c, var(--skip));
  border-radius: 6px; margin: .5rem 0; padding: .3rem .8rem; }
.card > summary { cursor: pointer; padding: .3rem 0; }
.card > summary code { font-size: .95rem; word-break: break-all; }
.badge { color: #fff; border-radius: 4px; padding: 0 .4rem; font-size: .8rem;
  text-transform: uppercase; font-weight: 700; }
.runs { color: #555; font-size: .9rem; }
.reason { font-weight: 600; }
.problem, .why { color: var(--bad); }
.facts, .links { color: #555; font-size: .9rem; }
section.run { border-top: 1px solid var(--line); padding: .4rem 0; }
section.run h3 { font-size: 1rem; margin: .3rem 0; }
section.run.ok h3::before { content: "✓ "; color: var(--ok); }
section.run.bad h3::before { content: "✗ "; color: var(--bad); }
audio { width: 100%; max-width: 480px; vertical-align: middle; }
table { border-collapse: collapse; margin: .4rem 0; font-size: .9rem; }
table caption { text-align: left; font-weight: 600; font-size: .9rem; }
table.gates tr.ok td:nth-child(4) { color: var(--ok); font-weight: 600; }
table.gates tr.bad td:nth-child(4) { color: var(--bad); font-weight: 600; }
td, th { border: 1px solid var(--line); padding: .2rem .5rem; text-align: left;
  vertical-align: top; }
.transcript ol { list-style: none; padding-left: 0; margin: .3rem 0; }
.transcript li { padding: .1rem 0; white-space: pre-wrap; word-break: break-word; }
.transcript time { color: #777; font-family: ui-monospace, monospace; font-size: .85rem; }
.transcript pre { white-space: pre-wrap; }
footer { margin-top: 2rem; color: #777; font-size: .8rem; }
"""
