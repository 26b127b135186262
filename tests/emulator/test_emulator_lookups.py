"""Preflight look-ups (cekura-api.md 6b): scenarios, agents and test profiles over HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pytest_cekura.emulator import Emulator

from .helpers import (
    DELETED,
    FAIL,
    GONE,
    HALF,
    PASS,
    PHARMACY,
    REFILL,
    TLS,
    get_json,
)

V1 = "/test_framework/v1"
AGENT_PATHS = ["/test_framework/v1/aiagents/{id}/", "/test_framework/v2/aiagents/{id}"]
NOT_FOUND = {"detail": "Not found."}


# ----------------------------------------------------------------- scenarios


@pytest.mark.parametrize(
    "template", ["{v1}/scenarios/{id}/", "{v1}/scenarios/{id}", "{v1}/scenarios-external/{id}/"]
)
def test_scenario_detail(api: httpx.Client, template: str) -> None:
    scenario = get_json(api, template.format(v1=V1, id=REFILL))
    assert scenario == {
        "id": REFILL,
        "name": "Prescription refill",
        "agent": PHARMACY,
        "agent_name": "Pharmacy agent",
        "personality_name": "Normal caller",
        "tags": [],
        "scenario_type": "simulation",
        "expected_outcome_prompt": (
            'The agent resolves the caller\'s request ("Prescription refill") and confirms '
            "the result before ending the call."
        ),
        "instructions": (
            "You are calling about prescription refill. Give your full name when asked, and do "
            "not hang up until the agent has confirmed the result."
        ),
    }


def test_unlisted_scenario_exists_with_defaults(api: httpx.Client) -> None:
    scenario = get_json(api, f"{V1}/scenarios/501/")
    assert (scenario["name"], scenario["agent"], scenario["agent_name"]) == (
        "Scenario 501",
        1,
        "Agent 1",
    )


@pytest.mark.parametrize("scenario_id", [GONE, 0])
def test_missing_scenario_is_404(api: httpx.Client, scenario_id: int) -> None:
    response = api.get(f"{V1}/scenarios/{scenario_id}/")
    assert (response.status_code, response.json()) == (404, NOT_FOUND)


def test_scenario_list_pages_through_existing_catalogue_scenarios(api: httpx.Client) -> None:
    first = get_json(api, f"{V1}/scenarios/", page_size=4)
    assert first["count"] == 6  # seven listed, one of them deleted
    assert [s["id"] for s in first["results"]] == [PASS, FAIL, 33, 34]
    assert first["previous"] is None
    assert first["next"].endswith(f"{V1}/scenarios/?page_size=4&page=2")
    second = api.get(first["next"]).json()
    assert [s["id"] for s in second["results"]] == [35, REFILL]
    assert second["next"] is None
    assert second["results"][1] == get_json(api, f"{V1}/scenarios/{REFILL}/")
    past = api.get(f"{V1}/scenarios-external", params={"page": 3, "page_size": 4})
    assert (past.status_code, past.json()) == (404, {"detail": "Invalid page."})


# -------------------------------------------------------------------- agents


@pytest.mark.parametrize("template", AGENT_PATHS)
def test_agent_detail_on_the_documented_and_the_sdk_path(api: httpx.Client, template: str) -> None:
    agent = get_json(api, template.format(id=PHARMACY))
    assert agent == {
        "id": PHARMACY,
        "project": 1,
        "agent_name": "Pharmacy agent",
        "contact_number": None,
        "inbound": False,
        "description": "",
        "language": "en",
        "assistant_provider": "livekit",
        "assistant_id": "",
        "websocket_url": "",
        "livekit_api_key": "APIxxxxxxxx",
        "livekit_data": {
            "url": "wss://pharmacy.livekit.cloud",
            "api_secret": "secret-value",
            "agent_name": "pharmacy-agent",
        },
        "livekit_config": {"empty_timeout": 300},
        "pipecat_data": None,
        "created_at": "2025-01-01T00:00:00.000000Z",
        "updated_at": "2025-01-01T00:00:00.000000Z",
    }


def test_incomplete_agent_lacks_the_settings_the_catalogue_left_out(api: httpx.Client) -> None:
    agent = get_json(api, f"{V1}/aiagents/{HALF}/")
    assert agent["agent_name"] == "Half-configured agent"
    assert agent["livekit_api_key"] == ""
    assert agent["livekit_data"] == {"url": "wss://half.livekit.cloud"}
    assert agent["livekit_config"] == {}


@pytest.mark.parametrize("template", AGENT_PATHS)
def test_unlisted_agent_is_fully_configured(api: httpx.Client, template: str) -> None:
    agent = get_json(api, template.format(id=8))
    assert (agent["agent_name"], agent["assistant_provider"]) == ("Agent 8", "livekit")
    assert agent["livekit_api_key"] == "APIemulated"
    assert agent["livekit_data"] == {
        "url": "wss://emulated.livekit.cloud",
        "api_secret": "emulated-secret",
        "agent_name": "agent-8",
    }


@pytest.mark.parametrize("template", AGENT_PATHS)
@pytest.mark.parametrize("agent_id", [DELETED, 0])
def test_missing_agent_is_404(api: httpx.Client, template: str, agent_id: int) -> None:
    response = api.get(template.format(id=agent_id))
    assert (response.status_code, response.json()) == (404, NOT_FOUND)


# -------------------------------------------------------------- test profiles

JANE = {"id": 7, "name": "Jane", "information": {"customer_name": "Jane Doe"}}


def test_test_profile_list_and_detail(api: httpx.Client) -> None:
    listed = get_json(api, f"{V1}/test-profiles-external/")
    assert listed == {"count": 1, "next": None, "previous": None, "results": [JANE]}
    assert get_json(api, f"{V1}/test-profiles-external/7") == JANE
    # Any positive id is a profile, as when starting runs with it.
    unlisted = get_json(api, f"{V1}/test-profiles-external/123/")
    assert unlisted == {"id": 123, "name": "Test profile 123", "information": {}}
    response = api.get(f"{V1}/test-profiles-external/0/")
    assert (response.status_code, response.json()) == (404, NOT_FOUND)


# --------------------------------------------------------------------- shared


@pytest.mark.parametrize(
    "path",
    [
        f"{V1}/scenarios/{PASS}/",
        f"{V1}/scenarios/",
        f"{V1}/aiagents/{PHARMACY}/",
        f"/test_framework/v2/aiagents/{PHARMACY}/",
        f"{V1}/test-profiles-external/",
        f"{V1}/test-profiles-external/7/",
    ],
)
def test_look_ups_need_the_key_and_are_read_only(
    api: httpx.Client, emulator: Emulator, path: str
) -> None:
    unauthenticated = httpx.get(f"{emulator.url}{path}", verify=TLS)
    assert unauthenticated.status_code == 401
    assert "api_secret" not in unauthenticated.text
    response = api.post(path, json={})
    assert (response.status_code, response.json()) == (
        405,
        {"detail": 'Method "POST" not allowed.'},
    )
    logged: list[Any] = [(r.method, r.path, r.status) for r in emulator.requests]
    assert logged == [("GET", path, 401), ("POST", path, 405)]
