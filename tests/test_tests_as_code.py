"""Tests as Code: cekura.tests.json suites collected as tests, validated, priced and run."""

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
key = "Angry caller"
outcome = "pass"
duration_s = 5

[[case]]
key = "refund-ok"
duration_s = 5
"""


def case(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "instructions": f"You call about {name}.", **fields}


def document(*cases: dict[str, Any], **top: Any) -> str:
    return json.dumps(
        {"version": "1", "suite": {"name": "Refunds"}, "scenarios": list(cases), **top}
    )


FOUR = document(
    case("Refund ok", key="refund-ok", metrics=["expected_outcome"]),
    case("Refund denied", key="refund-denied"),
    case("Angry caller"),
    case("Unknown metric", key="bad-metric", metrics=["no_such_metric"]),
)


def write(project: Suite, text: str, name: str = "cekura.tests.json") -> None:
    # pytester.makefile would make "cekura.json" of "cekura.tests" (with_suffix).
    project.pytester.path.joinpath(name).write_text(text, encoding="utf-8")


@pytest.fixture
def project(make_suite: Callable[[str], Suite]) -> Suite:
    suite = make_suite(CATALOGUE)
    suite.pytester.makeini("[pytest]\ncekura_agent = 42\n")
    return suite


def test_each_case_is_a_test_named_by_its_key(project: Suite) -> None:
    write(project, FOUR)
    project.pytester.makefile(".cekura.json", smoke=document(case("Smoke")))
    result = project.run("--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "cekura.tests.json::refund-ok",
            "cekura.tests.json::refund-denied",
            "cekura.tests.json::Angry caller",
            "cekura.tests.json::bad-metric",
            "smoke.cekura.json::Smoke",
        ]
    )
    # --collect-only never submits.
    assert project.emulator.count("POST") == 0
    selected = project.run("--collect-only", "-q", "-k", "refund")
    selected.stdout.fnmatch_lines(["*2/5 tests collected (3 deselected)*"])


def test_a_bad_case_errors_alone_naming_file_case_and_field(project: Suite) -> None:
    write(project, document(case("Fine", key="fine"), {"name": "No instructions"}))
    result = project.run("--collect-only", "-q")
    result.stdout.fnmatch_lines(["cekura.tests.json::fine", "cekura.tests.json::No instructions"])
    ran = project.run("-k", "No")
    ran.assert_outcomes(errors=1, deselected=1)
    problem = "cekura.tests.json::No instructions: scenarios[1]: Instructions are required."
    assert problem in ran.stdout.lines
    assert project.emulator.count("POST") == 0


def test_a_bad_file_is_a_collection_error_naming_the_field(project: Suite) -> None:
    bad = json.loads(document(case("Fine")))
    bad["agent_id"] = 42
    bad["version"] = "2"
    write(project, json.dumps(bad))
    result = project.run("--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "cekura.tests.json: version: Input should be '1'; "
            "agent_id: agent_id does not belong in the suite document*"
        ]
    )
    write(project, "{not json")
    broken = project.run("--collect-only", "-q")
    broken.stdout.fnmatch_lines(["*cekura.tests.json: not JSON: *line 1, column 2*"])


def test_four_cases_one_invalid_run_as_four_tests_in_one_post(project: Suite) -> None:
    write(project, FOUR)
    result = project.run("-rA")
    # refund-ok and Angry caller pass, refund-denied fails (the catalogue's [[case]]), the
    # case with an unknown metric errors with the service's message and is not sent.
    result.assert_outcomes(passed=2, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*Cekura rejected this case (validate_scenarios_json): scenarios?3?.metrics?0?: "
            "No metric with slug or id 'no_such_metric' is enabled for this agent.*"
        ]
    )
    assert project.emulator.count("POST", "run_scenarios_json") == 1
    assert project.emulator.count("POST", "validate_scenarios_json") == 2
    (started,) = [r for r in project.emulator.requests if r.path.endswith("run_scenarios_json/")]
    sent = [case["key"] for case in started.body["spec"]["scenarios"]]
    assert sent == ["refund-ok", "refund-denied", "Angry caller"]
    assert started.body["agent_id"] == 42


def test_dry_run_shows_runs_and_cost_per_test_and_starts_nothing(project: Suite) -> None:
    write(project, FOUR)
    result = project.run("--cekura-dry-run")
    result.assert_outcomes(skipped=3, errors=1)
    # The emulator's default price: 5 credits a minute for 180 s, 0.2 a metric.
    result.stdout.fnmatch_lines(
        [
            "*cekura dry run: tests as code*",
            "cekura.tests.json::refund-ok: 1 run(s), estimated 15.2 credits",
            "cekura.tests.json::refund-denied: 1 run(s), estimated 15 credits",
            "cekura.tests.json::Angry caller: 1 run(s), estimated 15 credits",
            "tests as code: 3 run(s) in 1 request(s), estimated 45.2 credits in total",
        ]
    )
    assert project.emulator.count("POST", "run_scenarios") == 0


def test_max_cost_below_the_estimate_starts_nothing(project: Suite) -> None:
    write(project, FOUR)
    result = project.run("--cekura-max-cost", "40")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*estimated 45.2 credits, more than --cekura-max-cost 40; nothing was started*"]
    )
    assert project.emulator.count("POST", "run_scenarios") == 0
    assert (
        project.run("--cekura-max-cost", "50", "-k", "not bad").ret == pytest.ExitCode.TESTS_FAILED
    )


def test_cases_and_dashboard_scenarios_mix_in_one_session(project: Suite) -> None:
    write(project, document(case("Refund ok", key="refund-ok")))
    project.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30)
        def test_dashboard(): pass
        """
    )
    result = project.run()
    result.assert_outcomes(passed=2)
    assert project.emulator.count("POST", "run_scenarios_json") == 1
    assert project.emulator.count("POST", "run_scenarios_livekit_v2") == 1


INLINE = """
import pytest

@pytest.mark.cekura_case(
    name="Refund denied",
    key="refund-denied",
    instructions="You ask for a refund 90 days after delivery.",
    expected_outcome="The agent declines politely.",
    metrics=["expected_outcome"],
    test_profile={"agent_variables": {"order_id": "ORD-1"}},
)
def test_refund_denied(): pass

@pytest.mark.cekura_case(instructions="You ask where your parcel is.")
def test_where_is_my_parcel(cekura_result):
    assert cekura_result.runs

@pytest.mark.cekura_case(name="No instructions")
def test_bad_inline(): pass

@pytest.mark.cekura_scenario(30)
def test_dashboard(): pass
"""


def test_inline_cases_file_cases_and_dashboard_scenarios_mix(project: Suite) -> None:
    write(project, document(case("Refund ok", key="refund-ok")))
    project.pytester.makepyfile(test_inline=INLINE)
    result = project.run("-rA", "--strict-markers")
    # refund-denied fails (the catalogue's [[case]]); the bad marker errors at setup with the
    # field named, before anything is sent for it.
    result.assert_outcomes(passed=3, failed=1, errors=1)
    result.stdout.fnmatch_lines(["*@pytest.mark.cekura_case: Instructions are required.*"])
    assert project.emulator.count("POST", "run_scenarios_json") == 1
    assert project.emulator.count("POST", "run_scenarios_livekit_v2") == 1
    (started,) = [r for r in project.emulator.requests if r.path.endswith("run_scenarios_json/")]
    names = [c["name"] for c in started.body["spec"]["scenarios"]]
    assert names == ["Refund ok", "Refund denied", "test_where_is_my_parcel"]
