"""Report paths: two reports given one file are refused before anything is started.

Found by a stranger's review: ``--cekura-html=r.html --html=r.html`` (pytest-html) or
``--cekura-html=x --cekura-report=x`` ran the whole paid session, then the last report written
silently replaced the other.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import Suite

TEST = """
import pytest

@pytest.mark.cekura_scenario(30)
def test_a(): pass
"""


@pytest.mark.parametrize(
    ("first", "second", "named"),
    [
        (
            "--cekura-html={path}",
            "--cekura-report={path}",
            "--cekura-report / cekura_report and --cekura-html / cekura_html",
        ),
        ("--cekura-html={path}", "--html={path}", "--cekura-html / cekura_html and --html"),
        ("--cekura-summary-md={path}", "--junitxml={path}", "cekura_summary_md and --junitxml"),
        ("--cekura-report={path}", "--junitxml=./{relative}", "cekura_report and --junitxml"),
    ],
    ids=["html-and-json", "pytest-html", "markdown-and-junit", "same-file-spelled-twice"],
)
def test_two_reports_on_one_path_are_one_usage_error_before_any_request(
    suite: Suite, first: str, second: str, named: str
) -> None:
    suite.pytester.makepyfile(TEST)
    path = suite.pytester.path / "report.out"
    args = [arg.format(path=path, relative=path.name) for arg in (first, second)]
    result = suite.run(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.str().count("ERROR: ") == 1, result.stderr.str()
    assert named in result.stderr.str()
    assert f"both write '{path}'; give each report its own file" in result.stderr.str()
    assert suite.emulator.requests == []
    assert not path.exists()


def test_distinct_report_paths_are_all_written(suite: Suite, tmp_path: Path) -> None:
    suite.pytester.makepyfile(TEST)
    paths = [tmp_path / name for name in ("r.json", "r.html", "r.md", "j.xml")]
    result = suite.run(
        f"--cekura-report={paths[0]}",
        f"--cekura-html={paths[1]}",
        f"--cekura-summary-md={paths[2]}",
        f"--junitxml={paths[3]}",
    )
    result.assert_outcomes(passed=1)
    assert [path.name for path in paths if path.stat().st_size] == [p.name for p in paths]


def test_an_unwritable_step_summary_does_not_keep_the_baseline_unwritten(
    suite: Suite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$GITHUB_STEP_SUMMARY is not checked at start; writing it failed inside the block that
    wrote the baseline after it, so the baseline was silently not recorded."""
    missing = tmp_path / "gone" / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(missing))
    suite.pytester.makepyfile(TEST)
    baseline, report = tmp_path / "baseline.json", tmp_path / "report.json"
    result = suite.run(f"--cekura-baseline={baseline}", f"--cekura-report={report}")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [f"*pytest-cekura: could not write {missing}: No such file or directory*"]
    )
    assert "test_a" in baseline.read_text()
    assert "test_a" in report.read_text()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "--cekura-html is empty; give a file path, e.g. --cekura-html=report.out"),
        (".", "--cekura-html='.': it is a folder; choose a file path you can write to"),
        (
            "no-such-folder/r.html",
            "--cekura-html='no-such-folder/r.html': the folder 'no-such-folder' does not exist; "
            "create it or choose another path",
        ),
        (
            "/proc/r.html",
            "--cekura-html / cekura_html='/proc/r.html': it cannot be written (No such file or "
            "directory); choose a file path you can write to",
        ),
    ],
    ids=["empty", "folder", "missing-folder", "unwritable"],
)
def test_html_path_errors_name_the_option_alike(suite: Suite, value: str, message: str) -> None:
    """``--cekura-html=`` said "'.' is a folder", and the path errors had two prefixes
    ("pytest-cekura: --cekura-html / cekura_html=" and "--cekura-html=")."""
    suite.pytester.makepyfile(TEST)
    result = suite.run(f"--cekura-html={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines[0] == f"ERROR: {message}", result.stderr.str()
    assert suite.emulator.requests == []
