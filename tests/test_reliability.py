"""The fault matrix: every fault the emulator can inject, and what the plugin does about it.

Invariants checked throughout: no run-starting request is ever sent twice for a group, no
session hangs, and a result Cekura produced is never dropped.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import pytest

from conftest import SENTINEL_KEY, TIME_SCALE, Suite
from pytest_cekura.cleanup import Ledger
from pytest_cekura.client import CekuraClient
from pytest_cekura.emulator import Catalogue, Emulator
from pytest_cekura.emulator.state import FIRST_RUN_ID, RequestRecord
from pytest_cekura.markers import ScenarioSpec
from pytest_cekura.submit import UNSENDABLE, Group, submit_group

ONE_TEST = """
import pytest

@pytest.mark.cekura_scenario(30, 31, frequency=2)
def test_agent(cekura_result):
    assert len(cekura_result.runs) == 4
"""
TWO_TESTS = """
import pytest

@pytest.mark.cekura_scenario(30)
def test_first(): pass

@pytest.mark.cekura_scenario(31)
def test_second(): pass
"""


#: Two groups (x1 and x2): the first POST is test_first's, so its run is FIRST_RUN_ID and
#: test_second's are the next two.
TWO_GROUPS = """
import pytest

@pytest.mark.cekura_scenario(30)
def test_first(): pass

@pytest.mark.cekura_scenario(31, frequency=2)
def test_second(): pass
"""


#: In-process runs re-import hypothesis in its plugin's terminal summary (about a second):
#: it has nothing to do with the wall times measured here.
NO_HYPOTHESIS = ("-p", "no:hypothesispytest")
FAST_ARGS = ("--cekura-poll-interval=0.02", "-p", "no:cacheprovider", *NO_HYPOTHESIS)


def starts(suite: Suite) -> int:
    return sum(1 for r in suite.emulator.requests if "run_scenarios" in r.path)


def run_of(suite: Suite, scenario_id: int) -> int:
    (run_id,) = [run["id"] for run in suite.emulator.runs if run["scenario"] == scenario_id]
    return int(run_id)


def lookup_name(request: RequestRecord) -> str:
    """The name a results look-up asked for (``search`` in the contract, ``name`` before)."""
    return request.query.get("search") or request.query.get("name") or ""


class Clock:
    """Times, in the pytester process, from the end of submission (where the plugin's deadline
    starts) to each test's decision and to the end of the session."""

    def __init__(self) -> None:
        self.submitted = 0.0
        self.decided: dict[str, float] = {}
        self.finished = 0.0

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self) -> None:
        self.submitted = time.monotonic()  # the plugin submitted in pytest_collection_finish

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "setup":
            self.decided[report.nodeid.split("::")[-1]] = time.monotonic() - self.submitted

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self) -> None:
        self.finished = time.monotonic() - self.submitted


def test_post_failing_before_creating_runs_errors_and_is_not_resent(suite: Suite) -> None:
    """Row 1: 500 before anything exists: the name look-up finds nothing; only that group's
    test errors, saying runs may exist and where to look; the other group is unaffected."""
    suite.emulator.inject("start", "error_before", status=500)
    suite.pytester.makepyfile(TWO_GROUPS)
    result = suite.run()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_first*",
            "*may have reached Cekura*It was not re-sent*no result named 'pytest-cekura *"
            " #1 livekit x1' could be found: look for it in Cekura's dashboard*",
        ]
    )
    assert [r.status for r in suite.emulator.requests if "run_scenarios" in r.path] == [500, 200]
    lookups = [r for r in suite.emulator.requests if r.path.endswith("/results/")]
    assert lookups
    names = [lookup_name(r) for r in lookups]
    assert all(name.endswith(" #1 livekit x1") for name in names)
    assert sorted(run["scenario"] for run in suite.emulator.runs) == [31, 31]


def test_ambiguous_post_whose_result_cannot_be_found_errors_and_is_not_resent(
    suite: Suite,
) -> None:
    """Runs were created, but the look-up by name fails too: no second POST; the test errors
    naming the result to look for. (404 on the look-up, which is not retried, keeps it fast.)"""
    suite.emulator.inject("start", "error_after", status=500)
    suite.emulator.inject("results", "error_before", status=404, times=0)
    suite.pytester.makepyfile(ONE_TEST)
    result = suite.run()
    result.assert_outcomes(errors=1)
    # The look-ups got no answer: the message says so, never "could not be found".
    result.stdout.fnmatch_lines(
        [
            # Looked for once more at the end, in vain: named to be ended by hand.
            "pytest-cekura: calls may still be going (Cekura did not accept the requests to "
            "find or end them): end them in Cekura's dashboard: the result named "
            "'pytest-cekura * #1 livekit x2'.",
            "*may have reached Cekura*It was not re-sent*and looking for a result named "
            "'pytest-cekura * #1 livekit x2' failed too (GET * -> HTTP 404: *): look for it in "
            "Cekura's dashboard*",
        ]
    )
    assert "could be found" not in result.stdout.str()
    assert starts(suite) == 1
    assert len(suite.emulator.runs) == 4  # they exist: that is why nothing was re-sent
    assert suite.emulator.count("GET", "/results/") >= 2  # the look-up was tried again


