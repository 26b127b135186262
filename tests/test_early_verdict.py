"""--cekura-early-verdict and --cekura-confidence: decide as soon as the outcome is certain."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest

from conftest import Suite
from pytest_cekura.models import Run
from pytest_cekura.outcome import Outcome, judge, wilson_lower_bound
from pytest_cekura.poller import RunState

CATALOGUE = """
[[scenario]]
id = 31
outcome = "fail"
duration_s = 10

[[scenario]]
id = 50
name = "A long call"
duration_s = 3000

[[scenario]]
id = 51
name = "An endless call"
duration_s = 600000
"""


@pytest.fixture
def early(make_suite: Callable[[str], Suite]) -> Suite:
    return make_suite(CATALOGUE)


def test_a_decided_failure_ends_the_remaining_calls(early: Suite) -> None:
    early.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(31, 51, frequency=2)
        def test_doomed(): pass
        """
    )
    junit, report = early.pytester.path / "junit.xml", early.pytester.path / "cekura.json"
    result = early.run("--cekura-early-verdict", f"--junitxml={junit}", f"--cekura-report={report}")
    result.assert_outcomes(failed=1)
    # The ended calls read "ended" in JUnit and the JSON report, not the "running" last seen.
    props = [(p.get("name"), p.get("value")) for p in ET.parse(junit).getroot().iter("property")]
    runs = [json.loads(value or "") for name, value in props if name == "cekura_run_json"]
    ended = sorted((run["status"], run["ended_by_session"]) for run in runs)
    assert ended == [("completed", False)] * 2 + [("ended", True)] * 2
    assert ("cekura_ended_early", "2") in props
    test = json.loads(report.read_text())["tests"][0]
    assert test["reason"]["early_verdict"] is True
    assert sorted(run["status"] for run in test["runs"]) == ["completed"] * 2 + ["ended"] * 2
    last_seen = {r["last_seen_status"] for r in test["runs"] if r["ended_by_session"]}
    assert last_seen <= {"pending", "queued", "running"}  # what the poller saw last
    # The 600-second calls were not waited for (a bound with a wide margin for a busy machine:
    # the session itself takes well under a second).
    assert result.duration < 120
    result.stdout.fnmatch_lines(
        [
            "decided by: threshold rule: 0 of 4 runs succeeded (0%), which is below "
            "min_success_rate 100%; early verdict (--cekura-early-verdict): decided before "
            "every run finished, and 2 call(s) that could not change it were ended",
            '*scenario 51 "An endless call" · *, not scored',
            "*why: still going when the verdict was already decided; the call was ended*",
            "cekura: early verdicts ended 2 call(s) that could not change them",
        ]
    )
    assert early.emulator.count("POST", "end_call") == 2
    statuses = {run["scenario"]: run["status"] for run in early.emulator.runs}
    assert statuses[51] == "cancelled"


def test_a_decided_pass_ends_the_remaining_calls(early: Suite) -> None:
    early.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30, 50, frequency=2, min_success_rate=0.5)
        def test_good_enough(): pass
        """
    )
    result = early.run("--cekura-early-verdict")
    result.assert_outcomes(passed=1)
    assert early.emulator.count("POST", "end_call") == 2


def test_runs_another_test_still_needs_are_not_ended(early: Suite) -> None:
    early.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(31, 50)
        def test_first(): pass

        @pytest.mark.cekura_scenario(50)
        def test_second(cekura_result):
            assert cekura_result.runs[0].status == "completed"
        """
    )
    result = early.run("--cekura-early-verdict")
    result.assert_outcomes(failed=1, passed=1)
    assert early.emulator.count("POST", "end_call") == 0


def test_without_the_option_every_call_is_waited_for(early: Suite) -> None:
    early.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(31, 50)
        def test_doomed(): pass
        """
    )
    early.run().assert_outcomes(failed=1)
    assert early.emulator.count("POST", "end_call") == 0
    assert {run["status"] for run in early.emulator.runs} == {"completed"}


def test_wilson_lower_bound_values() -> None:
    assert wilson_lower_bound(10, 10, 0.95) == pytest.approx(0.7871, abs=1e-3)
    assert wilson_lower_bound(0, 10, 0.95) == 0.0
    assert wilson_lower_bound(45, 50, 0.95) == pytest.approx(0.8085, abs=1e-3)
    assert wilson_lower_bound(0, 0, 0.95) == 0.0


def completed(n_ok: int, n_bad: int) -> list[RunState]:
    runs = [(True, i) for i in range(n_ok)] + [(False, n_ok + i) for i in range(n_bad)]
    return [
        RunState(Run.model_validate({"id": i, "status": "completed", "success": ok}))
        for ok, i in runs
    ]


def test_confidence_gate_is_stricter_than_the_point_estimate() -> None:
    # 9 of 10 is 90% >= 80%, but with 10 calls the evidence for "at least 80%" is too thin.
    assert judge(completed(9, 1), 0.8).outcome is Outcome.PASSED
    assert judge(completed(9, 1), 0.8, confidence=0.95).outcome is Outcome.FAILED
    assert judge(completed(95, 5), 0.8, confidence=0.95).outcome is Outcome.PASSED


def test_confidence_option_reaches_the_verdict(early: Suite) -> None:
    early.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30, frequency=10, min_success_rate=0.8)
        def test_gate(): pass
        """
    )
    early.run().assert_outcomes(passed=1)
    early.run("--cekura-confidence=0.95").assert_outcomes(failed=1)
    bad = early.run("--cekura-confidence=1.5")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
