"""The HTML reports, on pytest's side: ``--cekura-html`` and pytest-html's extras.

``plugin.py`` imports this module and calls ``register`` (from ``pytest_configure``) only when
``--cekura-html`` is given or pytest-html is writing a report (``--html``), so a session
without either pays nothing. Each Cekura test's deciding report carries its runs' details
(transcript, recording, metrics: ``html_report.run_detail``), as the summary row travels:
under pytest-xdist from the worker that ran the test to the controller, which alone writes
the file, once, at the end.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .errors import ConfigError
from .pluginstate import _started, _State, _state

if TYPE_CHECKING:
    from .records import TestRecord
    from .session import CekuraSession

#: Name of the report attribute carrying a test's run details (a list of [run id, detail]).
DETAIL_ATTR = "cekura_runs_detail"
PLUGIN_NAME = "cekura-html"


def register(config: pytest.Config) -> None:
    """Register the HTML hooks if a report will use them; refuse an unwritable path now."""
    state = _state(config)
    path = state.settings.html_path
    extras = pytest_html_active(config)
    if path is None and not extras:
        return
    if path is not None and state.role.reports:
        from .baseline import check_writable

        try:
            check_writable(path, "--cekura-html / cekura_html")
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
    if not config.pluginmanager.has_plugin(PLUGIN_NAME):
        config.pluginmanager.register(HtmlHooks(state, path, extras), PLUGIN_NAME)


def pytest_html_active(config: pytest.Config) -> bool:
    """pytest-html is installed, enabled and writing a report (``--html PATH``)."""
    return config.pluginmanager.has_plugin("html") and bool(
        getattr(config.option, "htmlpath", None)
    )


def _history_source(state: _State) -> Path | None:
    """The baseline whose recorded sessions the trend lines show: the one being recorded
    (read before this session replaces it), else the one compared against."""
    settings = state.settings
    for path in (settings.baseline_path, settings.compare_path):
        if path is not None and path.is_file():
            return path
    return None


class HtmlHooks:
    """Gathers each test's run details and writes ``--cekura-html``; adds pytest-html extras."""

    def __init__(self, state: _State, path: Path | None, extras: bool) -> None:
        self._state = state
        self._path = path
        self._extras = extras
        #: Run id -> ``run_detail``, from every test's report (this process's or a worker's).
        self.details: dict[int, dict[str, Any]] = {}
        self._history: list[tuple[str | None, dict[str, float]]] = []
        source = _history_source(state) if path is not None and state.role.reports else None
        if source is not None:
            from .baseline import load_history

            self._history = load_history(source)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        # The phase that decides the test's outcome carries the details, as it carries the
        # summary row (testhooks._attach_summary_row).
        deciding = report.when == "call" or (report.when == "setup" and not report.passed)
        cekura = _started(item.config)
        record = cekura.records.get(item.nodeid) if cekura is not None else None
        if not deciding or cekura is None or record is None:
            return report
        from .html_runs import run_detail

        runs = record.result.runs if record.result is not None else record.assignment.runs
        details: list[tuple[int, dict[str, Any]]] = [(run.id, run_detail(run)) for run in runs]
        if self._path is not None:
            setattr(report, DETAIL_ATTR, details)
        if self._extras and details:  # a test with no runs has nothing to add
            _add_extras(report, cekura, record, dict(details))
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        details = getattr(report, DETAIL_ATTR, None)
        if isinstance(details, list):
            self.details.update({int(run_id): detail for run_id, detail in details})

    @pytest.hookimpl(trylast=True)  # after the plugin's own: calls ended at the end count
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        state = self._state
        if self._path is None or not state.role.reports:
            return
        from .outputs import or_warn

        with or_warn(session.config):
            interrupted = session.exitstatus == pytest.ExitCode.INTERRUPTED
            self._path.write_text(self.page(interrupted=interrupted), encoding="utf-8")

    def page(self, finished: datetime | None = None, *, interrupted: bool = False) -> str:
        """The HTML report of what the session has seen so far; ``interrupted``: the
        session stopped early, which the page must say (its tests may be missing)."""
        from .html_report import render
        from .outputs import session_report

        data = session_report(self._state, interrupted=interrupted, finished=finished)
        history = trends(self._history, data["tests"], data["started_at"])
        return render(data, self.details, history)


def trends(
    recorded: Sequence[tuple[str | None, Mapping[str, float]]],
    tests: Sequence[Mapping[str, Any]],
    now: str | None,
) -> dict[str, list[tuple[str, float]]]:
    """Test id -> (when, success rate) over the recorded sessions then this one; only tests
    with at least one recorded session get a line (a single point says nothing of a trend)."""
    lines: dict[str, list[tuple[str, float]]] = {}
    for index, (when, rates) in enumerate(recorded, start=1):
        for nodeid, rate in rates.items():
            lines.setdefault(nodeid, []).append((when or f"session {index}", rate))
    for test in tests:
        succeeded, total = test.get("succeeded"), test.get("total")
        nodeid = str(test.get("nodeid"))
        if nodeid in lines and isinstance(succeeded, int) and total:
            lines[nodeid].append((f"this session ({now or 'now'})", succeeded / total))
    return lines


def _add_extras(
    report: pytest.TestReport,
    cekura: CekuraSession,
    record: TestRecord,
    details: Mapping[int, Mapping[str, Any]],
) -> None:
    """pytest-html's extras: one HTML block with each run's links, player and transcript."""
    import importlib

    from .html_runs import run_section
    from .report_data import run_records

    runs = run_records(record, cekura.links, cekura.ended_runs)
    blocks = "".join(run_section(run, details.get(run["id"], {})) for run in runs)
    content = f'<div class="cekura-runs">{blocks}</div>'
    # pytest-html's own constructor (it ships no type information, hence Any).
    extras: Any = importlib.import_module("pytest_html.extras")
    # pytest-html reads ``report.extras``, which pytest's report does not declare.
    report.__dict__.setdefault("extras", []).append(extras.html(content))