@pytest.mark.parametrize("status", [400, 404, 422])
def test_rejected_post_errors_its_group_alone_and_is_not_resent(suite: Suite, status: int) -> None:
    """Row 9: a 4xx says nothing was started: no retry, no look-up; the other group runs."""
    suite.emulator.inject("start", "error_before", status=status)
    suite.pytester.makepyfile(TWO_GROUPS)
    result = suite.run()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_first*",
            f"*Cekura rejected the request; nothing was started: *HTTP {status}*",
        ]
    )
    assert [r.status for r in suite.emulator.requests if "run_scenarios" in r.path] == [
        status,
        200,
    ]
    assert suite.emulator.count("GET", "/results/") == 0


def test_every_group_of_every_session_has_its_own_name(suite: Suite) -> None:
    """The name is the only handle after an ambiguous failure: it must never repeat."""
    suite.pytester.makepyfile(TWO_GROUPS)
    suite.run().assert_outcomes(passed=2)
    suite.run().assert_outcomes(passed=2)
    page = httpx.get(
        f"{suite.emulator.url}/test_framework/v1/results/",
        params={"agent_id": "1", "page_size": "100"},
        headers={"X-CEKURA-API-KEY": SENTINEL_KEY},
    ).json()
    names = [result["name"] for result in page["results"]]
    assert len(names) == starts(suite) == 4
    assert len(set(names)) == 4
    assert all(re.fullmatch(r"pytest-cekura \S+ #[12] livekit x[12]", name) for name in names)


@pytest.mark.parametrize(
    ("action", "extra"),
    [
        ("error_after", {"status": 500}),
        ("drop_after", {}),
        ("drop_after", {"drop_mode": "reset"}),
        ("drop_after", {"drop_mode": "partial"}),
        ("malformed_json", {}),
    ],
    ids=["500-after", "dropped", "reset", "partial", "malformed-json"],
)
def test_ambiguous_post_adopts_the_runs_it_created(
    suite: Suite, action: str, extra: dict[str, object]
) -> None:
    """Rows 2, 3, 10: the runs exist; found by the group's unique name, adopted, not re-posted."""
    suite.emulator.inject("start", action, **extra)  # type: ignore[arg-type]
    suite.pytester.makepyfile(ONE_TEST)
    suite.run().assert_outcomes(passed=1)
    assert starts(suite) == 1
    assert len(suite.emulator.runs) == 4
    lookups = [r for r in suite.emulator.requests if r.path.endswith("/results/")]
    assert lookups
    assert lookup_name(lookups[0]).startswith("pytest-cekura ")
    assert suite.emulator.count("GET", "/results/5000/") == 1  # the found result was read


def test_refused_connection_is_retried_then_reported(suite: Suite) -> None:
    """Row 18: nothing was sent, so a retry is safe; when it keeps failing, one session error
    naming the URL, and no other group is tried."""
    suite.pytester.makepyfile(TWO_GROUPS)
    started = time.monotonic()
    result = suite.run("--cekura-url=http://127.0.0.1:9", "--cekura-no-preflight")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: pytest-cekura: cannot reach Cekura at http://127.0.0.1:9 *nothing was started*"]
    )
    assert time.monotonic() - started < 60


