"""Tests as Code across sessions and processes: xdist, reuse, rerun-failed, baselines, and a
run-starting POST that may have reached Cekura (looked up by name, never re-sent)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from conftest import Suite

CATALOGUE = """
[[case]]
key = "refund-denied"
outcome = "fail"
duration_s = 5

[[case]]
key = "refund-ok"
duration_s = 5
"""


def case(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "instructions": f"You call about {name}.", **fields}


def document(*cases: dict[str, Any]) -> str:
    return json.dumps({"version": "1", "suite": {"name": "Refunds"}, "scenarios": list(cases)})


FOUR = document(
    case("Refund ok", key="refund-ok", metrics=["expected_outcome"]),
    case("Refund denied", key="refund-denied"),
    case("Angry caller"),
    case("Unknown metric", key="bad-metric", metrics=["no_such_metric"]),
)
INLINE = """
import pytest

@pytest.mark.cekura_case(instructions="You ask where your parcel is.")
def test_where_is_my_parcel(cekura_result):
    assert len(cekura_result.runs) == 1

@pytest.mark.cekura_scenario(30)
def test_dashboard(): pass
"""


def write(project: Suite, text: str, name: str = "cekura.tests.json") -> None:
    project.pytester.path.joinpath(name).write_text(text, encoding="utf-8")


@pytest.fixture
def project(make_suite: Callable[[str], Suite]) -> Suite:
    suite = make_suite(CATALOGUE)
    suite.pytester.makeini("[pytest]\ncekura_agent = 42\n")
    return suite


def json_posts(project: Suite, endpoint: str = "run_scenarios_json") -> int:
    return project.emulator.count("POST", endpoint)


# -- xdist -----------------------------------------------------------------------------------


def test_cases_under_xdist_are_validated_and_started_once(project: Suite) -> None:
    write(project, FOUR)
    project.pytester.makepyfile(test_inline=INLINE)
    result = project.run("-n", "2", "-rA", subprocess=True)
    # As serially: refund-denied fails (its [[case]]), the unknown metric errors with the
    # service's message; the inline case and the dashboard scenario pass beside them.
    result.assert_outcomes(passed=4, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*Cekura rejected this case (validate_scenarios_json): scenarios?3?.metrics?0?*"]
    )
    assert json_posts(project) == 1
    assert json_posts(project, "validate_scenarios_json") == 2
    assert json_posts(project, "run_scenarios_livekit_v2") == 1
    (started,) = [r for r in project.emulator.requests if r.path.endswith("run_scenarios_json/")]
    names = [c["name"] for c in started.body["spec"]["scenarios"]]
    assert names == ["Refund ok", "Refund denied", "Angry caller", "test_where_is_my_parcel"]


def test_dry_run_under_xdist_prints_the_plan_once_and_starts_nothing(project: Suite) -> None:
    write(project, FOUR)
    result = project.run("-n", "2", "--cekura-dry-run", subprocess=True)
    result.assert_outcomes(skipped=3, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*cekura dry run: tests as code*",
            "cekura.tests.json::refund-ok: 1 run(s), estimated 15.2 credits",
            "cekura.tests.json::refund-denied: 1 run(s), estimated 15 credits",
            "cekura.tests.json::Angry caller: 1 run(s), estimated 15 credits",
            "tests as code: 3 run(s) in 1 request(s), estimated 45.2 credits in total",
        ]
    )
    assert result.stdout.str().count("tests as code: 3 run(s)") == 1
    # One worker validated for both (twice: once more without the rejected case).
    assert json_posts(project, "validate_scenarios_json") == 2
    assert project.emulator.count("POST", "run_scenarios") == 0


def test_max_cost_under_xdist_stops_every_worker_before_any_start(project: Suite) -> None:
    write(project, FOUR)
    project.pytester.makepyfile(test_inline=INLINE)
    result = project.run("-n", "2", "--cekura-max-cost", "40", subprocess=True)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "more than --cekura-max-cost 40; nothing was started" in result.stderr.str()
    # Not the dashboard scenario's POST either: the price is checked before any start.
    assert project.emulator.count("POST", "run_scenarios") == 0
