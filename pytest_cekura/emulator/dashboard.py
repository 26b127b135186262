"""A tiny self-contained HTML page per result, standing in for Cekura's web dashboard.

Reports link failing tests to ``/_emulator/dashboard/results/<id>?run=<run id>``; the page
highlights and scrolls to that run, and ``#run-<id>`` anchors work as well. No external assets,
so it renders offline.
"""

from __future__ import annotations

from html import escape
from typing import Any

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
section { border: 1px solid #ccc; border-radius: 6px; padding: 0.5rem 1rem; margin: 1rem 0; }
section:target, section.focus { border-color: #d33; box-shadow: 0 0 0 3px #fbb; }
.pass { color: #1a7f37; } .fail { color: #c62828; } .open { color: #8a6d00; }
pre { background: #f6f8fa; padding: 0.5rem; white-space: pre-wrap; }
"""

_SCRIPT = """
const run = new URLSearchParams(location.search).get("run");
const target = run && document.getElementById("run-" + run);
if (target) { target.classList.add("focus"); target.scrollIntoView(); }
"""


def render_result_page(result: dict[str, Any]) -> str:
    runs = result["runs"].values() if isinstance(result["runs"], dict) else result["runs"]
    title = f"Result {result['id']}: {result['name']}"
    summary = (
        f"status <b>{escape(str(result['status']))}</b>, "
        f"{result['success_runs_count']}/{result['total_runs_count']} runs succeeded "
        f"(success_rate {result['success_rate']})"
    )
    sections = "\n".join(_run_section(run) for run in runs)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1><p>{summary}</p>{sections}"
        f"<script>{_SCRIPT}</script></body></html>\n"
    )


def render_not_found(result_id: int) -> str:
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>No result {result_id}</title></head><body>"
        f"<h1>No result {result_id}</h1><p>The emulator has no result with this id "
        "(it was never created, or the emulator was reset or restarted).</p></body></html>\n"
    )


def _run_section(run: dict[str, Any]) -> str:
    success = run["success"]
    css = "open" if success is None else ("pass" if success else "fail")
    verdict = "not finished" if success is None else ("success" if success else "no success")
    outcome = run["expected_outcome"] or {}
    explanation = "".join(
        f"<li>{escape(str(line))}</li>" for line in outcome.get("explanation", [])
    )
    error = f"<p>Error: {escape(run['error_message'])}</p>" if run["error_message"] else ""
    transcript = escape(run["transcript"]) or "<i>no transcript</i>"
    return (
        f"<section id='run-{run['id']}'>"
        f"<h2>Run {run['id']}: {escape(run['scenario_name'])}</h2>"
        f"<p>Status <b>{escape(run['status'])}</b>, <span class='{css}'>{verdict}</span></p>"
        f"{error}<h3>Expected outcome</h3><ul>{explanation or '<li>not evaluated</li>'}</ul>"
        f"<h3>Transcript</h3><pre>{transcript}</pre></section>"
    )
