"""The hooks registered once the session has a Cekura test (a suite without one pays nothing
per test): each test waits for its runs' verdict (``TestHooks``), and the summary is
gathered and printed (``SummaryHooks``)."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING

import pytest

from .interrupts import interrupt_kept
from .pluginstate import MARKER_ERROR_KEY, REPORT_ATTR, _started, _State, _state, _worker_output
from .progress import Progress, terminal_progress
from .secret import Secret

if TYPE_CHECKING:
    from .models import CekuraResult
    from .records import TestRecord

TIMEOUT_KEY = pytest.StashKey[tuple[float, float]]()
#: How long before pytest-timeout's own timer a waiting test gives up by itself.
TIMEOUT_MARGIN = 0.5


def _wait_for_verdict(item: pytest.Item) -> None:
    """Wait for this test's runs; an error here (Cekura could not run them) is an ERROR."""
    if MARKER_ERROR_KEY in item.stash:
        pytest.fail(item.stash[MARKER_ERROR_KEY], pytrace=False)
    cekura = _started(item.config)
    if cekura is None or item.nodeid not in cekura.records:
        return
    from .outcome import Outcome
    from .report import junit_properties
    from .session import WaitCutShort

    # A dry run starts nothing; a Tests-as-Code case Cekura rejected still errors with why.
    if cekura.settings.dry_run and not cekura.records[item.nodeid].assignment.problems:
        pytest.skip("cekura dry run: nothing was submitted")
    progress = _progress(item.config)
    give_up_at, limit = item.stash.get(TIMEOUT_KEY, (None, None))
    if progress is not None:
        progress.start()
    try:
        with interrupt_kept():
            record = cekura.verdict(
                item.nodeid, progress.tick if progress else None, give_up_at=give_up_at
            )
    except WaitCutShort as exc:
        # Ending the wait ourselves, just before pytest-timeout would, gives a clean error
        # with either of its methods (its "thread" method would end the whole process).
        pytest.fail(
            f"Timeout (>{limit:g}s) from pytest-timeout while waiting for Cekura: {exc}; "
            "the calls are ended at the end of the session",
            pytrace=False,
        )
    finally:
        if progress is not None:
            progress.finish()
    hook_error = None
    if record.result is not None and RUNS_FINAL_KEY not in item.stash:
        item.stash[RUNS_FINAL_KEY] = True  # once per test, not again on a rerun
        hook_error = _runs_final(item, record.result, cekura.settings.api_key)
    item.user_properties.extend(junit_properties(record, cekura.links, cekura.ended_runs))
    if record.verdict is not None and record.verdict.outcome is Outcome.ERROR:
        if cekura.key_rejected is not None:  # the session error says it all, once
            pytest.fail(KEY_REJECTED_SHORT, pytrace=False)
        also = f"\n{hook_error}" if hook_error else ""
        pytest.fail(_text(item.config, record) + also, pytrace=False)
    if hook_error:
        pytest.fail(hook_error, pytrace=False)


#: Set once ``pytest_cekura_runs_final`` has been called for the test.
RUNS_FINAL_KEY = pytest.StashKey[bool]()


def _runs_final(item: pytest.Item, result: CekuraResult, api_key: Secret | None) -> str | None:
    """Call ``pytest_cekura_runs_final``; what to fail this test with if it raised (returned,
    not raised here: a failure raised inside ``except`` would show the hook's own exception,
    whose text may hold anything, e.g. the key)."""
    from .hookspec import hook_failure

    try:
        item.config.hook.pytest_cekura_runs_final(item=item, result=result)
    except Exception as exc:
        return hook_failure("pytest_cekura_runs_final", exc, api_key)
    return None


KEY_REJECTED = (
    "pytest-cekura: Cekura rejected the API key while the runs were being polled ({error}); "
    "polling stopped and the tests still waiting error. Check the {env} environment variable "
    "(and --cekura-url / {url_env} if you use another Cekura deployment). Calls already "
    "started may still be going: look for results named 'pytest-cekura {session_id} ...' in "
    "Cekura's dashboard."
)
KEY_REJECTED_SHORT = (
    "Cekura rejected the API key while polling: see the session error at the end of the output"
)


def _late_error(state: _State) -> str | None:
    """A session-level error met after tests started: a worker's, or this process's own."""
    if state.role.late_error is not None:
        return state.role.late_error
    rejected = state.session.key_rejected if state.session is not None else None
    if rejected is None:
        return None
    from .options import ENV_API_KEY, ENV_API_URL

    return KEY_REJECTED.format(
        error=rejected,
        env=ENV_API_KEY,
        url_env=ENV_API_URL,
        session_id=state.cekura().session_id,
    )


def _progress(config: pytest.Config) -> Progress | None:
    # A worker's terminal output is not shown: xdist's controller reports for it.
    return terminal_progress(config) if _state(config).role.reports else None


def _fail_misbehaving_agent(item: pytest.Item) -> None:
    """The agent misbehaved: FAIL before the body runs, with the runs that show why."""
    cekura = _started(item.config)
    record = cekura.records.get(item.nodeid) if cekura is not None else None
    if record is not None and record.verdict and record.verdict.outcome.value == "failed":
        pytest.fail(_text(item.config, record), pytrace=False)


def _text(config: pytest.Config, record: TestRecord) -> str:
    from .report import failure_text

    state = _state(config)
    return failure_text(record, state.cekura().links, _worker_output(state))


