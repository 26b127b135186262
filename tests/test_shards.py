"""One suite split over CI shards: each shard submits only its tests, and
``python -m pytest_cekura.report merge`` gives one summary and one exit status (issue #17
item 6)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import PLAYBOOK, Suite
from pytest_cekura.report_merge import EXIT_FAILED, EXIT_NO_TESTS, EXIT_PASSED, EXIT_USAGE, main

SUITE = """
import pytest

@pytest.mark.cekura_scenario(30)
def test_refill(): pass

@pytest.mark.cekura_scenario(31)
def test_billing(): pass

@pytest.mark.cekura_scenario(32)
def test_no_join(): pass

@pytest.mark.cekura_scenario(30, 31, frequency=2)
def test_mixed(): pass
"""
#: What one run of the whole suite gives: (outcome, runs succeeded, runs).
EXPECTED = {
    "test_voice.py::test_refill": ("passed", 1, 1),
    "test_voice.py::test_billing": ("failed", 0, 1),
    "test_voice.py::test_no_join": ("error", 0, 1),
    "test_voice.py::test_mixed": ("failed", 2, 4),
}
#: Each test's scenarios, to tell from the request log which tests a shard submitted.
SCENARIOS = {"test_refill": {30}, "test_billing": {31}, "test_no_join": {32}}


@pytest.fixture
def shard_suite(make_suite: Callable[[str], Suite]) -> Suite:
    suite = make_suite(PLAYBOOK)
    suite.pytester.makepyfile(test_voice=SUITE)
    return suite


def run_shard(suite: Suite, report: Path, *args: str) -> set[int]:
    """Run one shard; the scenarios its run-starting requests asked for."""
    before = len(suite.emulator.requests)
    suite.run(f"--cekura-report={report}", *args)
    posts = [r for r in suite.emulator.requests[before:] if r.method == "POST"]
    return {item["scenario"] for r in posts for item in r.body["scenarios"]}


def merge_cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest_cekura.report", "merge", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def counts(report: dict[str, Any]) -> dict[str, tuple[str, int | None, int | None]]:
    return {t["nodeid"]: (t["outcome"], t["succeeded"], t["total"]) for t in report["tests"]}


def comparable(markdown: str) -> list[str]:
    """The summary's lines with the ids that differ between sessions taken out."""
    lines = [line for line in markdown.splitlines() if not line.startswith("Cekura result(s)")]
    return sorted(re.sub(r"\b(9\d{4}|5\d{3})\b", "N", line) for line in lines)


def test_shards_by_k_and_node_ids_submit_only_their_tests_and_merge_to_one_run(
    shard_suite: Suite, tmp_path: Path
) -> None:
    single = tmp_path / "single.json"
    single_md = tmp_path / "single.md"
    run_shard(shard_suite, single, f"--cekura-summary-md={single_md}")
    first, second = tmp_path / "shard-1.json", tmp_path / "shard-2.json"
    assert run_shard(shard_suite, first, "-k", "refill or billing") == {30, 31}
    ids = ["test_voice.py::test_no_join", "test_voice.py::test_mixed"]
    assert run_shard(shard_suite, second, *ids) == {30, 31, 32}

    merged, merged_md = tmp_path / "merged.json", tmp_path / "merged.md"
    done = merge_cli(str(first), str(second), "--md", str(merged_md), "--json", str(merged))
    assert done.returncode == EXIT_FAILED, done.stderr  # test_billing and others failed
    assert "2 shard report(s), 4 Cekura test(s): 1 error, 2 failed, 1 passed" in done.stdout
    whole = json.loads(single.read_text())
    both = json.loads(merged.read_text())
    assert counts(both) == counts(whole) == EXPECTED
    assert sum(len(group["runs"]) for group in both["groups"]) == 7
    assert [shard["tests"] for shard in both["shards"]] == [2, 2]
    assert comparable(merged_md.read_text()) == comparable(single_md.read_text())


def test_pytest_split_shards_merge_to_one_run(shard_suite: Suite, tmp_path: Path) -> None:
    shards = [tmp_path / f"group-{group}.json" for group in (1, 2)]
    asked = [
        run_shard(shard_suite, path, "--splits=2", f"--group={group}")
        for group, path in enumerate(shards, start=1)
    ]
    tests = [[t["nodeid"] for t in json.loads(p.read_text())["tests"]] for p in shards]
    assert [len(found) for found in tests] == [2, 2]
    for found, scenarios in zip(tests, asked, strict=True):
        named = [SCENARIOS.get(nodeid.split("::")[1], {30, 31}) for nodeid in found]
        assert scenarios == set().union(*named)  # nothing of the other shard was submitted
    merged = tmp_path / "merged.json"
    assert main(["merge", *map(str, shards), "--json", str(merged)]) == EXIT_FAILED
    assert counts(json.loads(merged.read_text())) == EXPECTED  # as the single run above


def report(tmp_path: Path, name: str, *outcomes: str, version: object = 2) -> str:
    tests = [
        {
            "nodeid": f"test_{name}.py::test_{i}",
            "scenario_ids": [30],
            "min_success_rate": 1.0,
            "succeeded": 1 if outcome == "passed" else 0,
            "total": 1,
            "outcome": outcome,
            "runs": [],
            "problems": [],
        }
        for i, outcome in enumerate(outcomes)
    ]
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"format_version": version, "session_id": name, "tests": tests}))
    return str(path)


def test_merge_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    md = tmp_path / "merged.md"
    ok = report(tmp_path, "a", "passed", "skipped")
    assert main(["merge", ok, report(tmp_path, "b", "passed"), "--md", str(md)]) == EXIT_PASSED
    assert md.read_text().startswith("## pytest-cekura: 2 passed, 1 skipped\n")
    assert main(["merge", ok, report(tmp_path, "c", "error")]) == EXIT_FAILED
    assert main(["merge", report(tmp_path, "d")]) == EXIT_NO_TESTS
    capsys.readouterr()


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda p: str(p / "missing.json"), "no such file. Did that shard stop before"),
        (lambda p: report(p, "old", "passed", version=1), "format_version 1, this"),
        (lambda p: report(p, "a", "passed"), "a.json: that file was given twice: give each"),
    ],
    ids=["missing", "old-format", "same-file-twice"],
)
def test_shards_that_cannot_be_merged(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make: Callable[[Path], str],
    said: str,
) -> None:
    path = make(tmp_path)
    twice = [path, path] if "twice" in said else [path]
    assert main(["merge", *twice]) == EXIT_USAGE
    assert said in capsys.readouterr().err


def test_a_test_in_two_shards_cannot_be_merged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = report(tmp_path, "a", "passed")
    (tmp_path / "other").mkdir()
    second = report(tmp_path / "other", "a", "passed")  # another shard that ran the same test
    assert main(["merge", first, second]) == EXIT_USAGE
    assert capsys.readouterr().err == (
        f"pytest-cekura merge: test_a.py::test_0 is in {first} and in {second}: each test must "
        "run in one shard (check the split: -k expressions or node ids that overlap)\n"
    )
