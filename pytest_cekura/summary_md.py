"""The session's Markdown summary: where CI users look (a GitHub job summary, a PR comment).

Under GitHub Actions (``GITHUB_ACTIONS=true``) the summary is appended to the file named by
``$GITHUB_STEP_SUMMARY`` (unless ``--cekura-no-step-summary``); ``--cekura-summary-md PATH``
writes the same Markdown anywhere, e.g. for a sticky pull-request comment. It is built from the
summary rows alone, so under pytest-xdist the controller writes it once with every worker's
tests. It must stay readable for one test and for 500: with many tests, the passed ones are
folded into a ``<details>`` block and the run links are capped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .report import SummaryRow

#: Up to this many tests, one table shows them all; above, passed tests are folded away.
OPEN_TABLE_MAX = 10
#: Run links listed under the table (each failing run has one); the rest are counted.
MAX_LINKS = 50
#: Result ids listed at the end; the rest are counted.
MAX_RESULTS = 20
#: A reason longer than this is cut: a table cell is not the place for a transcript.
MAX_REASON = 300

_ICONS = {"passed": "✅", "failed": "❌", "error": "⚠️", "skipped": "⏭️"}
_HEADER = ("| Test | Verdict | Runs passed | Reason |", "| --- | --- | --- | --- |")


def cell(text: str, limit: int = MAX_REASON) -> str:
    """Text safe in one Markdown table cell: ``|`` escaped, newlines as ``<br>``, HTML
    special characters escaped (GitHub renders HTML in summaries), long text cut."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|").replace("\n", "<br>")


def code(text: str) -> str:
    """A code span in a table cell (a backtick inside would end it early)."""
    return "`" + text.replace("`", "'").replace("|", "\\|").replace("\n", " ") + "`"


def reason_of(row: SummaryRow) -> str:
    """Why the test got its verdict: the deciding rule, then the first failing run's why."""
    parts: list[str] = []
    if row.reason is not None and row.reason.get("text"):
        parts.append(str(row.reason["text"]))
    parts += list(row.problems)
    if row.outcome != "passed":
        for run in row.runs:
            why = run.get("why")
            if why:
                parts.append(f"run {run['id']}: {why}")
                break
    return "; ".join(parts) if parts else "-"


def _runs(row: SummaryRow) -> str:
    if row.succeeded is None or not row.total:
        return "-"
    counts = f"{row.succeeded}/{row.total}"
    # With --cekura-share-links, the counts open the result for readers without an account.
    return f"[{counts}]({link_target(row.share_link)})" if row.share_link else counts


def link_target(url: str) -> str:
    """A URL safe inside ``[text](url)`` in a table cell."""
    return url.replace(" ", "%20").replace(")", "%29").replace("|", "%7C").replace("<", "%3C")


def _line(row: SummaryRow) -> str:
    verdict = f"{_ICONS.get(row.outcome, '')} {row.outcome}".strip()
    return f"| {code(row.nodeid)} | {verdict} | {_runs(row)} | {cell(reason_of(row))} |"


def _table(rows: Sequence[SummaryRow]) -> list[str]:
    return [*_HEADER, *(_line(row) for row in rows)]


def markdown_summary(
    rows: Sequence[SummaryRow],
    *,
    title: str = "pytest-cekura",
    dispatch_name: str | None = None,
) -> str:
    """The whole summary as Markdown: totals, the table of tests, then links to failing runs."""
    counts = Counter(row.outcome for row in rows)
    totals = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "no tests"
    calls = len({run["id"] for row in rows for run in row.runs})
    lines = [f"## {title}: {totals}", ""]
    lines.append(f"{len(rows)} Cekura test(s), {calls} run(s).")
    if dispatch_name:
        lines.append(f"LiveKit calls were dispatched to the agent {code(dispatch_name)} only.")
    lines.append("")
    if not rows:
        return "\n".join([*lines, "No Cekura test ran.", ""])

    passed = [row for row in rows if row.outcome == "passed"]
    other = [row for row in rows if row.outcome != "passed"]
    if len(rows) <= OPEN_TABLE_MAX:
        lines += _table(rows)
    else:
        if other:
            lines += _table(other)
        else:
            lines.append("Every Cekura test passed.")
        if passed:
            # A blank line after <summary> lets GitHub render the Markdown table inside.
            lines += ["", f"<details><summary>{len(passed)} passed test(s)</summary>", ""]
            lines += [*_table(passed), "", "</details>"]
    lines.append("")

    links = _links(other)
    if links:
        lines += ["### Failing runs", ""]
        lines += links[:MAX_LINKS]
        if len(links) > MAX_LINKS:
            lines.append(f"- … and {len(links) - MAX_LINKS} more (see the JSON report)")
        lines.append("")
    results = sorted({row.result_id for row in rows if row.result_id is not None})
    if results:
        shared = {row.result_id: row.share_link for row in rows if row.share_link}
        shown = ", ".join(
            f"[{r}]({link_target(shared[r])})" if r in shared else str(r)
            for r in results[:MAX_RESULTS]
        )
        more = f" and {len(results) - MAX_RESULTS} more" if len(results) > MAX_RESULTS else ""
        lines.append(f"Cekura result(s): {shown}{more}.")
        if shared:
            lines.append(
                "The result links and run counts are shareable links: anyone with one can "
                "read the transcripts and hear the recordings until it expires."
            )
        lines.append("")
    return "\n".join(lines)


def _links(rows: Sequence[SummaryRow]) -> list[str]:
    lines = []
    for row in rows:
        for run in row.runs:
            if run.get("success") is True:
                continue
            status = run.get("status") or "unknown"
            url = run.get("url")
            label = f"run {run['id']}"
            shown = f"[{label}]({url})" if url else label
            name = run.get("scenario_name") or f"scenario {run.get('scenario')}"
            lines.append(f"- {code(row.nodeid)}: {shown} · {cell(str(name), 80)} · {status}")
    return lines


def write_summaries(
    rows: Sequence[SummaryRow],
    *,
    path: Path | None,
    step_summary: bool,
    env: Mapping[str, str],
    dispatch_name: str | None = None,
) -> list[Path]:
    """Write ``--cekura-summary-md`` (replaced) and the GitHub job summary (appended: other
    steps' summaries share the file); return the paths written. The job summary is written
    only when Cekura tests ran, so a suite without any adds nothing to the job's page."""
    text = markdown_summary(rows, dispatch_name=dispatch_name)
    written = []
    if path is not None:
        path.write_text(text, encoding="utf-8")
        written.append(path)
    target = github_step_summary(env) if step_summary and rows else None
    if target is not None:
        with target.open("a", encoding="utf-8") as handle:
            handle.write(text + "\n")
        written.append(target)
    return written


def github_step_summary(env: Mapping[str, Any]) -> Path | None:
    """The job summary file under GitHub Actions, None anywhere else."""
    if str(env.get("GITHUB_ACTIONS", "")).lower() != "true":
        return None
    name = str(env.get("GITHUB_STEP_SUMMARY", "")).strip()
    return Path(name) if name else None
