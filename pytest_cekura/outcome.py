"""Decide a test's outcome from its runs: passed, failed (the agent misbehaved) or error.

A run either succeeded, failed its evaluation (the agent's fault), or is *undecided*: Cekura
could not run it (``failed``/``timeout``/``cancelled``), its answer was unreadable, it was not
scored, or it had not finished by the deadline. Undecided runs only make the test an error when
they could change the verdict: if the test fails even were they all to succeed, the agent's
failure is reported; if it passes even were they all to fail, it passes.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from statistics import NormalDist

from .models import Run
from .poller import RunState

#: Tolerance for comparing rates such as 2/3 against a threshold written as 0.6667.
_EPSILON = 1e-9


class Outcome(enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"


@dataclass(frozen=True)
class RunIssue:
    """A run that did not succeed, and why, in words a person can act on."""

    run: Run
    reason: str
    undecided: bool


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    succeeded: int
    total: int
    min_success_rate: float
    issues: tuple[RunIssue, ...] = ()
    #: Problems not tied to one run (submission failed, runs missing from the answer).
    problems: tuple[str, ...] = ()
    #: With --cekura-compare: the baseline success rate and the allowed fall below it.
    baseline: float | None = None
    tolerance: float = 0.0

    @property
    def success_rate(self) -> float:
        return self.succeeded / self.total if self.total else 0.0


def against_baseline(verdict: Verdict, baseline: float, tolerance: float) -> Verdict:
    """Judge by regression instead of the threshold: fail only a fall beyond the tolerance.

    An error stays an error: a test Cekura could not run says nothing about regressions.
    """
    outcome = verdict.outcome
    if outcome is not Outcome.ERROR:
        regressed = verdict.success_rate + _EPSILON < baseline - tolerance
        outcome = Outcome.FAILED if regressed else Outcome.PASSED
    return replace(verdict, outcome=outcome, baseline=baseline, tolerance=tolerance)


def judge(
    states: Sequence[RunState],
    min_success_rate: float,
    problems: Sequence[str] = (),
    *,
    confidence: float | None = None,
    unfinished_reason: str | None = None,
) -> Verdict:
    """Decide from the runs so far.

    With ``confidence`` (e.g. 0.95) the gate is statistical: the Wilson lower bound of the
    success rate at that one-sided confidence must reach ``min_success_rate``.
    ``unfinished_reason`` explains runs that were still going when the verdict was taken early.
    """
    issues = tuple(
        issue for state in states if (issue := _issue(state, unfinished_reason)) is not None
    )
    succeeded = len(states) - len(issues)
    total = len(states)
    undecided = sum(issue.undecided for issue in issues)
    if problems or total == 0:
        outcome = Outcome.ERROR
    elif _score(succeeded, total, confidence) + _EPSILON >= min_success_rate:
        outcome = Outcome.PASSED
    elif _score(succeeded + undecided, total, confidence) + _EPSILON < min_success_rate:
        outcome = Outcome.FAILED
    else:
        outcome = Outcome.ERROR
    return Verdict(outcome, succeeded, total, min_success_rate, issues, tuple(problems))


def _score(successes: int, total: int, confidence: float | None) -> float:
    return (
        successes / total
        if confidence is None
        else wilson_lower_bound(successes, total, confidence)
    )


def wilson_lower_bound(successes: int, total: int, confidence: float) -> float:
    """One-sided Wilson score lower bound of a success rate (robust for small samples)."""
    if total == 0:
        return 0.0
    z = NormalDist().inv_cdf(confidence)
    p = successes / total
    denominator = 1 + z * z / total
    centre = p + z * z / (2 * total)
    margin = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    return max(0.0, (centre - margin) / denominator)


def _issue(state: RunState, unfinished_reason: str | None) -> RunIssue | None:
    run = state.run
    if state.invalid is not None:
        return RunIssue(
            run, f"Cekura's answer for this run could not be read: {state.invalid}", True
        )
    if run.succeeded:
        return None
    if not run.is_terminal:
        return RunIssue(run, unfinished_reason or _unfinished(state), True)
    if run.status != "completed":
        detail = f": {run.error_message}" if run.error_message else ""
        return RunIssue(
            run, f"Cekura could not complete the call (status {run.status}){detail}", True
        )
    if run.success is None:
        return RunIssue(run, "the call completed but Cekura reported no success/failure", True)
    return RunIssue(run, "the agent did not meet the scenario's expectations", False)


def _unfinished(state: RunState) -> str:
    if state.run.evaluation_pending:
        reason = (
            "the call completed, but Cekura's evaluation was still pending at the deadline "
            "(success not yet set); raise --cekura-timeout if evaluations take this long"
        )
        return reason + (f"; last polling error: {state.poll_error}" if state.poll_error else "")
    status = state.run.status or "missing"
    known = "" if state.run.is_known_status else " (a status pytest-cekura does not know)"
    reason = f"not finished by the deadline; last status {status!r}{known}"
    if state.poll_error:
        reason += f"; last polling error: {state.poll_error}"
    return reason
