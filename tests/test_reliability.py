"""The fault matrix: every fault the emulator can inject, and what the plugin does about it.

Invariants checked throughout: no run-starting request is ever sent twice for a group, no
session hangs, and a result Cekura produced is never dropped.
"""

from __future__ import annotations

import time

import pytest

from conftest import Suite

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


def starts(suite: Suite) -> int:
    return sum(1 for r in suite.emulator.requests if "run_scenarios" in r.path)


def test_post_failing_before_creating_runs_errors_and_is_not_resent(suite: Suite) -> None:
    """Row 1: 500 before anything exists: the name look-up finds nothing; one clear error."""
    suite.emulator.inject("start", "error_before", status=500)
    suite.pytester.makepyfile(ONE_TEST)
    result = suite.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*may have reached Cekura*no result named 'pytest-cekura *"])
    assert starts(suite) == 1
    assert suite.emulator.runs == []


@pytest.mark.parametrize(
    ("action", "extra"),
    [
        ("error_after", {"status": 500}),
        ("drop_after", {}),
        ("drop_after", {"drop_mode": "reset"}),
        ("malformed_json", {}),
    ],
    ids=["500-after", "dropped", "reset", "malformed-json"],
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
    assert lookups[0].query["name"].startswith("pytest-cekura ")


def test_refused_connection_is_retried_then_reported(suite: Suite) -> None:
    """Row 18: nothing was sent, so a retry is safe; when it keeps failing, a clear error."""
    suite.pytester.makepyfile(TWO_TESTS)
    started = time.monotonic()
    result = suite.run("--cekura-url=http://127.0.0.1:9", "--cekura-no-preflight")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*could not reach Cekura; nothing was started*ConnectError*"])
    assert time.monotonic() - started < 60


def test_rate_limited_post_is_retried_after_retry_after(suite: Suite) -> None:
    """Row 5: 429 means Cekura did nothing: the POST may be sent again, after the wait."""
    suite.emulator.inject("start", "rate_limit", retry_after="1")
    suite.pytester.makepyfile(ONE_TEST)
    started = time.monotonic()
    suite.run().assert_outcomes(passed=1)
    assert time.monotonic() - started >= 1.0
    assert [r.status for r in suite.emulator.requests if "run_scenarios" in r.path] == [429, 201]
    assert len(suite.emulator.runs) == 4


def test_rate_limited_poll_honours_retry_after(suite: Suite) -> None:
    suite.emulator.inject("bulk", "rate_limit", retry_after="1", times=1)
    suite.pytester.makepyfile(ONE_TEST)
    suite.run().assert_outcomes(passed=1)
    bulk = [r for r in suite.emulator.requests if r.path.endswith("/runs/bulk/")]
    assert bulk[0].status == 429
    assert all(r.status == 200 for r in bulk[1:])


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
    result.stdout.fnmatch_lines(["*last status 'paused' (a status pytest-cekura does not know)*"])


def test_runs_missing_from_bulk_answers_error_at_the_deadline(suite: Suite) -> None:
    """Row 14: a run the answers keep leaving out is named, with why."""
    suite.emulator.inject("bulk", "omit_runs", omit=1, times=0)
    suite.pytester.makepyfile(TWO_TESTS)
    result = suite.run("--cekura-timeout=1")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*missing from Cekura's last bulk answer*"])


def test_duplicate_and_stranger_runs_in_bulk_answers_change_nothing(suite: Suite) -> None:
    """Row 16: extra and repeated entries are ignored, never attributed to a test."""
    suite.emulator.inject("bulk", "duplicate_runs", times=0)
    suite.emulator.inject("bulk", "extra_runs", times=0)
    suite.pytester.makepyfile(ONE_TEST)
    suite.run().assert_outcomes(passed=1)


def test_fewer_runs_than_asked_is_an_error_for_the_short_scenario(suite: Suite) -> None:
    """Row 15: the POST answer lacks runs: the tests of the short scenario error."""
    suite.emulator.inject("start", "omit_runs", omit=1)
    suite.pytester.makepyfile(TWO_TESTS.replace("(30)", "(30, frequency=1)"))
    result = suite.run()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*Cekura started 0 run(s) for scenario 30, expected 1*"])


def test_runs_that_never_finish_end_at_the_deadline(suite: Suite) -> None:
    """Row 13: no hang past the deadline plus a poll interval; the unfinished run is named."""
    suite.emulator.inject("any", "never_finish", scenario_ids=[31])
    suite.pytester.makepyfile(TWO_TESTS)
    started = time.monotonic()
    result = suite.run("--cekura-timeout=1")
    assert time.monotonic() - started < 10
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*not finished by the deadline; last status 'running'*"])


def test_slow_server_is_waited_for_without_spurious_retries(suite: Suite) -> None:
    """Row 17: slow answers (under the read timeout) are not retried."""
    suite.emulator.inject("start", "slow", delay_s=1.0)
    suite.emulator.inject("bulk", "slow", delay_s=0.5, times=2)
    suite.pytester.makepyfile(ONE_TEST)
    suite.run().assert_outcomes(passed=1)
    assert starts(suite) == 1


def test_post_timing_out_while_cekura_accepts_late_is_adopted(suite: Suite) -> None:
    """Row 4: the answer comes too late; the runs exist; found by name, not re-posted."""
    suite.emulator.inject("start", "slow", delay_s=1.0)
    suite.pytester.makepyfile(ONE_TEST)
    result = suite.run("--cekura-request-timeout=0.3", "--cekura-no-preflight")
    result.assert_outcomes(passed=1)
    assert starts(suite) == 1
    assert len(suite.emulator.runs) == 4
