"""Contract (a): every answer of every operation the emulator serves validates against the spec.

The answers come from realistic workflows (start runs on every runner, poll them to the end,
end calls, rerun, every look-up), from error paths and from every fault mode that answers with
a body. The coverage test then checks that the workflows reached every operation of the spec
except those listed in ``NOT_SERVED`` (each with its reason), so a new endpoint in the spec
fails here until the emulator serves it or the list says why not.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from pytest_cekura.emulator import Emulator

from .conftest import FakeClock, Recorder
from .spec import (
    Contract,
    Operation,
    apply_overlay,
    closed,
    closed_contract,
    load_overlay,
    load_raw,
)

V1 = "/test_framework/v1"
V2 = "/test_framework/v2"
SCENARIO_PREFIXES = (f"{V1}/scenarios", f"{V1}/scenarios-external", f"{V2}/scenarios")
RESULT_PREFIXES = (f"{V1}/results", f"{V1}/results-external", f"{V2}/results")
RUN_PREFIXES = (f"{V1}/runs", f"{V1}/runs-external", f"{V2}/runs")
PASS, FAIL, ERROR, HANG, FLAKY, SLOW_GRADER, PROJECT, DELETED = 30, 31, 32, 33, 34, 35, 36, 39

#: A spec-valid body for each runner the emulator serves.
RUNNER_BODIES: dict[str, dict[str, Any]] = {
    "run_scenarios_livekit_v2": {
        "scenarios": [
            {"scenario": PASS, "publish_data_message": {"lang": "de"}},
            {"scenario": FAIL},
        ],
        "agent": 42,
        "frequency": 2,
        "name": "contract livekit",
        "concurrency_limit": 2,
        "mock_tool_names": ["lookup_order"],
        "personality_id": 3,
        "test_profile_ids": [7],
        "livekit_data": {"agent_name": "pr-12", "url": None, "config": {"max_participants": 2}},
    },
    "run_scenarios_livekit": {
        "scenarios": [
            {"scenario": PASS, "livekit_room_url": "wss://x.livekit.cloud/r", "access_token": "t"}
        ],
    },
    "run_scenarios_pipecat_v2": {"scenarios": [{"scenario": PASS}], "frequency": 1},
    "run_scenarios_pipecat": {
        "agent": 42,
        "scenarios": [{"scenario": PASS, "pipecat_room_url": "https://a.daily.co/room"}],
    },
    "run_scenarios_with_websockets": {
        "scenarios": [{"scenario": PASS, "websocket_url": "wss://agent.example/ws"}],
        "frequency": 1,
    },
    "run_scenarios_text": {"agent_id": 42, "scenarios": [PASS, FAIL], "frequency": 1},
    "run_scenarios_vapi_webrtc": {"scenarios": [PASS], "vapi_assistant_id": "asst_1"},
    "run_scenarios_retell_webrtc": {"agent_id": 42, "scenarios": [PASS]},
    "run_scenarios_elevenlabs": {"agent_id": 42, "scenarios": [PASS], "personality_ids": [3]},
    "run_scenarios_sip": {"agent_id": 42, "scenarios": [PASS]},
    "run_scenarios_email": {"agent_id": 42, "scenarios": [PASS], "frequency": 1},
    "run_scenarios_chirp": {"agent_id": 42, "scenarios": [PASS]},
    "run_scenarios_agora": {"agent_id": 42, "scenarios": [PASS], "concurrency_limit": 1},
}

#: Operations of the spec the emulator does not serve, and why; everything else must be
#: reached by the workflows below.
NOT_SERVED_ACTIONS = {
    "run_scenarios_ello": "not a runner the plugin uses",
    "run_scenarios_jotform": "not a runner the plugin uses",
    "run_scenarios_livekit_chat": "not a runner the plugin uses",
    "run_scenarios_api_chat": "not a runner the plugin uses",
    # Served (tests/emulator/test_emulator_suites_json.py), but the spec types the answer as
    # the Scenario object, a generator slip: the live service answers a JSON Schema.
    "json_schema": "its spec answer is typed as a Scenario, not the JSON Schema it is",
}


def not_served(operation: Operation) -> str | None:
    """Why the emulator does not serve this operation; None if it does."""
    if operation.method in ("put", "patch", "delete"):
        return "catalogue objects are read-only in the emulator (they come from the catalogue)"
    last = operation.template.rstrip("/").rsplit("/", 1)[-1]
    if last in NOT_SERVED_ACTIONS:
        return NOT_SERVED_ACTIONS[last]
    creates = ("results", "results-external", "scenarios", "scenarios-external")
    if operation.method == "post" and last in creates:
        return "creating results or scenarios directly is not emulated"
    if operation.method == "post" and last in ("test-profiles", "test-profiles-external"):
        return "creating test profiles is not emulated"
    return None


def run_every_workflow(recorder: Recorder, clock: FakeClock, emulator: Emulator) -> None:
    """Drive every endpoint the plugin and the official CLI use, through a result's life."""
    started: list[dict[str, Any]] = []
    for action, body in RUNNER_BODIES.items():
        for prefix in SCENARIO_PREFIXES:
            response = recorder.post(f"{prefix}/{action}/", body)
            assert response.status_code in (200, 201), (action, prefix, response.text)
            started.append(response.json())
    main = started[0]
    run_ids = [run["id"] for run in main["runs"]]
    ids = ",".join(map(str, run_ids))
    slow = recorder.post(
        f"{V2}/scenarios/run_scenarios_livekit_v2/", {"scenarios": [{"scenario": SLOW_GRADER}]}
    ).json()
    hanging = recorder.post(
        f"{V2}/scenarios/run_scenarios_livekit_v2/",
        {"scenarios": [{"scenario": HANG}, {"scenario": ERROR}, {"scenario": FLAKY}]},
    ).json()
    recorder.post(
        f"{V2}/scenarios/run_scenarios_livekit_v2/", {"scenarios": [{"scenario": PROJECT}]}
    )
    # Poll through every phase: pending, queued, running, evaluating, terminal, and the
    # "completed, success null" window of a slow evaluation.
    for step in (0, 2, 10, 28, 31, 45, 62, 95, 200):
        clock.now = 1000.0 + step
        for prefix in RUN_PREFIXES:
            recorder.get(f"{prefix}/bulk/", run_ids=ids)
            recorder.get(f"{prefix}/{run_ids[0]}/")
        recorder.get(f"{V2}/runs/bulk/", run_ids=ids, result_id=main["id"])
        recorder.get(f"{V2}/runs/bulk/", run_ids=str(slow["runs"][0]["id"]))
        for prefix in RESULT_PREFIXES:
            recorder.get(f"{prefix}/{main['id']}/")
        recorder.get(f"{V2}/results/{slow['id']}/")
    # Lists and their filters.
    for prefix in RESULT_PREFIXES:
        recorder.get(f"{prefix}/")
        recorder.get(f"{prefix}/", search="contract", project_id=1, agent_id=42, page_size=2)
        recorder.get(f"{prefix}/", page=99)  # DRF's 404 "Invalid page."
    for prefix in RUN_PREFIXES:
        recorder.get(f"{prefix}/")
        recorder.get(
            f"{prefix}/",
            result__id=main["id"],
            status__in="completed,failed",
            id__in=ids,
            agent_id=42,
            project_id=1,
            page_size=3,
        )
        recorder.get(f"{prefix}/", success="true", scenario__id__in=f"{PASS},{FAIL}")
    for prefix in SCENARIO_PREFIXES:
        recorder.get(f"{prefix}/")
        recorder.get(f"{prefix}/", agent_id=42, page_size=2)
        recorder.get(f"{prefix}/{PASS}/")
        recorder.get(f"{prefix}/{DELETED}/")  # 404
    for version in (V1, V2):
        for agent in (42, 43, 44, 45, 7000):
            recorder.get(f"{version}/aiagents/{agent}/")
        recorder.get(f"{version}/aiagents/49/")  # 404
    for prefix in (f"{V1}/test-profiles", f"{V1}/test-profiles-external"):
        recorder.get(f"{prefix}/")
        recorder.get(f"{prefix}/7/")
        recorder.get(f"{prefix}/123/")
    # Ending calls, rerunning, sharing.
    clock.now = 1000.0 + 300
    hanging_ids = [run["id"] for run in hanging["runs"]]
    for prefix in RUN_PREFIXES:
        recorder.post(f"{prefix}/{hanging_ids[0]}/end_call/")
        recorder.post(f"{prefix}/999999/end_call/")  # 404
    for prefix in RESULT_PREFIXES:
        recorder.post(f"{prefix}/{hanging['id']}/end_calls/")
        recorder.post(f"{prefix}/999999/end_calls/")  # 404
        recorder.post(f"{prefix}/{main['id']}/rerun/")
        recorder.post(f"{prefix}/{main['id']}/create_shareable_link_token/", {"expire_at": None})
        recorder.post(
            f"{prefix}/{main['id']}/create_shareable_link_token/",
            {"expire_at": "2026-12-08T00:00:00Z"},
        )
        recorder.post(f"{prefix}/{main['id']}/create_shareable_link_token/", {"expire_at": 5})
    recorder.get(f"{V2}/results/{hanging['id']}/")
    recorder.get(f"{V2}/runs/bulk/", run_ids=",".join(map(str, hanging_ids)))
    # Tests as Code (cekura-api.md 10.3): a run, a dry run (priced, nothing started).
    suite = {
        "agent_id": 42,
        "channel": "voice",
        "spec": {
            "version": "1",
            "scenarios": [{"name": "Refund", "instructions": "Ask for a refund."}],
        },
    }
    for prefix in SCENARIO_PREFIXES:
        recorder.post(f"{prefix}/run_scenarios_json/", suite)
    recorder.post(f"{V2}/scenarios/run_scenarios_json/?dry_run=true", suite)
    # A bad body: DRF's field-keyed 400.
    recorder.post(f"{V2}/scenarios/run_scenarios_livekit_v2/", {"scenarios": [PASS], "agent_id": 1})
    recorder.post(f"{V2}/scenarios/run_scenarios_text/", {"scenarios": [PASS]})
    recorder.get(f"{V2}/runs/bulk/", run_ids=f"[{ids}]")  # a JSON array: 400


