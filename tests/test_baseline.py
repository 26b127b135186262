"""--cekura-baseline writes per-test success rates; --cekura-compare fails only regressions."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import Suite
from pytest_cekura.baseline import check_writable

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
    recorded = flaky.run(f"--cekura-baseline={path}")
    # Recording a failing test warns, in one line naming it.
    recorded.stdout.fnmatch_lines(
        ["pytest-cekura warning: the baseline records 1 failing test(s): *::test_coin;*"]
    )
    result = flaky.run(f"--cekura-compare={path}")
    # The emulator's coin lands 5/10 then 6/10 (deterministically): below the 90% threshold,
    # but no worse than the baseline, so the test passes, flagged as passing only against a
    # baseline that was failing too (docs/saving.md).
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*= cekura baseline comparison =*",
            "ok        test_agent.py::test_coin: 50% -> 60% "
            "(+10 points; baseline below the 90% threshold)",
            "ok        test_agent.py::test_steady: 100% -> 100% (+0 points)",
            "*= cekura =*",
            "PASSED  test_agent.py::test_coin * runs 6/10 (60%), baseline 50%, tolerance 10 "
            "points, baseline below the 90% threshold (baseline rule)",
        ]
    )
    assert "warning: the baseline records" not in result.stdout.str()


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


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"pytest-cekura-baseline": 1, "tests": []}', '"tests" is a list; expected an object'),
        ('{"pytest-cekura-baseline": 1, "tests": "t"}', '"tests" is a string; expected an object'),
        ('{"pytest-cekura-baseline": 1, "tests": null}', '"tests" is null; expected an object'),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply to be one"),
    ],
    ids=["list", "string", "null", "deeply-nested"],
)
def test_malformed_baseline_is_one_usage_error_before_anything_starts(
    flaky: Suite, tmp_path: Path, content: str, message: str
) -> None:
    """Issue #14 item 15: these were INTERNALERRORs."""
    path = tmp_path / "baseline.json"
    path.write_text(content)
    result = flaky.run(f"--cekura-compare={path}", subprocess=True)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.str().count("ERROR: pytest-cekura: ") == 1
    assert result.stderr.str().count(message) == 1
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert flaky.emulator.requests == []


@pytest.mark.parametrize("option", ["--cekura-report", "--cekura-baseline"])
@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("folder", "='folder': it is a folder; choose a file path you can write to"),
        # Permission bits do not stop root (these tests may run as root); /proc does.
        ("/proc/version", " / {name}='/proc/version': it cannot be written (Invalid argument)"),
        (
            "/proc/cekura-report.json",
            " / {name}='/proc/cekura-report.json': it cannot be written (No such file or "
            "directory)",
        ),
    ],
    ids=["folder", "read-only-file", "read-only-folder"],
)
def test_unwritable_report_or_baseline_path_is_refused_before_any_call(
    flaky: Suite, option: str, target: str, reason: str
) -> None:
    """Issue #14 item 15: these were accepted, then crashed after the calls were paid for."""
    (flaky.pytester.path / "folder").mkdir()
    result = flaky.run(f"{option}={target}", subprocess=True)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    name = option.removeprefix("--").replace("-", "_")
    expected = f"ERROR: {option}{reason.format(name=name)}"
    assert result.stderr.str().count("ERROR: ") == 1
    assert expected in result.stderr.str()
    assert flaky.emulator.requests == []


def test_checking_an_output_path_neither_leaves_a_file_nor_truncates_one(tmp_path: Path) -> None:
    fresh, kept = tmp_path / "fresh.json", tmp_path / "kept.json"
    kept.write_text("last week's baseline")
    check_writable(fresh, "--cekura-report")
    check_writable(kept, "--cekura-baseline")
    assert not fresh.exists()
    assert kept.read_text() == "last week's baseline"


def test_report_that_cannot_be_written_at_the_end_keeps_the_summary(suite: Suite) -> None:
    """The folder was there at start but is gone at the end: one line, and the outcomes and
    the summary are kept (an OSError here was an INTERNALERROR that lost them)."""
    suite.pytester.makepyfile(
        """
        import shutil
        import pytest

        @pytest.mark.cekura_scenario(30)
        def test_a(): pass

        def test_z_removes_the_folder():
            shutil.rmtree("out")
        """
    )
    (suite.pytester.path / "out").mkdir()
    result = suite.run("--cekura-report=out/report.json", "-p", "no:randomly", subprocess=True)
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(
        [
            "pytest-cekura: could not write *out/report.json: No such file or directory",
            "cekura: 1 test(s) (1 passed) over 1 run(s)*",
        ]
    )
