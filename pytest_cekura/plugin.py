"""pytest hooks and fixtures: each hook only turns a pytest event into ``CekuraSession`` calls."""

from __future__ import annotations

import uuid
from collections.abc import Generator
from datetime import UTC, datetime

import pytest

from .client import CekuraClient
from .errors import ConfigError
from .markers import MARKER, MARKER_DOC, ScenarioSpec, parse_marker
from .models import CekuraResult
from .options import Settings, add_options
from .outcome import Outcome
from .report import SummaryRow, failure_text, summary_lines
from .session import CekuraSession

SESSION_KEY = pytest.StashKey[CekuraSession]()
MARKER_ERROR_KEY = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_DOC)
    try:
        settings = Settings.from_config(config)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SESSION_KEY] = CekuraSession(settings, _session_id())


def _session_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def _cekura(config: pytest.Config) -> CekuraSession:
    return config.stash[SESSION_KEY]


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Submit once, after collection and deselection (-k, -m, --lf) have settled the items."""
    specs = _selected_specs(session.items)
    if not specs or _submits_nothing(session.config):
        return
    if hasattr(session.config, "workerinput"):
        raise pytest.UsageError(
            "pytest-cekura does not support pytest-xdist yet: each worker would start (and "
            "bill) the same runs. Run Cekura tests without -n."
        )
    try:
        _cekura(session.config).submit(specs)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None


def _submits_nothing(config: pytest.Config) -> bool:
    option = config.option
    return bool(option.collectonly or getattr(option, "setupplan", False))


def _selected_specs(items: list[pytest.Item]) -> dict[str, ScenarioSpec]:
    specs: dict[str, ScenarioSpec] = {}
    for item in items:
        mark = item.get_closest_marker(MARKER)
        if mark is None or _skipped(item):
            continue
        try:
            specs[item.nodeid] = parse_marker(mark.args, mark.kwargs)
        except ConfigError as exc:
            item.stash[MARKER_ERROR_KEY] = str(exc)
    return specs


def _skipped(item: pytest.Item) -> bool:
    # An unconditional skip will never run: don't pay for it. skipif conditions are evaluated
    # by pytest at setup time, so those tests are still submitted.
    return item.get_closest_marker("skip") is not None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Wait for this test's runs; an error here (Cekura could not run them) is an ERROR."""
    if MARKER_ERROR_KEY in item.stash:
        pytest.fail(item.stash[MARKER_ERROR_KEY], pytrace=False)
    cekura = _cekura(item.config)
    if item.nodeid not in cekura.records:
        return
    record = cekura.verdict(item.nodeid)
    assert record.verdict is not None
    if record.verdict.outcome is Outcome.ERROR:
        pytest.fail(_text(cekura, item.nodeid), pytrace=False)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """The agent misbehaved: FAIL before the body runs, with the runs that show why."""
    record = _cekura(item.config).records.get(item.nodeid)
    if record is not None and record.verdict and record.verdict.outcome is Outcome.FAILED:
        pytest.fail(_text(_cekura(item.config), item.nodeid), pytrace=False)


def _text(cekura: CekuraSession, nodeid: str) -> str:
    record = cekura.records[nodeid]
    assert record.verdict is not None
    return failure_text(
        record.spec, record.verdict, result_id=record.result_id, dashboard_url=cekura.dashboard_url
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    record = _cekura(item.config).records.get(item.nodeid)
    if record is not None and (report.when == "call" or not report.passed):
        record.outcome = "error" if report.when != "call" and report.failed else report.outcome
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    cekura = _cekura(terminalreporter.config)
    if not cekura.records:
        return
    rows = [
        SummaryRow(nodeid, record.spec, record.verdict, record.outcome)
        for nodeid, record in cekura.records.items()
    ]
    terminalreporter.section("cekura")
    for line in summary_lines(rows, cekura.request_counts):
        terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if SESSION_KEY in session.config.stash:
        _cekura(session.config).close()


@pytest.fixture
def cekura_result(request: pytest.FixtureRequest) -> CekuraResult:
    """The runs of this test's ``cekura_scenario`` marker and their success rate."""
    record = _cekura(request.config).records.get(request.node.nodeid)
    if record is None:
        pytest.fail(
            f"the cekura_result fixture needs @pytest.mark.{MARKER}(...) on the test",
            pytrace=False,
        )
    record = _cekura(request.config).verdict(request.node.nodeid)
    assert record.result is not None
    return record.result


@pytest.fixture(scope="session")
def cekura_client(request: pytest.FixtureRequest) -> CekuraClient:
    """The session's Cekura client (pointed at the emulator under ``--cekura-emulator``)."""
    try:
        return _cekura(request.config).client
    except ConfigError as exc:
        pytest.fail(str(exc), pytrace=False)
