"""Every field the plugin reads is a field of the spec, and a renamed field fails the contract.

The spec never forbids extra properties, so schema validation alone would not notice a field
renamed upstream: the emulator's old name would just be an extra. These tests close that gap:
the fields the plugin's models read must be declared in the spec's schemas, and the mutation
tests rename a field in a copy of the spec and check that the contract then fails.
"""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from pytest_cekura.emulator import Emulator
from pytest_cekura.models import Result, Run, Scenario

from .conftest import KEY
from .spec import Contract, apply_overlay, load_overlay, load_raw

V2 = "/test_framework/v2"

#: The keys ``AgentSettings.from_api`` reads from ``GET aiagents/{id}/`` (v1 shape), and the
#: keys it reads inside ``livekit_data``.
AGENT_FIELDS = ("agent_name", "assistant_provider", "livekit_api_key_configured", "livekit_data")
LIVEKIT_DATA_FIELDS = ("url", "agent_name")


def wire_names(model: type[Any]) -> set[str]:
    """The JSON keys a pydantic model reads (aliases included)."""
    return {field.alias or name for name, field in model.model_fields.items()}


def declared(spec: dict[str, Any], schema: str) -> set[str]:
    return set(spec["components"]["schemas"][schema].get("properties", {}))


SPEC = apply_overlay(load_raw(), load_overlay())


@pytest.mark.parametrize(
    ("model", "schemas"),
    [
        (Run, ("Run",)),
        (Result, ("Result", "ResultDetailV2")),
        (Scenario, ("SchemaScenario", "ScenarioList")),
    ],
    ids=["Run", "Result", "Scenario"],
)
def test_every_field_a_model_reads_is_declared(model: type[Any], schemas: tuple[str, ...]) -> None:
    for schema in schemas:
        assert sorted(wire_names(model) - declared(SPEC, schema)) == [], schema


def test_every_agent_field_preflight_reads_is_declared() -> None:
    assert sorted(set(AGENT_FIELDS) - declared(SPEC, "AIAgent")) == []
    assert sorted(set(LIVEKIT_DATA_FIELDS) - declared(SPEC, "LiveKitConfig")) == []
    assert "project" in declared(SPEC, "AIAgent")  # dashboard links need it (10.1)
    assert "project" in declared(SPEC, "AIAgentV2")


# ------------------------------------------------------------------ mutations


def renamed(spec: dict[str, Any], schema: str, old: str, new: str) -> dict[str, Any]:
    """A copy of ``spec`` where ``schema``'s property ``old`` is called ``new``."""
    mutated = copy.deepcopy(spec)
    node = mutated["components"]["schemas"][schema]
    node["properties"][new] = node["properties"].pop(old)
    if old in node.get("required", []):
        node["required"] = [new if name == old else name for name in node["required"]]
    return mutated


def test_renaming_a_run_field_the_plugin_reads_fails() -> None:
    mutated = renamed(SPEC, "Run", "status", "state")
    assert "status" in wire_names(Run) - declared(mutated, "Run")


def test_renaming_a_required_request_field_fails_the_plugins_body() -> None:
    body = {"scenarios": [{"scenario": 30}], "frequency": 1, "name": "x"}
    pointer = "/components/schemas/RunLivekitScenarios"
    assert Contract(SPEC).schema_errors(pointer, body, "request") == []
    mutated = Contract(renamed(SPEC, "RunLivekitScenarios", "scenarios", "scenario_list"))
    assert mutated.schema_errors(pointer, body, "request") == [
        "(root): 'scenario_list' is a required property"
    ]


def test_renaming_a_required_answer_field_fails_the_emulators_answer() -> None:
    with Emulator(time_scale=0) as emulator:
        headers = {"X-CEKURA-API-KEY": KEY}
        body = {"scenarios": [{"scenario": 30}], "test_profile_ids": [7]}
        started = httpx.post(
            f"{emulator.url}{V2}/scenarios/run_scenarios_livekit_v2/", json=body, headers=headers
        ).json()
        answer = httpx.get(
            f"{emulator.url}{V2}/runs/bulk/",
            params={"run_ids": started["runs"][0]["id"]},
            headers=headers,
        ).content
    original = Contract(SPEC)
    operation = original.operation("get", f"{V2}/runs/bulk/")
    assert operation is not None
    assert original.response_errors(operation, 200, answer) == []
    mutated = Contract(renamed(SPEC, "TestProfileData", "information", "variables"))
    mutated_operation = mutated.operation("get", f"{V2}/runs/bulk/")
    assert mutated_operation is not None
    errors = mutated.response_errors(mutated_operation, 200, answer)
    assert len(errors) == 1
    assert errors[0].startswith("0/test_profile_data: "), errors
