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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from statistics import NormalDist
from typing import Any

from .gates import Gate, GateResult, check_gates
from .models import Run
from .poller import RunState

#: Tolerance for comparing rates such as 2/3 against a threshold written as 0.6667.
_EPSILON = 1e-9
#: Why a run still going counts as undecided when the test was decided without it.
EARLY_REASON = (
    "still going when the verdict was already decided; the call was ended to save money "
    "(--cekura-early-verdict)"
)


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


class Rule(enum.StrEnum):
    """The rule that decided a verdict (its value is what reports and JUnit carry)."""

    #: The success rate against the test's ``min_success_rate``.
    THRESHOLD = "threshold"
    #: ``--cekura-confidence``: the Wilson lower bound of the success rate against it.
    WILSON = "wilson_lower_bound"
    #: ``--cekura-compare``: the success rate against the test's baseline and the tolerance.
    BASELINE = "baseline_regression"
    #: Runs that could not be run or finished could still change the verdict: an error.
    UNDECIDED = "undecided"
    #: Nothing could be judged (submission failed, runs missing): an error.
    NOT_RUN = "not_run"
    #: A metric gate (``gates=``, ``cekura_gates``): broken (failed) or not checkable (error).
    GATE = "metric_gate"


@dataclass(frozen=True)
class Reason:
    """What decided a verdict: for people (``text``, ``short``) and for machines (the rest)."""

    rule: Rule
    #: One sentence naming the rule and the numbers it compared.
    text: str
    #: A few words for the terminal summary line, e.g. "needs 80%".
    short: str
    success_rate: float | None = None
    #: The test's ``min_success_rate``.
    needed: float | None = None
    #: Under ``--cekura-confidence``: the Wilson lower bound, and the confidence.
    lower_bound: float | None = None
    confidence: float | None = None
    #: Under ``--cekura-compare``: the baseline's success rate and the allowed fall.
    baseline: float | None = None
    tolerance: float | None = None
    #: The baseline itself was below the test's threshold: a pass says only "no worse".
    baseline_below_threshold: bool = False
    #: Calls ended because the verdict was decided before they finished.
    ended_early: int = 0
    #: Metric gates: the first gate that decided, its metric and the aggregate's value.
    metric: str | None = None
    gate: str | None = None
    actual: float | None = None

    def to_json(self) -> dict[str, Any]:
        # Every field is a scalar: no deep copy (asdict's) needed, once per test reported.
        data = {name: getattr(self, name) for name in _REASON_FIELDS}
        data["rule"] = self.rule.value
        data["early_verdict"] = self.ended_early > 0
        return data


_REASON_FIELDS = tuple(f.name for f in fields(Reason))


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
    #: The rule that decided the outcome, with its numbers (None only for hand-made verdicts).
    reason: Reason | None = None
    #: Each metric gate checked against the runs (``gates.py``), held or not.
    gates: tuple[GateResult, ...] = ()

    @property
    def success_rate(self) -> float:
        return self.succeeded / self.total if self.total else 0.0


@dataclass(frozen=True)
class Rules:
    """The session's rules, besides each test's own ``min_success_rate``: built once from the
    settings (and the ``--cekura-compare`` file), read-only after that."""

    #: ``--cekura-confidence``: judge by the Wilson lower bound at this confidence.
    confidence: float | None = None
    #: ``--cekura-compare``: test id -> committed success rate.
    baseline: Mapping[str, float] = field(default_factory=dict)
    #: ``--cekura-tolerance``: how far below its baseline a test may fall.
    tolerance: float = 0.0


def regressed(rate: float, baseline: float, tolerance: float) -> bool:
    """The one regression rule: the success rate fell more than ``tolerance`` below the
    baseline's (verdicts and the baseline comparison lines both ask it)."""
    return rate + _EPSILON < baseline - tolerance


def below_threshold(baseline: float, min_success_rate: float) -> bool:
    """The baseline was itself recorded failing: a pass against it means only "no worse"."""
    return baseline + _EPSILON < min_success_rate


def decide(
    nodeid: str,
    states: Sequence[RunState],
    min_success_rate: float,
    problems: Sequence[str],
    rules: Rules,
    *,
    ended_early: int = 0,
    gates: Sequence[Gate] = (),
) -> Verdict:
    """The decision step, pure: a test's runs so far and the session's rules to a verdict
    with the reason that decided it. ``ended_early`` calls were (or are about to be) ended
    because the verdict was decided before they finished. ``gates`` (the test's metric
    gates) apply last, over the threshold, Wilson or baseline rule (``with_gates``)."""
    verdict = judge(
        states,
        min_success_rate,
        problems,
        confidence=rules.confidence,
        unfinished_reason=EARLY_REASON if ended_early else None,
        ended_early=ended_early,
    )
    baseline = rules.baseline.get(nodeid)
    if baseline is not None:
        verdict = against_baseline(verdict, baseline, rules.tolerance)
    return with_gates(verdict, states, gates) if gates else verdict


