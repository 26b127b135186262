"""``--cekura-html``: the session as one self-contained HTML page.

Built from the JSON report (``report_data.json_report``, the very data ``--cekura-report``
writes, so the two agree) plus what the JSON report leaves out for size: each run's transcript,
recording URL and metrics (``run_detail``), and the success-rate history of the baseline file.

Self-contained: the styles are inline, the charts are inline SVG, there is no script at all and
a Content-Security-Policy forbids any (so a transcript that smuggled markup past the escaping
still could not run code), no font or image is fetched. Recordings play from their own URL
only when the reader presses play (``preload="none"``). Every text from Cekura or the user
(transcripts, names, reasons, URLs) is escaped; a link or recording whose URL is not http(s)
is shown as text, never as a link.

At 500 tests the page stays usable: passed tests are collapsed cards, a checkbox (CSS only)
hides them, and transcripts are capped (``MAX_TRANSCRIPT_LINES``, ``MAX_TEXT``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from .html_charts import Bar, distribution_chart, success_chart, trend_line
from .html_runs import MAX_TEXT, MAX_TRANSCRIPT_LINES, gates_tables, link, run_section
from .html_style import CSP, CSS

__all__ = ["MAX_TEXT", "MAX_TRANSCRIPT_LINES", "latency_values", "render"]

_LATENCY = re.compile("latency", re.IGNORECASE)


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.0%}"


def _rate(test: Mapping[str, Any]) -> float | None:
    succeeded, total = test.get("succeeded"), test.get("total")
    return succeeded / total if isinstance(succeeded, int) and total else None


def _anchor(index: int) -> str:
    return f"test-{index}"


def render(
    report: Mapping[str, Any],
    details: Mapping[int, Mapping[str, Any]],
    history: Mapping[str, Sequence[tuple[str, float]]] | None = None,
    *,
    title: str = "pytest-cekura",
) -> str:
    """The whole page. ``report``: the JSON report; ``details``: ``run_detail`` by run id;
    ``history``: test id -> (when, success rate) per recorded session, oldest first."""
    tests: list[Mapping[str, Any]] = list(report.get("tests", []))
    history = history or {}
    counts = Counter(str(test.get("outcome")) for test in tests)
    order = ("failed", "error", "passed", "skipped")
    totals = ", ".join(f"{counts[o]} {o}" for o in order if counts[o]) or "no Cekura test"
    # A run shared by two tests (one request's runs, split by scenario) is counted once.
    runs = list({run["id"]: run for test in tests for run in test.get("runs", [])}.values())
    not_passed = sum(n for outcome, n in counts.items() if outcome != "passed")
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}: {escape(totals)}</title>",
        f"<style>{CSS}</style></head><body>",
        _header(report, title, counts, order, len(runs)),
        _charts(tests, runs, details),
        # The filter: a checkbox before <main>, so CSS alone can hide the passed cards.
        '<input type="checkbox" id="only-failures" class="filter">',
        f'<label for="only-failures" class="filter">Show only the {not_passed} test(s) that '
        "did not pass</label>",
        '<main id="tests">',
        # Tests that did not pass first (open), then the passed ones (collapsed); the chart
        # keeps pytest's order and links each bar to its card.
        *(
            _card(index, test, details, history.get(str(test.get("nodeid")), ()))
            for index, test in sorted(
                enumerate(tests), key=lambda item: item[1].get("outcome") in ("passed", "skipped")
            )
        ),
        "</main>",
        "<footer>Written by pytest-cekura. Recordings play from Cekura's storage when you press "
        "play; nothing else on this page uses the network.</footer>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _header(
    report: Mapping[str, Any],
    title: str,
    counts: Counter[str],
    order: Sequence[str],
    runs: int,
) -> str:
    badges = (
        "".join(f'<li class="{o}">{counts[o]} {o}</li>' for o in order if counts[o])
        or "<li>no Cekura test</li>"
    )
    facts = [
        ("session", report.get("session_id")),
        ("API", report.get("api")),
        ("started", report.get("started_at")),
        ("duration", f"{report['duration_s']:g} s" if report.get("duration_s") else None),
        ("runs", runs),
    ]
    shown = " · ".join(f"{name} {escape(str(value))}" for name, value in facts if value)
    return (
        f'<header><h1>{escape(title)}</h1><ul class="totals">{badges}</ul>'
        f'<p class="meta">{shown}</p>{_interrupted(report)}</header>'
    )


def _interrupted(report: Mapping[str, Any]) -> str:
    """A stopped session's page must not read as complete: say so, and name the results it
    started (their tests may have no card)."""
    if report.get("interrupted") is not True:
        return ""
    started = [
        f"{item.get('result_id')} ({item.get('name') or 'unnamed request'}"
        + (", calls ended)" if item.get("ended_by_session") else ")")
        for item in report.get("started_results", [])
        if isinstance(item, Mapping)
    ]
    named = f" Results it started: {'; '.join(started)}." if started else ""
    return (
        '<p class="interrupted">This session was interrupted (Ctrl-C, SIGTERM or errors '
        f"during collection): tests it selected may be missing.{escape(named)}</p>"
    )


def latency_values(
    runs: Sequence[Mapping[str, Any]], details: Mapping[int, Mapping[str, Any]]
) -> tuple[list[float], str, str]:
    """(values, unit, what) for the distribution chart: the runs' latency metric if they have
    one (Cekura scores it in ms), else their call durations."""
    by_name: dict[str, list[float]] = {}
    for run in runs:
        for metric in details.get(run["id"], {}).get("metrics", []):
            score = metric.get("score")
            if _LATENCY.search(str(metric.get("name"))) and isinstance(score, int | float):
                by_name.setdefault(str(metric["name"]), []).append(float(score))
    if by_name:
        name, values = max(by_name.items(), key=lambda item: len(item[1]))
        return values, "ms", f'metric "{name}"'
    durations = [float(r["duration_s"]) for r in runs if r.get("duration_s") is not None]
    return durations, "s", "call duration"


def _charts(
    tests: Sequence[Mapping[str, Any]],
    runs: Sequence[Mapping[str, Any]],
    details: Mapping[int, Mapping[str, Any]],
) -> str:
    bars = [
        Bar(
            label=str(test.get("nodeid")),
            outcome=str(test.get("outcome")),
            rate=_rate(test),
            needed=float(test.get("min_success_rate") or 0.0),
            anchor=_anchor(index),
        )
        for index, test in enumerate(tests)
    ]
    values, unit, what = latency_values(runs, details)
    return (
        '<section class="charts">'
        "<figure><figcaption>Success rate per test (tick: the rate it needs; "
        f"click a bar for its card)</figcaption>{success_chart(bars)}</figure>"
        f"<figure><figcaption>Distribution of {escape(what)} over {len(values)} run(s)"
        f"</figcaption>{distribution_chart(values, unit, what)}</figure></section>"
    )


def _card(
    index: int,
    test: Mapping[str, Any],
    details: Mapping[int, Mapping[str, Any]],
    trend: Sequence[tuple[str, float]],
) -> str:
    outcome = str(test.get("outcome"))
    nodeid = str(test.get("nodeid"))
    total = test.get("total")
    runs_text = f"{test.get('succeeded')}/{total} runs" if total else "no runs"
    opened = "" if outcome in ("passed", "skipped") else " open"
    spark = ""
    if trend:
        spark = f'<span class="history">{trend_line(trend)}</span>'
    body = [
        f'<details class="card {escape(outcome)}" id="{_anchor(index)}"{opened}>',
        f'<summary><span class="badge {escape(outcome)}">{escape(outcome)}</span> '
        f'<code>{escape(nodeid)}</code> <span class="runs">{runs_text} '
        f"({_percent(_rate(test))}, needs {_percent(test.get('min_success_rate'))})</span>"
        f"{spark}</summary>",
    ]
    reason = test.get("reason") or {}
    if reason.get("text"):
        body.append(f'<p class="reason">decided by: {escape(str(reason["text"]))}</p>')
    body += [f'<p class="problem">{escape(str(p))}</p>' for p in test.get("problems", [])]
    body.append(_facts(test))
    body += gates_tables(test)
    for run in test.get("runs", []):
        body.append(run_section(run, details.get(run["id"], {})))
    body.append("</details>")
    return "".join(body)


def _facts(test: Mapping[str, Any]) -> str:
    ids = ", ".join(str(i) for i in test.get("scenario_ids", [])) or "-"
    facts = [f"scenarios {escape(ids)}"]
    if test.get("result_id") is not None:
        facts.append(f"result {escape(str(test['result_id']))}")
    if test.get("group"):
        facts.append(f"request {escape(str(test['group']))}")
    if test.get("reused_age") is not None:
        facts.append(f"reused ({float(test['reused_age']):.0f} s old)")
    if test.get("share_link"):
        facts.append(link(test["share_link"], "shareable link"))
    if test.get("ended_early"):
        facts.append(f"early verdict ended {escape(str(test['ended_early']))} call(s)")
    return f'<p class="facts">{" · ".join(facts)}</p>'