def test_refused_connection_is_retried_until_cekura_answers(
    suite: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Row 18: a refused connection carried nothing, so the POST is sent again, and once
    Cekura is up the session goes on as if nothing happened: one POST arrives, one set of runs.
    """
    with socket.socket() as probe:  # a free port nobody listens on (yet)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    late = Emulator(Catalogue(), api_key=SENTINEL_KEY, time_scale=TIME_SCALE, port=port)

    class StartOnRefusal(logging.Handler):
        """Starts the emulator the moment httpcore reports the first refused connection."""

        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("connect_tcp.failed"):
                late.start()  # before the plugin's retry: starting twice is a no-op

    connection_log = logging.getLogger("httpcore.connection")
    handler, level = StartOnRefusal(), connection_log.level
    connection_log.addHandler(handler)
    connection_log.setLevel(logging.DEBUG)
    monkeypatch.setenv("CEKURA_API_URL", f"http://127.0.0.1:{port}")
    suite.pytester.makepyfile(ONE_TEST)
    try:
        result = suite.run("--cekura-no-preflight")
    finally:
        connection_log.removeHandler(handler)
        connection_log.setLevel(level)
        late.stop()
    result.assert_outcomes(passed=1)
    # The emulator saw one POST; the plugin sent more (the refused ones).
    assert [r.status for r in late.requests if "run_scenarios" in r.path] == [200]
    assert len(late.runs) == 4
    counted = re.search(r"API requests: (\d+) POST start runs", result.stdout.str())
    assert counted is not None
    assert int(counted.group(1)) == 2


def test_rate_limited_post_is_retried_after_retry_after(suite: Suite) -> None:
    """Row 5: 429 means Cekura did nothing: the POST may be sent again, after the wait."""
    suite.emulator.inject("start", "rate_limit", retry_after="1")
    suite.pytester.makepyfile(ONE_TEST)
    started = time.monotonic()
    suite.run().assert_outcomes(passed=1)
    assert time.monotonic() - started >= 1.0
    assert [r.status for r in suite.emulator.requests if "run_scenarios" in r.path] == [429, 200]
    assert len(suite.emulator.runs) == 4


def test_rate_limited_poll_honours_retry_after(suite: Suite) -> None:
    """Row 5: calls last 30-60 ms and polls are 20 ms apart, so only the wait Cekura asked
    for can make the session last a second."""
    suite.emulator.inject("bulk", "rate_limit", retry_after="1", times=1)
    suite.pytester.makepyfile(ONE_TEST)
    started = time.monotonic()
    suite.run().assert_outcomes(passed=1)
    assert time.monotonic() - started >= 1.0
    bulk = [r for r in suite.emulator.requests if r.path.endswith("/runs/bulk/")]
    assert bulk[0].status == 429
    assert all(r.status == 200 for r in bulk[1:])
    assert len(bulk) <= 3  # no polling while told to wait


def test_retry_after_beyond_the_deadline_ends_the_wait_at_the_deadline(suite: Suite) -> None:
    """Row 6: a wait past the deadline is not slept; the tests error, naming the 429."""
    suite.emulator.inject("bulk", "rate_limit", retry_after="30", times=0)
    suite.pytester.makepyfile(TWO_TESTS)
    clock = Clock()
    result = suite.pytester.runpytest(
        "--cekura-poll-interval=0.2",
        "-p",
        "no:cacheprovider",
        *NO_HYPOTHESIS,
        "--cekura-timeout=0.5",
        plugins=[clock],
    )
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*not finished by the deadline*last polling error*HTTP 429*"])
    # The clean-up's request to end the calls waits out part of Cekura's pause: within its
    # 5 s budget (plus slack for a loaded machine).
    assert clock.finished < 0.5 + 0.2 + 5.0 + 1.5


def test_retry_after_beyond_the_deadline_is_not_ignored_by_the_poller(suite: Suite) -> None:
    suite.emulator.inject("bulk", "rate_limit", retry_after="30", times=0)
    suite.pytester.makepyfile(TWO_TESTS)
    suite.run("--cekura-timeout=0.5").assert_outcomes(errors=2)
    # Cekura said "come back in 30 s": asking again within the same half second ignores it.
    assert suite.emulator.count("GET", "/runs/bulk/") == 1


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_key_on_post_is_one_session_error(suite: Suite, status: int) -> None:
    """Row 8: no test reports a pass; one error names the variable to set."""
    suite.emulator.inject("start", "error_before", status=status)
    suite.pytester.makepyfile(TWO_TESTS)
    result = suite.run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.str().count("Check the CEKURA_API_KEY environment variable") == 1
    assert "passed" not in result.stdout.str()


def test_server_errors_on_polls_are_ridden_out(suite: Suite) -> None:
    """Row 11: 5xx and malformed JSON on a poll are transient; polling goes on."""
    suite.emulator.inject("bulk", "error_before", status=503, times=2)
    suite.emulator.inject("bulk", "malformed_json", times=1)
    suite.pytester.makepyfile(ONE_TEST)
    suite.run().assert_outcomes(passed=1)
    assert starts(suite) == 1


def test_unknown_status_errors_only_its_test_naming_the_run(suite: Suite) -> None:
    """Row 12: never a pass on a status we do not know; the run and the value are named."""
    suite.emulator.inject(
        "bulk", "unknown_status", status_value="paused", scenario_ids=[31], times=0
    )
    suite.pytester.makepyfile(TWO_TESTS)
    result = suite.run("--cekura-timeout=1")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_second*",
            f"run {run_of(suite, 31)} · scenario 31 *",
            "*last status 'paused' (a status pytest-cekura does not know)*",
        ]
    )


def test_runs_missing_from_bulk_answers_error_at_the_deadline(suite: Suite) -> None:
    """Row 14: a run the answers keep leaving out is named, with why; the others pass."""
    suite.emulator.inject("bulk", "omit_runs", omit_ids=[FIRST_RUN_ID + 1], times=0)
    suite.pytester.makepyfile(TWO_GROUPS)
    result = suite.run("--cekura-timeout=1")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_second*",
            f"run {FIRST_RUN_ID + 1} · scenario 31 *",
            "*why: not finished by the deadline*missing from Cekura's last bulk answer*",
        ]
    )
    assert f"run {FIRST_RUN_ID + 2} · scenario 31" not in result.stdout.str()


def test_malformed_bulk_answers_error_at_the_deadline_naming_the_runs(suite: Suite) -> None:
    """Row 11, persisting: never a verdict from an unreadable answer; each run is named."""
    suite.emulator.inject("bulk", "malformed_json", times=0)
    suite.pytester.makepyfile(TWO_TESTS)
    clock = Clock()
    result = suite.pytester.runpytest(*FAST_ARGS, "--cekura-timeout=0.5", plugins=[clock])
    result.assert_outcomes(errors=2)
    for scenario_id in (30, 31):
        result.stdout.fnmatch_lines(
            [f"run {run_of(suite, scenario_id)} · scenario {scenario_id} *", "*not JSON*"]
        )
    assert clock.finished < 0.5 + 0.02 + 1.5


def test_duplicate_and_stranger_runs_in_bulk_answers_change_nothing(suite: Suite) -> None:
    """Row 16: extra and repeated entries are ignored, never attributed to a test."""
    suite.emulator.inject("bulk", "duplicate_runs", times=0)
    suite.emulator.inject("bulk", "extra_runs", times=0)
    suite.pytester.makepyfile(ONE_TEST)
    suite.run().assert_outcomes(passed=1)


def test_fewer_runs_than_asked_is_an_error_for_the_short_scenario(suite: Suite) -> None:
    """Row 15: the POST answer lacks a run and the result cannot be read: its test errors."""
    suite.emulator.inject("start", "omit_runs", omit=1)
    suite.emulator.inject("result", "error_before", status=404, times=0)  # nor the result
    suite.pytester.makepyfile(TWO_TESTS.replace("(30)", "(30, frequency=1)"))
    result = suite.run()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*Cekura listed 0 run(s) for scenario 30, expected 1*"])


def test_runs_the_start_answer_left_out_are_found_in_the_result_and_ended(suite: Suite) -> None:
    """#14 item 3: the answer omits a run the service started; reading the result finds it,
    its test waits for it, and at the deadline its call is ended (not left running)."""
    suite.emulator.inject("start", "omit_runs", omit=1)
    suite.emulator.inject("any", "never_finish", scenario_ids=[30])
    suite.pytester.makepyfile(TWO_TESTS)
    clock = Clock()
    timeout = 1.0
    result = suite.pytester.runpytest(*FAST_ARGS, f"--cekura-timeout={timeout}", plugins=[clock])
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [f"run {run_of(suite, 30)} · scenario 30 *", "*not finished by the deadline*"]
    )
    assert "started 0 run(s)" not in result.stdout.str()
    (result_id,) = {run["result_id"] for run in suite.emulator.runs}
    assert suite.emulator.count("GET", f"/results/{result_id}/") == 1  # the reconciliation
    assert {run["status"] for run in suite.emulator.runs if run["scenario"] == 30} == {"cancelled"}
    assert suite.emulator.count("POST", "end_calls") == 1
    assert clock.finished < timeout + 0.02 + 5


def test_repeated_runs_in_the_start_answer_count_once(suite: Suite) -> None:
    """#14 item 3: every run listed twice; the service has exactly the runs asked for, so
    the tests pass (no extra look-up needed)."""
    suite.emulator.inject("start", "duplicate_runs")
    suite.pytester.makepyfile(ONE_TEST)
    suite.run().assert_outcomes(passed=1)
    assert starts(suite) == 1
    assert len(suite.emulator.runs) == 4


def test_runs_that_never_finish_end_at_the_deadline(suite: Suite) -> None:
    """Row 13: no hang past the deadline plus a poll interval; the unfinished run is named."""
    suite.emulator.inject("any", "never_finish", scenario_ids=[31])
    suite.pytester.makepyfile(TWO_TESTS)
    clock = Clock()
    result = suite.pytester.runpytest(*FAST_ARGS, "--cekura-timeout=1", plugins=[clock])
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            f"run {run_of(suite, 31)} · scenario 31 *",
            "*not finished by the deadline; last status 'running'*",
        ]
    )
    # The deadline (counted from the start of submission, before the clock's start) plus
    # one poll interval, and some slack for a loaded machine.
    assert 0.5 <= clock.decided["test_second"] < 1.0 + 0.02 + 1.5
    assert clock.finished < 1.0 + 0.02 + 1.5
    assert suite.emulator.count("POST", "end_call") == 1  # the unfinished call was ended


@pytest.mark.parametrize(
    "delay",
    [
        0.3,
        3.0,
    ],
    ids=["answer-within-interval", "answer-after-deadline"],
)
def test_slow_server_and_unfinished_runs_end_by_the_deadline(suite: Suite, delay: float) -> None:
    """Rows 13 + 17: every bulk answer is slow and one run never ends; each test is decided
    by the deadline plus one poll interval, and so is the session."""
    suite.emulator.inject("any", "never_finish", scenario_ids=[31])
    suite.emulator.inject("bulk", "slow", delay_s=delay, times=0)
    suite.pytester.makepyfile(TWO_TESTS)
    clock = Clock()
    timeout, interval, slack = 1.0, 0.2, 1.0
    result = suite.pytester.runpytest(
        "--cekura-poll-interval=0.2",
        "-p",
        "no:cacheprovider",
        *NO_HYPOTHESIS,
        f"--cekura-timeout={timeout}",
        plugins=[clock],
    )
    # An answer slower than the whole timeout leaves both tests undecided.
    slower = delay > timeout
    result.assert_outcomes(errors=2 if slower else 1, passed=0 if slower else 1)
    result.stdout.fnmatch_lines(
        ["*ERROR at setup of test_second*", "*not finished by the deadline*"]
    )
    assert max(clock.decided.values()) < timeout + interval + slack
    assert clock.finished < timeout + interval + slack


def test_slow_server_is_waited_for_without_spurious_retries(suite: Suite) -> None:
    """Row 17: slow answers (under the read timeout) are not retried."""
    suite.emulator.inject("start", "slow", delay_s=1.0)
    suite.emulator.inject("bulk", "slow", delay_s=0.5, times=2)
    suite.pytester.makepyfile(ONE_TEST)
    suite.run().assert_outcomes(passed=1)
    assert starts(suite) == 1


def test_post_timing_out_while_cekura_accepts_late_is_adopted(
    suite: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Row 4: the answer comes too late; the runs exist; found by name, not re-posted."""
    # The look-ups' real pauses (0, 1, 2 s) are what outlasts the 1 s Cekura takes.
    monkeypatch.setenv("PYTEST_CEKURA_DELAY_SCALE", "1")
    suite.emulator.inject("start", "slow", delay_s=1.0)
    suite.pytester.makepyfile(ONE_TEST)
    result = suite.run("--cekura-request-timeout=0.3", "--cekura-no-preflight")
    result.assert_outcomes(passed=1)
    assert starts(suite) == 1
    assert len(suite.emulator.runs) == 4


def test_key_rejected_after_an_ambiguous_post_says_calls_may_have_started(suite: Suite) -> None:
    # The POST may have started calls before the look-up was refused: the session error must
    # not claim nothing was started, and must say where to look.
    suite.emulator.inject("start", "error_after", status=500)
    suite.emulator.inject("results", "error_before", status=401)
    suite.pytester.makepyfile(ONE_TEST)
    result = suite.run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*calls it asked for before the rejection may have started*"])
    assert "before any call was started" not in result.stderr.str()
    assert starts(suite) == 1


# -- #14: every paid call ended, whatever stops the session ---------------------------------

#: Three groups of one never-ending scenario: 1 + 2 + 3 calls.
THREE_GROUPS = """
import pytest

@pytest.mark.cekura_scenario(30)
def test_first(): pass

@pytest.mark.cekura_scenario(30, frequency=2)
def test_second(): pass

@pytest.mark.cekura_scenario(30, frequency=3)
def test_third(): pass
"""


def spawn(suite: Suite, *args: str, group: bool = False) -> subprocess.Popen[str]:
    """The suite in a real pytest process, to be interrupted with a real signal; ``group``:
    in a process group of its own, as a terminal's Ctrl-C reaches all of xdist's processes."""
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", *FAST_ARGS, *args],
        cwd=suite.pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=group,
        # CI may start us with SIGINT ignored, which the child would inherit.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_until(ready: Callable[[], bool], timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < end, "the session never got there"
        time.sleep(0.02)


def finish(process: subprocess.Popen[str], timeout: float = 60.0) -> str:
    try:
        output, _ = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return output


def ended_message(suite: Suite) -> str:
    """The line the clean-up prints, for every result of the emulator's runs."""
    results = sorted({run["result_id"] for run in suite.emulator.runs})
    return (
        f"pytest-cekura: ended the calls still going of result(s) "
        f"{', '.join(map(str, results))} ({len(suite.emulator.runs)} run(s)) "
        "so they stop costing credits."
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_during_submission_ends_every_call_already_started(
    suite: Suite, sig: signal.Signals
) -> None:
    """#14 item 1: the first group's calls are going and later groups' POSTs are slow when
    the signal comes: every result the session created is ended, even those whose POST
    answered after the interrupt (clean-up waits for them within its 5 s budget)."""
    suite.emulator.inject("any", "never_finish", scenario_ids=[30])
    suite.emulator.inject("start", "slow", delay_s=0.01)  # the first group: quick
    suite.emulator.inject("start", "slow", delay_s=1.5, times=0)
    suite.pytester.makepyfile(THREE_GROUPS)
    process = spawn(suite)
    wait_until(lambda: starts(suite) >= 1)  # the first group's calls are going
    process.send_signal(sig)
    interrupted = time.monotonic()
    output = finish(process)
    took = time.monotonic() - interrupted
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "INTERNALERROR" not in output
    assert "Traceback" not in output
    runs = suite.emulator.runs
    assert runs
    assert {run["status"] for run in runs} == {"cancelled"}
    # One request per result, no run-starting POST sent twice.
    results = {run["result_id"] for run in runs}
    assert suite.emulator.count("POST", "end_calls") == len(results)
    assert starts(suite) == len(results)
    assert output.count("pytest-cekura: ended the calls") == 1
    assert ended_message(suite) in output
    assert took < 5.0 + 3.0  # the clean-up budget, and margin for a busy machine


def test_group_that_cannot_be_serialised_errors_alone_and_the_others_run(suite: Suite) -> None:
    """#14 item 1: NaN in a later group's request fields is that group's error, not an
    INTERNALERROR; the earlier group's runs are used, and nothing is left running."""
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30)
        def test_first(): pass

        @pytest.mark.cekura_scenario(31, request_fields={"x": float("nan")})
        def test_second(): pass
        """
    )
    result = suite.run()
    result.assert_outcomes(passed=1, errors=1)
    assert "INTERNALERROR" not in result.stdout.str()
    result.stdout.fnmatch_lines(
        ["*ERROR at setup of test_second*", "*request_fields={'x': nan} cannot be sent*"]
    )
    assert starts(suite) == 1
    assert {run["status"] for run in suite.emulator.runs} == {"completed"}


def test_unsendable_body_starts_nothing_and_says_so(emulator: Emulator) -> None:
    """The check behind the marker's: a group whose body is not JSON is never sent."""
    spec = ScenarioSpec((30,))
    key = dataclasses.replace(spec.group_key, extras='{"request_fields": {"x": NaN}}')
    group = Group(key, (30,), "pytest-cekura test #1")
    ledger = Ledger()
    with CekuraClient(emulator.url, SENTINEL_KEY) as client:
        submission = submit_group(client, group, ledger=ledger)
    assert submission.error == (
        f"{UNSENDABLE}: Out of range float values are not JSON compliant. Nothing was started."
    )
    assert emulator.requests == []
    assert ledger.empty


def test_clean_up_falls_back_to_ending_each_call_when_the_result_request_fails(
    suite: Suite,
) -> None:
    """#14 item 2: results/{id}/end_calls/ is refused (400): each call is ended on its own."""
    suite.emulator.inject("any", "never_finish", scenario_ids=[30])
    suite.emulator.inject("end_call", "error_before", status=400)
    suite.pytester.makepyfile(ONE_TEST.replace("30, 31", "30"))
    result = suite.run("--cekura-timeout=1")
    result.assert_outcomes(errors=1)
    assert {run["status"] for run in suite.emulator.runs} == {"cancelled"}
    assert [r.status for r in suite.emulator.requests if r.path.endswith("/end_calls/")] == [400]
    assert suite.emulator.count("POST", "/end_call/") == 2
    result.stdout.fnmatch_lines([ended_message(suite)])


def slow_end_calls_session(suite: Suite, *args: str) -> subprocess.Popen[str]:
    """A session whose one call never ends, and whose clean-up requests take 20 s."""
    suite.emulator.inject("any", "never_finish", scenario_ids=[30])
    suite.emulator.inject("end_call", "slow", delay_s=20, times=0)
    suite.pytester.makepyfile(ONE_TEST.replace("30, 31", "30"))
    return spawn(suite, *args)


def cleanup_started(suite: Suite) -> bool:
    # A rule counts a request when it arrives: the slow answer is not logged before it ends.
    return any(rule.get("fired") for rule in suite.emulator.faults if rule["action"] == "slow")


def test_slow_clean_up_does_not_keep_the_process_past_the_deadline(suite: Suite) -> None:
    """#14 items 2 and 6: ending calls that takes 20 s is given up after 5 s (daemon threads:
    Python does not wait for them at exit), and the result to end by hand is named."""
    timeout, interval = 2.0, 0.02
    started = time.monotonic()
    process = slow_end_calls_session(suite, f"--cekura-timeout={timeout}")
    output = finish(process)
    took = time.monotonic() - started
    assert process.returncode == pytest.ExitCode.TESTS_FAILED, output
    (result_id,) = {run["result_id"] for run in suite.emulator.runs}
    assert output.count("pytest-cekura: calls may still be going") == 1
    assert (
        "pytest-cekura: calls may still be going (they could not be ended within 5 s): end "
        f"them in Cekura's dashboard: result {result_id}."
    ) in output
    # Deadline + one poll interval + the 5 s clean-up budget, plus interpreter start-up and
    # margin for a busy machine (the old clean-up took 20 s more).
    assert took < timeout + interval + 5.0 + 4.0


def test_second_interrupt_during_clean_up_ends_it_at_once_with_one_line(suite: Suite) -> None:
    """#14 item 2: Ctrl-C, then Ctrl-C again while the calls are being ended: one line naming
    the result to end in the dashboard, no traceback, no waiting for the clean-up budget."""
    process = slow_end_calls_session(suite)
    wait_until(lambda: starts(suite) == 1)
    process.send_signal(signal.SIGINT)
    wait_until(lambda: cleanup_started(suite))
    process.send_signal(signal.SIGINT)
    again = time.monotonic()
    output = finish(process)
    assert time.monotonic() - again < 4.5  # inside the 5 s budget, with margin for a busy machine
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output
    (result_id,) = {run["result_id"] for run in suite.emulator.runs}
    lines = [line for line in output.splitlines() if line.startswith("pytest-cekura:")]
    assert lines == [
        "pytest-cekura: calls may still be going (clean-up was interrupted): end them in "
        f"Cekura's dashboard: result {result_id}."
    ]
    assert "Traceback" not in output
    assert "Exception in thread" not in output


def test_post_accepted_after_the_look_up_gave_up_is_ended_at_session_end(suite: Suite) -> None:
    """#14 item 4: the first group's POST times out and Cekura creates its result only after
    the look-ups by name gave up; the session looks once more when it ends, and ends it."""
    suite.emulator.inject("any", "never_finish", scenario_ids=[30, 31])
    suite.emulator.inject("start", "slow", delay_s=4.0)
    suite.pytester.makepyfile(TWO_GROUPS)
    timeout = 6.0
    started = time.monotonic()
    result = suite.run(f"--cekura-timeout={timeout}", "--cekura-request-timeout=0.3")
    took = time.monotonic() - started
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_first*",
            "*no result named 'pytest-cekura * #1 livekit x1' could be found*"
            "(the session looks it up once more when it ends, and ends its calls).",
        ]
    )
    assert starts(suite) == 2  # never re-sent
    assert len(suite.emulator.runs) == 3
    assert {run["status"] for run in suite.emulator.runs} == {"cancelled"}
    result.stdout.fnmatch_lines([ended_message(suite)])
    assert took < timeout + 5.0 + 3.0


