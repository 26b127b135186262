"""The emulator's side of the December 2026 contract (cekura-api.md 10): strict mode, the v2
paths and filters, the LiveKit v2 request fields, evaluation still pending after a call, and
the robustness items of issue #14 (16)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from typing import Any

import httpx
import pytest

from pytest_cekura.emulator import Emulator
from pytest_cekura.emulator.catalogue import CatalogueError, parse_catalogue

from .helpers import (
    API_KEY,
    FAIL,
    HANG,
    LIVEKIT,
    PASS,
    PHARMACY,
    REFILL,
    FakeClock,
    get_json,
    start_runs,
)

V1 = "/test_framework/v1"
V2 = "/test_framework/v2"
LIVEKIT_V2 = f"{V2}/scenarios/run_scenarios_livekit_v2/"


def run_ids(answer: dict[str, Any]) -> list[int]:
    return [run["id"] for run in answer["runs"]]


# ------------------------------------------------------------------ strict mode


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scenarios": [PASS, FAIL]}, "scenarios"),
        ({"scenarios": [{"scenario": PASS}], "agent_id": PHARMACY}, "agent_id"),
    ],
    ids=["bare-ids", "agent_id"],
)
def test_strict_rejects_what_the_live_service_rejects_on_livekit_v2(
    api: httpx.Client, emulator: Emulator, body: dict[str, Any], field: str
) -> None:
    assert emulator.strict is False
    assert api.post(LIVEKIT, json=body).status_code == 200  # lenient: the official CLI's forms
    emulator.strict = True
    response = api.post(LIVEKIT, json=body)
    assert response.status_code == 400, response.text
    assert list(response.json()) == [field]
    assert len(emulator.runs) == len(body["scenarios"])  # nothing created by the 400


def test_strict_bare_id_error_is_drf_shaped(api: httpx.Client, emulator: Emulator) -> None:
    emulator.strict = True
    response = api.post(LIVEKIT, json={"scenarios": [{"scenario": PASS}, FAIL]})
    message = "Invalid data. Expected a dictionary, but got int."
    assert response.json() == {"scenarios": [{}, {"non_field_errors": [message]}]}
    agent = api.post(LIVEKIT, json={"scenarios": [{"scenario": PASS}], "agent_id": 1}).json()
    assert 'not "agent_id"' in agent["agent_id"][0]


def test_strict_rejects_objects_on_id_list_runners(api: httpx.Client, emulator: Emulator) -> None:
    emulator.strict = True
    body = {"agent_id": PHARMACY, "scenarios": [{"scenario": PASS}]}
    response = api.post(f"{V1}/scenarios/run_scenarios_text/", json=body)
    assert response.status_code == 400
    assert "scenarios" in response.json()


@pytest.mark.parametrize("name", ["run_ids", "ids"])
def test_json_array_run_ids_lenient_accepts_strict_rejects(
    api: httpx.Client, emulator: Emulator, name: str
) -> None:
    ids = run_ids(start_runs(api, PASS, FAIL))
    array = json.dumps(ids)
    lenient = api.get(f"{V2}/runs/bulk/", params={name: array})
    assert [run["id"] for run in lenient.json()] == ids
    emulator.strict = True
    strict = api.get(f"{V2}/runs/bulk/", params={name: array})
    assert strict.status_code == 400
    assert "comma-separated" in strict.json()[name][0]
    comma = api.get(f"{V2}/runs/bulk/", params={name: ",".join(map(str, ids))})
    assert [run["id"] for run in comma.json()] == ids


def test_standalone_strict_flag(tmp_path: Any) -> None:
    """``python -m pytest_cekura.emulator --strict`` turns strict mode on; without it the
    standalone emulator stays lenient for the official CLI."""
    for flag, expected in (([], 200), (["--strict"], 400)):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        process = subprocess.Popen(
            [sys.executable, "-m", "pytest_cekura.emulator", "--port", str(port), *flag],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None
            assert "listening" in process.stdout.readline()  # readiness line, not a sleep
            response = httpx.post(
                f"http://127.0.0.1:{port}{LIVEKIT}",
                json={"scenarios": [PASS]},
                headers={"X-CEKURA-API-KEY": API_KEY},
            )
            assert response.status_code == expected
        finally:
            process.terminate()
            process.communicate(timeout=10)


# ---------------------------------------------------------------- v2 paths


def test_v2_result_detail_bulk_scope_and_v1_still_work(api: httpx.Client, clock: FakeClock) -> None:
    first = start_runs(api, PASS, FAIL)
    other = start_runs(api, PASS)
    both = ",".join(map(str, run_ids(first) + run_ids(other)))
    clock.advance(200)
    v2 = get_json(api, f"{V2}/results/{first['id']}/")
    assert v2 == get_json(api, f"{V1}/results/{first['id']}/")
    assert v2["scenarios"] == [
        {"id": PASS, "name": "Refund request"},
        {"id": FAIL, "name": "Billing dispute"},
    ]
    scoped = get_json(api, f"{V2}/runs/bulk/", run_ids=both, result_id=first["id"])
    assert [run["id"] for run in scoped] == run_ids(first)
    assert [run["result_id"] for run in scoped] == [first["id"]] * 2
    assert get_json(api, f"{V2}/runs/bulk/", run_ids=both, agent_id=9) == [scoped[1]]
    assert get_json(api, f"{V2}/runs/bulk/", run_ids=both, project_id=2) == []
    assert len(get_json(api, f"{V1}/runs/bulk/", ids=both)) == 3  # v1 and ids still work
    bad = api.get(f"{V2}/runs/bulk/", params={"run_ids": both, "result_id": "x"})
    assert bad.status_code == 400


def test_run_and_result_fields_the_spec_lists(api: httpx.Client, clock: FakeClock) -> None:
    answer = start_runs(api, PASS, FAIL, name="fields")
    clock.advance(200)
    passed, failed = get_json(api, f"{V2}/runs/bulk/", run_ids=",".join(map(str, run_ids(answer))))
    assert (passed["result_id"], passed["result_name"]) == (answer["id"], "fields")
    assert passed["agent_name"] == "Agent 1"
    assert (passed["evaluation_status"], failed["evaluation_status"]) == ("success", "failure")
    result = get_json(api, f"{V2}/results/{answer['id']}/")
    assert result["agent_name"] == "Agent 1"
    assert result["run_settings"]["frequency"] == 1


def test_runs_list_filters(api: httpx.Client, clock: FakeClock) -> None:
    first = start_runs(api, PASS, FAIL)
    start_runs(api, REFILL)
    clock.advance(200)

    def ids(**params: Any) -> list[int]:
        return sorted(r["id"] for r in get_json(api, f"{V2}/runs/", **params)["results"])

    assert ids(result_id=first["id"]) == sorted(run_ids(first))
    assert ids(id__in=f"{run_ids(first)[0]},999") == [run_ids(first)[0]]
    assert ids(agent_id=9) == [run_ids(first)[1]]
    assert ids(status__in="completed", result_id=first["id"], page_size=1) == [run_ids(first)[1]]
    assert len(ids(project_id=1)) == 3
    assert ids(project_id=5) == []


def test_results_list_search_and_project(api: httpx.Client) -> None:
    start_runs(api, PASS, name="Nightly smoke")
    start_runs(api, PASS, name="pytest-cekura abc #1")
    names = [r["name"] for r in get_json(api, f"{V2}/results/", search="SMOKE")["results"]]
    assert names == ["Nightly smoke"]
    assert get_json(api, f"{V2}/results/", project_id=1)["count"] == 2
    assert get_json(api, f"{V2}/results/", project_id=3)["count"] == 0


def test_scenarios_list_by_agent(api: httpx.Client) -> None:
    listed = get_json(api, f"{V2}/scenarios/", agent_id=PHARMACY)
    assert [s["id"] for s in listed["results"]] == [REFILL]
    assert get_json(api, f"{V1}/scenarios-external/", agent_id=9)["results"][0]["id"] == FAIL


def test_result_end_calls_ends_every_unfinished_run_on_v2(
    api: httpx.Client, clock: FakeClock
) -> None:
    answer = start_runs(api, PASS, HANG)
    clock.advance(20)
    response = api.post(f"{V2}/results/{answer['id']}/end_calls/")
    assert (response.status_code, response.content) == (200, b"")
    runs = get_json(api, f"{V2}/runs/bulk/", run_ids=",".join(map(str, run_ids(answer))))
    assert [run["status"] for run in runs] == ["cancelled", "cancelled"]
    single = api.post(f"{V2}/runs/{run_ids(answer)[0]}/end_call/")
    assert (single.status_code, single.content) == (200, b"")


def test_rerun_answers_200_and_the_result(api: httpx.Client) -> None:
    first = start_runs(api, PASS)
    response = api.post(f"{V2}/results/{first['id']}/rerun/")
    assert response.status_code == 200
    assert len(response.json()["runs"]) == 1


def test_shareable_link(api: httpx.Client) -> None:
    answer = start_runs(api, PASS)
    path = f"{V2}/results/{answer['id']}/create_shareable_link_token/"
    shared = api.post(path, json={"expire_at": "2026-12-08T00:00:00Z"}).json()
    assert set(shared) == {"token", "shareable_link"}
    assert shared["token"] in shared["shareable_link"]
    assert api.post(path, json={"expire_at": "next week"}).status_code == 400
    assert api.post(f"{V2}/results/1/create_shareable_link_token/", json={}).status_code == 404


# --------------------------------------------------------- LiveKit v2 request


def test_livekit_data_overrides_dispatch_name_and_room_metadata(
    api: httpx.Client, emulator: Emulator
) -> None:
    override = {"agent_name": "pharmacy-agent-pr-12", "config": {"max_participants": 2}}
    body = {"scenarios": [{"scenario": REFILL}], "livekit_data": override}
    assert api.post(LIVEKIT_V2, json=body).status_code == 200
    start_runs(api, REFILL)  # without the override: the agent's own settings
    with_override, plain = emulator.runs
    assert with_override["livekit_agent_name"] == "pharmacy-agent-pr-12"
    # config replaces the saved LiveKit Config, no merge.
    assert json.loads(with_override["room_metadata"]) == {"max_participants": 2}
    assert plain["livekit_agent_name"] == "pharmacy-agent"
    assert json.loads(plain["room_metadata"]) == {"empty_timeout": 300}


def test_livekit_data_with_bad_types_is_a_400(api: httpx.Client) -> None:
    bad = {"scenarios": [{"scenario": PASS}], "livekit_data": {"agent_name": 5}}
    response = api.post(LIVEKIT_V2, json=bad)
    assert (response.status_code, response.json()) == (
        400,
        {"livekit_data": {"agent_name": ["Not a valid string."]}},
    )
    assert api.post(LIVEKIT_V2, json={**bad, "livekit_data": []}).status_code == 400


def test_concurrency_limit_keeps_that_many_calls_running(
    api: httpx.Client, clock: FakeClock
) -> None:
    body = {"scenarios": [{"scenario": PASS}], "frequency": 5, "concurrency_limit": 2}
    answer = api.post(LIVEKIT_V2, json=body).json()
    assert [run["status"] for run in answer["runs"]] == ["pending"] * 5
    ids = ",".join(map(str, run_ids(answer)))
    seen_running = []
    for _ in range(60):  # 5 calls of 100 s, two lines: about 300 s
        clock.advance(10)
        statuses = [run["status"] for run in get_json(api, f"{V2}/runs/bulk/", run_ids=ids)]
        seen_running.append(statuses.count("running") + statuses.count("evaluating"))
    assert max(seen_running) == 2
    assert statuses == ["completed"] * 5
    result = get_json(api, f"{V2}/results/{answer['id']}/")
    assert result["run_settings"]["concurrency_limit"] == 2


def test_mock_tool_names_are_recorded_on_the_runs(api: httpx.Client) -> None:
    body = {"scenarios": [{"scenario": PASS}], "mock_tool_names": ["lookup_order"]}
    answer = api.post(LIVEKIT_V2, json=body).json()
    [run] = get_json(api, f"{V2}/runs/bulk/", run_ids=str(answer["runs"][0]["id"]))
    assert run["mocked_tool_names"] == ["lookup_order"]
    bad = api.post(LIVEKIT_V2, json={**body, "mock_tool_names": "lookup_order"})
    assert bad.status_code == 400


def test_single_personality_and_test_profile_ids(api: httpx.Client, emulator: Emulator) -> None:
    body = {"scenarios": [{"scenario": PASS}], "personality_id": 3, "test_profile_id": 7}
    assert api.post(LIVEKIT_V2, json=body).status_code == 200
    [run] = emulator.runs
    assert run["personality"] == 3
    assert run["test_profile_data"]["id"] == 7


# ------------------------------------------------------- evaluation pending


def test_completed_with_success_null_while_evaluation_is_pending(clock: FakeClock) -> None:
    catalogue = parse_catalogue(
        {"scenario": [{"id": 50, "duration_s": 10, "evaluation_delay_s": 30, "outcome": "fail"}]}
    )
    with (
        Emulator(catalogue, clock=clock, time_scale=1.0) as emulator,
        httpx.Client(base_url=emulator.url, headers={"X-CEKURA-API-KEY": API_KEY}) as client,
    ):
        answer = start_runs(client, 50)
        run_id = answer["runs"][0]["id"]
        clock.advance(15)  # the call is over, the evaluation is not
        pending = get_json(client, f"{V2}/runs/{run_id}/")
        assert (pending["status"], pending["success"]) == ("completed", None)
        assert "evaluation_status" not in pending
        assert get_json(client, f"{V2}/results/{answer['id']}/")["status"] == "evaluating"
        client.post(f"{V2}/runs/{run_id}/end_call/")  # nothing to end: the call is over
        clock.advance(30)
        done = get_json(client, f"{V2}/runs/{run_id}/")
        assert (done["status"], done["success"], done["evaluation_status"]) == (
            "completed",
            False,
            "failure",
        )


def test_scaling_up_status_through_a_fault(api: httpx.Client, emulator: Emulator) -> None:
    answer = start_runs(api, PASS)
    emulator.inject("bulk", "unknown_status", status_value="scaling_up")
    [run] = get_json(api, f"{V2}/runs/bulk/", run_ids=str(answer["runs"][0]["id"]))
    assert run["status"] == "scaling_up"


# ------------------------------------------------------------ issue 14 (16)


def test_deeply_nested_json_is_a_400(api: httpx.Client) -> None:
    for path in (LIVEKIT_V2, f"{V2}/results/1/rerun/", "/_emulator/faults"):
        response = api.post(
            path, content=b"[" * 100_000, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, (path, response.text)
        assert "nested too deeply" in response.json()["detail"]


def test_two_hundred_concurrent_clients_are_all_served(emulator: Emulator) -> None:
    """The listen backlog holds 200 clients connecting at once (the default of 5 reset them)."""
    barrier = threading.Barrier(200)
    statuses: list[int] = []
    lock = threading.Lock()

    def client() -> None:
        barrier.wait()
        with socket.create_connection(("127.0.0.1", emulator.port), timeout=30) as sock:
            sock.sendall(
                f"GET {V1}/aiagents/1/ HTTP/1.1\r\nHost: x\r\nX-CEKURA-API-KEY: {API_KEY}\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            head = sock.recv(64)
        with lock:
            statuses.append(int(head.split()[1]))

    threads = [threading.Thread(target=client) for _ in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [200] * 200


def test_huge_delay_is_rejected_when_injected(emulator: Emulator, api: httpx.Client) -> None:
    with pytest.raises(CatalogueError, match="from 0 to 3600"):
        emulator.inject("bulk", "slow", delay_s=1e308)
    response = api.post(
        "/_emulator/faults", json={"match": "bulk", "action": "slow", "delay_s": 1e308}
    )
    assert response.status_code == 400
    assert "delay_s" in response.json()["detail"]
    assert get_json(api, "/_emulator/faults") == []