def violations(spec: Contract, recorder: Recorder) -> list[str]:
    found = []
    for exchange in recorder.exchanges:
        operation = spec.operation(exchange.method, exchange.path)
        if operation is None:
            found.append(f"{exchange.method} {exchange.path}: not an operation of the spec")
            continue
        for error in spec.response_errors(operation, exchange.status, exchange.body):
            found.append(f"{exchange.method} {exchange.path} -> {exchange.status}: {error}")
    return found


def test_every_workflow_answer_validates(
    spec: Contract, recorder: Recorder, clock: FakeClock, contract_emulator: Emulator
) -> None:
    run_every_workflow(recorder, clock, contract_emulator)
    assert violations(spec, recorder) == []
    statuses = {exchange.status for exchange in recorder.exchanges}
    assert {200, 201, 400, 404} <= statuses  # the error paths were exercised too


def test_workflows_reach_every_operation_the_emulator_serves(
    spec: Contract, recorder: Recorder, clock: FakeClock, contract_emulator: Emulator
) -> None:
    run_every_workflow(recorder, clock, contract_emulator)
    reached = {
        operation.key
        for exchange in recorder.exchanges
        if (operation := spec.operation(exchange.method, exchange.path)) is not None
    }
    expected = {op.key for op in spec.operations() if not_served(op) is None}
    assert sorted(expected - reached) == []


