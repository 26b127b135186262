"""The verdict table: which run states make a test pass, fail or error."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_cekura.models import Run
from pytest_cekura.outcome import Outcome, judge
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
