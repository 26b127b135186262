"""Run and result lifecycles, stepped with a fake clock (time_scale=1: clock s = emulated s)."""

from __future__ import annotations

import hashlib
import itertools
import time
from typing import Any

import httpx
import pytest

from pytest_cekura.emulator import Catalogue, Emulator

from .helpers import API_KEY, ERROR, FAIL, FLAKY, HANG, PASS, FakeClock, get_json, start_runs

V1 = "/test_framework/v1"


def run(client: httpx.Client, run_id: int) -> dict[str, Any]:
    found: dict[str, Any] = get_json(client, f"{V1}/runs-external/{run_id}/")
    return found


def result(client: httpx.Client, result_id: int) -> dict[str, Any]:
    found: dict[str, Any] = get_json(client, f"{V1}/results/{result_id}/")
    return found


def started(client: httpx.Client, scenario_id: int, **extra: Any) -> tuple[int, int]:
    answer = start_runs(client, scenario_id, **extra)
    return answer["id"], answer["runs"][0]["id"]


def expected_flaky_pass(scenario_id: int, attempt: int, probability: float) -> bool:
    digest = hashlib.sha256(f"{scenario_id}:{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < probability


@pytest.mark.parametrize(
    ("elapsed", "run_status", "result_status"),
    [
        (0, "pending", "pending"),
        (4.9, "pending", "pending"),
        (5, "in_queue", "pending"),
        (9.9, "in_queue", "pending"),
        (10, "running", "in_progress"),
        (89.9, "running", "in_progress"),
        (90, "evaluating", "evaluating"),
        (99.9, "evaluating", "evaluating"),
        (100, "completed", "completed"),
    ],
)
def test_pass_lifecycle_steps(
    api: httpx.Client, clock: FakeClock, elapsed: float, run_status: str, result_status: str
) -> None:
    result_id, run_id = started(api, PASS)
    clock.advance(elapsed)
    assert run(api, run_id)["status"] == run_status
    assert result(api, result_id)["status"] == result_status


def test_pending_run_has_every_key_with_unknowns_empty(api: httpx.Client, clock: FakeClock) -> None:
    _, run_id = started(api, PASS)
    pending = run(api, run_id)
    clock.advance(100)
    finished = run(api, run_id)
    # evaluation_status is an enum without null in the spec: absent until there is a verdict.
    assert set(pending) | {"evaluation_status"} == set(finished)
    assert finished["evaluation_status"] == "success"
    assert pending["success"] is None
    assert pending["transcript"] == ""
    assert pending["transcript_object"] == []
    assert pending["duration"] == ""  # a string in the spec, not nullable
    assert pending["voice_recording_url"] == ""
    assert pending["executed_at"] is None
    assert pending["expected_outcome"] is None
    assert pending["evaluation"] == {"metrics": []}
    assert pending["timestamp"].endswith("Z")
    assert pending["call_id"] == ""


def test_run_object_has_the_documented_fields(api: httpx.Client, clock: FakeClock) -> None:
    """cekura-api.md 4: the run object's fields (email_id, for email runs, and the unverified
    evaluation_status enum aside)."""
    _, run_id = started(api, PASS)
    clock.advance(100)
    finished = run(api, run_id)
    documented = {
        "id", "call_id", "provider_call_id", "scenario", "scenario_name",
        "scenario_instructions", "personality", "personality_name", "agent", "status",
        "success", "expected_outcome_prompt", "expected_outcome", "evaluation", "transcript",
        "transcript_object", "duration", "voice_recording_url", "number", "inbound_number",
        "outbound_number", "metadata", "feedback", "is_reviewed", "critical_categories",
        "error_message", "run_as_text", "test_profile_data", "trace_id", "timestamp",
        "executed_at",
    }  # fmt: skip
    assert documented <= set(finished)
    assert finished["call_id"] == f"emulated-call-{run_id}"  # a string, never the run id
    assert finished["scenario_instructions"].startswith("You are calling about refund request")
    assert (finished["is_reviewed"], finished["critical_categories"]) == (False, [])


def test_passing_run(api: httpx.Client, clock: FakeClock) -> None:
    result_id, run_id = started(api, PASS)
    clock.advance(100)
    done = run(api, run_id)
    assert (done["status"], done["success"], done["error_message"]) == ("completed", True, "")
    assert done["duration"] == "01:40"
    assert done["expected_outcome"]["score"] == 100
    assert done["expected_outcome"]["explanation"]
    assert done["expected_outcome"]["outcome_alignments"][0]["aligned"] is True
    metrics = done["evaluation"]["metrics"]
    assert {m["name"] for m in metrics} == {"Instruction Following", "Latency"}
    assert next(m for m in metrics if m["name"] == "Instruction Following")["score"] == 100
    assert done["executed_at"].endswith("Z")
    assert done["voice_recording_url"].startswith("https://")
    assert (done["run_as_text"], done["trace_id"], done["metadata"]) == (False, "", {})
    assert done["scenario_name"] == "Refund request"
    summary = result(api, result_id)
    assert (summary["success_rate"], summary["met_expected_outcome_count"]) == (100.0, 1)
    assert summary["failed_reasons"] is None


def test_transcript_is_plausible_and_deterministic(api: httpx.Client, clock: FakeClock) -> None:
    _, run_id = started(api, PASS, test_profile_ids=[7])
    clock.advance(100)
    done = run(api, run_id)
    lines = done["transcript_object"]
    assert 4 <= len(lines) <= 8
    assert [line["role"] for line in lines[:2]] == ["Main Agent", "Testing Agent"]
    assert all(a["role"] != b["role"] for a, b in itertools.pairwise(lines))
    assert all(0 <= line["timestamp"] <= 100 for line in lines)
    assert [line["timestamp"] for line in lines] == sorted(line["timestamp"] for line in lines)
    assert "refund request" in lines[1]["content"]
    expected_text = "\n".join(f"{line['role']}: {line['content']}" for line in lines)
    assert done["transcript"] == expected_text
    assert run(api, run_id) == done


def test_failing_run(api: httpx.Client, clock: FakeClock) -> None:
    result_id, run_id = started(api, FAIL)
    clock.advance(120)
    done = run(api, run_id)
    assert (done["status"], done["success"]) == ("completed", False)
    assert done["expected_outcome"]["score"] == 0
    [explanation] = done["expected_outcome"]["explanation"]
    assert explanation.startswith("❌")
    assert "Billing dispute" in explanation
    by_name = {m["name"]: m for m in done["evaluation"]["metrics"]}
    assert by_name["Instruction Following"]["id"] == 2
    assert by_name["Instruction Following"]["type"] == "binary_workflow_adherence"
    assert by_name["Instruction Following"]["score"] == 0
    assert by_name["Latency"]["type"] == "numeric"
    summary = result(api, result_id)
    assert (summary["status"], summary["success_rate"]) == ("completed", 0.0)
    assert summary["failed_reasons"] == [f"Run {run_id} (Billing dispute): {explanation}"]


def test_error_run_and_all_failed_result(api: httpx.Client, clock: FakeClock) -> None:
    answer = start_runs(api, ERROR, frequency=2)
    clock.advance(40)
    summary = result(api, answer["id"])
    assert summary["status"] == "failed"
    for done in summary["runs"].values():
        assert (done["status"], done["success"]) == ("failed", False)
        assert done["error_message"] == "Agent did not join the room within 30 s"
        assert (done["transcript"], done["transcript_object"]) == ("", [])
    assert summary["total_expected_outcome_count"] == 0
    assert summary["failed_runs_count"] == 2


def test_flaky_runs_follow_the_documented_hash(api: httpx.Client, clock: FakeClock) -> None:
    answer = start_runs(api, FLAKY, frequency=20)
    clock.advance(50)
    runs = get_json(api, f"{V1}/runs/bulk/", run_ids=",".join(str(r["id"]) for r in answer["runs"]))
    outcomes = [r["success"] for r in runs]
    assert outcomes == [expected_flaky_pass(FLAKY, attempt, 0.5) for attempt in range(20)]
    assert set(outcomes) == {True, False}  # both branches are exercised by these ids
    assert all(r["status"] == "completed" for r in runs)
    failing = next(r for r in runs if not r["success"])
    assert failing["expected_outcome"]["score"] == 0


def test_hang_runs_forever_until_ended(api: httpx.Client, clock: FakeClock) -> None:
    result_id, run_id = started(api, HANG)
    clock.advance(1_000_000)
    assert run(api, run_id)["status"] == "running"
    assert result(api, result_id)["status"] == "in_progress"
    api.post(f"{V1}/runs-external/{run_id}/end_call/")
    assert run(api, run_id)["status"] == "cancelled"
    assert result(api, result_id)["status"] == "completed"


def test_cancelling_a_pending_run(api: httpx.Client, clock: FakeClock) -> None:
    _, run_id = started(api, PASS)
    api.post(f"{V1}/runs-external/{run_id}/end_call/")
    cancelled = run(api, run_id)
    assert (cancelled["status"], cancelled["duration"], cancelled["transcript"]) == (
        "cancelled",
        "00:00",
        "",
    )
    assert cancelled["executed_at"] is None


def test_unlisted_scenario_passes_after_default_duration(
    api: httpx.Client, clock: FakeClock
) -> None:
    _, run_id = started(api, 4242)
    clock.advance(29.9)
    assert run(api, run_id)["status"] == "evaluating"  # the last tenth of the duration
    clock.advance(0.1)
    done = run(api, run_id)
    assert (done["status"], done["success"], done["scenario_name"]) == (
        "completed",
        True,
        "Scenario 4242",
    )


def test_mixed_result_counts_while_in_progress(api: httpx.Client, clock: FakeClock) -> None:
    answer = start_runs(api, ERROR, PASS)
    clock.advance(45)
    summary = result(api, answer["id"])
    assert summary["status"] == "in_progress"
    assert (summary["completed_runs_count"], summary["failed_runs_count"]) == (1, 1)
    clock.advance(100)
    summary = result(api, answer["id"])
    assert (summary["status"], summary["success_rate"]) == ("completed", 50.0)
    assert summary["updated_at"] > summary["created_at"]


def test_time_scale_converts_emulated_to_real_seconds(
    catalogue: Catalogue, clock: FakeClock
) -> None:
    with (
        Emulator(catalogue, clock=clock, time_scale=0.5) as emulator,
        httpx.Client(base_url=emulator.url, headers={"X-CEKURA-API-KEY": API_KEY}) as client,
    ):
        _, run_id = started(client, PASS)  # 100 emulated s = 50 clock s
        clock.advance(44.9)
        assert run(client, run_id)["status"] == "running"
        clock.advance(5.0)
        assert run(client, run_id)["status"] == "evaluating"
        clock.advance(0.1)
        completed = run(client, run_id)
        assert (completed["status"], completed["duration"]) == ("completed", "01:40")


def test_real_clock_completes_quickly_with_a_small_time_scale(catalogue: Catalogue) -> None:
    with (
        Emulator(catalogue, time_scale=0.0005) as emulator,  # 100 s call -> 50 ms
        httpx.Client(base_url=emulator.url, headers={"X-CEKURA-API-KEY": API_KEY}) as client,
    ):
        result_id, _ = started(client, PASS)
        deadline = time.monotonic() + 5
        while result(client, result_id)["status"] != "completed":
            assert time.monotonic() < deadline, "run did not complete within 5 s"
            time.sleep(0.01)
