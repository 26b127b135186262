"""Tests as Code in the emulator (cekura-api.md 10.3): run_scenarios_json, its dry run,
validate_scenarios_json and json_schema, over loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pytest_cekura.emulator import Emulator
from pytest_cekura.emulator.catalogue import parse_catalogue
from pytest_cekura.emulator.suites_json import case_scenario_id

from .helpers import API_KEY, CATALOGUE, PHARMACY, TLS, FakeClock, get_json

V1 = "/test_framework/v1"
PATHS = (
    f"{V1}/scenarios/run_scenarios_json/",
    f"{V1}/scenarios-external/run_scenarios_json/",
    "/test_framework/v2/scenarios/run_scenarios_json/",
)
VALIDATE = f"{V1}/scenarios/validate_scenarios_json/"
RUN = PATHS[0]


def case(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "instructions": f"You call about {name}.", **fields}


def upload(*cases: dict[str, Any], **body: Any) -> dict[str, Any]:
    spec = {"version": "1", "suite": {"name": "Refunds"}, "scenarios": list(cases)}
    return {"agent_id": PHARMACY, "channel": "voice", "spec": spec, **body}


@pytest.fixture
def suites_api(clock: FakeClock) -> Iterator[httpx.Client]:
    data = {
        **CATALOGUE,
        "case": [
            {"key": "refund-denied", "outcome": "fail", "duration_s": 20},
            {"key": "Angry caller", "outcome": "error", "duration_s": 20},
        ],
        "pricing": {"per_minute": 4, "per_metric": 0.5},
    }
    catalogue = parse_catalogue(data, source="suites-catalogue")
    with Emulator(catalogue, clock=clock, time_scale=1.0) as emulator:
        headers = {"X-CEKURA-API-KEY": API_KEY}
        with httpx.Client(base_url=emulator.url, headers=headers, verify=TLS) as client:
            yield client


def test_every_problem_is_listed_at_once_by_location(api: httpx.Client) -> None:
    bad = upload(
        {"name": "x" * 81, "instructions": "ok"},
        {"name": "no instructions"},
        case("unknown metric", metrics=["greeting_by_name", "no_such_metric"]),
        case("half personality", personality={"prompt": "grumpy", "language": "en"}),
        case("based personality", personality={"base": 3, "prompt": "grumpy"}),
        channel="carrier-pigeon",
    )
    bad["spec"]["agent_id"] = 7
    response = api.post(VALIDATE, json=bad)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors["channel"] == ['"carrier-pigeon" is not a valid choice.']
    assert "agent_id does not belong in the suite document" in errors["agent_id"][0]
    assert set(errors) == {
        "channel",
        "agent_id",
        "scenarios[0].name",
        "scenarios[1]",
        "scenarios[3].personality",
    }
    assert "80 characters" in errors["scenarios[0].name"][0]
    assert errors["scenarios[1]"] == ["Instructions are required."]
    assert "voice_model, voice_id, background_noise" in errors["scenarios[3].personality"][0]
    # Metric slugs are checked once the document's shape is valid.
    bad["channel"] = "voice"
    del bad["spec"]["agent_id"]
    bad["spec"]["scenarios"] = bad["spec"]["scenarios"][2:3]
    errors = api.post(VALIDATE, json=bad).json()["errors"]
    assert errors == {
        "scenarios[0].metrics[1]": [
            "No metric with slug or id 'no_such_metric' is enabled for this agent."
        ]
    }


def test_case_count_and_required_body_fields(api: httpx.Client) -> None:
    errors = api.post(RUN, json={"spec": {"version": "1", "scenarios": []}}).json()["errors"]
    assert errors["agent_id"] == ["This field is required."]
    assert "at least 1" in errors["scenarios"][0]
    many = upload(*(case(f"case {n}") for n in range(201)))
    errors = api.post(RUN, json=many).json()["errors"]
    assert "at most 200" in errors["scenarios"][0]
    assert api.post(RUN, json={"agent_id": PHARMACY}).json()["errors"]["spec"]


def test_a_dry_run_prices_and_starts_nothing(suites_api: httpx.Client) -> None:
    body = upload(
        case("Refund ok", key="refund-ok", metrics=["latency"], max_duration=120, frequency=2),
        case("Refund denied", key="refund-denied"),
    )
    body["spec"]["defaults"] = {"metrics": ["expected_outcome"]}
    answer = suites_api.post(RUN, params={"dry_run": "true"}, json=body)
    assert answer.status_code == 200, answer.text
    plan = answer.json()["plan"]
    assert answer.json()["dry_run"] is True
    assert plan["total_runs"] == 3
    # [pricing]: 4 per minute, 0.5 per metric; 180 s when the case has no max_duration.
    first, second = plan["scenarios"]
    assert first["estimated_cost"] == 2 * (4 * 2 + 0.5 * 2)
    assert second["estimated_cost"] == 4 * 3 + 0.5
    assert plan["estimated_cost"] == 18 + 12.5
    assert [s["key"] for s in plan["scenarios"]] == ["refund-ok", "refund-denied"]
    assert get_json(suites_api, f"{V1}/results/")["count"] == 0
    validated = suites_api.post(VALIDATE, json=body).json()
    assert validated["valid"] is True
    assert validated["plan"] == plan


def test_runs_play_as_the_catalogue_says_by_key_or_name(
    suites_api: httpx.Client, clock: FakeClock
) -> None:
    body = upload(
        case("Refund ok", key="refund-ok"),
        case("Refund denied", key="refund-denied"),
        case("Angry caller"),
        frequency=2,
    )
    for path in PATHS:
        response = suites_api.post(path, json=body)
        assert response.status_code == 200, response.text
    result = response.json()
    assert [run["scenario_name"] for run in result["runs"]] == [
        "Refund ok",
        "Refund ok",
        "Refund denied",
        "Refund denied",
        "Angry caller",
        "Angry caller",
    ]
    assert result["runs"][0]["scenario"] == case_scenario_id("refund-ok")
    clock.advance(3600)
    ids = ",".join(str(run["id"]) for run in result["runs"])
    runs = get_json(suites_api, "/test_framework/v2/runs/bulk/", run_ids=ids)
    outcome = {run["scenario_name"]: (run["status"], run["success"]) for run in runs}
    assert outcome["Refund ok"] == ("completed", True)
    assert outcome["Refund denied"] == ("completed", False)
    assert outcome["Angry caller"][0] == "failed"


def test_json_schema_describes_the_document(api: httpx.Client) -> None:
    for prefix in (f"{V1}/scenarios", f"{V1}/scenarios-external", "/test_framework/v2/scenarios"):
        schema = get_json(api, f"{prefix}/json_schema/", version="1")
        assert schema["properties"]["scenarios"]["maxItems"] == 200
        assert "version" in schema["required"]
    response = api.get(f"{V1}/scenarios/json_schema/", params={"version": "2"})
    assert response.status_code == 400
