"""pytest hooks and fixtures: each hook only turns a pytest event into ``CekuraSession`` calls.

Only light modules are imported at start-up: the HTTP client, the models (pydantic) and the
rest load when the first Cekura test is selected, so a suite with no Cekura test pays nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from .errors import ConfigError
from .interrupts import interrupt_kept
from .markers import MARKER, MARKER_DOC, MarkerDefaults, ScenarioSpec, parse_marker
from .options import Settings, add_options
from .outputs import warn
from .pluginstate import (
    MARKER_ERROR_KEY,
    STATE_KEY,
    _cekura,
    _State,
    _state,
)
from .pluginstate import _started as _started  # for testsuite_json.py
from .progress import Progress
from .providers import DEFAULT_BASE_URL
from .suites import pytest_collect_file  # noqa: F401  (a hook: collects cekura_*.toml)
from .testhooks import TIMEOUT_KEY, TIMEOUT_MARGIN, _activate, _late_error, _progress
from .xdist import Serial, WorkerOutput
from .xdist import role as xdist_role

if TYPE_CHECKING:
    from .client import CekuraClient
    from .gates import Gate
    from .models import CekuraResult
    from .testsuite_json import CaseSpec


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hookspec

    pluginmanager.add_hookspecs(hookspec)


def pytest_report_header(config: pytest.Config) -> list[str]:
    settings = _state(config).settings
    lines = []
    where = (
        f"built-in emulator (time scale {settings.emulator_time_scale:g})"
        if settings.emulator
        else settings.base_url
    )
    # Another deployment than Cekura's own is always named: requests (and the key) go there.
    elsewhere = settings.emulator or settings.base_url.rstrip("/") != DEFAULT_BASE_URL.rstrip("/")
    if elsewhere or config.get_verbosity() > 0:
        timing = f"poll every {settings.poll_interval:g}s, timeout {settings.timeout:g}s"
        lines.append(f"cekura: {where}, {timing}")
    log = _state(config).worker_log
    if log is not None:
        lines.append(f"cekura: agent worker output goes to {log}")
    if log is not None and settings.provider == "livekit":
        lines.append(
            f"cekura: agent worker registers as {settings.livekit_agent_name}; every LiveKit "
            "call of this session is dispatched to it alone"
        )
        lines.append(
            f"cekura: at most {settings.concurrency_limit} call(s) at once per request "
            "(concurrency_limit; one machine serves them all): --cekura-concurrency-limit N "
            "to change"
        )
    return lines


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_DOC)
    _register_tests_as_code(config)
    try:
        settings = Settings.from_config(config)
        if settings.agent_cmd is not None:  # the local worker's code only when there is one
            from .local_worker import own_worker_name

            settings = own_worker_name(config, settings)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    state = config.stash[STATE_KEY] = _State(config, settings)
    state.role = xdist_role(config, state)
    state.previous_handlers = _handle_interrupts(state.role)
    if settings.emulator and state.role.emulator is None:
        try:
            state.cekura().connection.emulator_catalogue()  # a broken one is reported at once
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
    if settings.reuse_seconds is not None and getattr(config, "cache", None) is None:
        raise pytest.UsageError(
            "pytest-cekura: --cekura-reuse keeps results in pytest's cache, which is disabled "
            "(-p no:cacheprovider): enable it, or drop --cekura-reuse"
        )
    if settings.compare_path is not None:
        from .baseline import load_baseline

        try:
            state.baseline = load_baseline(settings.compare_path)
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
    if state.role.reports:  # only this process writes them, at the very end
        from .outputs import check_outputs

        check_outputs(config, settings)
    # What serves only an option is imported only when the option is given.
    if settings.agent_cmd is not None:
        from .local_worker import worker_log

        state.worker_log = worker_log(config, settings, state.role)
    if settings.html_path is not None or getattr(config.option, "htmlpath", None):
        from .html_hooks import register as register_html

        register_html(config)  # --cekura-html, or pytest-html's --html: the extras
    if settings.share_links_days is not None:
        from .share_links import register as register_share_links

        register_share_links(config)
    if not state.role.runs_tests:
        # An xdist controller runs no test itself: rows arrive on its workers' reports.
        _activate(config)


def _handle_interrupts(role: Serial) -> dict[int, Any]:
    """Treat SIGTERM (a cancelled CI job) like Ctrl-C, so calls in progress are ended, and make
    sure either one stops the session (``interrupts``).

    Only in the main thread of a process that left the signal at its default, never in an
    xdist worker (its controller decides when it stops).
    """
    if not role.reports or threading.current_thread() is not threading.main_thread():
        return {}
    from . import interrupts

    return interrupts.install()


def pytest_keyboard_interrupt() -> None:
    from . import interrupts

    interrupts.reported()


def pytest_unconfigure(config: pytest.Config) -> None:
    if STATE_KEY in config.stash and config.stash[STATE_KEY].previous_handlers:
        from . import interrupts

        interrupts.uninstall(config.stash[STATE_KEY].previous_handlers)


def _register_tests_as_code(config: pytest.Config) -> None:
    """Collect ``cekura.tests.json`` files (a plugin of its own: this module already has a
    ``pytest_collect_file``, the TOML suites')."""
    from . import testsuite_json

    if not config.pluginmanager.has_plugin(testsuite_json.PLUGIN_NAME):
        config.pluginmanager.register(testsuite_json, testsuite_json.PLUGIN_NAME)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Submit once, after collection and deselection (-k, -m, --lf) have settled the items."""
    state = _state(session.config)
    settings = state.settings
    specs = _selected_specs(session.items, settings.marker_defaults())
    cases = _selected_cases(session.items, settings.marker_defaults().gates)
    if any(MARKER_ERROR_KEY in item.stash for item in session.items) or specs or cases:
        _activate(session.config)
    if not (specs or cases) or _submits_nothing(session):
        return
    if not settings.dry_run and state.role.reports and settings.agent_cmd is not None:
        from .local_worker import start_worker

        start_worker(state)
    progress = None
    try:
        progress = _progress(session.config)
        if cases:
            from .testsuite_json import CASE_SESSION

            session.config.stash[CASE_SESSION] = state.cekura()  # a case passes only if judged
        # Marked tests and cases in one submission: under xdist one worker starts both.
        with interrupt_kept():
            state.cekura().submit(specs, _submit_progress(progress), cases=cases)
    except ConfigError as exc:
        state.role.stop_session(str(exc))  # an xdist worker hands it to the controller
    finally:
        if progress is not None:
            progress.finish()


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    """An xdist worker whose session stopped at submission runs none of the tests sent to it."""
    if STATE_KEY in session.config.stash and _state(session.config).role.session_error:
        return True
    return None


def _submits_nothing(session: pytest.Session) -> bool:
    option = session.config.option
    # A collection error stops the session before any test runs: paying for calls nobody
    # will look at helps no one.
    stopping = session.testsfailed and not option.continue_on_collection_errors
    return bool(stopping or option.collectonly or getattr(option, "setupplan", False))


def _selected_specs(items: list[pytest.Item], defaults: MarkerDefaults) -> dict[str, ScenarioSpec]:
    specs: dict[str, ScenarioSpec] = {}
    for item in items:
        mark = item.get_closest_marker(MARKER)
        if mark is None or _skipped(item):
            continue
        try:
            specs[item.nodeid] = parse_marker(mark.args, mark.kwargs, defaults)
        except ConfigError as exc:
            item.stash[MARKER_ERROR_KEY] = str(exc)
    return specs


def _selected_cases(items: list[pytest.Item], gates: tuple[Gate, ...]) -> dict[str, CaseSpec]:
    """Tests-as-Code cases to submit: those without a problem found at collection. ``gates``
    (the session's) apply to a file's cases; a marker's own replace them metric by metric."""
    from .testsuite_json import CekuraCaseItem, case_from_marker

    cases = {}
    for item in items:
        if _skipped(item):
            continue
        if isinstance(item, CekuraCaseItem):
            if not item.spec.problems:
                cases[item.nodeid] = replace(item.spec, gates=gates)
            continue
        try:
            case = case_from_marker(item, gates)  # @pytest.mark.cekura_case, checked like the other
        except ConfigError as exc:
            item.stash[MARKER_ERROR_KEY] = str(exc)
            continue
        if case is not None:
            cases[item.nodeid] = case
    return cases


def _skipped(item: pytest.Item) -> bool:
    # An unconditional skip will never run: don't pay for it. skipif conditions are evaluated
    # by pytest at setup time, so those tests are still submitted.
    return item.get_closest_marker("skip") is not None


@pytest.hookimpl(optionalhook=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> None:
    """Note when pytest-timeout will fire for this test; its own timer is still set."""
    timeout = float(settings.timeout)
    margin = min(TIMEOUT_MARGIN, timeout / 10)
    item.stash[TIMEOUT_KEY] = (time.monotonic() + timeout - margin, timeout)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if STATE_KEY not in session.config.stash:
        return
    state = _state(session.config)
    role = state.role
    role.show_cleanup(session.config, _end_paid_calls(session.config, state))
    if state.worker is not None:
        state.worker.stop()
    late_error = _late_error(state)
    role.publish(session.config, _worker_output_of(state, late_error))
    if role.reports:
        if late_error is not None:
            # The same exit status as the key rejected at submission: a session-level stop.
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
        from .outputs import write_outputs

        interrupted = session.exitstatus == pytest.ExitCode.INTERRUPTED
        write_outputs(session.config, state, interrupted=interrupted)
    role.finish()


def _worker_output_of(state: _State, late_error: str | None) -> WorkerOutput:
    """What this process would hand an xdist controller (only a worker hands it over)."""
    cekura = state.session
    output = WorkerOutput(request_counts=dict(state.request_counts()), late_error=late_error)
    if cekura is not None:
        output.warnings = list(cekura.preflight_warnings)
        output.api_notices = list(cekura.api_notices)
        if cekura.dry_run_groups is not None:
            from .report import dry_run_lines

            output.dry_run = dry_run_lines(cekura.dry_run_groups, state.settings.max_runs)
        output.case_plan = cekura.case_plan
    return output


def _end_paid_calls(config: pytest.Config, state: _State) -> list[str]:
    """End every call the session started and cannot use; one line each to say so.

    Bounded (``cleanup.CLEANUP_BUDGET``); a second Ctrl-C or SIGTERM here ends the clean-up
    at once with one line, not a traceback: the session is already ending."""
    cekura = state.session
    try:
        # An xdist controller also ends what its workers started and did not reach.
        state.role.end_unfinished(lambda ids, created: state.cekura().end_unfinished(ids, created))
        cekura = state.session
        if cekura is not None:
            cekura.close()
    except KeyboardInterrupt:
        ids = cekura.ledger.result_ids() if cekura is not None else []
        where = f": end the calls of result(s) {', '.join(map(str, ids))} in Cekura's dashboard"
        warn(config, "pytest-cekura: clean-up interrupted" + (where if ids else "") + ".")
        return []
    return list(cekura.cleanup_lines) if cekura is not None else []


def _submit_progress(progress: Progress | None) -> Callable[[int, int, float], None] | None:
    """Progress while a slow submission goes on (quick ones print nothing)."""
    if progress is None:
        return None
    progress.start()

    def show(done: int, total: int, elapsed: float) -> None:
        progress.say(
            lambda _: f"cekura: starting runs: {done}/{total} request(s) answered ({elapsed:.0f}s)"
        )

    return show


@pytest.fixture
def cekura_result(request: pytest.FixtureRequest) -> CekuraResult:
    """The runs of this test's ``cekura_scenario`` marker and their success rate."""
    cekura = _cekura(request.config)
    if cekura.settings.dry_run:  # a cekura_case test has no record then: nothing was started
        pytest.skip("cekura dry run: nothing was submitted")
    if request.node.nodeid not in cekura.records:
        pytest.fail(
            f"the cekura_result fixture needs @pytest.mark.{MARKER}(...) on the test",
            pytrace=False,
        )
    record = cekura.verdict(request.node.nodeid)
    assert record.result is not None
    return record.result


@pytest.fixture(scope="session")
def cekura_client(request: pytest.FixtureRequest) -> CekuraClient:
    """The session's Cekura client (pointed at the emulator under ``--cekura-emulator``)."""
    try:
        return _cekura(request.config).client()
    except ConfigError as exc:
        pytest.fail(str(exc), pytrace=False)