def with_gates(verdict: Verdict, states: Sequence[RunState], gates: Sequence[Gate]) -> Verdict:
    """Apply the metric gates to a verdict the success rate decided.

    An error stays an error (runs that could not be judged say nothing about metrics). A gate
    that cannot be checked (no run has the metric, the wrong kind of metric) makes the test an
    error: a mistake in the test, not the agent's, whatever the runs did. Otherwise a broken
    gate fails a passing test; a failed test stays failed. The gates are checked over the runs
    that carry the metric, failed ones included (a call's latency counts whether or not the
    agent met the scenario's expectations).
    """
    runs = [state.run for state in states if state.invalid is None]
    results = check_gates(gates, runs)
    verdict = replace(verdict, gates=results)
    if verdict.outcome is Outcome.ERROR:
        return verdict
    unusable = [r for r in results if r.problem is not None]
    broken = [r for r in results if r.broken]
    base = verdict.reason.text if verdict.reason is not None else ""
    if unusable:
        text = "metric gate rule: " + "; ".join(r.describe() for r in unusable)
        short = f"metric gate {unusable[0].gate} not checkable"
        outcome, decider = Outcome.ERROR, unusable[0]
    elif broken and verdict.outcome is Outcome.PASSED:
        text = "metric gate rule: " + "; ".join(r.describe() for r in broken)
        text += f" (the success rate alone would pass: {base})" if base else ""
        short = "broke the metric gate " + ", ".join(str(r.gate) for r in broken)
        outcome, decider = Outcome.FAILED, broken[0]
    else:
        # The success rate decided; say what the gates measured beside it.
        held = "; ".join(r.describe() for r in results)
        if verdict.reason is None or not held:
            return verdict
        reason = replace(verdict.reason, text=f"{verdict.reason.text}; metric gates: {held}")
        return replace(verdict, reason=reason)
    old = verdict.reason
    reason = Reason(
        Rule.GATE,
        text,
        short,
        success_rate=verdict.success_rate if verdict.total else None,
        needed=verdict.min_success_rate,
        baseline=verdict.baseline,
        tolerance=verdict.tolerance if verdict.baseline is not None else None,
        ended_early=old.ended_early if old is not None else 0,
        metric=decider.gate.metric,
        gate=decider.gate.condition,
        actual=decider.actual,
    )
    return replace(verdict, outcome=outcome, reason=reason)


def against_baseline(verdict: Verdict, baseline: float, tolerance: float) -> Verdict:
    """Judge by regression instead of the threshold: fail only a fall beyond the tolerance.

    An error stays an error: a test Cekura could not run says nothing about regressions.
    A baseline that was itself below the test's threshold still decides (the team chose to
    track regressions of a known gap), but the reason says so: such a pass only means "no
    worse than before", and reports flag it (see docs/saving.md).
    """
    outcome = verdict.outcome
    if outcome is Outcome.ERROR:
        return replace(verdict, baseline=baseline, tolerance=tolerance)
    rate = verdict.success_rate
    fell = regressed(rate, baseline, tolerance)
    outcome = Outcome.FAILED if fell else Outcome.PASSED
    below = below_threshold(baseline, verdict.min_success_rate)
    ended = verdict.reason.ended_early if verdict.reason is not None else 0
    change = (rate - baseline) * 100
    if fell:
        text = (
            f"baseline regression rule (--cekura-compare): the success rate fell from the "
            f"baseline's {_pct(baseline)} to {_pct(rate)} ({change:+.0f} points), more than "
            f"the tolerance of {tolerance * 100:.0f} points"
        )
    else:
        text = (
            f"baseline regression rule (--cekura-compare): the success rate {_pct(rate)} is "
            f"within {tolerance * 100:.0f} points of the baseline's {_pct(baseline)} "
            f"({change:+.0f} points), so the threshold of {_pct(verdict.min_success_rate)} "
            "does not apply"
        )
    short = f"baseline {_pct(baseline)}, tolerance {tolerance * 100:.0f} points"
    if below:
        text += (
            f"; the baseline was recorded failing (below this test's threshold of "
            f"{_pct(verdict.min_success_rate)})"
        )
        if not fell:
            text += ", so this test passes only because it was failing before too"
        short += f", baseline below the {_pct(verdict.min_success_rate)} threshold"
    reason = Reason(
        Rule.BASELINE,
        text + _early_text(ended),
        short + (", early verdict" if ended else ""),
        success_rate=rate,
        needed=verdict.min_success_rate,
        baseline=baseline,
        tolerance=tolerance,
        baseline_below_threshold=below,
        ended_early=ended,
    )
    return replace(verdict, outcome=outcome, baseline=baseline, tolerance=tolerance, reason=reason)


