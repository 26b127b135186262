"""The shipped examples run as their README says, on the emulator, and never rot."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "conftest_examples"


@pytest.fixture(autouse=True)
def no_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CEKURA_API_KEY", raising=False)  # the emulator needs none


def run_examples(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(str(EXAMPLES), "-p", "no:cacheprovider", *args)


def test_examples_pass_on_the_emulator(pytester: pytest.Pytester) -> None:
    result = run_examples(pytester, "--cekura-emulator")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=10, deselected=3)
    result.stdout.fnmatch_lines(
        ["*= cekura =*", "cekura: 10 test(s) (10 passed) over 17 run(s); API requests: 7 POST *"]
    )


def test_demo_failures_show_their_reports(pytester: pytest.Pytester) -> None:
    result = run_examples(pytester, "--cekura-emulator", "--run-demo-failures")
    result.assert_outcomes(passed=10, failed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*Cekura: 0 of 2 runs succeeded (0%); this test needs 100%.",
            '*scenario 33 "Cancel an order after pickup" · completed, not successful',
            "*link: http://127.0.0.1:*/_emulator/dashboard/results/*",
        ]
    )
    result.stdout.fnmatch_lines(["*scenario 39 does not exist in your Cekura project*"])
    # A metric gate broken while every call succeeded, with the slowest runs and their links.
    result.stdout.fnmatch_lines(
        [
            "*Cekura: 3 of 3 runs succeeded (100%), but it broke the metric gate "
            "Latency: p95 <= 1200.",
            "  !! Latency p95 * over 3 run(s) breaks the gate p95 <= 1200",
            "       run * · scenario 34 · Latency * · http://127.0.0.1:*/_emulator/dashboard/*",
        ]
    )


def test_dry_run_needs_neither_key_nor_emulator(pytester: pytest.Pytester) -> None:
    result = run_examples(pytester, "--cekura-dry-run")
    result.assert_outcomes(skipped=10, deselected=3)
    result.stdout.fnmatch_lines(["cekura dry run: would start 17 call(s) in 7 request(s);*"])


def test_call_cap(pytester: pytest.Pytester) -> None:
    result = run_examples(pytester, "--cekura-emulator", "--cekura-max-runs", "15")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*would start 17 calls in 7 request(s), more than the limit*"])


def test_ci_reports(pytester: pytest.Pytester, tmp_path: Path) -> None:
    report = tmp_path / "cekura.json"
    junit = tmp_path / "junit.xml"
    run_examples(pytester, "--cekura-emulator", f"--junitxml={junit}", f"--cekura-report={report}")
    assert len(json.loads(report.read_text())["groups"]) == 7
    assert "cekura_result_id" in junit.read_text()


def test_parallel(pytester: pytest.Pytester) -> None:
    result = run_examples(pytester, "--cekura-emulator", "-n", "2")
    result.assert_outcomes(passed=10)
    result.stdout.fnmatch_lines(
        ["cekura: 10 test(s) (10 passed) over 17 run(s); API requests: 7 POST *"]
    )


def test_agent_worker(pytester: pytest.Pytester) -> None:
    worker = shlex.join([sys.executable, str(EXAMPLES / "fake_agent_worker.py")])
    result = run_examples(pytester, "--cekura-emulator", f"--cekura-agent-cmd={worker}")
    result.assert_outcomes(passed=10, deselected=3)
    result.stdout.fnmatch_lines(["cekura: agent worker output goes to *"])
