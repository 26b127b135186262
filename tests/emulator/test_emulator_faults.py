"""Fault injection, seen by a client over real loopback HTTP.

Every action is checked from the outside (status, headers, body, how the connection ends) and
from the inside (did the work happen: ``Emulator.runs``; what was logged: ``fault``), because
the plugin's reliability tests rely on both: "the POST was answered 500 *after* the runs were
created, and the plugin did not send it again".
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from pytest_cekura.emulator import (
    Catalogue,
    CatalogueError,
    Emulator,
    FaultRule,
    RequestRecord,
    load_catalogue,
    parse_fault,
)
from pytest_cekura.emulator.catalogue import DropMode
from pytest_cekura.emulator.faults import UNKNOWN_RUN_ID

from .helpers import API_KEY, FAIL, HANG, LIVEKIT, PASS, TLS, FakeClock, get_json, start_runs

V1 = "/test_framework/v1"
BULK = f"{V1}/runs/bulk/"
FAULTS = "/_emulator/faults"
BODY = {"scenarios": [{"scenario": PASS}]}


#: The body post_start() sends without scenario ids, as the request log records it.
START_BODY = {"scenarios": [{"scenario": PASS}]}


def post_start(api: httpx.Client, *scenario_ids: int) -> httpx.Response:
    return api.post(LIVEKIT, json={"scenarios": [{"scenario": s} for s in scenario_ids or [PASS]]})


def bulk(api: httpx.Client, ids: list[int]) -> httpx.Response:
    return api.get(BULK, params={"run_ids": ",".join(map(str, ids))})


def ids_of(runs: list[dict[str, Any]]) -> list[int]:
    return [run["id"] for run in runs]


def faults_logged(emulator: Emulator) -> list[tuple[str, int, str | None]]:
    return [(r.method, r.status, r.fault) for r in emulator.requests]


@pytest.fixture
def started(api: httpx.Client) -> list[int]:
    """Three runs (pass, fail, hang), created before any fault is installed."""
    return ids_of(start_runs(api, PASS, FAIL, HANG)["runs"])


# ----------------------------------------------------- before: nothing is done


@pytest.mark.parametrize(
    ("status", "detail"),
    [
        (500, "A server error occurred."),
        (502, "Bad gateway."),
        (503, "Service temporarily unavailable, try again later."),
        (401, "Invalid API key."),
        (403, "You do not have permission to perform this action."),
        (404, "Not found."),
        (400, "Malformed request."),
    ],
)
def test_error_before_answers_the_status_and_creates_nothing(
    api: httpx.Client, emulator: Emulator, status: int, detail: str
) -> None:
    emulator.inject("start", "error_before", status=status)
    response = post_start(api)
    assert (response.status_code, response.json()) == (status, {"detail": detail})
    assert emulator.runs == []
    assert faults_logged(emulator) == [("POST", status, f"error_before:{status}")]
    assert post_start(api).status_code == 200  # times = 1: the next one is served


def test_drop_before_hangs_up_and_creates_nothing(
    api: httpx.Client, emulator: Emulator, capfd: pytest.CaptureFixture[str]
) -> None:
    emulator.inject("start", "drop_before")
    with pytest.raises(httpx.RemoteProtocolError):
        post_start(api)
    assert emulator.runs == []
    assert emulator.requests == [RequestRecord("POST", LIVEKIT, {}, 0, "drop_before", START_BODY)]
    assert post_start(api).status_code == 200
    assert capfd.readouterr().err == ""


def test_rate_limit_sends_retry_after_and_creates_nothing(
    api: httpx.Client, emulator: Emulator
) -> None:
    emulator.inject("start", "rate_limit", retry_after="2")
    response = post_start(api)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    assert response.json() == {"detail": "Request was throttled. Expected available in 2 seconds."}
    assert emulator.runs == []
    assert faults_logged(emulator) == [("POST", 429, "rate_limit:429")]


def test_rate_limit_with_an_http_date_503_and_retry_after_ms(
    api: httpx.Client, emulator: Emulator
) -> None:
    date = "Wed, 21 Oct 2026 07:28:00 GMT"
    emulator.inject("bulk", "rate_limit", retry_after=date, status=503, retry_after_ms=1500)
    response = bulk(api, [1])
    assert response.status_code == 503
    assert response.headers["Retry-After"] == date
    assert response.headers["retry-after-ms"] == "1500"
    assert response.json() == {"detail": "Service temporarily unavailable, try again later."}


# --------------------------------------------- after: the work is done, then lost


def test_error_after_creates_the_runs_then_answers_500(
    api: httpx.Client, emulator: Emulator
) -> None:
    emulator.inject("start", "error_after", status=500)
    response = api.post(LIVEKIT, json={**BODY, "name": "ci-42"})
    assert (response.status_code, response.json()) == (500, {"detail": "A server error occurred."})
    # The ambiguous case: the client cannot tell, but the runs exist and can be found by name.
    assert [run["scenario"] for run in emulator.runs] == [PASS]
    found = get_json(api, f"{V1}/results/", name="ci-42")
    assert found["count"] == 1
    assert emulator.count("POST", "run_scenarios") == 1
    assert faults_logged(emulator)[0] == ("POST", 500, "error_after:500")


@pytest.mark.parametrize(
    ("mode", "error", "label"),
    [
        ("close", httpx.RemoteProtocolError, "drop_after"),
        ("partial", httpx.RemoteProtocolError, "drop_after:partial"),
        ("reset", httpx.ReadError, "drop_after:reset"),
    ],
)
def test_drop_after_creates_the_runs_then_hangs_up(
    api: httpx.Client,
    emulator: Emulator,
    capfd: pytest.CaptureFixture[str],
    mode: DropMode,
    error: type[Exception],
    label: str,
) -> None:
    emulator.inject("start", "drop_after", drop_mode=mode)
    with pytest.raises(error):
        post_start(api)
    assert len(emulator.runs) == 1
    assert emulator.requests == [RequestRecord("POST", LIVEKIT, {}, 0, label, START_BODY)]
    # The server goes on serving, on the same client (a new connection), and says nothing.
    assert post_start(api).status_code == 200
    assert len(emulator.runs) == 2
    assert capfd.readouterr().err == ""


def _raw_exchange(emulator: Emulator, request: bytes) -> bytes:
    """Send one raw HTTP request and read everything until the server closes."""
    host, port = emulator.url.removeprefix("http://").split(":")
    received = b""
    with socket.create_connection((host, int(port)), timeout=2) as raw:
        raw.sendall(request)
        while chunk := raw.recv(4096):
            received += chunk
    return received


def test_partial_drop_before_sends_headers_then_fin_mid_body(emulator: Emulator) -> None:
    emulator.inject("any", "drop_before", drop_mode="partial")
    received = _raw_exchange(
        emulator,
        f"GET {V1}/results/ HTTP/1.1\r\nHost: x\r\nX-CEKURA-API-KEY: {API_KEY}\r\n\r\n".encode(),
    )
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Length: 1024" in head.split(b"\r\n")
    assert body == b""  # the announced body never comes


def test_partial_drop_after_cuts_the_real_answer_mid_body(emulator: Emulator) -> None:
    emulator.inject("start", "drop_after", drop_mode="partial")
    payload = json.dumps(BODY).encode()
    received = _raw_exchange(
        emulator,
        (
            f"POST {LIVEKIT} HTTP/1.1\r\nHost: x\r\nX-CEKURA-API-KEY: {API_KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        ).encode()
        + payload,
    )
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    announced = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.startswith(b"Content-Length")
    )
    assert 0 < len(body) < announced
    assert body.startswith(b'{"id": ')
    assert len(emulator.runs) == 1  # the work was done all the same


@pytest.mark.parametrize("action", ["drop_before", "drop_after"])
def test_partial_drop_is_an_error_for_http_client_too(emulator: Emulator, action: Any) -> None:
    """Not only httpx: the stdlib client behind urllib and requests sees a broken answer, not
    an empty 200 (which a half-finished header block would have given it)."""
    emulator.inject("any", action, drop_mode="partial")
    host, port = emulator.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=2)
    try:
        connection.request("GET", f"{V1}/results/", headers={"X-CEKURA-API-KEY": API_KEY})
        response = connection.getresponse()
        with pytest.raises(http.client.IncompleteRead):
            response.read()
    finally:
        connection.close()


def test_malformed_json_after_creating_the_runs(api: httpx.Client, emulator: Emulator) -> None:
    emulator.inject("start", "malformed_json")
    response = post_start(api)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.text.startswith('{"id": ')
    assert response.text.endswith('"runs": [')
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)
    assert len(emulator.runs) == 1
    assert faults_logged(emulator) == [("POST", 200, "malformed_json")]


def test_malformed_json_on_bulk(api: httpx.Client, emulator: Emulator, started: list[int]) -> None:
    emulator.inject("bulk", "malformed_json")
    response = bulk(api, started)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert len(bulk(api, started).json()) == 3


# ------------------------------------------------------------------------ slow


def test_slow_waits_real_seconds_then_answers(api: httpx.Client, emulator: Emulator) -> None:
    emulator.inject("results", "slow", delay_s=0.15)
    began = time.perf_counter()
    assert api.get(f"{V1}/results/").status_code == 200
    assert time.perf_counter() - began >= 0.15
    assert faults_logged(emulator) == [("GET", 200, "slow:0.15s")]


def test_slow_post_past_the_read_timeout_is_still_accepted(
    api: httpx.Client, emulator: Emulator
) -> None:
    emulator.inject("start", "slow", delay_s=0.2)
    with pytest.raises(httpx.ReadTimeout):
        api.post(LIVEKIT, json=BODY, timeout=httpx.Timeout(2, read=0.05))
    assert emulator.runs == []  # still waiting...
    deadline = time.monotonic() + 2
    while not emulator.runs and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(emulator.runs) == 1  # ...then the server accepted the request late


def test_stop_does_not_wait_for_a_slow_answer(catalogue: Catalogue, clock: FakeClock) -> None:
    emulator = Emulator(catalogue, clock=clock).start()
    emulator.inject("any", "slow", delay_s=30)
    errors: list[Exception] = []

    def call() -> None:
        try:
            httpx.get(f"{emulator.url}{V1}/results/", headers={"X-CEKURA-API-KEY": API_KEY})
        except httpx.HTTPError as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    while emulator.faults[0]["fired"] == 0:
        time.sleep(0.005)
    began = time.perf_counter()
    emulator.stop()
    caller.join(5)
    assert time.perf_counter() - began < 2
    assert not caller.is_alive()
    assert len(errors) == 1


# ------------------------------------------------- rewritten runs in answers


def test_unknown_status_on_bulk_run_and_result_reads(
    api: httpx.Client, emulator: Emulator, started: list[int]
) -> None:
    result_id = get_json(api, f"{V1}/results/")["results"][0]["id"]
    emulator.inject("bulk", "unknown_status")
    emulator.inject("run", "unknown_status", status_value="timeout")
    emulator.inject("result", "unknown_status", scenario_ids=[FAIL])
    emulator.inject("results", "unknown_status", status_value="on_hold")
    assert {run["status"] for run in bulk(api, started).json()} == {"paused"}
    assert get_json(api, f"{V1}/runs/{started[0]}/")["status"] == "timeout"
    detail = get_json(api, f"{V1}/results/{result_id}/")
    assert [run["status"] for run in detail["runs"].values()] == ["pending", "paused", "pending"]
    assert detail["status"] == "pending"  # limited to some scenarios: the result is left alone
    listed = get_json(api, f"{V1}/results/")["results"][0]
    assert {run["status"] for run in listed["runs"].values()} == {"on_hold"}
    assert listed["status"] == "on_hold"
    assert {run["status"] for run in bulk(api, started).json()} == {"pending"}  # used up
    assert faults_logged(emulator)[2:6] == [
        ("GET", 200, "unknown_status:paused"),
        ("GET", 200, "unknown_status:timeout"),
        ("GET", 200, "unknown_status:paused"),
        ("GET", 200, "unknown_status:on_hold"),
    ]


@pytest.mark.parametrize("status_value", ["timeout", "cancelled", "paused"])
def test_unknown_status_shows_on_the_result_itself(
    api: httpx.Client, emulator: Emulator, clock: FakeClock, status_value: str
) -> None:
    """A client that stops polling on the result's status must meet odd values there too:
    ``timeout`` and ``cancelled`` are terminal statuses the emulator never plays by itself."""
    emulator.inject("start", "unknown_status", status_value=status_value)
    created = post_start(api, PASS, FAIL).json()
    assert created["status"] == status_value
    assert {run["status"] for run in created["runs"]} == {status_value}
    emulator.inject("result", "unknown_status", status_value=status_value)
    clock.advance(1000)
    detail = get_json(api, f"{V1}/results/{created['id']}/")
    assert detail["status"] == status_value
    assert {run["status"] for run in detail["runs"].values()} == {status_value}
    assert get_json(api, f"{V1}/results/{created['id']}/")["status"] == "completed"  # used up


def test_a_rewrite_is_not_used_up_by_an_error_answer(
    api: httpx.Client, emulator: Emulator, started: list[int]
) -> None:
    emulator.inject("bulk", "unknown_status")
    assert api.get(BULK, params={"run_ids": "x"}).status_code == 400
    assert {run["status"] for run in bulk(api, started).json()} == {"paused"}
    assert [r.fault for r in emulator.requests[-2:]] == [None, "unknown_status:paused"]


def test_omit_runs_leaves_out_the_first_n_requested(
    api: httpx.Client, emulator: Emulator, started: list[int]
) -> None:
    emulator.inject("bulk", "omit_runs", omit=2)
    assert ids_of(bulk(api, started[::-1]).json()) == [started[0]]
    assert faults_logged(emulator)[-1] == ("GET", 200, "omit_runs:2")


def test_omit_runs_by_id(api: httpx.Client, emulator: Emulator, started: list[int]) -> None:
    emulator.inject("bulk", "omit_runs", omit_ids=[started[1]])
    assert ids_of(bulk(api, started).json()) == [started[0], started[2]]


def test_omit_runs_on_start_answers_fewer_runs_than_created(
    api: httpx.Client, emulator: Emulator
) -> None:
    emulator.inject("start", "omit_runs", omit=1)
    answer = api.post(LIVEKIT, json={**BODY, "frequency": 3}).json()
    assert len(answer["runs"]) == 2
    assert len(emulator.runs) == 3


def test_duplicate_runs(api: httpx.Client, emulator: Emulator, started: list[int]) -> None:
    emulator.inject("bulk", "duplicate_runs")
    assert ids_of(bulk(api, started[:2]).json()) == started[:2] * 2


def test_extra_runs_are_strangers_and_one_has_no_id(
    api: httpx.Client, emulator: Emulator, started: list[int]
) -> None:
    emulator.inject("bulk", "extra_runs")
    runs = bulk(api, started[:1]).json()
    assert [run.get("id") for run in runs] == [started[0], UNKNOWN_RUN_ID, None]
    assert [(run["status"], run["success"]) for run in runs[1:]] == [("completed", True)] * 2
    assert UNKNOWN_RUN_ID not in ids_of(emulator.runs)
    assert bulk(api, [UNKNOWN_RUN_ID]).json() == []


def test_never_finish_switched_on_and_off_mid_session(
    api: httpx.Client, emulator: Emulator, clock: FakeClock
) -> None:
    started = ids_of(start_runs(api, PASS, FAIL)["runs"])
    api.post(FAULTS, json={"match": "any", "action": "never_finish", "scenario_ids": [PASS]})
    clock.advance(1000)
    statuses = [run["status"] for run in bulk(api, started).json()]
    assert statuses == ["running", "completed"]
    assert emulator.requests[-1].fault is None  # a state fault, not a request fault
    emulator.clear_faults()
    assert [run["status"] for run in bulk(api, started).json()] == ["completed", "completed"]


def test_never_finish_runs_can_still_be_ended(
    api: httpx.Client, emulator: Emulator, clock: FakeClock
) -> None:
    emulator.inject("any", "never_finish", scenario_ids=[PASS])
    (run_id,) = ids_of(start_runs(api, PASS)["runs"])
    clock.advance(1000)
    assert api.post(f"{V1}/runs/{run_id}/end_call/").status_code == 200
    assert get_json(api, f"{V1}/runs/{run_id}/")["status"] == "cancelled"


# ------------------------------------------------------------ rule bookkeeping


def test_times_counts_matching_requests_and_zero_means_all(
    api: httpx.Client, emulator: Emulator, started: list[int]
) -> None:
    emulator.inject("bulk", "error_before", status=503, times=2)
    assert [bulk(api, started).status_code for _ in range(3)] == [503, 503, 200]
    emulator.inject("bulk", "error_before", status=502, times=0)
    assert [bulk(api, started).status_code for _ in range(4)] == [502] * 4
    assert [f["remaining"] for f in emulator.faults] == [0, None]
    assert [f["fired"] for f in emulator.faults] == [2, 4]


def test_rules_match_only_their_kind_and_the_first_applicable_wins(
    api: httpx.Client, emulator: Emulator, started: list[int]
) -> None:
    emulator.inject("bulk", "error_before", status=500)
    emulator.inject("any", "error_before", status=502)
    assert api.get(f"{V1}/results/").status_code == 502  # only "any" matches a list read
    assert bulk(api, started).status_code == 500  # the bulk rule was installed first
    assert bulk(api, started).status_code == 200  # both used up


def test_requests_with_a_bad_key_do_not_use_up_faults(emulator: Emulator) -> None:
    emulator.inject("start", "error_before", status=500)
    denied = httpx.post(f"{emulator.url}{LIVEKIT}", json=BODY, headers={"X-CEKURA-API-KEY": "no"})
    assert denied.status_code == 401
    assert emulator.faults[0]["fired"] == 0


def test_reset_keeps_faults_and_clear_removes_catalogue_ones(clock: FakeClock) -> None:
    rule = parse_fault({"match": "start", "action": "error_before", "times": 0})
    with Emulator(Catalogue(faults=(rule,)), clock=clock) as emulator:
        headers = {"X-CEKURA-API-KEY": API_KEY}
        with httpx.Client(base_url=emulator.url, headers=headers, verify=TLS) as api:
            emulator.reset()
            assert post_start(api).status_code == 500
            emulator.clear_faults()
            assert emulator.faults == []
            assert post_start(api).status_code == 200


# -------------------------------------------------------- three ways to configure


def test_faults_from_the_catalogue_toml(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "catalogue.toml"
    path.write_text(
        "[[scenario]]\nid = 31\n\n"
        '[[fault]]\nmatch = "start"\naction = "error_after"\nstatus = 500\n\n'
        '[[fault]]\nmatch = "bulk"\naction = "rate_limit"\nretry_after = "2"\ntimes = 0\n'
    )
    catalogue = load_catalogue(path)
    assert catalogue.faults == (
        FaultRule("start", "error_after", status=500),
        FaultRule("bulk", "rate_limit", retry_after="2", times=0),
    )
    with Emulator(catalogue, clock=clock) as emulator:
        headers = {"X-CEKURA-API-KEY": API_KEY}
        with httpx.Client(base_url=emulator.url, headers=headers, verify=TLS) as api:
            assert post_start(api).status_code == 500
            assert bulk(api, ids_of(emulator.runs)).status_code == 429
        assert faults_logged(emulator) == [
            ("POST", 500, "error_after:500"),
            ("GET", 429, "rate_limit:429"),
        ]


def test_inject_returns_the_rule_with_defaults(emulator: Emulator) -> None:
    rule = emulator.inject("start", "error_after")
    assert rule == FaultRule("start", "error_after", times=1, status=500)
    assert rule.label == "error_after:500"
    assert emulator.faults == [
        {
            "match": "start",
            "action": "error_after",
            "times": 1,
            "status": 500,
            "fired": 0,
            "remaining": 1,
        }
    ]


def test_control_endpoint_adds_lists_replaces_and_clears(
    api: httpx.Client, emulator: Emulator, started: list[int]
) -> None:
    unauthenticated = httpx.Client(base_url=emulator.url, verify=TLS)  # no key needed
    with unauthenticated as control:
        added = control.post(FAULTS, json={"match": "bulk", "action": "duplicate_runs"})
        assert added.status_code == 201
        assert added.json() == [
            {"match": "bulk", "action": "duplicate_runs", "times": 1, "fired": 0, "remaining": 1}
        ]
        listed = control.post(
            FAULTS,
            json=[
                {"match": "bulk", "action": "omit_runs", "omit_ids": [started[0]]},
                {"match": "any", "action": "never_finish", "scenario_ids": [HANG]},
            ],
        ).json()
        assert [f["action"] for f in listed] == ["duplicate_runs", "omit_runs", "never_finish"]
        assert len(bulk(api, started).json()) == 6
        assert get_json(api, FAULTS)[0] == {
            "match": "bulk",
            "action": "duplicate_runs",
            "times": 1,
            "fired": 1,
            "remaining": 0,
        }
        # Mid-session: replace the plan, then clear it.
        replaced = control.put(FAULTS, json={"match": "bulk", "action": "error_before"})
        assert (replaced.status_code, len(replaced.json())) == (200, 1)
        assert bulk(api, started).status_code == 500
        cleared = control.delete(FAULTS)
        assert (cleared.status_code, cleared.json()) == (200, [])
        assert emulator.faults == []
        control.post(FAULTS, json={"match": "any", "action": "slow", "delay_s": 0})
        assert control.put(FAULTS).json() == []  # PUT without a body clears too
    assert all(not r.path.startswith("/_emulator") for r in emulator.requests)
    assert len(emulator.requests) == 3  # the POST of the fixture and two bulk reads


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"match": "start", "action": "explode"},
            "POST /_emulator/faults: fault[1]: field 'action' has invalid value 'explode'; "
            "allowed: error_before, error_after,",
        ),
        (
            [{"match": "start", "action": "drop_after"}, {"match": "start"}],
            "POST /_emulator/faults: fault[2]: missing required field 'action'",
        ),
        ("not a rule", "fault[1]: a fault rule must be a table (a JSON object)"),
    ],
)
def test_control_endpoint_rejects_bad_rules_and_installs_none(
    api: httpx.Client, emulator: Emulator, body: Any, message: str
) -> None:
    response = api.post(FAULTS, json=body)
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert emulator.faults == []


def test_control_endpoint_rejects_bad_json(api: httpx.Client) -> None:
    response = api.post(FAULTS, content=b"{", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]
    assert "send a fault rule as JSON" in api.post(FAULTS).json()["detail"]


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"match": "strat", "action": "error_after"},
            "field 'match' has invalid value 'strat' "
            "(did you mean 'start'?); allowed: start, bulk, result, results, run, end_call, "
            "rerun, scenario, agent, test_profile, any",
        ),
        ({"match": "start", "action": "eror_after"}, "(did you mean 'error_after'?)"),
        (
            {"match": "start", "action": "error_before", "status": 200},
            "field 'status' has invalid value 200; must be an HTTP error status from 400 to 599",
        ),
        ({"match": "start", "action": "error_after", "status": 600}, "from 400 to 599"),
        (
            {"match": "start", "action": "rate_limit"},
            "action 'rate_limit' needs field 'retry_after'",
        ),
        (
            {"match": "start", "action": "slow", "delay_s": -1},
            "field 'delay_s' has invalid value -1; must be a number of seconds from 0 to 3600",
        ),
        ({"match": "start", "action": "slow"}, "action 'slow' needs field 'delay_s'"),
        (
            {"match": "start", "action": "error_after", "delay_s": 1},
            "field 'delay_s' is not used by action 'error_after'; remove it",
        ),
        (
            {"match": "start", "action": "error_after", "times": -1},
            "field 'times' has invalid value -1; must be an integer >= 0",
        ),
        (
            {"match": "result", "action": "omit_runs", "omit": 1},
            "action 'omit_runs' works with match = bulk, start, rerun",
        ),
        ({"match": "bulk", "action": "omit_runs"}, "needs exactly one of 'omit'"),
        (
            {"match": "bulk", "action": "omit_runs", "omit": 1, "omit_ids": [2]},
            "needs exactly one of 'omit'",
        ),
        ({"match": "any", "action": "never_finish"}, "needs field 'scenario_ids'"),
        (
            {"match": "start", "action": "never_finish", "scenario_ids": [1]},
            "action 'never_finish' works with match = any",
        ),
        (
            {"match": "any", "action": "never_finish", "scenario_ids": [1], "times": 1},
            "field 'times' is not used by action 'never_finish'",
        ),
        (
            {"match": "start", "action": "drop_after", "drop_mode": "slam"},
            "allowed: close, partial, reset",
        ),
        (
            {"match": "bulk", "action": "unknown_status", "status_value": ""},
            "field 'status_value' has invalid value ''",
        ),
        (
            {"match": "start", "action": "rate_limit", "retry_after": "2\r\nX-Evil: 1"},
            "field 'retry_after' has invalid value",
        ),
        (
            {"match": "start", "action": "error_after", "tmes": 1},
            "unknown key 'tmes' (did you mean 'times'?)",
        ),
    ],
)
def test_invalid_rules_name_the_field_and_the_fix(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(CatalogueError) as info:
        parse_fault(fields, where="here")
    assert str(info.value).startswith("here: ")
    assert message in str(info.value)


def test_inject_validates_like_the_catalogue(emulator: Emulator) -> None:
    with pytest.raises(ValueError, match=r"^Emulator\.inject: field 'status' has invalid value 99"):
        emulator.inject("start", "error_after", status=99)
    with pytest.raises(CatalogueError, match=r"^FaultRule: action 'slow' needs field 'delay_s'"):
        FaultRule("start", "slow")
    assert emulator.faults == []


def test_catalogue_fault_errors_name_file_and_entry(tmp_path: Path) -> None:
    path = tmp_path / "catalogue.toml"
    path.write_text(
        '[[fault]]\nmatch = "start"\naction = "slow"\ndelay_s = 1\n\n'
        '[[fault]]\nmatch = "start"\naction = "boom"\n'
    )
    with pytest.raises(CatalogueError) as info:
        load_catalogue(path)
    assert str(info.value).startswith(f"{path}: fault[2]: field 'action' has invalid value 'boom'")
    path.write_text('[fault]\nmatch = "start"\naction = "slow"\n')
    with pytest.raises(CatalogueError, match="write each rule as \\[\\[fault\\]\\]"):
        load_catalogue(path)
    path.write_text('[[faults]]\nmatch = "start"\n')
    with pytest.raises(CatalogueError, match="did you mean 'fault'"):
        load_catalogue(path)
