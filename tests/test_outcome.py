"""The verdict table: which run states make a test pass, fail or error."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_cekura.models import Run
from pytest_cekura.outcome import Outcome, Rule, against_baseline, judge, wilson_lower_bound
from pytest_cekura.poller import RunState

_next_id = iter(range(1, 10_000))


def state(status: str, success: bool | None = None, **extra: Any) -> RunState:
    invalid = extra.pop("invalid", None)
    run = Run.model_validate({"id": next(_next_id), "status": status, "success": success, **extra})
    return RunState(run, invalid=invalid)


OK = ("completed", True)
BAD = ("completed", False)


@pytest.mark.parametrize(
    ("runs", "threshold", "expected"),
    [
        ([OK, OK, OK], 1.0, Outcome.PASSED),
        ([OK, OK, BAD], 1.0, Outcome.FAILED),
        ([OK, OK, BAD], 2 / 3, Outcome.PASSED),
        ([OK, BAD, BAD], 2 / 3, Outcome.FAILED),
        # An infrastructure error decides nothing by itself...
        ([OK, OK, ("failed", False)], 1.0, Outcome.ERROR),
        # ...unless the verdict is the same whatever that run would have done.
        ([BAD, OK, ("failed", False)], 1.0, Outcome.FAILED),
        ([OK, OK, ("timeout", None)], 0.5, Outcome.PASSED),
        ([OK, ("running", None)], 1.0, Outcome.ERROR),
        ([OK, ("paused", None)], 1.0, Outcome.ERROR),
        ([OK, ("completed", None)], 1.0, Outcome.ERROR),
        ([BAD, BAD], 0.0, Outcome.PASSED),
    ],
)
def test_verdict_table(
    runs: list[tuple[str, bool | None]], threshold: float, expected: Outcome
) -> None:
    verdict = judge([state(s, ok) for s, ok in runs], threshold)
    assert verdict.outcome is expected


def test_unreadable_run_is_undecided_and_named() -> None:
    broken = state("running", invalid="status: Input should be a valid string")
    verdict = judge([state(*OK), broken], 1.0)
    assert verdict.outcome is Outcome.ERROR
    (issue,) = verdict.issues
    assert issue.run.id == broken.run.id
    assert "could not be read" in issue.reason


def test_problems_without_runs_are_an_error() -> None:
    verdict = judge([], 1.0, ["could not reach Cekura; nothing was started"])
    assert verdict.outcome is Outcome.ERROR
    assert verdict.problems == ("could not reach Cekura; nothing was started",)


def test_unfinished_run_reason_names_last_status_and_poll_error() -> None:
    run = Run.model_validate({"id": 5, "status": "paused"})
    verdict = judge([RunState(run, poll_error="GET runs/bulk/ -> HTTP 503")], 1.0)
    (issue,) = verdict.issues
    assert "last status 'paused'" in issue.reason
    assert "does not know" in issue.reason
    assert "HTTP 503" in issue.reason


def test_threshold_verdict_names_its_rule_and_numbers() -> None:
    verdict = judge([state(*OK), state(*OK), state(*BAD)], 0.8)
    assert verdict.outcome is Outcome.FAILED
    reason = verdict.reason
    assert reason is not None
    assert reason.rule is Rule.THRESHOLD
    assert reason.text == (
        "threshold rule: 2 of 3 runs succeeded (67%), which is below min_success_rate 80%"
    )
    assert (reason.success_rate, reason.needed, reason.lower_bound) == (2 / 3, 0.8, None)
    assert reason.to_json()["rule"] == "threshold"


def test_wilson_verdict_names_the_bound_and_its_value() -> None:
    # 10 of 10 reads like a pass, but at 95 % confidence the rate is only known to be >= 78.7 %.
    verdict = judge([state(*OK) for _ in range(10)], 0.8, confidence=0.95)
    assert verdict.outcome is Outcome.FAILED
    reason = verdict.reason
    assert reason is not None
    assert reason.rule is Rule.WILSON
    assert reason.lower_bound == pytest.approx(wilson_lower_bound(10, 10, 0.95))
    assert reason.lower_bound == pytest.approx(0.787, abs=0.001)
    assert reason.confidence == 0.95
    assert "Wilson lower bound of the success rate is 78.7%" in reason.text
    assert "is below min_success_rate 80%" in reason.text
    passed = judge([state(*OK) for _ in range(20)], 0.8, confidence=0.95)
    assert passed.outcome is Outcome.PASSED
    assert passed.reason is not None
    assert "which reaches min_success_rate 80%" in passed.reason.text


def test_early_verdict_is_named_with_the_calls_it_ended() -> None:
    runs = [state(*BAD), state(*BAD), state("running")]
    verdict = judge(runs, 1.0, unfinished_reason="decided early", ended_early=1)
    assert verdict.outcome is Outcome.FAILED
    reason = verdict.reason
    assert reason is not None
    assert (reason.rule, reason.ended_early) == (Rule.THRESHOLD, 1)
    assert "early verdict (--cekura-early-verdict)" in reason.text
    assert "1 call(s) that could not change it were ended" in reason.text
    assert reason.to_json()["early_verdict"] is True
    assert reason.short == "needs 100%, early verdict"


def test_undecided_and_not_run_verdicts_say_so() -> None:
    undecided = judge([state(*OK), state("failed")], 1.0)
    assert undecided.reason is not None
    assert undecided.reason.rule is Rule.UNDECIDED
    assert "1 could not be run or finished" in undecided.reason.text
    nothing = judge([], 1.0, ["nothing was started"])
    assert nothing.reason is not None
    assert nothing.reason.rule is Rule.NOT_RUN


@pytest.mark.parametrize(
    ("succeeded", "baseline", "expected", "below"),
    [
        (7, 0.8, Outcome.PASSED, False),  # within the tolerance of 10 points
        (6, 0.8, Outcome.FAILED, False),  # fell 20 points
        (0, 0.0, Outcome.PASSED, True),  # no worse than a baseline that failed too: flagged
        (5, 0.6, Outcome.PASSED, True),
    ],
)
def test_baseline_rule_is_named_and_flags_a_failing_baseline(
    succeeded: int, baseline: float, expected: Outcome, below: bool
) -> None:
    runs = [state(*OK) for _ in range(succeeded)] + [state(*BAD) for _ in range(10 - succeeded)]
    verdict = against_baseline(judge(runs, 0.8), baseline, 0.1)
    assert verdict.outcome is expected
    reason = verdict.reason
    assert reason is not None
    assert reason.rule is Rule.BASELINE
    assert (reason.baseline, reason.tolerance, reason.needed) == (baseline, 0.1, 0.8)
    assert reason.baseline_below_threshold is below
    assert ("passes only because it was failing before too" in reason.text) is (
        below and expected is Outcome.PASSED
    )
    assert reason.text.startswith("baseline regression rule (--cekura-compare)")


def test_an_error_stays_an_error_against_the_baseline() -> None:
    verdict = against_baseline(judge([state(*OK), state("failed")], 1.0), 0.5, 0.1)
    assert verdict.outcome is Outcome.ERROR
    assert verdict.reason is not None
    assert verdict.reason.rule is Rule.UNDECIDED
