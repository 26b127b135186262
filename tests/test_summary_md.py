"""The Markdown summary: GitHub's job summary and --cekura-summary-md (issue #17 item 4)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import Suite
from pytest_cekura.report import SummaryRow
from pytest_cekura.summary_md import (
    MAX_LINKS,
    cell,
    github_step_summary,
    markdown_summary,
    write_summaries,
)

SUITE = """
import pytest

@pytest.mark.cekura_scenario(30)
def test_good(): pass

@pytest.mark.cekura_scenario(31)
def test_bad(): pass

def test_plain(): pass
"""


def row(nodeid: str, outcome: str = "passed", **extra: Any) -> SummaryRow:
    ok = outcome == "passed"
    fields: dict[str, Any] = {
        "scenario_ids": (30,),
        "min_success_rate": 1.0,
        "succeeded": 1 if ok else 0,
        "total": 1,
        "outcome": outcome,
        "result_id": 5000,
        "runs": (
            {
                "id": 7 if ok else 8,
                "success": ok,
                "status": "completed",
                "scenario": 30,
                "scenario_name": "Refill",
                "url": "https://dashboard.example/r/8",
                "why": None if ok else "expected outcome not met",
            },
        ),
        "reason": {"text": "1 of 1 runs succeeded (100%); needs 100%"}
        if ok
        else {"text": "0 of 1 runs succeeded (0%); needs 100%"},
    }
    fields.update(extra)
    return SummaryRow(nodeid=nodeid, **fields)


def table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| `")]


# -- the Markdown itself --------------------------------------------------------------------


def test_one_test_is_one_open_table() -> None:
    text = markdown_summary([row("t.py::test_bad", "failed")], dispatch_name="a-pytest-1")
    assert text.startswith("## pytest-cekura: 1 failed\n")
    assert "| Test | Verdict | Runs passed | Reason |" in text
    assert table_rows(text) == [
        "| `t.py::test_bad` | ❌ failed | 0/1 | 0 of 1 runs succeeded (0%); needs 100%; "
        "run 8: expected outcome not met |"
    ]
    assert "<details>" not in text
    assert "- `t.py::test_bad`: [run 8](https://dashboard.example/r/8) · Refill · completed" in text
    assert "`a-pytest-1`" in text


def test_five_hundred_tests_fold_the_passed_ones() -> None:
    rows = [row(f"t.py::test_{n}") for n in range(497)]
    rows += [row(f"t.py::test_bad_{n}", "failed", runs=()) for n in range(3)]
    text = markdown_summary(rows)
    assert text.startswith("## pytest-cekura: 3 failed, 497 passed\n")
    before, details = text.split("<details><summary>497 passed test(s)</summary>")
    assert len(table_rows(before)) == 3  # failures first, in the open
    assert all("failed" in line for line in table_rows(before))
    assert len(table_rows(details)) == 497
    assert "\n\n</details>\n" in details
    # A blank line after <summary> and before </details>: GitHub renders the table inside.
    assert "</summary>\n\n| Test |" in text
    assert "\n\n</details>" in text


def test_many_passed_and_nothing_failed() -> None:
    text = markdown_summary([row(f"t.py::test_{n}") for n in range(20)])
    assert "Every Cekura test passed." in text
    assert "Failing runs" not in text


def test_failing_run_links_are_capped() -> None:
    rows = [row(f"t.py::test_{n}", "failed") for n in range(MAX_LINKS + 7)]
    text = markdown_summary(rows)
    assert len(re.findall(r"^- `t\.py::test_\d+`: \[run 8\]", text, re.M)) == MAX_LINKS
    assert "- … and 7 more (see the JSON report)" in text


def test_reasons_cannot_break_the_table() -> None:
    reason = {"text": "a | b\nsecond line <script>"}
    text = markdown_summary([row("t.py::test_[a|b]", "failed", reason=reason, runs=())])
    (line,) = table_rows(text)
    assert line == (
        "| `t.py::test_[a\\|b]` | ❌ failed | 0/1 | a \\| b<br>second line &lt;script&gt; |"
    )
    assert len(re.findall(r"(?<!\\)\|", line)) == 5  # four cells, no more


def test_long_reasons_are_cut() -> None:
    assert len(cell("x" * 1000)) == 300
    assert cell("x" * 1000).endswith("…")


def test_no_tests() -> None:
    assert "No Cekura test ran." in markdown_summary([])


@pytest.mark.parametrize(
    ("env", "found"),
    [
        ({"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": "/x/summary.md"}, True),
        ({"GITHUB_ACTIONS": "true"}, False),
        ({"GITHUB_STEP_SUMMARY": "/x/summary.md"}, False),
        ({"GITHUB_ACTIONS": "false", "GITHUB_STEP_SUMMARY": "/x/summary.md"}, False),
    ],
)
def test_github_step_summary_only_under_github_actions(env: dict[str, str], found: bool) -> None:
    assert github_step_summary(env) == (Path("/x/summary.md") if found else None)


def test_step_summary_is_appended_not_replaced(tmp_path: Path) -> None:
    summary = tmp_path / "step.md"
    summary.write_text("## an earlier step\n")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    write_summaries([row("t.py::test_good")], path=None, step_summary=True, env=env)
    text = summary.read_text()
    assert text.startswith("## an earlier step\n## pytest-cekura: 1 passed")


# -- from a pytest run ----------------------------------------------------------------------


@pytest.fixture
def md_suite(make_suite: Callable[[str], Suite]) -> Suite:
    suite = make_suite('[[scenario]]\nid = 31\noutcome = "fail"\n')
    suite.pytester.makepyfile(SUITE)
    return suite


def test_github_actions_gets_the_table_in_the_job_summary(
    md_suite: Suite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    md_suite.run().assert_outcomes(passed=2, failed=1)
    text = summary.read_text()
    assert "## pytest-cekura: 1 failed, 1 passed" in text
    rows = table_rows(text)
    assert len(rows) == 2  # only Cekura tests
    bad = next(line for line in rows if "test_bad" in line)
    assert "❌ failed | 0/1 |" in bad
    assert "below min_success_rate 100%" in bad
    good = next(line for line in rows if "test_good" in line)
    assert "✅ passed | 1/1 |" in good
    assert re.search(r"\[run \d+\]\(http", text)  # the failing run's link


def test_no_step_summary_flag_opts_out(
    md_suite: Suite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    md_suite.run("--cekura-no-step-summary").assert_outcomes(passed=2, failed=1)
    assert not summary.exists()


def test_outside_github_actions_no_job_summary(
    md_suite: Suite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    md_suite.run().assert_outcomes(passed=2, failed=1)
    assert not summary.exists()


def test_summary_md_writes_the_same_markdown_anywhere(
    md_suite: Suite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "step_summary.md"
    comment = tmp_path / "comment.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    md_suite.run(f"--cekura-summary-md={comment}").assert_outcomes(passed=2, failed=1)
    assert comment.read_text() + "\n" == summary.read_text()


def test_summary_md_without_cekura_tests_says_so(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makepyfile("def test_plain(): pass")
    comment = tmp_path / "comment.md"
    pytester.runpytest(f"--cekura-summary-md={comment}").assert_outcomes(passed=1)
    assert "No Cekura test ran." in comment.read_text()


def test_xdist_controller_writes_the_job_summary_once(
    md_suite: Suite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = md_suite.run("-n", "2", subprocess=True)
    result.assert_outcomes(passed=2, failed=1)
    text = summary.read_text()
    assert text.count("## pytest-cekura:") == 1
    assert len(table_rows(text)) == 2