def many_groups(count: int) -> str:
    """``count`` groups (frequencies 1..count) of scenario 30, one test each."""
    tests = "".join(
        f"\n@pytest.mark.cekura_scenario(30, frequency={n})\ndef test_group_{n}(): pass\n"
        for n in range(1, count + 1)
    )
    return "import pytest\n" + tests


def test_slow_start_posts_fit_in_the_session_deadline(suite: Suite) -> None:
    """#14 item 5: every start POST takes 3 s and there are 7 groups; with --cekura-timeout 4
    the groups not answered in time error (in flight: looked up and ended; never sent: say
    so), progress is shown while submitting, and the process exits within the deadline +
    one poll interval + the 5 s clean-up."""
    suite.emulator.inject("any", "never_finish", scenario_ids=[30])
    suite.emulator.inject("start", "slow", delay_s=3.0, times=0)
    suite.pytester.makepyfile(many_groups(7))
    timeout, interval = 4.0, 0.02
    started = time.monotonic()
    output = finish(spawn(suite, f"--cekura-timeout={timeout}"))
    took = time.monotonic() - started
    assert "INTERNALERROR" not in output
    # The first group goes alone (3 s), the next four together (answered at 6 s, after the
    # deadline), the last two are never sent.
    assert re.search(r"cekura: starting runs: \d/7 request\(s\) answered \(\ds\)", output)
    assert output.count("ran out before this group's request was sent") == 2
    assert output.count("Cekura did not answer the request to start this group's runs") == 4
    assert starts(suite) == 5  # each sent once
    # The four answered late were waited for by the clean-up, and ended with the first.
    assert {run["status"] for run in suite.emulator.runs} == {"cancelled"}
    assert len(suite.emulator.runs) == 1 + 2 + 3 + 4 + 5
    assert ended_message(suite) in output
    assert took < timeout + interval + 5.0 + 4.0  # start-up and a busy machine