def test_the_request_bodies_of_the_workflows_are_spec_valid(spec: Contract) -> None:
    """The bodies the workflows send are themselves valid, so the answers are to real requests
    (the LiveKit v1 runner's body is documented as the scenario-create schema, a generator
    slip, so it is left out)."""
    problems = []
    for action, body in RUNNER_BODIES.items():
        operation = spec.operation("post", f"{V2}/scenarios/{action}/")
        assert operation is not None, action
        if action == "run_scenarios_livekit":
            continue
        problems += [f"{action}: {e}" for e in spec.request_errors(operation, body)]
    assert problems == []


# ----------------------------------------------------------------- fault modes

#: Every fault action that answers with a JSON body, and where it is installed.
BODY_FAULTS: list[tuple[str, str, dict[str, Any]]] = [
    ("start", "error_before", {"status": 500}),
    ("start", "error_after", {"status": 502}),
    ("start", "rate_limit", {"status": 429, "retry_after": "2"}),
    ("bulk", "rate_limit", {"status": 503, "retry_after": "1"}),
    ("result", "error_before", {"status": 504}),
    ("bulk", "unknown_status", {"status_value": "scaling_up"}),
    ("result", "unknown_status", {"status_value": "scaling_up"}),
    ("results", "unknown_status", {"status_value": "scaling_up"}),
    ("run", "unknown_status", {"status_value": "scaling_up"}),
    ("bulk", "omit_runs", {"omit": 1}),
    ("bulk", "duplicate_runs", {}),
    ("bulk", "extra_runs", {}),
    ("start", "omit_runs", {"omit": 1}),
    ("start", "duplicate_runs", {}),
    ("start", "extra_runs", {}),
    ("rerun", "omit_runs", {"omit": 1}),
    ("rerun", "duplicate_runs", {}),
    ("rerun", "extra_runs", {}),
    ("bulk", "slow", {"delay_s": 0.01}),
    ("end_call", "error_after", {"status": 500}),
    ("agent", "error_before", {"status": 503}),
    ("scenario", "rate_limit", {"status": 429, "retry_after": "1"}),
    ("any", "never_finish", {"scenario_ids": [PASS]}),
]


