"""A run's lifecycle in the emulator: its phase at a moment, derived from the clock.

Nothing advances a run: it stores what it was created with (and a cancellation time), and its
phase is computed whenever it is read (``state.Store`` and ``views.Views`` call ``phase_at``).

Run lifecycle (``real seconds = emulated seconds * time_scale``): ``pending`` until 10 % of the
scenario's duration has passed, then ``running``, then terminal at the full duration:
``completed`` (pass/fail), ``failed`` (error). ``hang`` runs stay ``running``, and so do the
runs of scenarios a ``never_finish`` fault names, for as long as it is installed (it can be
switched off mid-session, and the runs then end as their clocks say); an ended call becomes
``cancelled``.
"""

from __future__ import annotations

from collections.abc import Container
from typing import TYPE_CHECKING

from pytest_cekura.emulator import content
from pytest_cekura.emulator.records import Phase, RunRecord, TerminalVerdict

if TYPE_CHECKING:  # annotations only: the catalogue imports the fault rules, which need the state
    from pytest_cekura.emulator.catalogue import ScenarioEntry

# A call's life as fractions of its duration: created "pending", then "in_queue" waiting for a
# line, "running" while the caller and agent talk, "evaluating" while Cekura scores the call.
QUEUED_AFTER = 0.05
RUNNING_AFTER = 0.1  # fraction of the call's duration before it connects (room setup, dialling)
EVALUATING_AFTER = 0.9


def phase_at(
    run: RunRecord,
    scenario: ScenarioEntry,
    now: float,
    time_scale: float,
    never_finish: Container[int] = frozenset(),
) -> Phase:
    """Where ``run`` of ``scenario`` is at clock time ``now``; ``never_finish``: the scenario
    ids a ``never_finish`` fault keeps running."""
    duration = scenario.duration_s * time_scale
    begin = run.created + run.start_delay  # when a line was free for this call
    start = begin + RUNNING_AFTER * duration
    end = begin + duration
    if run.cancelled_at is not None:
        started = start if run.cancelled_at >= start else None
        return Phase("cancelled", started, run.cancelled_at, "cancelled")
    if now < start:
        queued = run.start_delay > 0 or now >= begin + QUEUED_AFTER * duration
        return Phase("in_queue" if queued else "pending", None, None, None)
    if scenario.outcome == "hang" or scenario.id in never_finish:
        return Phase("running", start, None, None)
    if now < begin + EVALUATING_AFTER * duration:
        return Phase("running", start, None, None)
    if now < end:
        return Phase("evaluating", start, None, None)
    verdict = verdict_of(run, scenario)
    if verdict == "error":
        return Phase("failed", start, end, verdict)
    if now < end + scenario.evaluation_delay_s * time_scale:
        # Cekura's own suite runner reads a completed run with success null as
        # "evaluation still pending" (cekura-api.md 10.1).
        return Phase("completed", start, None, None)
    return Phase("completed", start, end, verdict)


def verdict_of(run: RunRecord, scenario: ScenarioEntry) -> TerminalVerdict:
    """How a run ends if nothing ends it first: its scenario's outcome (a flaky one per attempt)."""
    if scenario.outcome == "flaky":
        probability = scenario.success_probability or 0.0
        passed = content.flaky_passes(scenario.id, run.attempt, probability)
        return "pass" if passed else "fail"
    if scenario.outcome in ("pass", "fail", "error"):
        return scenario.outcome
    raise AssertionError(f"outcome {scenario.outcome!r} has no verdict")


__all__ = ["EVALUATING_AFTER", "QUEUED_AFTER", "RUNNING_AFTER", "phase_at", "verdict_of"]
