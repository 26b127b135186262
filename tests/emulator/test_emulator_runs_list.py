"""``GET runs-external/`` (cekura-api.md 6, "List runs"): paginated full runs with filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from pytest_cekura.emulator import Emulator

from .helpers import ERROR, FAIL, HANG, PASS, FakeClock, get_json, start_runs

V1 = "/test_framework/v1"
RUNS = f"{V1}/runs-external/"


def ids_of(page: dict[str, Any]) -> list[int]:
    return [run["id"] for run in page["results"]]


@pytest.fixture
def two_results(api: httpx.Client, clock: FakeClock) -> tuple[list[int], list[int]]:
    """Result A (pass, fail, error, hang; agent 42) and result B (one text run of PASS)."""
    first = [r["id"] for r in start_runs(api, PASS, FAIL, ERROR, HANG, agent=42)["runs"]]
    text = api.post(
        f"{V1}/scenarios/run_scenarios_text/", json={"agent_id": 7, "scenarios": [PASS]}
    )
    assert text.status_code == 201, text.text
    second = [r["id"] for r in text.json()["runs"]]
    clock.advance(130)  # every call but the hanging one is over
    return first, second


@pytest.mark.parametrize("path", [RUNS, RUNS.rstrip("/"), f"{V1}/runs/"])
def test_lists_full_runs_newest_first_on_every_path(
    api: httpx.Client, two_results: tuple[list[int], list[int]], path: str
) -> None:
    first, second = two_results
    page = get_json(api, path)
    assert (page["count"], page["next"], page["previous"]) == (5, None, None)
    assert ids_of(page) == [*second, *reversed(first)]
    newest = page["results"][0]
    assert newest["status"] == "completed"
    assert newest["success"] is True
    assert newest["transcript_object"]
    assert newest["evaluation"]["metrics"]


def test_pagination(api: httpx.Client, two_results: tuple[list[int], list[int]]) -> None:
    first_page = get_json(api, RUNS, page_size=2)
    assert first_page["count"] == 5
    assert len(first_page["results"]) == 2
    assert first_page["next"].endswith("page_size=2&page=2")
    assert first_page["previous"] is None
    last = get_json(api, RUNS, page_size=2, page=3)
    assert len(last["results"]) == 1
    assert last["next"] is None
    assert api.get(RUNS, params={"page": 4, "page_size": 2}).json() == {"detail": "Invalid page."}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "completed"}, ["pass", "fail", "text"]),
        ({"status__in": "failed, running"}, ["error", "hang"]),
        ({"status": "completed", "status__in": "failed,completed"}, ["pass", "fail", "text"]),
        ({"success": "true"}, ["pass", "text"]),
        ({"success": "false"}, ["fail", "error"]),
        ({"scenario__id__in": f"{FAIL},{HANG}"}, ["fail", "hang"]),
        ({"result__agent_id": "42"}, ["pass", "fail", "error", "hang"]),
        ({"result__run_as_text": "true"}, ["text"]),
        ({"result__run_as_text": "false", "success": "1"}, ["pass"]),
    ],
)
def test_filters(
    api: httpx.Client,
    two_results: tuple[list[int], list[int]],
    params: dict[str, str],
    expected: list[str],
) -> None:
    first, second = two_results
    names = dict(zip(first, ["pass", "fail", "error", "hang"], strict=True)) | {second[0]: "text"}
    found = get_json(api, RUNS, **params)
    assert sorted(names[i] for i in ids_of(found)) == sorted(expected)


def test_result_filter(api: httpx.Client, two_results: tuple[list[int], list[int]]) -> None:
    first, second = two_results
    newest, oldest = get_json(api, f"{V1}/results/")["results"]
    assert sorted(ids_of(get_json(api, RUNS, result__id=oldest["id"]))) == first
    assert ids_of(get_json(api, RUNS, result__id=newest["id"])) == second
    assert get_json(api, RUNS, result__id=1)["count"] == 0


def test_timestamp_filters(api: httpx.Client, two_results: tuple[list[int], list[int]]) -> None:
    created = datetime.fromisoformat(get_json(api, RUNS)["results"][0]["timestamp"])
    before = (created - timedelta(seconds=1)).isoformat()
    after = (created + timedelta(seconds=1)).astimezone(UTC).isoformat().replace("+00:00", "Z")
    assert get_json(api, RUNS, timestamp__gte=before)["count"] == 5
    assert get_json(api, RUNS, timestamp__lte=before)["count"] == 0
    assert get_json(api, RUNS, timestamp__lte=after)["count"] == 5
    naive = (created + timedelta(seconds=1)).astimezone(UTC).replace(tzinfo=None).isoformat()
    assert get_json(api, RUNS, timestamp__gte=naive)["count"] == 0  # naive = UTC


def test_bad_filters_are_400_naming_every_field(api: httpx.Client) -> None:
    response = api.get(
        RUNS, params={"result__id": "x", "success": "maybe", "timestamp__gte": "yesterday"}
    )
    assert response.status_code == 400
    assert response.json() == {
        "result__id": ["A valid integer is required."],
        "success": ["Select a valid choice. Use true or false."],
        "timestamp__gte": ["Enter a valid date/time."],
    }


def test_faults_of_match_run_apply_to_the_list(
    api: httpx.Client, emulator: Emulator, two_results: tuple[list[int], list[int]]
) -> None:
    emulator.inject("run", "unknown_status", status_value="timeout")
    assert {run["status"] for run in get_json(api, RUNS)["results"]} == {"timeout"}
    assert emulator.requests[-1].fault == "unknown_status:timeout"
    assert api.get(RUNS, headers={"X-CEKURA-API-KEY": "wrong"}).status_code == 401
