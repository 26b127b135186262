"""The pure decision step (``outcome.decide``) and the xdist pieces it no longer shares code
with: the null role, the typed worker payloads and the versioned manifest.

The behaviour they carry (verdicts, xdist runs) is covered end to end by test_outcomes.py,
test_baseline.py and test_xdist.py; these pin the contracts the rest of the plugin relies on.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from pytest_cekura.errors import ConfigError
from pytest_cekura.models import Run
from pytest_cekura.outcome import (
    EARLY_REASON,
    Outcome,
    Rule,
    Rules,
    below_threshold,
    decide,
    regressed,
)
from pytest_cekura.poller import RunState
from pytest_cekura.xdist import (
    MANIFEST_FORMAT,
    MANIFEST_VERSION,
    Manifest,
    Serial,
    SubmitOnce,
    WorkerOutput,
    manifest_run_ids,
)

_next_id = iter(range(1, 10_000))


def state(status: str, success: bool | None = None) -> RunState:
    run = Run.model_validate({"id": next(_next_id), "status": status, "success": success})
    return RunState(run)


def test_decide_applies_the_threshold_without_a_baseline() -> None:
    states = [state("completed", True), state("completed", False)]
    verdict = decide("t.py::test", states, 0.5, (), Rules())
    assert (verdict.outcome, verdict.reason and verdict.reason.rule) == (
        Outcome.PASSED,
        Rule.THRESHOLD,
    )


def test_decide_judges_a_test_in_the_baseline_by_regression_only() -> None:
    states = [state("completed", True), state("completed", False)]
    rules = Rules(baseline=MappingProxyType({"t.py::test": 1.0}), tolerance=0.1)
    verdict = decide("t.py::test", states, 0.5, (), rules)
    assert verdict.outcome is Outcome.FAILED  # 50% passes the threshold, but fell from 100%
    assert verdict.reason is not None
    assert verdict.reason.rule is Rule.BASELINE
    other = decide("t.py::other", states, 0.5, (), rules)
    assert other.outcome is Outcome.PASSED  # not in the baseline: the threshold decides


def test_decide_names_calls_ended_early_and_why_they_are_undecided() -> None:
    states = [state("completed", False), state("running")]
    verdict = decide("t.py::test", states, 1.0, (), Rules(), ended_early=1)
    assert verdict.outcome is Outcome.FAILED
    assert verdict.reason is not None
    assert verdict.reason.ended_early == 1
    assert [issue.reason for issue in verdict.issues if issue.undecided] == [EARLY_REASON]


def test_decide_is_pure() -> None:
    states = [state("completed", True), state("running")]
    rules = Rules(confidence=0.9)
    assert decide("t", states, 0.5, (), rules) == decide("t", states, 0.5, (), rules)


@pytest.mark.parametrize(
    ("rate", "baseline", "tolerance", "fell"),
    [(0.7, 0.8, 0.1, False), (0.69, 0.8, 0.1, True), (0.8, 0.8, 0.0, False)],
)
def test_one_regression_rule(rate: float, baseline: float, tolerance: float, fell: bool) -> None:
    assert regressed(rate, baseline, tolerance) is fell


def test_a_baseline_below_the_threshold_is_flagged() -> None:
    assert below_threshold(0.5, 0.8)
    assert not below_threshold(0.8, 0.8)


def test_the_null_role_runs_everything_here_and_shares_nothing() -> None:
    role = Serial()
    calls: list[str] = []

    def start() -> str:
        calls.append("start")
        return "started"

    def never(_: Any) -> Any:
        raise AssertionError("a serial run writes no manifest")

    assert role.submit(start, never, never) == "started"
    assert calls == ["start"]
    assert (role.emulator, role.agent_log, role.deadline(60.0), role.ledger_sink()) == (
        None,
        None,
        None,
        None,
    )
    role.end_unfinished(lambda ids, created: calls.append("end"))
    assert calls == ["start"]  # nothing started elsewhere: nothing to end
    with pytest.raises(pytest.UsageError, match="stop"):
        role.stop_session("stop")
    assert (role.reports, role.runs_tests, role.lazy) == (True, True, False)


def test_worker_output_round_trips_and_tolerates_a_crashed_worker() -> None:
    output = WorkerOutput(
        request_counts={"GET": 3},
        warnings=["w"],
        api_notices=["n"],
        cleanup_lines=["ended"],
        dry_run=["plan"],
        session_error="stopped",
        late_error="late",
    )
    data = output.to_dict()
    assert all(key.startswith("cekura_") for key in data)
    assert WorkerOutput.from_dict(json.loads(json.dumps(data))) == output
    assert WorkerOutput.from_dict({}) == WorkerOutput()  # a crashed worker sends nothing


def test_the_manifest_is_versioned_and_has_its_own_error_field(tmp_path: Path) -> None:
    manifest = Manifest({"t.py::test": {"runs": [{"id": 7}, {"id": 8}]}}, ["warning"])
    data = manifest.to_json()
    assert (data[MANIFEST_FORMAT], data["error"]) == (MANIFEST_VERSION, None)
    assert Manifest.from_json(json.loads(json.dumps(data))) == manifest
    with pytest.raises(ConfigError, match="another version of pytest-cekura"):
        Manifest.from_json({"t.py::test": {"runs": []}})  # the unversioned layout
    once = SubmitOnce("abc", tmp_path)

    def refused() -> Manifest:
        raise ConfigError("pytest-cekura: over budget")

    with pytest.raises(ConfigError, match="over budget"):
        once.run(refused)
    # The error is kept in its own field, for the workers that read the manifest later.
    written = json.loads((once.directory / "manifest.json").read_text())
    assert (written["error"], written["assignments"]) == ("pytest-cekura: over budget", {})
    with pytest.raises(ConfigError, match="over budget"):
        once.run(lambda: manifest)  # not submitted again


def test_manifest_run_ids_reads_every_worker_folder(tmp_path: Path) -> None:
    once = SubmitOnce("xyz", tmp_path)
    once.run(lambda: Manifest({"a": {"runs": [{"id": 2}]}, "b": {"runs": [{"id": 1}]}}))
    missing = tmp_path / "pytest-cekura-none"
    assert manifest_run_ids([str(once.directory), str(missing)]) == [1, 2]
