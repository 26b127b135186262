"""Cost control (dry run, call cap) and the reports CI systems read (JUnit XML, JSON)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import SENTINEL_KEY, Suite

SUITE = """
import pytest

@pytest.mark.cekura_scenario(30, 31, frequency=3)
def test_a(): pass

@pytest.mark.cekura_scenario(32, frequency=2, test_profile=7)
def test_b(): pass

def test_plain(): pass
"""


def test_dry_run_shows_the_plan_and_starts_nothing(suite: Suite) -> None:
    suite.pytester.makepyfile(SUITE)
    result = suite.run("--cekura-dry-run")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "*= cekura dry run =*",
            "request 1: livekit, each scenario's own agent: scenarios 30, 31 x 3 = 6 call(s)",
            "request 2: livekit, each scenario's own agent, test profile 7: scenarios 32 x 2"
            " = 2 call(s)",
            "cekura dry run: would start 8 call(s) in 2 request(s); nothing was submitted",
        ]
    )
    assert suite.emulator.requests == []


def test_dry_run_needs_no_api_key(suite: Suite, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CEKURA_API_KEY")
    suite.pytester.makepyfile(SUITE)
    suite.run("--cekura-dry-run").assert_outcomes(passed=1, skipped=2)


def test_max_runs_refuses_a_session_over_the_cap(suite: Suite) -> None:
    suite.pytester.makepyfile(SUITE)
    result = suite.run("--cekura-max-runs=7")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*would start 8 calls in 2 request(s), more than the limit of 7 (--cekura-max-runs*"]
    )
    assert suite.posts() == 0


def test_max_runs_allows_a_session_within_the_cap(suite: Suite) -> None:
    suite.pytester.makepyfile(SUITE)
    suite.pytester.makeini("[pytest]\ncekura_max_runs = 8\n")
    suite.run().assert_outcomes(passed=3)
    assert suite.posts() == 2


def test_junit_xml_carries_cekura_properties(suite: Suite, tmp_path: Path) -> None:
    suite.pytester.makepyfile(SUITE)
    junit = tmp_path / "junit.xml"
    suite.run(f"--junitxml={junit}").assert_outcomes(passed=3)
    cases = {case.get("name"): case for case in ET.parse(junit).getroot().iter("testcase")}
    props = [(p.get("name"), p.get("value")) for p in cases["test_a"].iter("property")]
    names = [name for name, _ in props]
    assert names.count("cekura_run") == 6
    assert ("cekura_success_rate", "1.0") in props
    result_id = dict(props)["cekura_result_id"]
    run_values = [value or "" for name, value in props if name == "cekura_run"]
    assert all(f"/1/results/{result_id}?call_id=" in value for value in run_values)
    assert all("status=completed success=True" in value for value in run_values)
    assert all(value.startswith(value.split()[0] + " scenario_id=3") for value in run_values)
    assert not list(cases["test_plain"].iter("property"))


def test_json_report_lists_groups_results_runs_and_tests(suite: Suite, tmp_path: Path) -> None:
    suite.pytester.makepyfile(SUITE)
    path = tmp_path / "cekura.json"
    suite.run(f"--cekura-report={path}").assert_outcomes(passed=3)
    text = path.read_text()
    assert SENTINEL_KEY not in text
    report = json.loads(text)
    assert report["api"] == suite.emulator.url
    assert report["requests"]["POST start runs"] == 2
    assert [len(group["runs"]) for group in report["groups"]] == [6, 2]
    assert all(group["name"].startswith("pytest-cekura ") for group in report["groups"])
    tests = {t["nodeid"].split("::")[1]: t for t in report["tests"]}
    assert set(tests) == {"test_a", "test_b"}
    run = tests["test_b"]["runs"][0]
    assert run["status"] == "completed"
    assert run["success"] is True
    assert run["job_metadata"] == {"scenario_id": 32, "run_id": run["id"]}
    assert run["url"].endswith(f"?call_id={run['id']}")


def test_report_path_in_a_missing_folder_is_a_clear_error(suite: Suite) -> None:
    suite.pytester.makepyfile(SUITE)
    result = suite.run("--cekura-report=nowhere/cekura.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*the folder 'nowhere' does not exist*"])


def test_quiet_shows_only_the_totals(suite: Suite) -> None:
    suite.pytester.makepyfile(SUITE)
    result = suite.run("-q")
    result.stdout.fnmatch_lines(["cekura: 2 test(s) (2 passed) over 8 run(s); API requests: *"])
    result.stdout.no_fnmatch_line("PASSED  *")
    assert "cekura:" not in suite.run("-qq").stdout.str()
