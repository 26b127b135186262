"""POST results/{id}/rerun/: a new result repeating the chosen runs of an earlier one."""

from __future__ import annotations

import httpx

from pytest_cekura.emulator import Emulator

from .helpers import FAIL, PASS, FakeClock, get_json, start_runs

V1 = "/test_framework/v1"


def test_rerun_of_chosen_runs_starts_a_new_result(api: httpx.Client, clock: FakeClock) -> None:
    first = start_runs(api, PASS, FAIL, frequency=2)
    failed = [run["id"] for run in first["runs"] if run["scenario"] == FAIL]
    response = api.post(f"{V1}/results/{first['id']}/rerun/", json={"run_ids": failed})
    assert response.status_code == 200
    second = response.json()
    assert second["id"] != first["id"]
    # The answer is the spec's Result: runs keyed by id.
    runs = list(second["runs"].values())
    assert [run["scenario"] for run in runs] == [FAIL, FAIL]
    assert not {run["id"] for run in runs} & {run["id"] for run in first["runs"]}
    clock.advance(500)
    detail = get_json(api, f"{V1}/results/{second['id']}/")
    assert detail["name"].endswith("(rerun)")
    assert detail["total_runs_count"] == 2


def test_rerun_without_a_body_repeats_every_run(api: httpx.Client) -> None:
    first = start_runs(api, PASS, frequency=3)
    second = api.post(f"{V1}/results/{first['id']}/rerun/").json()
    assert len(second["runs"]) == 3


def test_strict_rerun_ignores_run_ids_and_repeats_every_run(
    api: httpx.Client, emulator: Emulator
) -> None:
    """The spec's rerun has no body: the live service re-executes (and bills) every run."""
    emulator.strict = True
    first = start_runs(api, PASS, FAIL)
    failed = [run["id"] for run in first["runs"] if run["scenario"] == FAIL]
    response = api.post(f"{V1}/results/{first['id']}/rerun/", json={"run_ids": failed})
    assert response.status_code == 200
    assert sorted(run["scenario"] for run in response.json()["runs"].values()) == [PASS, FAIL]


def test_rerun_errors(api: httpx.Client) -> None:
    first = start_runs(api, PASS)
    assert api.post(f"{V1}/results/999999/rerun/").status_code == 404
    stranger = api.post(f"{V1}/results/{first['id']}/rerun/", json={"run_ids": [1]})
    assert stranger.status_code == 400
    assert "run_ids" in stranger.json()
    bad = api.post(f"{V1}/results/{first['id']}/rerun/", json={"run_ids": "all"})
    assert bad.status_code == 400