@pytest.mark.parametrize(
    ("match", "action", "options"), BODY_FAULTS, ids=[f"{m}-{a}" for m, a, _ in BODY_FAULTS]
)
def test_fault_answers_validate(
    spec: Contract,
    recorder: Recorder,
    clock: FakeClock,
    contract_emulator: Emulator,
    match: str,
    action: str,
    options: dict[str, Any],
) -> None:
    first = recorder.post(
        f"{V2}/scenarios/run_scenarios_livekit_v2/", RUNNER_BODIES["run_scenarios_livekit_v2"]
    ).json()
    times = None if action == "never_finish" else 0  # 0: every matching request
    contract_emulator.inject(match, action, times=times, **options)  # type: ignore[arg-type]
    ids = ",".join(str(run["id"]) for run in first["runs"])
    recorder.post(
        f"{V2}/scenarios/run_scenarios_livekit_v2/", RUNNER_BODIES["run_scenarios_livekit_v2"]
    )
    clock.advance(200)
    recorder.get(f"{V2}/runs/bulk/", run_ids=ids)
    recorder.get(f"{V2}/runs/{first['runs'][0]['id']}/")
    recorder.get(f"{V2}/runs/")
    recorder.get(f"{V2}/results/{first['id']}/")
    recorder.get(f"{V2}/results/")
    recorder.post(f"{V2}/results/{first['id']}/rerun/")
    recorder.post(f"{V2}/runs/{first['runs'][0]['id']}/end_call/")
    recorder.get(f"{V1}/aiagents/42/")
    recorder.get(f"{V1}/scenarios/{PASS}/")
    if action != "never_finish":  # a standing rule, not counted per request
        assert contract_emulator.faults[-1]["fired"] > 0  # it shaped at least one answer
    assert violations(spec, recorder) == []


# ------------------------------------------------------------ declared fields

