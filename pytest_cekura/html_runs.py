"""The HTML reports' part of one run: what is kept of it beyond the JSON report
(``run_detail``: transcript, recording, metrics) and how it is shown (``run_section``: status,
why, links, player, metrics, transcript), plus a test's metric gates. Used by the
``--cekura-html`` page and by pytest-html's extras.

Everything shown is escaped; only http(s) URLs become links or player sources.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from .models import Run

#: Transcript lines kept per run, and characters per line (a whole call fits in both).
MAX_TRANSCRIPT_LINES = 400
MAX_TEXT = 4000


def _cut(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_detail(run: Run) -> dict[str, Any]:
    """What the HTML reports show of a run beyond its JSON report record: the transcript (with
    timestamps), the recording URL and every metric. Plain JSON, so it travels from an xdist
    worker on the test's report."""
    lines = run.transcript_object
    metrics = run.evaluation.metrics if run.evaluation is not None else []
    detail: dict[str, Any] = {
        "transcript": [
            [line.timestamp, line.role, _cut(line.content)] for line in lines[:MAX_TRANSCRIPT_LINES]
        ],
        "transcript_lines": len(lines),
        "recording": run.voice_recording_url or None,
        "metrics": [],
    }
    if not lines and run.transcript:
        detail["transcript_text"] = _cut(run.transcript, MAX_TEXT * 4)
    for metric in metrics:
        extra = metric.model_extra or {}
        inner = extra.get("extra")
        percentiles = inner.get("percentiles") if isinstance(inner, Mapping) else None
        detail["metrics"].append(
            {
                "name": metric.name,
                "type": metric.type,
                "score": metric.score,
                "value": _scalar(extra.get("enum")) or _scalar(extra.get("value")),
                "explanation": [_cut(line) for line in metric.explanation],
                "percentiles": {
                    str(k): v
                    for k, v in (percentiles or {}).items()
                    if isinstance(v, int | float) and not isinstance(v, bool)
                },
            }
        )
    return detail


def _scalar(value: Any) -> str | None:
    return str(value) if isinstance(value, str | int | float) and str(value) else None


def safe_url(url: Any) -> str | None:
    """The URL if it is http(s), else None: a ``javascript:`` link must never be clickable."""
    if not isinstance(url, str):
        return None
    url = url.strip()
    return url if re.match(r"https?://", url, re.IGNORECASE) else None


def _clock(seconds: Any) -> str:
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return ""
    minutes, rest = divmod(float(seconds), 60)
    return f"{int(minutes):02d}:{rest:04.1f}"


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-" if value is None else str(value)
    return f"{value:.4g}" if abs(value) < 1 else f"{value:.1f}".removesuffix(".0")


def gates_tables(test: Mapping[str, Any]) -> list[str]:
    """The metric gates the test was judged on (``tests[].gates`` of the JSON report) and each
    gated metric's aggregates over its runs (``tests[].metrics``)."""
    out = []
    gates = [g for g in test.get("gates") or [] if isinstance(g, Mapping)]
    if gates:
        rows = []
        for gate in gates:
            if gate.get("problem"):
                verdict, cls = f"not checked: {gate['problem']}", "bad"
            elif gate.get("passed"):
                verdict, cls = "held", "ok"
            else:
                verdict, cls = "broken", "bad"
            actual = gate.get("actual")
            unexpected = gate.get("unexpected")
            shown = _number(actual)
            if isinstance(unexpected, Mapping) and unexpected:
                shown = ", ".join(f"{k} x{v}" for k, v in unexpected.items())
            worst = ", ".join(str(r) for r in gate.get("worst_runs") or [])
            cells = (gate.get("metric"), gate.get("condition"), shown, verdict, worst or "-")
            rows.append(
                f'<tr class="{cls}">'
                + "".join(f"<td>{escape(str(c))}</td>" for c in cells)
                + "</tr>"
            )
        head = "".join(
            f"<th>{h}</th>" for h in ("metric", "gate", "value", "verdict", "worst runs")
        )
        caption = "<caption>metric gates</caption>"
        out.append(f'<table class="gates">{caption}<tr>{head}</tr>{"".join(rows)}</table>')
    metrics = test.get("metrics")
    if isinstance(metrics, Mapping) and metrics:
        keys = ("count", "mean", "min", "p50", "p90", "p95", "max", "pass_rate")
        rows = []
        for name, values in metrics.items():
            if not isinstance(values, Mapping):
                continue
            numbers = "".join(f"<td>{escape(_number(values.get(k)))}</td>" for k in keys)
            rows.append(f"<tr><td>{escape(str(name))}</td>{numbers}</tr>")
        head = "".join(f"<th>{h}</th>" for h in ("metric", *keys))
        caption = "<caption>gated metrics over the runs</caption>"
        out.append(f'<table class="aggregates">{caption}<tr>{head}</tr>{"".join(rows)}</table>')
    return out


