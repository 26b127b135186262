"""The session's output files (JSON report, Markdown summary, baseline): checked before anything
is paid for, written once at the end by the process that reports (never by an xdist worker).

Light at import: what builds each file is imported only when that file is asked for, so a
session with no Cekura test pays nothing (docs/performance.md, target 4).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .errors import ConfigError

if TYPE_CHECKING:
    from .options import Settings
    from .pluginstate import _State


def check_outputs(config: pytest.Config, settings: Settings) -> None:
    """Refuse, before anything is started, an output that would fail or be lost after the
    calls were paid for: one that cannot be written, or two reports given one path (the one
    written last would silently replace the other)."""
    writable = [
        (settings.report_path, "--cekura-report / cekura_report"),
        (settings.baseline_path, "--cekura-baseline / cekura_baseline"),
        (settings.summary_md_path, "--cekura-summary-md / cekura_summary_md"),
    ]
    for path, source in writable:
        if path is not None:
            # Imported only when there is a path: baseline pulls in the HTTP stack.
            from .baseline import check_writable

            try:
                check_writable(path, source)
            except ConfigError as exc:
                raise pytest.UsageError(str(exc)) from None
    distinct = [
        (settings.report_path, "--cekura-report / cekura_report"),
        (settings.html_path, "--cekura-html / cekura_html"),
        (settings.summary_md_path, "--cekura-summary-md / cekura_summary_md"),
        (settings.baseline_path, "--cekura-baseline / cekura_baseline"),
        (getattr(config.option, "xmlpath", None), "--junitxml"),
        (getattr(config.option, "htmlpath", None), "--html (pytest-html)"),
    ]
    seen: dict[Path, str] = {}
    for named, source in distinct:
        if not named:
            continue
        where = Path(named).expanduser().resolve()
        if where in seen:
            raise pytest.UsageError(
                f"pytest-cekura: {seen[where]} and {source} both write {str(where)!r}; "
                "give each report its own file"
            )
        seen[where] = source


def session_report(
    state: _State, *, interrupted: bool = False, finished: datetime | None = None
) -> dict[str, Any]:
    """The JSON report's data: what ``--cekura-report`` writes and the HTML report shows."""
    from .report_data import json_report

    cekura = state.cekura()
    return json_report(
        state.rows,
        state.request_counts(),
        session_id=cekura.session_id,
        api=cekura.api_url,
        started=state.started_at,
        finished=finished or datetime.now(UTC),
        ended_runs=cekura.ended_runs,
        ended_results=cekura.ended_results,
        interrupted=interrupted,
        started_results=cekura.started_results(),
    )


def write_outputs(config: pytest.Config, state: _State, *, interrupted: bool) -> None:
    """Write each asked-for file on its own: one that cannot be written now (a broken
    ``$GITHUB_STEP_SUMMARY`` is never checked at start) must not keep the others, the baseline
    above all, unwritten."""
    settings = state.settings
    with or_warn(config):
        if settings.report_path is not None:
            data = session_report(state, interrupted=interrupted)
            settings.report_path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    with or_warn(config):
        if state.rows or settings.summary_md_path is not None:
            from .summary_md import write_summaries

            write_summaries(
                state.rows,
                path=settings.summary_md_path,
                step_summary=settings.step_summary,
                env=os.environ,
                dispatch_name=settings.livekit_agent_name,
            )
    with or_warn(config):
        if settings.baseline_path is not None:
            from .baseline import baseline_failing_warning, write_baseline

            failing = write_baseline(settings.baseline_path, state.rows)
            if failing:
                warn(config, baseline_failing_warning(failing))


@contextlib.contextmanager
def or_warn(config: pytest.Config) -> Iterator[None]:
    """A file checked at start, yet not writable now (disk full, folder removed): the outcomes
    and the other files still matter more than that file."""
    try:
        yield
    except OSError as exc:
        warn(config, f"pytest-cekura: could not write {exc.filename}: {exc.strerror}")


def warn(config: pytest.Config, message: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(message, red=True)
