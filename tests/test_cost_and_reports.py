"""Cost control (dry run, call cap) and the reports CI systems read (JUnit XML, JSON)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conftest import PLAYBOOK, SENTINEL_KEY, Suite

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


def test_dry_run_over_the_budget_is_refused_like_the_real_run(suite: Suite) -> None:
    suite.pytester.makepyfile(SUITE)
    dry = suite.run("--cekura-dry-run", "--cekura-max-runs=7")
    assert suite.emulator.requests == []
    real = suite.run("--cekura-max-runs=7")
    # The same exit status as the real refusal, the plan, and a line saying it is refused.
    assert dry.ret == real.ret == pytest.ExitCode.USAGE_ERROR
    dry.stdout.fnmatch_lines(
        [
            "*= cekura dry run =*",
            "request 1: *",
            "request 2: *",
            "cekura dry run: the real run would be REFUSED: 8 call(s) in 2 request(s) is more "
            "than the limit of 7 (--cekura-max-runs / cekura_max_runs); nothing was submitted",
        ]
    )
    dry.stderr.fnmatch_lines(
        ["*dry run: the real run would be refused: this session would start 8 calls in 2*"]
    )
    assert "would start 8 call(s)" not in dry.stdout.str()
    assert suite.posts() == 0


def test_dry_run_over_the_budget_is_refused_under_xdist(suite: Suite) -> None:
    suite.pytester.makepyfile(SUITE)
    result = suite.run("-n", "2", "--cekura-dry-run", "--cekura-max-runs=7", subprocess=True)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["cekura dry run: the real run would be REFUSED: 8 call(s)*"])
    assert suite.emulator.requests == []


WILSON = """
import pytest

@pytest.mark.cekura_scenario(30, frequency=10, min_success_rate=0.8)
def test_ten_of_ten(): pass
"""


def test_a_wilson_decided_verdict_names_its_rule_everywhere(suite: Suite, tmp_path: Path) -> None:
    suite.pytester.makepyfile(WILSON)
    junit, report = tmp_path / "junit.xml", tmp_path / "cekura.json"
    result = suite.run(
        "--cekura-confidence=0.95", f"--junitxml={junit}", f"--cekura-report={report}"
    )
    result.assert_outcomes(failed=1)
    # 10 of 10 at 95 % one-sided confidence: the Wilson lower bound is 78.7 %, below 80 %.
    result.stdout.fnmatch_lines(
        [
            "Cekura: 10 of 10 runs succeeded (100%); its Wilson lower bound at "
            "0.95 confidence is 78.7% and this test needs 80%.",
            "decided by: Wilson lower bound rule: 10 of 10 runs succeeded (100%); at 0.95 "
            "one-sided confidence (--cekura-confidence) the Wilson lower bound of the success "
            "rate is 78.7%, which is below min_success_rate 80%",
            "*= cekura =*",
            "FAILED  test_*.py::test_ten_of_ten · scenarios 30 · runs 10/10 (100%), Wilson lower "
            "bound 78.7% at 0.95 confidence, needs 80% (Wilson bound)",
        ]
    )
    case = next(ET.parse(junit).getroot().iter("testcase"))
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["cekura_rule"] == "wilson_lower_bound"
    assert float(props["cekura_wilson_lower_bound"] or 0) == pytest.approx(0.787, abs=0.001)
    assert props["cekura_confidence"] == "0.95"
    assert props["cekura_min_success_rate"] == "0.8"
    assert (props["cekura_runs_succeeded"], props["cekura_runs_total"]) == ("10", "10")
    assert "Wilson lower bound" in (props["cekura_reason"] or "")
    reason = json.loads(report.read_text())["tests"][0]["reason"]
    assert reason["rule"] == "wilson_lower_bound"
    assert reason["lower_bound"] == pytest.approx(0.787, abs=0.001)
    assert (reason["confidence"], reason["needed"], reason["success_rate"]) == (0.95, 0.8, 1.0)
    assert reason["early_verdict"] is False


def test_a_threshold_verdict_names_its_rule(suite: Suite, tmp_path: Path) -> None:
    suite.pytester.makepyfile(SUITE)
    report = tmp_path / "cekura.json"
    result = suite.run(f"--cekura-report={report}")
    result.stdout.fnmatch_lines(
        ["PASSED  test_*.py::test_a · scenarios 30,31 · runs 6/6 (100%), needs 100%"]
    )
    reasons = [test["reason"] for test in json.loads(report.read_text())["tests"]]
    assert {r["rule"] for r in reasons} == {"threshold"}
    assert all(r["lower_bound"] is None and r["baseline"] is None for r in reasons)


FAILING = """
import pytest

