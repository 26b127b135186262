"""Every run-starting endpoint of cekura-api.md 2.1, its body family, and dispatch metadata."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from pytest_cekura.emulator import Emulator
from pytest_cekura.emulator.validation import RUNNERS

from .helpers import DELETED, FAIL, GONE, HALF, LIVEKIT, PASS, PHARMACY, REFILL, start_runs

V1 = "/test_framework/v1"
JANE = {"id": 7, "name": "Jane", "information": {"customer_name": "Jane Doe"}}
ITEM_VALUES = {
    "livekit_room_url": "wss://room.example.livekit.cloud",
    "access_token": "room-token",
    "pipecat_room_url": "https://example.daily.co/room",
    "websocket_url": "wss://agent.example.com/ws",
}


@dataclass(frozen=True)
class Spec:
    """What the reference says about one runner; written out here, not read from the code."""

    action: str
    family: str  # "objects" | "ids"
    item_fields: tuple[str, ...] = ()
    takes_frequency: bool = True
    text: bool = False

    def body(self, *scenario_ids: int, **extra: Any) -> dict[str, Any]:
        if self.family == "objects":
            values = {name: ITEM_VALUES[name] for name in self.item_fields}
            body: dict[str, Any] = {"scenarios": [{"scenario": s, **values} for s in scenario_ids]}
        else:
            body = {"scenarios": list(scenario_ids), "agent_id": PHARMACY}
            if self.action == "run_scenarios_vapi_webrtc":
                body["vapi_assistant_id"] = "vapi-assistant-1"
        return {**body, **extra}


SPECS = [
    Spec("run_scenarios_livekit_v2", "objects"),
    Spec(
        "run_scenarios_livekit",
        "objects",
        ("livekit_room_url", "access_token"),
        takes_frequency=False,
    ),
    Spec("run_scenarios_pipecat_v2", "objects"),
    Spec("run_scenarios_pipecat", "objects", ("pipecat_room_url",), takes_frequency=False),
    Spec("run_scenarios_with_websockets", "objects", ("websocket_url",)),
    Spec("run_scenarios", "ids"),
    Spec("run_scenarios_text", "ids", text=True),
    Spec("run_scenarios_vapi_webrtc", "ids"),
    Spec("run_scenarios_retell_webrtc", "ids"),
    Spec("run_scenarios_elevenlabs", "ids"),
    Spec("run_scenarios_sip", "ids"),
    Spec("run_scenarios_email", "ids", text=True),
    Spec("run_scenarios_chirp", "ids"),
    Spec("run_scenarios_agora", "ids"),
]
BY_ACTION = {spec.action: spec for spec in SPECS}
OBJECT_SPECS = [s for s in SPECS if s.family == "objects"]
ID_SPECS = [s for s in SPECS if s.family == "ids"]
PATH_VARIANTS = [
    f"{V1}/{prefix}/{{action}}{slash}"
    for prefix in ("scenarios", "scenarios-external")
    for slash in ("/", "")
]


def path(action: str) -> str:
    return f"{V1}/scenarios/{action}/"


def post(api: httpx.Client, spec: Spec, body: Any) -> httpx.Response:
    return api.post(path(spec.action), json=body)


def created(api: httpx.Client, spec: Spec, body: Any) -> dict[str, Any]:
    response = post(api, spec, body)
    assert response.status_code == RUNNERS[spec.action].created_status, response.text
    answer: dict[str, Any] = response.json()
    return answer


def ids_of(specs: list[Spec]) -> list[str]:
    return [spec.action for spec in specs]


def test_the_table_covers_every_emulated_runner() -> None:
    assert set(RUNNERS) == set(BY_ACTION)


# ------------------------------------------------------------ accepted bodies


@pytest.mark.parametrize("spec", SPECS, ids=ids_of(SPECS))
def test_every_path_variant_accepts_the_family_body(
    api: httpx.Client, emulator: Emulator, spec: Spec
) -> None:
    for template in PATH_VARIANTS:
        response = api.post(template.format(action=spec.action), json=spec.body(PASS, FAIL))
        # 200 as the spec answers, 201 for the text and websocket runners.
        assert response.status_code == RUNNERS[spec.action].created_status, (
            template,
            response.text,
        )
        answer = response.json()
        assert [run["scenario"] for run in answer["runs"]] == [PASS, FAIL]
        assert answer["run_as_text"] is spec.text
    assert len(emulator.runs) == 2 * len(PATH_VARIANTS)
    assert {run["run_as_text"] for run in emulator.runs} == {spec.text}


# Plain ids cannot carry per-item fields, so runners that require some take only objects.
OTHER_FORM_SPECS = [s for s in SPECS if not s.item_fields]


@pytest.mark.parametrize("spec", OTHER_FORM_SPECS, ids=ids_of(OTHER_FORM_SPECS))
def test_the_other_element_form_is_accepted_too(api: httpx.Client, spec: Spec) -> None:
    body = spec.body(PASS)
    # Objects for the id-list family; plain ids for the object family, as the CLI sends.
    other = PASS if isinstance(body["scenarios"][0], dict) else {"scenario": PASS}
    answer = created(api, spec, {**body, "scenarios": [other, other]})
    assert [run["scenario"] for run in answer["runs"]] == [PASS, PASS]


@pytest.mark.parametrize("spec", SPECS, ids=ids_of(SPECS))
def test_frequency_where_the_runner_takes_it(api: httpx.Client, spec: Spec) -> None:
    answer = created(api, spec, spec.body(PASS, FAIL, frequency=3))
    expected = [PASS] * 3 + [FAIL] * 3 if spec.takes_frequency else [PASS, FAIL]
    assert [run["scenario"] for run in answer["runs"]] == expected


def test_v1_runners_ignore_frequency_even_when_invalid(api: httpx.Client) -> None:
    # DRF ignores fields a serializer does not declare; the v1 runners declare no frequency.
    spec = BY_ACTION["run_scenarios_livekit"]
    assert len(created(api, spec, spec.body(PASS, frequency=500))["runs"]) == 1


# ------------------------------------------------------------ run counts


@pytest.mark.parametrize("spec", ID_SPECS, ids=ids_of(ID_SPECS))
def test_id_list_runs_multiply_by_personalities_and_profiles(api: httpx.Client, spec: Spec) -> None:
    body = spec.body(PASS, FAIL, frequency=2, personality_ids=[4, 5], test_profile_ids=[7, 8, 9])
    answer = created(api, spec, body)
    assert len(answer["runs"]) == 2 * 2 * 2 * 3
    runs = json_runs(api, answer)
    combos = [(r["scenario"], r["personality"], r["test_profile_data"]["id"]) for r in runs]
    # Scenario-major, then personality, then profile, then the repetitions.
    expected = [
        (s, p, t) for s in (PASS, FAIL) for p in (4, 5) for t in (7, 8, 9) for _ in range(2)
    ]
    assert combos == expected
    assert runs[0]["test_profile_data"] == JANE


@pytest.mark.parametrize("spec", OBJECT_SPECS, ids=ids_of(OBJECT_SPECS))
def test_object_list_runs_take_the_first_personality_and_profile(
    api: httpx.Client, spec: Spec
) -> None:
    body = spec.body(PASS, FAIL, frequency=2, personality_ids=[4, 5], test_profile_ids=[7, 8])
    answer = created(api, spec, body)
    assert len(answer["runs"]) == (4 if spec.takes_frequency else 2)
    runs = json_runs(api, answer)
    assert {(r["personality"], r["test_profile_data"]["id"]) for r in runs} == {(4, 7)}


def json_runs(api: httpx.Client, answer: dict[str, Any]) -> list[dict[str, Any]]:
    ids = ",".join(str(run["id"]) for run in answer["runs"])
    response = api.get(f"{V1}/runs/bulk/", params={"run_ids": ids})
    assert response.status_code == 200, response.text
    runs: list[dict[str, Any]] = response.json()
    return runs


# ------------------------------------------------------------ the run's agent


@pytest.mark.parametrize(
    "spec", [BY_ACTION["run_scenarios_livekit_v2"], BY_ACTION["run_scenarios"]]
)
def test_runs_take_the_request_agent_else_their_scenarios_own(
    api: httpx.Client, spec: Spec
) -> None:
    if spec.family == "objects":
        defaulted = created(api, spec, spec.body(REFILL, FAIL))
    else:  # the id-list family names its agent by assistant_id instead of agent_id here
        body = {**spec.body(REFILL, FAIL), "assistant_id": "asst-1"}
        del body["agent_id"]
        defaulted = created(api, spec, body)
    assert [r["agent"] for r in json_runs(api, defaulted)] == [PHARMACY, 9]
    assert defaulted["agent"] == PHARMACY  # the result's agent: the first scenario's
    key = "agent" if spec.family == "objects" else "agent_id"
    chosen = created(api, spec, {**spec.body(REFILL, FAIL), key: HALF})
    assert [r["agent"] for r in json_runs(api, chosen)] == [HALF, HALF]
    assert chosen["agent"] == HALF


# ------------------------------------------------------------ rejected bodies


@pytest.mark.parametrize(
    ("spec", "element", "errors"),
    [
        (
            BY_ACTION["run_scenarios_livekit"],
            {"scenario": PASS, "livekit_room_url": "wss://room.example"},
            {"access_token": ["This field is required."]},
        ),
        (
            BY_ACTION["run_scenarios_livekit"],
            PASS,
            {
                "livekit_room_url": ["This field is required."],
                "access_token": ["This field is required."],
            },
        ),
        (
            BY_ACTION["run_scenarios_pipecat"],
            {"scenario": PASS, "pipecat_room_url": None},
            {"pipecat_room_url": ["This field may not be null."]},
        ),
        (
            BY_ACTION["run_scenarios_pipecat"],
            {"scenario": PASS, "pipecat_room_url": " "},
            {"pipecat_room_url": ["This field may not be blank."]},
        ),
        (
            BY_ACTION["run_scenarios_with_websockets"],
            {"scenario": PASS},
            {"websocket_url": ["This field is required."]},
        ),
        (
            BY_ACTION["run_scenarios_with_websockets"],
            {"scenario": PASS, "websocket_url": "https://agent.example.com/ws"},
            {"websocket_url": ["Enter a valid WebSocket URL starting with ws:// or wss://."]},
        ),
        (
            BY_ACTION["run_scenarios_with_websockets"],
            {"scenario": PASS, "websocket_url": 8080},
            {"websocket_url": ["Not a valid string."]},
        ),
    ],
)
def test_required_per_item_fields(
    api: httpx.Client, emulator: Emulator, spec: Spec, element: Any, errors: Any
) -> None:
    good = spec.body(FAIL)["scenarios"][0]
    response = post(api, spec, {"scenarios": [good, element]})
    assert response.status_code == 400
    # DRF's nested shape: one error object per element, {} for the valid ones.
    assert response.json() == {"scenarios": [{}, errors]}
    assert emulator.runs == []


# Vapi takes the agent from the scenarios instead (see the next test).
AGENT_ID_SPECS = [s for s in ID_SPECS if s.action != "run_scenarios_vapi_webrtc"]


@pytest.mark.parametrize("spec", AGENT_ID_SPECS, ids=ids_of(AGENT_ID_SPECS))
def test_id_list_runners_need_agent_id_or_assistant_id(
    api: httpx.Client, emulator: Emulator, spec: Spec
) -> None:
    body = spec.body(PASS)
    del body["agent_id"]
    for missing in ({}, {"agent_id": None}, {"agent": PHARMACY}):
        response = post(api, spec, {**body, **missing})
        assert (response.status_code, response.json()) == (
            400,
            {"agent_id": ["This field is required."]},
        ), missing
    assert emulator.runs == []
    assert created(api, spec, {**body, "assistant_id": "asst-1"})["agent"] == 1


def test_vapi_needs_its_assistant_id_but_not_agent_id(api: httpx.Client) -> None:
    spec = BY_ACTION["run_scenarios_vapi_webrtc"]
    body = spec.body(PASS)
    del body["vapi_assistant_id"]
    response = post(api, spec, body)
    assert (response.status_code, response.json()) == (
        400,
        {"vapi_assistant_id": ["This field is required."]},
    )
    response = post(api, spec, {**body, "vapi_assistant_id": ""})
    assert response.json() == {"vapi_assistant_id": ["This field may not be blank."]}
    # The reference (2.6): without agent_id, Vapi takes the first scenario's agent.
    del body["agent_id"]
    answer = created(api, spec, {**body, "vapi_assistant_id": "vapi-assistant-1"})
    assert answer["agent"] == 1


@pytest.mark.parametrize("spec", SPECS, ids=ids_of(SPECS))
def test_nonexistent_scenario_is_400_and_creates_nothing(
    api: httpx.Client, emulator: Emulator, spec: Spec
) -> None:
    # Unlisted ids exist; only exists = false scenarios do not.
    response = post(api, spec, spec.body(PASS, GONE, 998))
    assert response.status_code == 400
    assert response.json() == {"scenarios": [f'Invalid pk "{GONE}" - object does not exist.']}
    assert emulator.runs == []
    assert api.get(f"{V1}/results/").json()["count"] == 0


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (BY_ACTION["run_scenarios_livekit_v2"], "agent"),
        (BY_ACTION["run_scenarios_livekit_v2"], "agent_id"),  # the CLI's name, also accepted
        (BY_ACTION["run_scenarios_with_websockets"], "agent"),
        (BY_ACTION["run_scenarios"], "agent_id"),
        (BY_ACTION["run_scenarios_email"], "agent_id"),
    ],
)
@pytest.mark.parametrize("agent_id", [DELETED, 0])
def test_nonexistent_agent_is_400_under_the_field_sent(
    api: httpx.Client, emulator: Emulator, spec: Spec, field: str, agent_id: int
) -> None:
    body = {**spec.body(PASS), field: agent_id}
    response = post(api, spec, body)
    assert (response.status_code, response.json()) == (
        400,
        {field: [f'Invalid pk "{agent_id}" - object does not exist.']},
    )
    assert emulator.runs == []


def test_all_field_errors_come_together(api: httpx.Client) -> None:
    body = {"scenarios": [GONE], "frequency": 0, "agent_id": DELETED, "test_profile_ids": 7}
    response = post(api, BY_ACTION["run_scenarios_text"], body)
    assert response.json() == {
        "scenarios": [f'Invalid pk "{GONE}" - object does not exist.'],
        "frequency": ["Ensure this value is greater than or equal to 1."],
        "agent_id": [f'Invalid pk "{DELETED}" - object does not exist.'],
        "test_profile_ids": ['Expected a list of items but got type "int".'],
    }


# ------------------------------------------------------- LiveKit dispatch metadata


def test_job_and_room_metadata_are_the_strings_a_livekit_agent_receives(
    api: httpx.Client, emulator: Emulator
) -> None:
    start_runs(api, PASS)
    start_runs(api, REFILL, test_profile_ids=[7])
    plain, profiled = emulator.runs
    assert plain["job_metadata"] == f'{{"scenario_id": {PASS}, "run_id": {plain["id"]}}}'
    assert json.loads(profiled["job_metadata"]) == {
        "scenario_id": REFILL,
        "run_id": profiled["id"],
        "test_profile_data": JANE,
    }
    # Room metadata is the run's agent's LiveKit Config: agent 1 (default) has none.
    assert (plain["agent"], plain["room_metadata"]) == (1, "{}")
    assert (profiled["agent"], profiled["room_metadata"]) == (PHARMACY, '{"empty_timeout": 300}')
    assert (plain["livekit_agent_name"], profiled["livekit_agent_name"]) == (
        "agent-1",
        "pharmacy-agent",
    )
    assert "publish_data_message" not in plain


def test_incomplete_agent_dispatches_without_a_name(api: httpx.Client, emulator: Emulator) -> None:
    start_runs(api, PASS, agent=HALF)
    [run] = emulator.runs
    assert (run["agent"], run["livekit_agent_name"], run["room_metadata"]) == (HALF, None, "{}")


def test_publish_data_message_is_recorded_per_run(api: httpx.Client, emulator: Emulator) -> None:
    message = {"lang": "de", "nested": [1, None, "x"]}
    body = {
        "scenarios": [
            {"scenario": PASS, "publish_data_message": message},
            {"scenario": FAIL, "publish_data_message": None},
            {"scenario": REFILL},
        ],
        "frequency": 2,
    }
    response = api.post(LIVEKIT, json=body)
    assert response.status_code == 200, response.text
    runs = emulator.runs
    assert [run.get("publish_data_message", "absent") for run in runs] == [
        message,
        message,
        None,
        None,
        "absent",
        "absent",
    ]


def test_dispatch_fields_are_not_in_cekuras_run_objects(
    api: httpx.Client, emulator: Emulator
) -> None:
    element = {"scenario": PASS, "publish_data_message": {"lang": "de"}}
    assert api.post(LIVEKIT, json={"scenarios": [element]}).status_code == 200
    [debug] = emulator.runs
    assert api.get("/_emulator/runs").json() == [debug]
    bulk = api.get(f"{V1}/runs/bulk/", params={"run_ids": debug["id"]}).json()[0]
    dispatch_only = {
        "job_metadata",
        "room_metadata",
        "livekit_agent_name",
        "livekit_url",
        "concurrency_limit",
        "line_held_from",
        "line_held_until",
        "publish_data_message",
    }
    assert set(debug) - set(bulk) == dispatch_only
    assert {k: v for k, v in debug.items() if k not in dispatch_only} == bulk
    assert bulk == api.get(f"{V1}/runs/{debug['id']}/").json()


@pytest.mark.parametrize(
    ("selection", "shown"),
    [
        ({"scenarios": "all"}, 'scenarios="all"'),
        ({"scenarios": 3}, "scenarios=3"),
        ({"scenarios": "Sales.Inbound", "project_id": 1}, 'scenarios="Sales.Inbound"'),
        ({"tags": ["smoke"]}, "tags"),
        ({"folder_path": "Sales.Inbound", "project_id": 1}, "folder_path"),
    ],
)
def test_selection_forms_that_are_not_emulated_are_named(
    api: httpx.Client, emulator: Emulator, selection: dict[str, Any], shown: str
) -> None:
    """cekura-api.md 2.3 also selects by tags, folder, a count or "all": the emulator does not
    (its catalogue has neither tags nor folders) and says so instead of "field required"."""
    spec = BY_ACTION["run_scenarios"]
    body = {**spec.body(PASS), **selection}
    if "scenarios" not in selection:
        del body["scenarios"]
    response = post(api, spec, body)
    assert response.status_code == 400
    assert response.json() == {
        "scenarios": [
            f"The emulator selects scenarios by id only; {shown} is not emulated. "
            "Send scenarios as a list of ids, e.g. [30, 31]."
        ]
    }
    assert emulator.runs == []