def test_retry_after_longer_than_the_session_fails_the_group_at_once(suite: Suite) -> None:
    """#14 item 5: a 429 asking for 120 s on the start POST is not slept in collection."""
    suite.emulator.inject("start", "rate_limit", status=429, retry_after="120", times=0)
    suite.pytester.makepyfile(ONE_TEST)
    started = time.monotonic()
    result = suite.run("--cekura-timeout=3")
    assert time.monotonic() - started < 3.0 + 2.0
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*Cekura kept rate-limiting the request to start this group's runs (HTTP 429, "
            "asked to wait 120s) beyond what the session can wait (--cekura-timeout); nothing "
            "was started: POST * -> HTTP 429: *"
        ]
    )
    assert starts(suite) == 1
    assert suite.emulator.runs == []


def test_hung_start_and_look_ups_end_within_the_deadline(suite: Suite) -> None:
    """#14 items 5 and 6: POST and look-ups take 60 s and --cekura-request-timeout is 2: the
    session gives up at its deadline, says the calls may exist and under which name, and
    exits within the deadline + the clean-up budget."""
    suite.emulator.inject("start", "slow", delay_s=60, times=0)
    suite.emulator.inject("results", "slow", delay_s=60, times=0)
    suite.pytester.makepyfile(many_groups(3))
    timeout = 5.0
    started = time.monotonic()
    output = finish(
        spawn(suite, f"--cekura-timeout={timeout}", "--cekura-request-timeout=2"), timeout=90
    )
    took = time.monotonic() - started
    assert "INTERNALERROR" not in output
    assert output.count("Cekura did not answer the request to start this group's runs") == 1
    assert output.count("ran out before this group's request was sent") == 2
    assert starts(suite) <= 1  # the one POST sent is answered (or not) only after 60 s
    lines = [line for line in output.splitlines() if line.startswith("pytest-cekura: calls")]
    assert len(lines) == 1
    assert re.fullmatch(
        r"pytest-cekura: calls may still be going \(they could not be ended within 5 s\): "
        r"end them in Cekura's dashboard: the result named 'pytest-cekura \S+ #1 livekit x1'\.",
        lines[0],
    )
    assert took < timeout + 5.0 + 4.0


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (xdist's workers of a controller)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds xdist's workers through /proc")
def test_xdist_workers_killed_during_submission_leave_no_call_going(suite: Suite) -> None:
    """#14 item 1 under xdist: the workers (the one holding the submit lock among them) are
    killed while later groups' POSTs are slow: the controller ends every result the
    submitter recorded, including those answered after it died (found by name)."""
    suite.emulator.inject("any", "never_finish", scenario_ids=[30])
    suite.emulator.inject("start", "slow", delay_s=0.01)
    suite.emulator.inject("start", "slow", delay_s=1.5, times=0)
    suite.pytester.makepyfile(THREE_GROUPS)
    process = spawn(suite, "-n", "2", "--max-worker-restart=0")
    wait_until(lambda: starts(suite) >= 1)
    for worker in children(process.pid):
        os.kill(worker, signal.SIGKILL)
    output = finish(process)
    assert "INTERNALERROR" not in output, output
    runs = suite.emulator.runs
    assert runs
    assert {run["status"] for run in runs} == {"cancelled"}, output
    assert starts(suite) == len({run["result_id"] for run in runs})  # none sent twice
    assert ended_message(suite) in output


def test_xdist_group_ctrl_c_during_submission_leaves_no_call_going(suite: Suite) -> None:
    """#14 item 1 under xdist: Ctrl-C reaches the controller and every worker (a terminal's
    process group) while later groups' POSTs are slow: exit 2, no INTERNALERROR, every
    result created is ended."""
    suite.emulator.inject("any", "never_finish", scenario_ids=[30])
    suite.emulator.inject("start", "slow", delay_s=0.01)
    suite.emulator.inject("start", "slow", delay_s=1.5, times=0)
    suite.pytester.makepyfile(THREE_GROUPS)
    process = spawn(suite, "-n", "2", group=True)
    wait_until(lambda: starts(suite) >= 1)
    os.killpg(process.pid, signal.SIGINT)
    interrupted = time.monotonic()
    output = finish(process)
    assert time.monotonic() - interrupted < 5.0 + 4.0
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "INTERNALERROR" not in output, output
    runs = suite.emulator.runs
    assert runs
    assert {run["status"] for run in runs} == {"cancelled"}, output
    assert starts(suite) == len({run["result_id"] for run in runs})


def test_preflight_that_outlasts_the_deadline_is_one_session_error(suite: Suite) -> None:
    """#14 item 5: scenario look-ups take 60 s: preflight gives up at --cekura-timeout with
    one line, and nothing is started."""
    suite.emulator.inject("scenario", "slow", delay_s=60, times=0)
    suite.pytester.makepyfile(TWO_TESTS)
    timeout = 2.0
    started = time.monotonic()
    output = finish(spawn(suite, f"--cekura-timeout={timeout}"))
    took = time.monotonic() - started
    assert output.count("pytest-cekura: the checks before starting runs") == 1
    assert (
        "ERROR: pytest-cekura: the checks before starting runs (preflight) did not finish "
        f"within the session's time limit (--cekura-timeout {timeout:g}s)"
    ) in output
    assert "INTERNALERROR" not in output
    assert starts(suite) == 0
    assert took < timeout + 5.0 + 4.0


def test_an_interrupt_turned_into_a_threading_runtime_error_stays_an_interrupt() -> None:
    # A signal handler's KeyboardInterrupt landing inside Thread.start/Condition.wait comes
    # out of CPython as "RuntimeError: release unlocked lock" (seen once in CI, with SIGTERM
    # during submission, exit 3); no emulator fault can time that, so it is raised here.
    from pytest_cekura.interrupts import interrupt_kept

    def interrupted_inside_a_lock() -> None:
        try:
            raise KeyboardInterrupt("received signal 15")
        except KeyboardInterrupt:
            raise RuntimeError("release unlocked lock")  # noqa: B904  (as CPython does)

    with pytest.raises(KeyboardInterrupt, match="received signal 15"), interrupt_kept():
        interrupted_inside_a_lock()
    with pytest.raises(RuntimeError, match="no interrupt"), interrupt_kept():
        raise RuntimeError("no interrupt")