_CREATED = {
    "name": "the create answer of cekura-api.md 2.x names the result",
    "success_rate": "the create answer of cekura-api.md 2.x",
    "is_cronjob": "the create answer of cekura-api.md 2.x",
    "agent_inbound": "the email runner's own answer examples have it",
}
_RUN = {
    "call_id": "the provider's call id of cekura-api.md 4 (the run object); the spec's Run "
    "lacks it although runs-list filters on call_id",
    "number": "the phone number field of cekura-api.md 4 (the run object)",
}
#: Fields the emulator sends that the answer's schema does not declare, by operation (paths
#: without the version and "-external"), each with its reason. Any other undeclared field
#: fails: a field renamed in the spec leaves the emulator's old name undeclared.
ALLOWED_EXTRAS: dict[tuple[str, str], dict[str, str]] = {
    ("get", "/aiagents/{id}/"): {
        "description": "required by AIAgent and AIAgentV2; the property itself was lost in "
        "the subset's cut (it was named like the removed prose)"
    },
    ("get", "/runs/bulk/"): _RUN,
    ("get", "/runs/{id}/"): _RUN,
    # The spec documents only the started result; ?dry_run=true answers the plan of
    # cekura-api.md 10.3 (the subset predates it), on the same operation.
    ("post", "/scenarios/run_scenarios_json/"): {
        "dry_run": "cekura-api.md 10.3: the dry run's answer",
        "valid": "cekura-api.md 10.3: the dry run's answer",
        "plan": "cekura-api.md 10.3: the dry run's answer",
    },
}


def allowed_extras(spec: Contract, key: tuple[str, str]) -> dict[str, str]:
    if key[0] == "post" and "/run_scenarios" in key[1]:
        return {**_CREATED, **ALLOWED_EXTRAS.get(key, {})}
    if key == ("get", "/runs/"):
        # The emulator lists full run objects; the spec's RunList is a subset of Run.
        schemas = spec.spec["components"]["schemas"]
        full = set(schemas["Run"]["properties"]) - set(schemas["RunList"]["properties"])
        return {**_RUN, **dict.fromkeys(full, "a Run field the emulator's runs list also shows")}
    return ALLOWED_EXTRAS.get(key, {})


def test_the_emulator_sends_only_declared_fields(
    recorder: Recorder, clock: FakeClock, contract_emulator: Emulator
) -> None:
    run_every_workflow(recorder, clock, contract_emulator)
    spec = closed_contract()
    unexplained = set()
    for exchange in recorder.exchanges:
        operation = spec.operation(exchange.method, exchange.path)
        if operation is None or not 200 <= exchange.status < 300:
            continue
        key = (operation.method, re.sub(r"^/test_framework/v\d", "", operation.template))
        key = (key[0], key[1].replace("-external", ""))
        extras = spec.undeclared_fields(operation, exchange.status, exchange.body)
        unexplained |= {(*key, name) for name in extras - set(allowed_extras(spec, key))}
    assert sorted(unexplained) == []


def test_a_renamed_answer_field_is_caught(
    recorder: Recorder, clock: FakeClock, contract_emulator: Emulator
) -> None:
    """Rename Run.scenario_name in a copy of the spec: the emulator's runs now carry a field
    the spec does not declare, and the declared-fields check names it."""
    answer = recorder.post(
        f"{V2}/scenarios/run_scenarios_livekit_v2/", {"scenarios": [{"scenario": PASS}]}
    )
    bulk = recorder.get(f"{V2}/runs/bulk/", run_ids=str(answer.json()["runs"][0]["id"]))
    raw = apply_overlay(load_raw(), load_overlay())
    run = raw["components"]["schemas"]["Run"]["properties"]
    run["name_of_scenario"] = run.pop("scenario_name")
    mutated = Contract(closed(raw))
    operation = mutated.operation("get", f"{V2}/runs/bulk/")
    assert operation is not None
    assert mutated.undeclared_fields(operation, 200, bulk.content) == {"scenario_name", *_RUN}
