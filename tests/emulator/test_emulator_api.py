"""The emulator's HTTP surface, exercised over real loopback HTTP with httpx."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from pytest_cekura.emulator import Emulator, RequestRecord

from .helpers import API_KEY, ERROR, FAIL, HANG, LIVEKIT, PASS, FakeClock, get_json, start_runs

V1 = "/test_framework/v1"
RESULT_KEYS = {
    "id",
    "name",
    "agent",
    "agent_name",
    "agent_inbound",
    "run_type",
    "status",
    "success_rate",
    "run_as_text",
    "is_cronjob",
    "runs",
    "met_expected_outcome_count",
    "total_expected_outcome_count",
    "total_runs_count",
    "completed_runs_count",
    "success_runs_count",
    "failed_runs_count",
    "scenarios",
    "overall_evaluation",
    "failed_reasons",
    "created_at",
    "updated_at",
}
STUB_KEYS = {
    "id",
    "status",
    "scenario",
    "number",
    "inbound_number",
    "outbound_dial_window_opens_at",
    "outbound_dial_window_closes_at",
    "outbound_dial_window_seconds",
    "scenario_name",
    "test_profile_data",
}


def run_ids(answer: dict[str, Any]) -> list[int]:
    return [run["id"] for run in answer["runs"]]


# ------------------------------------------------------------------------ auth


def test_missing_api_key_is_401(emulator: Emulator) -> None:
    response = httpx.get(f"{emulator.url}{V1}/results/")
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}


def test_wrong_api_key_is_401(emulator: Emulator) -> None:
    response = httpx.post(
        f"{emulator.url}{LIVEKIT}",
        json={"scenarios": [{"scenario": PASS}]},
        headers={"X-CEKURA-API-KEY": "not-the-key"},
    )
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid API key."}
    assert emulator.runs == []


@pytest.mark.parametrize(
    ("authorization", "status", "detail"),
    [
        (f"Bearer {API_KEY}", 200, None),
        (f"bearer  {API_KEY}", 200, None),
        ("Bearer not-the-key", 401, "Invalid token."),
        ("Bearer", 401, "Invalid token header. No credentials provided."),
        (f"Basic {API_KEY}", 401, "Authentication credentials were not provided."),
    ],
)
def test_bearer_token_instead_of_the_key_header(
    emulator: Emulator, authorization: str, status: int, detail: str | None
) -> None:
    """cekura-api.md 1: the SDK sends ``Authorization: Bearer`` *instead of* the key header."""
    response = httpx.get(f"{emulator.url}{V1}/results/", headers={"Authorization": authorization})
    assert response.status_code == status
    if detail is not None:
        assert response.json() == {"detail": detail}


def test_key_header_wins_over_a_bearer_token(emulator: Emulator) -> None:
    headers = {"X-CEKURA-API-KEY": "not-the-key", "Authorization": f"Bearer {API_KEY}"}
    response = httpx.get(f"{emulator.url}{V1}/results/", headers=headers)
    assert (response.status_code, response.json()) == (401, {"detail": "Invalid API key."})


def test_custom_api_key_is_required_and_never_in_repr(clock: FakeClock) -> None:
    with Emulator(api_key="s3cret-value", clock=clock) as emulator:
        good = httpx.get(
            f"{emulator.url}{V1}/results/", headers={"X-CEKURA-API-KEY": "s3cret-value"}
        )
        default = httpx.get(f"{emulator.url}{V1}/results/", headers={"X-CEKURA-API-KEY": API_KEY})
        assert (good.status_code, default.status_code) == (200, 401)
        assert "s3cret" not in repr(emulator)
        assert "s3cret" not in str(vars(emulator))


# ------------------------------------------------------------- starting runs


def test_create_answers_200_with_short_result_and_run_stubs(api: httpx.Client) -> None:
    response = api.post(LIVEKIT, json={"scenarios": [{"scenario": PASS}, {"scenario": 77}]})
    assert response.status_code == 200  # the spec's answer (v1 emulators used 201)
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert set(answer) == {
        "id",
        "name",
        "agent",
        "agent_inbound",
        "status",
        "success_rate",
        "run_as_text",
        "is_cronjob",
        "runs",
        "created_at",
    }
    assert answer["id"] == 5000
    assert answer["status"] == "pending"
    assert answer["success_rate"] == 0.0
    assert answer["is_cronjob"] is False
    assert answer["created_at"].endswith("Z")
    assert [set(run) for run in answer["runs"]] == [STUB_KEYS, STUB_KEYS]
    assert answer["runs"][0] == {
        "id": 90000,
        "status": "pending",
        "scenario": PASS,
        "number": None,
        "inbound_number": None,
        "outbound_dial_window_opens_at": None,
        "outbound_dial_window_closes_at": None,
        "outbound_dial_window_seconds": None,
        "scenario_name": "Refund request",
        "test_profile_data": None,
    }
    # Scenarios missing from the catalogue exist and get a default name.
    assert answer["runs"][1]["scenario_name"] == "Scenario 77"


def test_plain_id_list_and_agent_id_are_accepted(api: httpx.Client) -> None:
    response = api.post(LIVEKIT, json={"scenarios": [PASS, FAIL], "agent_id": 42, "name": "cli"})
    assert response.status_code == 200
    answer = response.json()
    assert [run["scenario"] for run in answer["runs"]] == [PASS, FAIL]
    assert (answer["agent"], answer["name"]) == (42, "cli")


def test_agent_defaults_to_the_first_scenarios_agent(api: httpx.Client) -> None:
    assert start_runs(api, FAIL, PASS)["agent"] == 9
    assert start_runs(api, FAIL, agent=3)["agent"] == 3


@pytest.mark.parametrize("prefix", ["scenarios", "scenarios-external"])
@pytest.mark.parametrize("action", ["run_scenarios_livekit_v2", "run_scenarios_pipecat_v2"])
@pytest.mark.parametrize("slash", ["/", ""])
def test_both_prefixes_both_runners_with_and_without_slash(
    api: httpx.Client, prefix: str, action: str, slash: str
) -> None:
    response = api.post(f"{V1}/{prefix}/{action}{slash}", json={"scenarios": [{"scenario": 1}]})
    assert response.status_code == 200, response.text


def test_frequency_multiplies_runs_in_request_order(api: httpx.Client) -> None:
    answer = start_runs(api, PASS, FAIL, frequency=3)
    assert [run["scenario"] for run in answer["runs"]] == [PASS] * 3 + [FAIL] * 3
    assert run_ids(answer) == list(range(90000, 90006))


def test_first_test_profile_applies_to_every_run_without_multiplying(api: httpx.Client) -> None:
    answer = start_runs(api, PASS, FAIL, test_profile_ids=[7, 8], personality_ids=[4])
    jane = {"id": 7, "name": "Jane", "information": {"customer_name": "Jane Doe"}}
    assert [run["test_profile_data"] for run in answer["runs"]] == [jane, jane]
    run = get_json(api, f"{V1}/runs/{answer['runs'][0]['id']}/")
    assert (run["personality"], run["personality_name"]) == (4, "Personality 4")


def test_unknown_test_profile_gets_a_default(api: httpx.Client) -> None:
    answer = start_runs(api, PASS, test_profile_ids=[123])
    assert answer["runs"][0]["test_profile_data"] == {
        "id": 123,
        "name": "Test profile 123",
        "information": {},
    }


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, {"scenarios": ["This field is required."]}),
        ({"scenarios": []}, {"scenarios": ["This list may not be empty."]}),
        ({"scenarios": 31}, {"scenarios": ['Expected a list of items but got type "int".']}),
        (
            {"scenarios": [{"scenario": 1}], "frequency": 101},
            {"frequency": ["Ensure this value is less than or equal to 100."]},
        ),
        (
            {"scenarios": [{"scenario": 1}], "frequency": 0},
            {"frequency": ["Ensure this value is greater than or equal to 1."]},
        ),
        (
            {"scenarios": [{"scenario": 1}], "frequency": "often"},
            {"frequency": ["A valid integer is required."]},
        ),
        (
            {"scenarios": [{"scenario": 1}], "name": "x" * 256},
            {"name": ["Ensure this field has no more than 255 characters."]},
        ),
        (
            {"scenarios": [{"scenario": 1}], "test_profile_ids": 7},
            {"test_profile_ids": ['Expected a list of items but got type "int".']},
        ),
        (
            ["not", "an", "object"],
            {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]},
        ),
    ],
)
def test_invalid_bodies_get_drf_style_400(
    api: httpx.Client, emulator: Emulator, body: Any, expected: dict[str, Any]
) -> None:
    response = api.post(LIVEKIT, json=body)
    assert response.status_code == 400
    assert response.json() == expected
    assert emulator.runs == []


@pytest.mark.parametrize(
    ("element", "shown"),
    [
        ({"scenario": 0}, '{"scenario": 0}'),
        (-5, "-5"),
        ({"scenario": "31"}, '{"scenario": "31"}'),
        ({"id": 31}, '{"id": 31}'),
        (True, "true"),
    ],
)
def test_bad_scenario_elements_are_named(api: httpx.Client, element: Any, shown: str) -> None:
    response = api.post(LIVEKIT, json={"scenarios": [{"scenario": 1}, element]})
    assert response.status_code == 400
    [message] = response.json()["scenarios"]
    assert message.startswith(f"Invalid scenario: scenarios[1] is {shown};")


def test_non_json_body_is_a_parse_error(api: httpx.Client) -> None:
    response = api.post(LIVEKIT, content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error - ")


def test_chunked_body_is_read(api: httpx.Client) -> None:
    chunks = iter([b'{"scenarios": [{"scen', b'ario": 31}], "frequency": 2}'])
    response = api.post(LIVEKIT, content=chunks, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert len(response.json()["runs"]) == 2
    assert api.get(f"{V1}/results/").status_code == 200  # the stream stayed in sync


@pytest.mark.parametrize(
    "path",
    [
        f"{V1}/scenarios-external/run_scenarios_livekit_v3/",
        f"{V1}/nowhere/",
        "/favicon.ico",
    ],
)
def test_unsupported_paths_are_404(api: httpx.Client, path: str) -> None:
    response = api.post(path, json={"scenarios": [1]})
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", LIVEKIT), ("POST", f"{V1}/results/"), ("DELETE", f"{V1}/runs/bulk/")],
)
def test_wrong_method_is_405(api: httpx.Client, method: str, path: str) -> None:
    response = api.request(method, path)
    assert response.status_code == 405
    assert response.json() == {"detail": f'Method "{method}" not allowed.'}


# ------------------------------------------------------------------- results


def test_result_detail_has_runs_keyed_by_string_id(api: httpx.Client, clock: FakeClock) -> None:
    answer = start_runs(api, PASS, FAIL, ERROR)
    clock.advance(200)
    result = get_json(api, f"{V1}/results/{answer['id']}/")
    # ResultDetailV2 adds the request's settings; agent_inbound is the list's Result only.
    assert set(result) == RESULT_KEYS - {"agent_inbound"} | {"run_settings"}
    assert list(result["runs"]) == [str(i) for i in run_ids(answer)]
    assert all(run["id"] == int(key) for key, run in result["runs"].items())
    assert result["status"] == "completed"
    # The spec's ResultDetailV2 example lists the scenarios (the list view keys them by id).
    assert {"id": FAIL, "name": "Billing dispute"} in result["scenarios"]
    counts = {key: value for key, value in result.items() if key.endswith("_count")}
    assert counts == {
        "met_expected_outcome_count": 1,
        "total_expected_outcome_count": 2,
        "total_runs_count": 3,
        "completed_runs_count": 3,
        "success_runs_count": 1,
        "failed_runs_count": 2,
    }
    assert result["success_rate"] == 33.33
    assert len(result["failed_reasons"]) == 2


@pytest.mark.parametrize(
    "template", ["{v1}/results/{id}/", "{v1}/results/{id}", "{v1}/results-external/{id}/"]
)
def test_result_detail_path_variants(api: httpx.Client, template: str) -> None:
    result_id = start_runs(api, PASS)["id"]
    assert get_json(api, template.format(v1=V1, id=result_id))["id"] == result_id


def test_unknown_result_is_404(api: httpx.Client) -> None:
    response = api.get(f"{V1}/results/4999/")
    assert (response.status_code, response.json()) == (404, {"detail": "Not found."})


def test_success_rate_as_fraction(catalogue: Any, clock: FakeClock) -> None:
    with (
        Emulator(catalogue, clock=clock, time_scale=1.0, success_rate_format="fraction") as emu,
        httpx.Client(base_url=emu.url, headers={"X-CEKURA-API-KEY": API_KEY}) as client,
    ):
        result_id = start_runs(client, PASS, FAIL, FAIL)["id"]
        clock.advance(200)
        assert get_json(client, f"{V1}/results/{result_id}/")["success_rate"] == 0.33


def test_results_list_paginates_newest_first(api: httpx.Client) -> None:
    ids = [start_runs(api, PASS, name=f"batch-{n}")["id"] for n in range(3)]
    first = get_json(api, f"{V1}/results/", page_size=2)
    assert first["count"] == 3
    assert [r["id"] for r in first["results"]] == [ids[2], ids[1]]
    assert first["previous"] is None
    assert first["next"].endswith(f"{V1}/results/?page_size=2&page=2")
    second = api.get(first["next"]).json()
    assert [r["id"] for r in second["results"]] == [ids[0]]
    assert second["next"] is None
    assert second["previous"].endswith(f"{V1}/results/?page_size=2")
    # The spec's Result has no evaluation summary (the detail, ResultDetailV2, has).
    assert set(second["results"][0]) == RESULT_KEYS - {"failed_reasons", "overall_evaluation"}
    # The spec's Result types runs as an object: the list view keys the stubs by run id.
    assert [set(run) for run in second["results"][0]["runs"].values()] == [STUB_KEYS]


def test_results_list_rejects_pages_past_the_end(api: httpx.Client) -> None:
    start_runs(api, PASS)
    response = api.get(f"{V1}/results/", params={"page": 2})
    assert (response.status_code, response.json()) == (404, {"detail": "Invalid page."})


def test_results_list_filters(api: httpx.Client) -> None:
    mine = start_runs(api, PASS, name="ci-1234", agent=42)["id"]
    start_runs(api, FAIL, name="ci-9999", agent=42)
    start_runs(api, ERROR, name="ci-1234", agent=5)

    def found(**params: Any) -> list[int]:
        return [r["id"] for r in get_json(api, f"{V1}/results", **params)["results"]]

    assert found(agent_id=42, name="ci-1234") == [mine]
    assert len(found(name="ci-1234")) == 2
    assert found(agent_id=42, scenarios=f"{PASS}, 999") == [mine]
    assert len(found(scenarios=f"{PASS},{ERROR}")) == 2
    assert found(name="ci-12") == []


def test_results_list_page_size_is_capped_at_100(api: httpx.Client) -> None:
    start_runs(api, PASS)
    assert get_json(api, f"{V1}/results/", page_size=5000)["count"] == 1


# ---------------------------------------------------------------------- runs


@pytest.mark.parametrize(
    ("path", "param"),
    [
        (f"{V1}/runs/bulk/", "run_ids"),
        (f"{V1}/runs/bulk", "ids"),
        (f"{V1}/runs-external/bulk/", "ids"),
        (f"{V1}/runs-external/bulk", "run_ids"),
    ],
)
def test_bulk_forms_return_full_runs_in_request_order(
    api: httpx.Client, path: str, param: str
) -> None:
    ids = run_ids(start_runs(api, PASS, FAIL, frequency=2))
    wanted = [ids[3], ids[0], ids[2]]
    runs = get_json(api, path, **{param: ",".join(map(str, wanted))})
    assert isinstance(runs, list)
    assert [run["id"] for run in runs] == wanted
    assert {"transcript", "evaluation", "expected_outcome"} <= set(runs[0])


def test_bulk_tolerates_spaces_unknown_ids_duplicates_and_both_params(api: httpx.Client) -> None:
    a, b, c = run_ids(start_runs(api, PASS, FAIL, ERROR))
    query = f"run_ids={b},%20{a}, 12345&ids={a},{c}, {b}"
    runs = get_json(api, f"{V1}/runs/bulk/?{query}")
    assert [run["id"] for run in runs] == [b, a, c]


def test_bulk_of_only_unknown_ids_is_an_empty_list(api: httpx.Client) -> None:
    assert get_json(api, f"{V1}/runs/bulk/", run_ids="1,2") == []


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"run_ids": ["This field is required."]}),
        ("?run_ids=", {"run_ids": ["This field is required."]}),
        (
            "?ids=1,x",
            {
                "ids": [
                    '"x" is not a valid run id; send comma-separated integers, '
                    "e.g. ids=90001,90002."
                ]
            },
        ),
    ],
)
def test_bulk_bad_queries_are_400(api: httpx.Client, query: str, expected: Any) -> None:
    response = api.get(f"{V1}/runs/bulk/{query}")
    assert (response.status_code, response.json()) == (400, expected)


@pytest.mark.parametrize("template", ["{v1}/runs-external/{id}/", "{v1}/runs/{id}"])
def test_single_run(api: httpx.Client, template: str) -> None:
    run_id = run_ids(start_runs(api, PASS))[0]
    run = get_json(api, template.format(v1=V1, id=run_id))
    assert (run["id"], run["scenario"], run["status"]) == (run_id, PASS, "pending")


def test_unknown_run_is_404(api: httpx.Client) -> None:
    assert api.get(f"{V1}/runs-external/1/").status_code == 404


# ------------------------------------------------------------- cancellation


def test_end_call_cancels_a_running_run(api: httpx.Client, clock: FakeClock) -> None:
    run_id = run_ids(start_runs(api, PASS))[0]
    clock.advance(50)
    response = api.post(f"{V1}/runs-external/{run_id}/end_call/")
    assert (response.status_code, response.content) == (200, b"")  # the spec: no body
    clock.advance(1000)
    run = get_json(api, f"{V1}/runs/{run_id}/")
    assert (run["status"], run["success"]) == ("cancelled", False)
    assert run["error_message"] == "Call ended by user"
    assert run["duration"] == "00:40"  # connected at 10 s, ended at 50 s
    assert all(line["timestamp"] <= 40 for line in run["transcript_object"])


def test_end_call_leaves_terminal_runs_alone(api: httpx.Client, clock: FakeClock) -> None:
    run_id = run_ids(start_runs(api, FAIL))[0]
    clock.advance(500)
    before = get_json(api, f"{V1}/runs/{run_id}/")
    response = api.post(f"{V1}/runs-external/{run_id}/end_call")
    assert (response.status_code, response.content) == (200, b"")  # the spec: no body
    assert get_json(api, f"{V1}/runs/{run_id}/") == before


def test_end_call_on_unknown_run_is_404(api: httpx.Client) -> None:
    assert api.post(f"{V1}/runs-external/123/end_call/").status_code == 404


def test_end_calls_cancels_every_unfinished_run(api: httpx.Client, clock: FakeClock) -> None:
    answer = start_runs(api, ERROR, HANG, PASS)
    clock.advance(45)  # the error run is terminal, the others are running
    response = api.post(f"{V1}/results/{answer['id']}/end_calls/")
    assert (response.status_code, response.content) == (200, b"")  # the spec: no body
    result = get_json(api, f"{V1}/results/{answer['id']}/")
    statuses = [run["status"] for run in result["runs"].values()]
    assert statuses == ["failed", "cancelled", "cancelled"]
    assert result["status"] == "completed"
    assert api.post(f"{V1}/results/1/end_calls/").status_code == 404


# ------------------------------------------------ request log and control API


def test_request_log_records_cekura_paths_only(api: httpx.Client, emulator: Emulator) -> None:
    start_runs(api, PASS)
    api.get(f"{V1}/runs/bulk/", params={"run_ids": "1", "ids": "2"})
    api.get(f"{V1}/runs/bulk/?ids=3&ids=4")
    api.get(f"{V1}/nowhere")
    httpx.get(f"{emulator.url}{V1}/results/")
    api.get("/_emulator/requests")
    api.get("/_emulator/runs")
    assert emulator.requests == [
        RequestRecord("POST", LIVEKIT, {}, 200, body={"scenarios": [{"scenario": PASS}]}),
        RequestRecord("GET", f"{V1}/runs/bulk/", {"run_ids": "1", "ids": "2"}, 200),
        RequestRecord("GET", f"{V1}/runs/bulk/", {"ids": "4"}, 200),
        RequestRecord("GET", f"{V1}/nowhere", {}, 404),
        RequestRecord("GET", f"{V1}/results/", {}, 401),
    ]
    assert emulator.count("get") == 4
    assert emulator.count("GET", "/runs/bulk") == 2
    served = get_json(api, "/_emulator/requests")
    assert served[0] == {
        "method": "POST",
        "path": LIVEKIT,
        "query": {},
        "status": 200,
        "fault": None,
        "body": {"scenarios": [{"scenario": PASS}]},
    }
    assert len(served) == 5


def test_reset_clears_state_but_ids_keep_increasing(api: httpx.Client, emulator: Emulator) -> None:
    first = start_runs(api, PASS)
    emulator.reset()
    assert (emulator.runs, emulator.requests) == ([], [])
    assert api.get(f"{V1}/results/{first['id']}/").status_code == 404
    second = start_runs(api, PASS)
    assert second["id"] == first["id"] + 1
    assert run_ids(second) == [run_ids(first)[0] + 1]
    assert api.post("/_emulator/reset").json() == {"detail": "Emulator state cleared."}
    assert emulator.runs == []


def test_dashboard_page_lists_runs_with_anchors(api: httpx.Client, clock: FakeClock) -> None:
    answer = start_runs(api, PASS, FAIL)
    clock.advance(500)
    passing, failing = run_ids(answer)
    response = api.get(f"/_emulator/dashboard/results/{answer['id']}", params={"run": failing})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert f"id='run-{passing}'" in page
    assert f"id='run-{failing}'" in page
    assert "Agent did not confirm the resolution of &quot;Billing dispute&quot;" in page
    assert "Main Agent: Thank you for calling" in page
    assert api.get("/_emulator/dashboard/results/1").status_code == 404


def test_control_paths_need_no_key(emulator: Emulator) -> None:
    assert httpx.get(f"{emulator.url}/_emulator/requests").status_code == 200


# ------------------------------------------------------- server behaviour


def test_url_is_known_only_after_start_and_stop_is_idempotent() -> None:
    emulator = Emulator()
    with pytest.raises(RuntimeError, match=r"call start\(\)"):
        _ = emulator.url
    emulator.start()
    assert emulator.url.startswith("http://127.0.0.1:")
    emulator.stop()
    emulator.stop()


def test_stop_closes_kept_alive_connections(catalogue: Any, clock: FakeClock) -> None:
    emulator = Emulator(catalogue, clock=clock).start()
    with httpx.Client(base_url=emulator.url, headers={"X-CEKURA-API-KEY": API_KEY}) as client:
        client.get(f"{V1}/results/")  # leaves an idle keep-alive connection open
        started = time.monotonic()
        emulator.stop()
        assert time.monotonic() - started < 2
        with pytest.raises(httpx.TransportError):
            client.get(f"{V1}/results/")


def test_concurrent_pollers(api: httpx.Client, emulator: Emulator) -> None:
    ids = ",".join(map(str, run_ids(start_runs(api, PASS, frequency=20))))
    failures: list[BaseException] = []

    def poll() -> None:
        try:
            with httpx.Client(base_url=emulator.url, headers={"X-CEKURA-API-KEY": API_KEY}) as c:
                for _ in range(10):
                    assert len(get_json(c, f"{V1}/runs/bulk/", run_ids=ids)) == 20
        except BaseException as exc:  # collected and re-raised in the test thread
            failures.append(exc)

    threads = [threading.Thread(target=poll) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert emulator.count("GET", "/runs/bulk/") == 80


def test_ten_thousand_runs_and_fast_bulk_reads(api: httpx.Client, clock: FakeClock) -> None:
    answer = start_runs(api, *range(101, 201), frequency=100)  # clear of GONE
    assert len(answer["runs"]) == 10_000
    clock.advance(1000)
    ids = ",".join(map(str, run_ids(answer)[-100:]))
    get_json(api, f"{V1}/runs/bulk/", run_ids=ids)  # warm the connection
    # The fastest of five reads: one slow read on a busy 2-core machine says nothing about
    # the emulator, while a bulk read that scanned all 10,000 runs would be slow every time.
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        runs = get_json(api, f"{V1}/runs/bulk/", run_ids=ids)
        timings.append(time.perf_counter() - started)
    assert len(runs) == 100
    assert all(run["status"] == "completed" for run in runs)
    assert min(timings) < 0.5, f"bulk GET of 100 runs took {min(timings) * 1000:.0f} ms"
