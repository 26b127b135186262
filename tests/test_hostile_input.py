"""Bad input found by a stranger's review of the session's new options: each is one message
naming the file or option and the fix, and nothing is paid for."""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_reliability import finish, spawn, starts, wait_until

from conftest import Suite
from pytest_cekura import report_merge
from pytest_cekura.gates import parse_gate_lines

TEST = """
import pytest

@pytest.mark.cekura_scenario(30)
def test_a(): pass
"""


def test_a_bad_gate_in_a_toml_suite_points_at_its_line(suite: Suite) -> None:
    """Other bad values of a TOML entry were led by ``file:line:``; a bad gate was not,
    because its message names the key as ``gates['Latency']``."""
    suite.pytester.makefile(
        ".toml",
        cekura_smoke='[[test]]\nname = "quick"\nscenarios = [30]\n'
        'gates = { Latency = "p95 <= nope" }\n',
    )
    result = suite.run("-p", "no:randomly")
    result.assert_outcomes(errors=1)
    assert (
        "\ncekura_smoke.toml:4: @pytest.mark.cekura_scenario: gates['Latency'] = "
        "'p95 <= nope' compares with 'nope', which is not a number; use "
    ) in result.stdout.str()
    assert suite.posts() == 0


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda r: r["tests"][0].pop("outcome"), "tests[0] is not a test's entry ("),
        (lambda r: r["tests"].append("x"), "tests[1] is not a test's entry ("),
        (lambda r: r.update(requests={"GET": "many"}), "'requests' is not a map of counts ("),
    ],
    ids=["entry-without-outcome", "entry-not-an-object", "request-count-not-a-number"],
)
def test_merging_a_damaged_shard_report_is_exit_2_naming_it(
    suite: Suite,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    damage: Callable[[dict[str, Any]], object],
    expected: str,
) -> None:
    """A damaged shard report crashed the merge with a traceback and exit status 1, which
    reads as "a Cekura test failed"; it is exit 2 ("cannot merge") with one line."""
    suite.pytester.makepyfile(TEST)
    shard = tmp_path / "shard.json"
    suite.run(f"--cekura-report={shard}").assert_outcomes(passed=1)
    report = json.loads(shard.read_text())
    damage(report)
    shard.write_text(json.dumps(report))
    capsys.readouterr()
    assert report_merge.main(["merge", str(shard)]) == report_merge.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith(f"pytest-cekura merge: {shard}: {expected}"), err
    assert err.rstrip().endswith("give the files written by --cekura-report, unedited")
    assert "Traceback" not in err


def test_an_agent_command_with_an_open_quote_is_one_usage_error(suite: Suite) -> None:
    """It was an INTERNALERROR traceback from shlex, after collection."""
    suite.pytester.makepyfile(TEST)
    result = suite.run("--cekura-agent-cmd", '"python agent.py dev')
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines[0] == (
        "ERROR: --cekura-agent-cmd='\"python agent.py dev' cannot be parsed (No closing "
        'quotation); check its quotes, e.g. --cekura-agent-cmd "python agent.py dev"'
    )
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert suite.emulator.requests == []


