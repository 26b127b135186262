"""Parsing of Cekura's result and run objects: lenient where the reference says it must be."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pytest_cekura.models import (
    AgentSettings,
    CekuraResult,
    Result,
    Run,
    normalise_success_rate,
    parse_duration,
)
from pytest_cekura.snapshot import RunSnapshot


@pytest.mark.parametrize(
    ("value", "success", "total", "expected"),
    [
        (50.0, None, None, 0.5),  # a percent, 0 to 100, as the spec defines it
        (0.5, None, None, 0.005),  # still a percent: the spec leaves no room for fractions
        (100.0, None, None, 1.0),
        (1.0, None, None, 0.01),
        (0.0, None, None, 0.0),
        (12.5, 1, 4, 0.25),  # counts win over an inconsistent rate
        (None, 3, 4, 0.75),
        (None, None, None, None),
        (None, 0, 0, None),
        (250.0, None, None, 1.0),  # clamped
    ],
)
def test_success_rate_normalised(
    value: float | None, success: int | None, total: int | None, expected: float | None
) -> None:
    assert normalise_success_rate(value, success, total) == expected


def test_result_accepts_runs_as_list_dict_or_single_object() -> None:
    stub = {"id": 1, "scenario": 30, "status": "running"}
    as_list = Result.model_validate({"id": 9, "runs": [stub]})
    as_dict = Result.model_validate({"id": 9, "runs": {"1": stub}})
    as_object = Result.model_validate({"id": 9, "runs": stub})
    assert [r.id for r in as_list.runs] == [r.id for r in as_dict.runs] == [1]
    assert [r.id for r in as_object.runs] == [1]


def test_result_reads_result_id_when_id_is_absent() -> None:
    assert Result.model_validate({"result_id": 77, "runs": []}).id == 77


def test_numbers_as_strings_and_unknown_fields_are_accepted() -> None:
    result = Result.model_validate(
        {
            "id": "5",
            "status": "COMPLETED",
            "success_rate": "75",
            "total_runs_count": "4",
            "success_runs_count": "3",
            "brand_new_field": {"nested": True},
            "runs": [],
        }
    )
    assert result.id == 5
    assert result.status == "completed"
    assert result.success_rate == 0.75
    assert result.model_extra == {"brand_new_field": {"nested": True}}


def test_unknown_status_is_kept_and_not_terminal() -> None:
    run = Run.model_validate({"id": 1, "status": "Paused"})
    assert run.status == "paused"
    assert not run.is_terminal
    assert not run.is_known_status


def test_odd_shapes_in_optional_objects_do_not_crash() -> None:
    run = Run.model_validate(
        {
            "id": 1,
            "status": "completed",
            "success": False,
            "expected_outcome": "n/a",
            "evaluation": {"metrics": ["junk", {"name": "Tone", "type": "binary_qualitative"}]},
            "transcript_object": {"not": "a list"},
            "test_profile_data": "none",
        }
    )
    assert run.expected_outcome is None
    assert run.evaluation is not None
    assert [m.name for m in run.evaluation.metrics] == ["Tone"]
    assert run.transcript_object == []
    assert run.test_profile_data is None


def test_failing_metrics_are_binary_metrics_scoring_zero() -> None:
    run = Run.model_validate(
        {
            "id": 1,
            "evaluation": {
                "metrics": [
                    {"name": "Follows script", "type": "binary_workflow_adherence", "score": 0},
                    {"name": "Polite", "type": "binary_qualitative", "score": 1},
                    {"name": "Latency", "type": "numeric", "score": 0},
                ]
            },
        }
    )
    assert [m.name for m in run.failing_metrics] == ["Follows script"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("01:42", 102.0),
        ("1:02:03", 3723.0),
        ("00:07.5", 7.5),
        ("95", 95.0),
        ("", None),
        (None, None),
    ],
)
def test_duration_parsing(text: str | None, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


def test_cekura_result_success_rate_counts_only_completed_successes() -> None:
    runs = (
        Run.model_validate({"id": 1, "status": "completed", "success": True}),
        Run.model_validate({"id": 2, "status": "completed", "success": False}),
        Run.model_validate({"id": 3, "status": "failed", "success": True}),
    )
    result = CekuraResult((30,), runs, min_success_rate=0.3, result_ids=(9,))
    assert result.success_rate == pytest.approx(1 / 3)
    assert result.passed


FINISHED = {
    "id": 7,
    "scenario": 30,
    "status": "COMPLETED",
    "success": True,
    "transcript_object": [{"role": "Main Agent", "content": "Hello", "timestamp": 1.5}],
    "evaluation": {"metrics": [{"name": "Latency", "type": "numeric", "score": 800}]},
    "new_field": {"kept": True},
}


def test_snapshot_keeps_a_finished_run_whole() -> None:
    snapshot = RunSnapshot.parse(FINISHED)
    assert (snapshot.id, snapshot.status, snapshot.succeeded) == (7, "completed", True)
    assert snapshot.is_terminal
    # Compressed, yet the run it gives back is the one Cekura sent, unknown fields included.
    assert snapshot.run() == Run.model_validate(FINISHED)
    assert snapshot.run().model_extra == {"new_field": {"kept": True}}


def test_snapshot_of_an_unreadable_finished_run_is_refused_when_polled() -> None:
    with pytest.raises(ValidationError, match="duration"):
        RunSnapshot.parse({**FINISHED, "duration": {"not": "a duration"}})


def test_snapshot_of_a_run_still_going_is_checked_only_for_its_state() -> None:
    # The poller reads a running run every interval: only id and status are checked, and
    # detail that cannot be read falls back to id and status (they are all a verdict needs).
    snapshot = RunSnapshot.parse({"id": 8, "status": "running", "duration": ["odd"]})
    assert not snapshot.is_terminal
    assert snapshot.run() == Run(id=8, status="running")


def test_snapshot_of_a_run_object() -> None:
    run = Run.model_validate(FINISHED)
    assert RunSnapshot.of(run).run() == run


def test_scaling_up_is_known_and_not_terminal() -> None:
    run = Run.model_validate({"id": 1, "status": "scaling_up"})
    assert run.is_known_status
    assert not run.is_terminal
    assert not RunSnapshot.parse({"id": 1, "status": "scaling_up"}).is_terminal


def test_a_completed_run_without_success_is_still_being_evaluated() -> None:
    # Cekura's own suite runner waits for success after completed: so must we.
    pending = {"id": 3, "status": "completed", "success": None}
    run = Run.model_validate(pending)
    assert not run.is_terminal
    assert run.evaluation_pending
    snapshot = RunSnapshot.parse(pending)
    assert not snapshot.is_terminal
    scored = RunSnapshot.parse({**pending, "success": False, "evaluation_status": "failure"})
    assert scored.is_terminal
    assert scored.run().evaluation_status == "failure"
    # A run that failed to connect is finished whatever success says.
    assert Run.model_validate({"id": 4, "status": "failed", "success": None}).is_terminal


def test_run_reads_the_fields_the_spec_lists() -> None:
    run = Run.model_validate(
        {
            "id": 90001,
            "status": "completed",
            "success": True,
            "evaluation_status": "REVIEWED_SUCCESS",
            "result_id": 5012,
            "result_name": "nightly",
            "agent": 42,
            "agent_name": "Pharmacy agent",
            "personality": None,
            "scenario": None,
        }
    )
    assert (run.result_id, run.result_name, run.agent, run.agent_name) == (
        5012,
        "nightly",
        42,
        "Pharmacy agent",
    )
    assert run.evaluation_status == "reviewed_success"
    assert RunSnapshot.parse(run.model_dump()).result_id == 5012


def test_a_results_runs_carry_its_id() -> None:
    result = Result.model_validate(
        {"id": 5000, "runs": [{"id": 1}, {"id": 2, "result_id": 4999}], "agent_name": "A"}
    )
    assert [r.result_id for r in result.runs] == [5000, 4999]
    assert result.agent_name == "A"
    detail = Result.model_validate({"id": 5001, "runs": {"3": {"id": 3}}, "is_cronjob": "false"})
    assert detail.runs[0].result_id == 5001
    assert detail.is_cronjob is False


def test_agent_settings_read_the_configured_flags_never_the_secrets() -> None:
    live = {
        "id": 42,
        "project": 1376,
        "agent_name": "Pharmacy agent",
        "assistant_provider": "livekit",
        "livekit_api_key_configured": "true",  # the generator types the flag as a string
        "livekit_data": {
            "url": "wss://pharmacy.livekit.cloud",
            "agent_name": "pharmacy-agent",
            "api_secret_configured": True,
        },
    }
    agent = AgentSettings.from_api(42, live)
    assert (agent.has_livekit_url, agent.has_livekit_api_key, agent.has_livekit_api_secret) == (
        True,
        True,
        True,
    )
    assert (agent.project, agent.livekit_agent_name, agent.provider) == (
        1376,
        "pharmacy-agent",
        "livekit",
    )
    # The old shape: secrets handed back but no flag. The secrets are not read, so the
    # settings count as not configured on the agent (a warning, not a block).
    old = AgentSettings.from_api(
        42,
        {
            "livekit_api_key": "APIkey",
            "livekit_api_key_configured": False,
            "livekit_data": {"url": "wss://x", "api_secret": "s3cret"},
        },
    )
    assert (old.has_livekit_api_key, old.has_livekit_api_secret) == (False, False)
    assert "s3cret" not in repr(old)
    assert "APIkey" not in repr(old)


def test_agent_settings_from_the_v2_shape_leave_unknown_settings_unknown() -> None:
    agent = AgentSettings.from_api(
        42, {"id": 42, "name": "Pharmacy agent", "project": 9, "provider": {"type": "livekit"}}
    )
    assert (agent.name, agent.provider, agent.project) == ("Pharmacy agent", "livekit", 9)
    assert agent.has_livekit_url is None
    assert agent.has_livekit_api_key is None
    assert agent.has_livekit_api_secret is None
    assert agent.has_livekit_agent_name is None