def link(url: Any, label: str) -> str:
    safe = safe_url(url)
    if safe is None:
        return f"{escape(label)}: {escape(str(url))}" if url else ""
    return f'<a href="{escape(safe)}" rel="noopener noreferrer">{escape(label)}</a>'


def run_section(run: Mapping[str, Any], detail: Mapping[str, Any]) -> str:
    success = {True: "success", False: "not successful", None: "not scored"}.get(
        run.get("success"), "not scored"
    )
    name = f' "{run["scenario_name"]}"' if run.get("scenario_name") else ""
    duration = f" · {run['duration_s']:g} s" if run.get("duration_s") is not None else ""
    good = run.get("success") is True and run.get("status") == "completed"
    head = (
        f"run {run.get('id')} · scenario {run.get('scenario')}{name} · "
        f"{run.get('status') or '?'}, {success}{duration}"
    )
    parts = [f'<section class="run {"ok" if good else "bad"}"><h3>{escape(head)}</h3>']
    if run.get("why"):
        parts.append(f'<p class="why">why: {escape(str(run["why"]))}</p>')
    if run.get("error_message"):
        parts.append(f'<p class="why">error: {escape(str(run["error_message"]))}</p>')
    parts += _expected(run.get("expected_outcome"))
    links = [link(run.get("url"), "open in Cekura")]
    if run.get("livekit_agent_name"):
        links.append(f"dispatched to LiveKit agent {escape(str(run['livekit_agent_name']))}")
    parts.append(f'<p class="links">{" · ".join(x for x in links if x)}</p>')
    parts.append(recording(detail.get("recording")))
    parts.append(metrics_table(detail.get("metrics", [])))
    parts.append(transcript(detail, opened=not good))
    parts.append("</section>")
    return "".join(parts)


def _expected(outcome: Any) -> list[str]:
    if not isinstance(outcome, Mapping):
        return []
    score = outcome.get("score")
    lines = "".join(f"<li>{escape(str(line))}</li>" for line in outcome.get("explanation", []))
    shown = "?" if score is None else f"{score:g}"
    return [f'<div class="expected">expected outcome: {escape(shown)}/100<ul>{lines}</ul></div>']


def recording(url: Any) -> str:
    """An audio player for the run's recording (fetched only when played), or why not."""
    safe = safe_url(url)
    if safe is None:
        return '<p class="norec">no recording</p>' if not url else link(url, "recording")
    src = escape(safe)
    return (
        f'<div class="recording"><audio controls preload="none" src="{src}"></audio> '
        f'<a href="{src}" rel="noopener noreferrer">download</a></div>'
    )


def metrics_table(metrics: Sequence[Mapping[str, Any]]) -> str:
    if not metrics:
        return ""
    rows = []
    for metric in metrics:
        score = metric.get("score")
        value = metric.get("value")
        shown = "?" if score is None else f"{score:g}"
        if value and value != shown:
            shown += f" ({value})"
        pct = " · ".join(f"{k} {v:g}" for k, v in (metric.get("percentiles") or {}).items())
        explanation = " ".join(str(line) for line in metric.get("explanation", []))
        rows.append(
            f"<tr><td>{escape(str(metric.get('name')))}</td>"
            f"<td>{escape(str(metric.get('type')))}</td><td>{escape(shown)}</td>"
            f"<td>{escape(pct)}</td><td>{escape(explanation)}</td></tr>"
        )
    head = "<tr><th>metric</th><th>type</th><th>score</th><th>percentiles</th><th>why</th></tr>"
    return f'<table class="metrics">{head}{"".join(rows)}</table>'


def transcript(detail: Mapping[str, Any], *, opened: bool) -> str:
    lines = detail.get("transcript") or []
    text = detail.get("transcript_text")
    if not lines and not text:
        return '<p class="notranscript">no transcript</p>'
    attr = " open" if opened else ""
    if not lines:
        return (
            f'<details class="transcript"{attr}><summary>transcript</summary>'
            f"<pre>{escape(str(text))}</pre></details>"
        )
    total = detail.get("transcript_lines") or len(lines)
    more = f" (first {len(lines)} of {total})" if total > len(lines) else ""
    items = "".join(
        f"<li><time>{_clock(when)}</time> <b>{escape(str(role))}</b> "
        f"<span>{escape(str(content))}</span></li>"
        for when, role, content in lines
    )
    return (
        f'<details class="transcript"{attr}><summary>transcript, {total} line(s){more}'
        f"</summary><ol>{items}</ol></details>"
    )