def test_merging_an_interrupted_shard_is_exit_2_not_a_pass(
    suite: Suite, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A shard stopped early (here by an error during collection; Ctrl-C and a cancelled
    job's SIGTERM alike) wrote a report with no tests, and merging it with a passing shard
    exited 0, "every Cekura test of every shard passed"."""
    suite.pytester.makepyfile(test_good=TEST)
    good = tmp_path / "good.json"
    suite.run(f"--cekura-report={good}").assert_outcomes(passed=1)
    assert json.loads(good.read_text())["interrupted"] is False
    suite.pytester.makepyfile(test_broken="import no_such_module_anywhere\n")
    stopped = tmp_path / "stopped.json"
    result = suite.run(f"--cekura-report={stopped}")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert suite.posts() == 1  # the broken shard started nothing
    assert json.loads(stopped.read_text())["interrupted"] is True
    capsys.readouterr()
    assert report_merge.main(["merge", str(good), str(stopped)]) == report_merge.EXIT_USAGE
    assert capsys.readouterr().err == (
        f"pytest-cekura merge: {stopped}: that shard was interrupted (Ctrl-C, a cancelled job "
        "or errors during collection: see its log), so some of its tests did not run; rerun it\n"
    )


def test_a_rejected_case_is_reported_without_an_empty_scenario_list(
    suite: Suite, tmp_path: Path
) -> None:
    """A case the service rejects has no scenario: its lines read "scenarios  x 1" and
    "scenarios  ·"; they show "-", as the runs do."""
    case = {"name": "Bad", "key": "bad", "instructions": "x", "metrics": ["nope"]}
    # Written directly: pytester.makefile would turn "cekura.tests" into "cekura.json".
    suite.pytester.path.joinpath("cekura.tests.json").write_text(
        json.dumps({"version": "1", "scenarios": [case]}), encoding="utf-8"
    )
    html = tmp_path / "r.html"
    result = suite.run("--cekura-agent=1", f"--cekura-html={html}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["scenarios - x 1 (livekit)", "ERROR   cekura.tests.json::bad · scenarios - · runs -, *"]
    )
    assert "scenarios  " not in result.stdout.str()
    assert "scenarios -" in html.read_text()
    assert suite.posts() == 0


def test_an_interrupted_session_reports_the_results_it_started(
    suite: Suite, tmp_path: Path
) -> None:
    """Ctrl-C while the calls were going left ``groups: []`` in the JSON report (its tests
    never got a row), so the ids of the results started and ended were only in the terminal
    line; and the HTML page did not say the session was interrupted."""
    suite.emulator.inject("any", "never_finish", scenario_ids=[30])
    suite.pytester.makepyfile(TEST)
    report, html = tmp_path / "r.json", tmp_path / "r.html"
    process = spawn(suite, f"--cekura-report={report}", f"--cekura-html={html}")
    wait_until(lambda: starts(suite) == 1)  # the POST was answered: the calls are going
    process.send_signal(signal.SIGINT)
    output = finish(process)
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output
    (result_id,) = {run["result_id"] for run in suite.emulator.runs}
    run_ids = sorted(run["id"] for run in suite.emulator.runs)
    data = json.loads(report.read_text())
    assert data["interrupted"] is True
    (started,) = data["started_results"]
    name = started.pop("name")
    assert started == {"result_id": result_id, "run_ids": run_ids, "ended_by_session": True}
    assert re.fullmatch(r"pytest-cekura \S+ #1 livekit x1", name), name  # the POST's name
    page = html.read_text()
    assert "This session was interrupted (Ctrl-C, SIGTERM or errors during collection)" in page
    assert f"Results it started: {result_id} (" in page


@pytest.mark.parametrize(("text", "found"), [("[]", "a list"), ('"x"', "a string")])
def test_a_suite_file_that_is_not_an_object_says_what_it_must_look_like(
    suite: Suite, text: str, found: str
) -> None:
    """``[]`` got 'a suite document is a JSON object with "scenarios"', with no example."""
    suite.pytester.path.joinpath("cekura.tests.json").write_text(text, encoding="utf-8")
    result = suite.run("--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            f"cekura.tests.json: the top level is {found}; a suite document is a JSON object "
            'with a "version" and a "scenarios" list, e.g. {"version": "1", "scenarios": '
            '[{"name": "Refund", "instructions": "You call about a refund."}]}'
        ]
    )
    assert suite.emulator.requests == []


def test_a_session_gate_can_name_a_metric_with_a_colon(
    make_suite: Callable[[str], Suite],
) -> None:
    """``--cekura-gates`` split "Tool: lookup: p95 <= 900" at the first colon, so a metric
    whose name holds one could not be gated."""
    suite = make_suite(
        '[[scenario]]\nid = 30\n[[scenario.metrics]]\nname = "Tool: lookup"\n'
        "min = 1300\nmax = 1900\n"
    )
    suite.pytester.makepyfile(TEST)
    result = suite.run("--cekura-gates=Tool: lookup: p95 <= 900")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*!! Tool: lookup p95 * over 1 run(s) breaks the gate p95 <= 900", "FAILED  *::test_a *"]
    )
    # An enum value may hold a colon too: the split is at the colon before the condition.
    (enum,) = parse_gate_lines("Tool: lookup: in a:b, c")
    assert (enum.metric, enum.allowed) == ("Tool: lookup", ("a:b", "c"))
