"""--cekura-baseline writes per-test success rates; --cekura-compare fails only regressions."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import Suite

SUITE = """
import pytest

@pytest.mark.cekura_scenario(34, frequency=10, min_success_rate=0.9)
def test_coin(): pass

@pytest.mark.cekura_scenario(30, frequency=2)
def test_steady(): pass
"""
FLAKY = '[[scenario]]\nid = 34\noutcome = "flaky"\nsuccess_probability = 0.5\n'


@pytest.fixture
def flaky(make_suite: Callable[[str], Suite]) -> Suite:
    suite = make_suite(FLAKY)
    suite.pytester.makepyfile(test_agent=SUITE)
    return suite


def write(path: Path, rates: dict[str, float]) -> None:
    tests = {nodeid: {"success_rate": rate, "runs": 10} for nodeid, rate in rates.items()}
    path.write_text(json.dumps({"pytest-cekura-baseline": 1, "tests": tests}))


def test_baseline_file_records_each_tests_success_rate(flaky: Suite, tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    flaky.run(f"--cekura-baseline={path}").assert_outcomes(failed=1, passed=1)
    data = json.loads(path.read_text())
    assert data["pytest-cekura-baseline"] == 1
    coin = data["tests"]["test_agent.py::test_coin"]
    assert 0 < coin["success_rate"] < 0.9
    assert coin["runs"] == 10
    assert data["tests"]["test_agent.py::test_steady"] == {"success_rate": 1.0, "runs": 2}


def test_compare_passes_a_test_that_did_not_regress(flaky: Suite, tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    flaky.run(f"--cekura-baseline={path}")
    result = flaky.run(f"--cekura-compare={path}")
    # The emulator's coin lands 5/10 then 6/10 (deterministically): below the 90% threshold,
    # but no worse than the baseline, so the test passes.
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*= cekura baseline comparison =*",
            "ok        test_agent.py::test_coin: 50% -> 60% (+10 points)",
            "ok        test_agent.py::test_steady: 100% -> 100% (+0 points)",
        ]
    )


def test_compare_fails_a_regression_beyond_the_tolerance(flaky: Suite, tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    write(path, {"test_agent.py::test_coin": 0.95})
    result = flaky.run(f"--cekura-compare={path}", "--cekura-tolerance=0.2")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        [
            "*runs succeeded (*); the baseline is 95% and may fall by at most 20 points.",
            "REGRESSED test_agent.py::test_coin: 95% -> *% (-* points)",
            "new       test_agent.py::test_steady: 100% (not in the baseline)",
        ]
    )


def test_compare_within_the_tolerance_passes(flaky: Suite, tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    write(path, {"test_agent.py::test_coin": 0.95})
    flaky.run(f"--cekura-compare={path}", "--cekura-tolerance=0.6").assert_outcomes(passed=2)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "cannot read baseline"),
        ('{"tests": {}}', "is not a pytest-cekura baseline"),
        (
            '{"pytest-cekura-baseline": 1, "tests": {"t": {"success_rate": 2}}}',
            "'t' has success_rate 2; expected a fraction from 0 to 1",
        ),
    ],
)
def test_bad_baseline_file_is_one_clear_error(
    flaky: Suite, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(content)
    result = flaky.run(f"--cekura-compare={path}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.str().count(message) == 1
