"""Preflight look-ups (cekura-api.md 6b): scenarios, agents and test profiles over HTTP."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from pytest_cekura.emulator import Emulator
from pytest_cekura.emulator.catalogue import parse_catalogue

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
    start_runs,
)

V1 = "/test_framework/v1"
V2 = "/test_framework/v2"
AGENT_PATHS = ["/test_framework/v1/aiagents/{id}/", "/test_framework/v2/aiagents/{id}"]
NOT_FOUND = {"detail": "Not found."}


# ----------------------------------------------------------------- scenarios


@pytest.mark.parametrize(
    "template",
    [
        "{v1}/scenarios/{id}/",
        "{v1}/scenarios/{id}",
        "{v1}/scenarios-external/{id}/",
        "/test_framework/v2/scenarios/{id}/",
    ],
)
def test_scenario_detail(api: httpx.Client, template: str) -> None:
    scenario = get_json(api, template.format(v1=V1, id=REFILL))
    assert scenario == {
        "id": REFILL,
        "name": "Prescription refill",
        "agent": PHARMACY,
        "agent_name": "Pharmacy agent",
        "personality": 1,
        "personality_name": "Normal caller",
        "folder_path": None,
        "scenario_type": "instruction",  # the spec's enum has no "simulation"
        "first_message": "Hello",
        "expected_outcome_prompt": (
            'The agent resolves the caller\'s request ("Prescription refill") and confirms '
            "the result before ending the call."
        ),
        "instructions": (
            "You are calling about prescription refill. Give your full name when asked, and do "
            "not hang up until the agent has confirmed the result."
        ),
        "test_profile": None,
        "inbound_phone_number": None,
        "project": 1,
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
    # ScenarioList has the timestamps, SchemaScenario the project: otherwise the same.
    detail = get_json(api, f"{V1}/scenarios/{REFILL}/")
    listed = second["results"][1]
    assert {k: v for k, v in listed.items() if not k.endswith("_at")} == {
        k: v for k, v in detail.items() if k != "project"
    }
    assert listed["created_at"] == "2025-01-01T00:00:00.000000Z"
    past = api.get(f"{V1}/scenarios-external", params={"page": 3, "page_size": 4})
    assert (past.status_code, past.json()) == (404, {"detail": "Invalid page."})


# -------------------------------------------------------------------- agents


def test_agent_detail_v1_masks_secrets_as_the_live_service_does(api: httpx.Client) -> None:
    agent = get_json(api, f"{V1}/aiagents/{PHARMACY}/")
    assert agent == {
        "id": PHARMACY,
        "project": 1,
        "agent_name": "Pharmacy agent",
        "description": "",
        "contact_number": "",
        "inbound": False,
        "language": "en",
        "assistant_provider": "livekit",
        "assistant_id": "",
        "websocket_url": "",
        # livekit_api_key is writeOnly in the spec: only the flag comes back.
        "livekit_api_key_configured": True,
        "livekit_data": {
            "url": "wss://pharmacy.livekit.cloud",
            "agent_name": "pharmacy-agent",
            "api_secret_configured": True,  # api_secret itself is stripped
            "config": {"empty_timeout": 300},
        },
        "enabled_personalities": [],
        "created_at": "2025-01-01T00:00:00.000000Z",
        "updated_at": "2025-01-01T00:00:00.000000Z",
    }
    text = json.dumps(agent)
    assert "APIxxxxxxxx" not in text
    assert "secret-value" not in text


@pytest.mark.parametrize(
    "path", ["/test_framework/v2/aiagents/{id}/", "/test_framework/v2/aiagents/{id}"]
)
def test_agent_detail_v2_shape(api: httpx.Client, path: str) -> None:
    agent = get_json(api, path.format(id=PHARMACY))
    assert (agent["id"], agent["name"], agent["project"]) == (PHARMACY, "Pharmacy agent", 1)
    assert agent["description"] == ""  # required by AIAgentV2
    assert agent["provider"] == {"type": "livekit", "agent_id": None, "credentials": None}
    text = json.dumps(agent)
    assert "APIxxxxxxxx" not in text
    assert "secret-value" not in text


def test_incomplete_agent_lacks_the_settings_the_catalogue_left_out(api: httpx.Client) -> None:
    agent = get_json(api, f"{V1}/aiagents/{HALF}/")
    assert agent["agent_name"] == "Half-configured agent"
    assert agent["livekit_api_key_configured"] is False
    assert agent["livekit_data"] == {
        "url": "wss://half.livekit.cloud",
        "api_secret_configured": False,
    }


def test_unlisted_agent_is_fully_configured(api: httpx.Client) -> None:
    agent = get_json(api, f"{V1}/aiagents/8/")
    assert (agent["agent_name"], agent["assistant_provider"]) == ("Agent 8", "livekit")
    assert agent["livekit_api_key_configured"] is True
    assert agent["livekit_data"] == {
        "url": "wss://emulated.livekit.cloud",
        "agent_name": "agent-8",
        "api_secret_configured": True,
    }


def test_agent_with_credentials_on_the_project_has_false_flags_and_still_runs() -> None:
    """LiveKit credentials may live on the Cekura project (cekura-api.md 10.1): the agent's
    own flags are false, yet the service accepts and plays the runs."""
    catalogue = parse_catalogue(
        {
            "agent": [
                {
                    "id": 60,
                    "livekit_url": "wss://p.livekit.cloud",
                    "livekit_api_key": "APIkey",
                    "livekit_api_secret": "s3cret",
                    "livekit_agent_name": "p-agent",
                    "livekit_credentials": "project",
                    "project": 77,
                }
            ],
            "scenario": [{"id": 61, "agent": 60, "duration_s": 0}],
        }
    )
    with (
        Emulator(catalogue, time_scale=0) as emulator,
        httpx.Client(base_url=emulator.url, headers={"X-CEKURA-API-KEY": "emulator-key"}) as client,
    ):
        agent = get_json(client, f"{V1}/aiagents/60/")
        assert agent["project"] == 77
        assert agent["livekit_api_key_configured"] is False
        assert agent["livekit_data"]["api_secret_configured"] is False
        assert "s3cret" not in json.dumps(agent)
        assert "APIkey" not in json.dumps(agent)
        started = start_runs(client, 61)
        [run] = get_json(client, "/test_framework/v2/runs/bulk/", run_ids=started["runs"][0]["id"])
        assert (run["status"], run["success"]) == ("completed", True)


@pytest.mark.parametrize("template", AGENT_PATHS)
@pytest.mark.parametrize("agent_id", [DELETED, 0])
def test_missing_agent_is_404(api: httpx.Client, template: str, agent_id: int) -> None:
    response = api.get(template.format(id=agent_id))
    assert (response.status_code, response.json()) == (404, NOT_FOUND)


# -------------------------------------------------------------- test profiles

JANE = {"id": 7, "name": "Jane", "information": {"customer_name": "Jane Doe"}}


PROFILE_EXTRAS = {
    "agent": None,
    "project": None,
    "created_at": "2025-01-01T00:00:00.000000Z",
    "updated_at": "2025-01-01T00:00:00.000000Z",
}


def test_test_profile_list_and_detail(api: httpx.Client) -> None:
    listed = get_json(api, f"{V1}/test-profiles-external/")
    assert listed == [{**JANE, **PROFILE_EXTRAS}]  # the spec's answer is a plain array
    assert get_json(api, f"{V1}/test-profiles-external/7") == {**JANE, **PROFILE_EXTRAS}
    # Any positive id is a profile, as when starting runs with it.
    unlisted = get_json(api, f"{V1}/test-profiles-external/123/")
    assert unlisted == {"id": 123, "name": "Test profile 123", "information": {}, **PROFILE_EXTRAS}
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