@pytest.mark.cekura_scenario(31)
def test_always_fails(): pass
"""


def test_a_baseline_recorded_failing_warns_and_compare_flags_the_pass(
    make_suite: Callable[[str], Suite], tmp_path: Path
) -> None:
    suite = make_suite(PLAYBOOK)
    suite.pytester.makepyfile(FAILING)
    baseline, report = tmp_path / "baseline.json", tmp_path / "cekura.json"
    recorded = suite.run(f"--cekura-baseline={baseline}")
    recorded.assert_outcomes(failed=1)
    warnings = [line for line in recorded.outlines if "the baseline records" in line]
    assert len(warnings) == 1
    assert "1 failing test(s): test_" in warnings[0]
    assert "::test_always_fails;" in warnings[0]
    # 0 % against a 0 % baseline: no regression, so it passes, and every output says why.
    compared = suite.run(f"--cekura-compare={baseline}", f"--cekura-report={report}")
    compared.assert_outcomes(passed=1)
    compared.stdout.fnmatch_lines(
        [
            "ok        test_*::test_always_fails: 0% -> 0% (+0 points; baseline below the 100% "
            "threshold)",
            "PASSED  test_*::test_always_fails · scenarios 31 · runs 0/1 (0%), baseline 0%, "
            "tolerance 10 points, baseline below the 100% threshold (baseline rule)",
        ]
    )
    reason = json.loads(report.read_text())["tests"][0]["reason"]
    assert reason["rule"] == "baseline_regression"
    assert reason["baseline_below_threshold"] is True
    assert "passes only because it was failing before too" in reason["text"]


def test_a_regression_verdict_names_the_baseline_rule_in_the_report(
    make_suite: Callable[[str], Suite], tmp_path: Path
) -> None:
    suite = make_suite(PLAYBOOK)
    suite.pytester.makepyfile(FAILING)
    baseline = tmp_path / "baseline.json"
    nodeid = "test_a_regression_verdict_names_the_baseline_rule_in_the_report.py"
    tests = {f"{nodeid}::test_always_fails": {"success_rate": 1.0, "runs": 1}}
    baseline.write_text(json.dumps({"pytest-cekura-baseline": 1, "tests": tests}))
    result = suite.run(f"--cekura-compare={baseline}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "decided by: baseline regression rule (--cekura-compare): the success rate fell "
            "from the baseline's 100% to 0% (-100 points), more than the tolerance of 10 points"
        ]
    )


def test_json_report_gives_each_failure_its_reason_and_ended_calls_their_state(
    make_suite: Callable[[str], Suite], tmp_path: Path
) -> None:
    suite = make_suite(PLAYBOOK)
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(31)
        def test_fails(): pass

        @pytest.mark.cekura_scenario(32)
        def test_errors(): pass

        @pytest.mark.cekura_scenario(33)
        def test_hangs(): pass
        """
    )
    report = tmp_path / "cekura.json"
    before = datetime.now(UTC)
    result = suite.run("--cekura-timeout=3", f"--cekura-report={report}")
    after = datetime.now(UTC)
    result.assert_outcomes(failed=1, errors=2)
    data = json.loads(report.read_text())
    tests = {t["nodeid"].split("::")[1]: t for t in data["tests"]}
    # The agent's failure: the expected-outcome explanation and the failing metrics.
    failed = tests["test_fails"]["runs"][0]
    assert failed["why"] == "the agent did not meet the scenario's expectations"
    assert failed["expected_outcome"]["explanation"]
    assert failed["failing_metrics"][0]["name"]
    assert tests["test_fails"]["reason"]["rule"] == "threshold"
    # Cekura's own error: the error message.
    errored = tests["test_errors"]["runs"][0]
    assert errored["error_message"]
    assert errored["why"].startswith("Cekura could not complete the call")
    # The hung call was ended at session end: not recorded as "running".
    hung = tests["test_hangs"]["runs"][0]
    assert hung["ended_by_session"] is True
    assert (hung["status"], hung["last_seen_status"]) == ("ended", "running")
    assert hung["why"].startswith("not finished by the deadline")
    assert tests["test_hangs"]["reason"]["rule"] == "undecided"
    group_runs = [run for group in data["groups"] for run in group["runs"]]
    assert next(r for r in group_runs if r["id"] == hung["id"])["status"] == "ended"
    assert [r["ended_by_session"] for r in group_runs].count(True) == 1
    # Session times: ISO 8601 in UTC, within the run, and the duration between them.
    started = datetime.fromisoformat(data["started_at"])
    finished = datetime.fromisoformat(data["finished_at"])
    assert data["started_at"].endswith("Z")
    assert data["finished_at"].endswith("Z")
    assert before - timedelta(seconds=1) <= started <= finished <= after + timedelta(seconds=1)
    assert data["duration_s"] == pytest.approx((finished - started).total_seconds(), abs=0.01)
    assert data["format_version"] == 2


def test_junit_gives_each_run_field_its_own_value(suite: Suite, tmp_path: Path) -> None:
    suite.pytester.makepyfile(SUITE)
    junit = tmp_path / "junit.xml"
    suite.run(f"--junitxml={junit}").assert_outcomes(passed=3)
    cases = {case.get("name"): case for case in ET.parse(junit).getroot().iter("testcase")}
    props = [(p.get("name"), p.get("value")) for p in cases["test_b"].iter("property")]
    runs = [json.loads(value or "") for name, value in props if name == "cekura_run_json"]
    assert len(runs) == 2
    result_id = int(dict(props)["cekura_result_id"] or 0)
    for run in runs:
        assert set(run) == {
            "id",
            "result_id",
            "scenario",
            "status",
            "success",
            "test_profile",
            "ended_by_session",
            "url",
        }
        assert (run["scenario"], run["status"], run["success"]) == (32, "completed", True)
        assert (run["result_id"], run["ended_by_session"]) == (result_id, False)
        assert run["test_profile"] == "Test profile 7"  # the emulator's name for profile 7
        assert run["url"].endswith(f"call_id={run['id']}")


def test_header_names_a_cekura_url_that_is_not_the_default(
    suite: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite.pytester.makepyfile(SUITE)
    result = suite.run("--cekura-dry-run")
    result.stdout.fnmatch_lines([f"cekura: {suite.emulator.url}, poll every *s, timeout *s"])
    # Cekura's own API is named only at -v.
    monkeypatch.delenv("CEKURA_API_URL")
    default = suite.run("--cekura-dry-run")
    assert not [line for line in default.outlines if line.startswith("cekura: http")]
    verbose = suite.run("--cekura-dry-run", "-v")
    verbose.stdout.fnmatch_lines(["cekura: https://*cekura.ai*, poll every *"])