class TestHooks:
    """Per-test hooks, registered only once the session has a Cekura test: a suite without
    one pays nothing per test."""

    __test__ = False  # not a test class, whatever its name

    # Neither tryfirst nor trylast: observers (tryfirst, returning None) still see the loop
    # start; pytest's own loop runs only when this one declines.
    def pytest_runtestloop(self, session: pytest.Session) -> bool | None:
        return _run_in_finish_order(session)

    # Neither tryfirst nor trylast: after skip/skipif are evaluated (no waiting for a skipped
    # test), before pytest's own implementation sets up fixtures (which may use the verdict).
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        _wait_for_verdict(item)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> None:
        _fail_misbehaving_agent(item)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        _attach_summary_row(item, report)
        if report.when == "teardown" and (cekura := _started(item.config)) is not None:
            cekura.release(item.nodeid)
        return report


def _run_in_finish_order(session: pytest.Session) -> bool | None:
    """With --cekura-order=finish, run the tests as nothing keeps them waiting (see order.py).
    Under xdist each worker runs what it is sent: the order is the scheduler's."""
    config = session.config
    cekura = _started(config)
    if (
        cekura is None
        or cekura.settings.order != "finish"
        or config.option.collectonly
        or session.testsfailed  # collection errors: pytest's loop reports them
        or not _state(config).role.orders_tests
    ):
        return None
    from .order import finish_order

    def ready(item: pytest.Item) -> bool:
        return cekura.ready(item.nodeid)

    def parents(item: pytest.Item) -> list[object]:
        return list(item.listchain()[:-1])

    order = finish_order(
        session.items, ready, cekura.wait_for_poll, parents, version=cekura.ready_version
    )
    for item, nextitem in order:
        item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
        if session.shouldfail:
            raise session.Failed(session.shouldfail)
        if session.shouldstop:
            raise session.Interrupted(session.shouldstop)
    return True


def _activate(config: pytest.Config) -> None:
    """Register the per-test and summary hooks (once)."""
    manager = config.pluginmanager
    if not manager.has_plugin("cekura-tests"):
        manager.register(TestHooks(), "cekura-tests")
    if not manager.has_plugin("cekura-summary"):
        manager.register(SummaryHooks(_state(config)), "cekura-summary")


def _attach_summary_row(item: pytest.Item, report: pytest.TestReport) -> None:
    cekura = _started(item.config)
    record = cekura.records.get(item.nodeid) if cekura is not None else None
    # The phase that decides the test's outcome carries its summary row to the reporting
    # process (the xdist controller, or this one).
    deciding = report.when == "call" or (report.when == "setup" and not report.passed)
    if cekura is not None and record is not None and deciding:
        from .report import summary_row

        outcome = "error" if report.when == "setup" and report.failed else report.outcome
        row = summary_row(item.nodeid, record, outcome, cekura.links, cekura.ended_runs)
        setattr(report, REPORT_ATTR, row.to_json())


class SummaryHooks:
    """Collects summary rows from reports (local or from xdist workers) and prints them."""

    def __init__(self, state: _State) -> None:
        self._state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        row = getattr(report, REPORT_ATTR, None)
        if isinstance(row, dict):
            from .report import SummaryRow

            summary = SummaryRow.from_json(row)
            self._state.rows_by_test[summary.nodeid] = summary

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        from .report import dry_run_lines, summary_lines

        state = self._state
        late_error = _late_error(state)
        if late_error is not None:
            terminalreporter.write_sep("=", "cekura session error", red=True)
            terminalreporter.write_line(late_error, red=True, bold=True)
        groups = state.session.dry_run_groups if state.session is not None else None
        limit = state.settings.max_runs
        plan = dry_run_lines(groups, limit) if groups is not None else state.role.dry_run
        if plan is not None:
            terminalreporter.section("cekura dry run")
            for line in plan:
                terminalreporter.write_line(line)
        cases = state.session.case_plan if state.session is not None else None
        case_plan = cases if cases is not None else state.role.case_plan
        if case_plan is not None:
            terminalreporter.section("cekura dry run: tests as code")
            for line in case_plan:
                terminalreporter.write_line(line)
        _write_notices(terminalreporter, state)
        if not state.rows or terminalreporter.config.get_verbosity() < -1:
            return
        if state.settings.compare_path is not None:
            from .baseline import comparison_lines

            terminalreporter.section("cekura baseline comparison")
            for line in comparison_lines(state.rows, state.baseline, state.settings.tolerance):
                terminalreporter.write_line(line)
        terminalreporter.section("cekura")
        lines = summary_lines(self._state.rows, self._state.request_counts())
        if terminalreporter.config.get_verbosity() < 0:
            lines = [line for line in lines if line.startswith("cekura:")]  # -q: totals only
        for line in lines:
            terminalreporter.write_line(line)


def _write_notices(terminalreporter: pytest.TerminalReporter, state: _State) -> None:
    """Preflight's warnings (always, once), and at -v what the client decided on its own;
    under xdist, as the workers reported them."""
    cekura = state.session
    warnings = dict(state.role.warnings)
    notices = dict(state.role.api_notices)
    if cekura is not None:
        warnings.update(dict.fromkeys(cekura.preflight_warnings))
        notices.update(dict.fromkeys(cekura.api_notices))
    lines = [f"cekura warning: {warning}" for warning in warnings]
    if terminalreporter.config.get_verbosity() > 0:
        lines += [f"cekura: {notice}" for notice in notices]
    if lines:
        terminalreporter.section("cekura notices")
        for line in lines:
            terminalreporter.write_line(line)