def judge(
    states: Sequence[RunState],
    min_success_rate: float,
    problems: Sequence[str] = (),
    *,
    confidence: float | None = None,
    unfinished_reason: str | None = None,
    ended_early: int = 0,
) -> Verdict:
    """Decide from the runs so far: a pure function of its arguments.

    With ``confidence`` (e.g. 0.95) the gate is statistical: the Wilson lower bound of the
    success rate at that one-sided confidence must reach ``min_success_rate``.
    ``unfinished_reason`` explains runs that were still going when the verdict was taken early;
    ``ended_early`` is how many calls were ended because of it (named in the reason).
    """
    issues = tuple(
        issue for state in states if (issue := _issue(state, unfinished_reason)) is not None
    )
    succeeded = len(states) - len(issues)
    total = len(states)
    undecided = sum(issue.undecided for issue in issues)
    score = _score(succeeded, total, confidence) if total else 0.0
    if problems or total == 0:
        outcome = Outcome.ERROR
    elif score + _EPSILON >= min_success_rate:
        outcome = Outcome.PASSED
    elif _score(succeeded + undecided, total, confidence) + _EPSILON < min_success_rate:
        outcome = Outcome.FAILED
    else:
        outcome = Outcome.ERROR
    reason = _reason(
        outcome, succeeded, total, undecided, min_success_rate, confidence, score, ended_early
    )
    return Verdict(
        outcome, succeeded, total, min_success_rate, issues, tuple(problems), reason=reason
    )


def _pct(rate: float) -> str:
    return f"{rate * 100:.0f}%"


def _early_text(ended: int) -> str:
    if not ended:
        return ""
    return (
        f"; early verdict (--cekura-early-verdict): decided before every run finished, and "
        f"{ended} call(s) that could not change it were ended"
    )


def _reason(
    outcome: Outcome,
    succeeded: int,
    total: int,
    undecided: int,
    needed: float,
    confidence: float | None,
    score: float,
    ended: int,
) -> Reason:
    rate = succeeded / total if total else 0.0
    runs = f"{succeeded} of {total} runs succeeded ({_pct(rate)})"
    if total == 0 or (outcome is Outcome.ERROR and not undecided):
        return Reason(
            Rule.NOT_RUN,
            "not run: Cekura could not run this test, so no rule could judge it",
            f"needs {_pct(needed)}",
            needed=needed,
        )
    if confidence is None:
        rule, shown = Rule.THRESHOLD, "the success rate"
        short = f"needs {_pct(needed)}"
        measured = ""
    else:
        bound = f"{score * 100:.1f}%"
        rule, shown = Rule.WILSON, "the Wilson lower bound"
        short = f"Wilson lower bound {bound} at {confidence:g} confidence, needs {_pct(needed)}"
        measured = (
            f"; at {confidence:g} one-sided confidence (--cekura-confidence) the Wilson lower "
            f"bound of the success rate is {bound}"
        )
    if outcome is Outcome.ERROR:
        text = (
            f"undecided: {runs} and {undecided} could not be run or finished; were they "
            f"counted, {shown} could reach {_pct(needed)} (min_success_rate) or stay below it"
        )
        return Reason(
            Rule.UNDECIDED,
            text,
            short,
            success_rate=rate,
            needed=needed,
            lower_bound=None if confidence is None else score,
            confidence=confidence,
        )
    label = "threshold rule" if confidence is None else "Wilson lower bound rule"
    verb = "reaches" if outcome is Outcome.PASSED else "is below"
    text = f"{label}: {runs}{measured}, which {verb} min_success_rate {_pct(needed)}"
    return Reason(
        rule,
        text + _early_text(ended),
        short + (", early verdict" if ended else ""),
        success_rate=rate,
        needed=needed,
        lower_bound=None if confidence is None else score,
        confidence=confidence,
        ended_early=ended,
    )


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
