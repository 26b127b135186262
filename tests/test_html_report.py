"""--cekura-html: one self-contained page; pytest-html's extras; the baseline's history."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import PLAYBOOK, SENTINEL_KEY, Suite
from pytest_cekura.baseline import HISTORY_MAX, load_history, write_baseline
from pytest_cekura.html_report import render
from pytest_cekura.html_runs import run_detail
from pytest_cekura.models import Run
from pytest_cekura.report_data import SummaryRow

SUITE = """
import pytest

@pytest.mark.cekura_scenario(30, frequency=2, gates={"Latency": "p95 <= 5000"})
def test_refill(): pass

@pytest.mark.cekura_scenario(31)
def test_billing(): pass

def test_plain(): pass
"""

#: A scenario whose name (and so the transcript the emulator plays) is hostile markup.
HOSTILE_NAME = "<img src=x onerror=alert(1)><script>alert(2)</script>&amp; \"quoted\" 'x'"
HOSTILE = (
    PLAYBOOK
    + f"""
[[scenario]]
id = 40
name = '''{HOSTILE_NAME}'''
outcome = "fail"
"""
)


@pytest.fixture
def suite(make_suite: Callable[[str], Suite]) -> Suite:
    """The playbook's emulator: scenario 30 passes, 31 fails."""
    return make_suite(PLAYBOOK)


def cards(page: str) -> dict[str, str]:
    """Test id -> its card's HTML."""
    card = r'<details class="card [^"]+" id="test-\d+".*?</summary>.*?'
    found = re.findall(f'({card})(?=<details class="card |</main>)', page, re.S)
    return {re.search(r"<code>(.*?)</code>", card).group(1): card for card in found}  # type: ignore[union-attr]


def test_html_report_shows_verdicts_cards_transcripts_players_and_charts(
    suite: Suite, tmp_path: Path
) -> None:
    suite.pytester.makepyfile(test_agent=SUITE)
    page_path, json_path = tmp_path / "report.html", tmp_path / "report.json"
    result = suite.run(f"--cekura-html={page_path}", f"--cekura-report={json_path}")
    result.assert_outcomes(passed=2, failed=1)
    page = page_path.read_text()
    report = json.loads(json_path.read_text())
    assert SENTINEL_KEY not in page

    # Self-contained: no script, nothing fetched (no stylesheet, font, image or frame), and a
    # policy that would block any of them.
    assert '<meta http-equiv="Content-Security-Policy" content="default-src \'none\';' in page
    for tag in ("<script", "<link", "<img", "<iframe", "@import", "url("):
        assert tag not in page
    assert page.count('<svg class="chart success"') == page.count('<svg class="chart latency"') == 1
    assert page.count('class="bar"') == 2  # one bar per Cekura test
    assert "Distribution of metric &quot;Latency&quot; over 3 run(s)" in page

    by_test = cards(page)
    assert set(by_test) == {"test_agent.py::test_refill", "test_agent.py::test_billing"}
    # The same verdicts, counts and reasons as the JSON report.
    for test in report["tests"]:
        card = by_test[test["nodeid"]]
        assert f'<details class="card {test["outcome"]}"' in card
        assert f"{test['succeeded']}/{test['total']} runs" in card
        assert html.escape(test["reason"]["text"]) in card
        for run in test["runs"]:
            assert f"run {run['id']} · scenario {run['scenario']}" in card
            assert f'<a href="{html.escape(run["url"])}"' in card
            recording = f"https://recordings.emulator.invalid/runs/{run['id']}.wav"
            assert f'<audio controls preload="none" src="{recording}"></audio>' in card

    failing = by_test["test_agent.py::test_billing"]
    assert ' open><summary><span class="badge failed">failed</span>' in failing
    assert "decided by: threshold rule: 0 of 1 runs succeeded" in failing
    assert "why: the agent did not meet the scenario&#x27;s expectations" in failing
    # The transcript with its timestamps, open under a failing run; the metrics.
    assert '<details class="transcript" open><summary>transcript, ' in failing
    assert re.search(r"<li><time>00:\d\d\.\d</time> <b>Main Agent</b> <span>", failing)
    assert "<td>Latency</td><td>numeric</td>" in failing
    assert "<td>Instruction Following</td>" in failing
    # Passed tests are collapsed, and listed after the ones that did not pass.
    passed = by_test["test_agent.py::test_refill"]
    assert '<details class="card passed" id="test-0"><summary>' in passed
    assert page.index("test_agent.py::test_billing</code>") < page.index(
        "test_agent.py::test_refill</code>"
    )
    # Its metric gate, held, and the gated metric's aggregates over its two runs.
    assert '<tr class="ok"><td>Latency</td><td>p95 &lt;= 5000</td><td>' in passed
    assert "<td>held</td>" in passed
    assert re.search(
        r"<tr><td>Latency</td><td>2</td>(<td>\d+(\.\d)?</td>){6}<td>-</td></tr>", passed
    )
    assert '<input type="checkbox" id="only-failures" class="filter">' in page
    assert "Show only the 1 test(s) that did not pass" in page


def test_hostile_transcripts_and_names_are_escaped(
    make_suite: Callable[[str], Suite], tmp_path: Path
) -> None:
    """A scenario name (which the emulator also speaks in the transcript) full of markup
    shows as text; the ini key works like the flag."""
    suite = make_suite(HOSTILE)
    suite.pytester.makepyfile(
        "import pytest\n\n@pytest.mark.cekura_scenario(40)\ndef test_hostile(): pass\n"
    )
    suite.pytester.makeini("[pytest]\ncekura_html = out.html\n")
    suite.run().assert_outcomes(failed=1)
    page = (suite.pytester.path / "out.html").read_text()
    assert "<img" not in page
    assert "<script" not in page
    assert "onerror=alert(1)" in page  # as text: its brackets escaped
    assert html.escape(HOSTILE_NAME) in page  # the scenario name in the run heading
    assert f"calling about {html.escape(HOSTILE_NAME[:1].lower() + HOSTILE_NAME[1:])}" in page


def hostile_run(**fields: Any) -> Run:
    return Run.model_validate(
        {
            "id": 7,
            "status": "completed",
            "success": False,
            "voice_recording_url": "javascript:alert(1)",
            "transcript_object": [
                {"role": "<b>x</b>", "content": "</span></li></ol><script>x()</script>"}
            ],
            "evaluation": {
                "metrics": [
                    {"name": "<i>m</i>", "type": "enum", "score": 1, "enum": "<u>v</u>"},
                ]
            },
            **fields,
        }
    )


def test_unsafe_urls_are_shown_as_text_never_as_links() -> None:
    """Cekura's answers are data: a ``javascript:`` URL (the emulator never sends one) must
    not become a clickable link or a player source."""
    run = hostile_run()
    row = SummaryRow(
        nodeid="t.py::<test>",
        scenario_ids=(1,),
        min_success_rate=1.0,
        succeeded=0,
        total=1,
        outcome="failed",
        runs=(
            {
                "id": 7,
                "scenario": 1,
                "status": "completed",
                "success": False,
                "url": "javascript:alert(3)",
                "why": "<b>why</b>",
            },
        ),
        reason={"text": "<script>r()</script>", "rule": "threshold", "short": "x"},
    )
    page = render({"tests": [row.to_json()]}, {7: run_detail(run)})
    assert "javascript:" not in re.sub(r">[^<]*<", "><", page)  # in no attribute
    assert "javascript:alert(1)" in page  # as text
    assert "javascript:alert(3)" in page
    for markup in ("<script", "<b>x</b>", "<i>", "<u>"):
        assert markup not in page
    assert "&lt;/span&gt;&lt;/li&gt;&lt;/ol&gt;&lt;script&gt;x()&lt;/script&gt;" in page
    assert "&lt;u&gt;v&lt;/u&gt;" in page
    assert "<audio" not in page


def test_html_report_is_written_once_by_the_xdist_controller(suite: Suite, tmp_path: Path) -> None:
    """The workers send each test's transcripts and recordings with its report; the controller
    writes every test into one file (a worker's own file would hold only its tests)."""
    suite.pytester.makepyfile(
        test_agent="""
        import pytest

        @pytest.mark.cekura_scenario(30)
        def test_a(): pass

        @pytest.mark.cekura_scenario(31)
        def test_b(): pass

        @pytest.mark.cekura_scenario(30, 31)
        def test_c(): pass

        @pytest.mark.cekura_scenario(31, test_profile=7)
        def test_d(): pass
        """
    )
    path = tmp_path / "report.html"
    result = suite.run("-n", "2", f"--cekura-html={path}", subprocess=True)
    result.assert_outcomes(passed=1, failed=3)
    page = path.read_text()
    assert len(cards(page)) == 4
    assert page.count("<audio controls") == 5  # every run, whichever worker ran its test
    assert page.count('<details class="transcript"') == 5


def test_baseline_history_draws_a_trend_line(suite: Suite, tmp_path: Path) -> None:
    suite.pytester.makepyfile(test_agent=SUITE)
    baseline, page_path = tmp_path / "baseline.json", tmp_path / "report.html"
    earlier = [SummaryRow("test_agent.py::test_refill", (30,), 1.0, 1, 2, "failed")]
    write_baseline(baseline, earlier)  # a session recorded before this one
    suite.run(f"--cekura-baseline={baseline}", f"--cekura-html={page_path}")
    data = json.loads(baseline.read_text())
    assert [entry["tests"] for entry in data["history"]] == [
        {"test_agent.py::test_refill": 0.5},
        {"test_agent.py::test_billing": 0.0, "test_agent.py::test_refill": 1.0},
    ]
    by_test = cards(page_path.read_text())
    # The session recorded before this one (50 %), then this one (100 %): rising.
    trend = re.search(r'<svg class="trend".*?</svg>', by_test["test_agent.py::test_refill"])
    assert trend is not None
    points = re.search(r'points="([^"]*)"', trend.group())
    assert points is not None
    (x0, y0), (x1, y1) = (map(float, p.split(",")) for p in points.group(1).split())
    assert x0 < x1
    assert y0 > y1  # SVG's y grows downwards
    assert "this session" in trend.group()
    # A test with no recorded session has no line (one point is no trend).
    assert '<svg class="trend"' not in by_test["test_agent.py::test_billing"]


def test_baseline_history_is_bounded_and_reads_files_from_before_it(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(
        json.dumps(
            {"pytest-cekura-baseline": 1, "tests": {"t::a": {"success_rate": 0.5, "runs": 2}}}
        )
    )
    row = SummaryRow("t::a", (30,), 1.0, 1, 1, "passed")
    write_baseline(path, [row])
    assert load_history(path) == [(None, {"t::a": 0.5}), (load_history(path)[1][0], {"t::a": 1.0})]
    for _ in range(HISTORY_MAX + 5):
        write_baseline(path, [row])
    data = json.loads(path.read_text())
    assert len(data["history"]) == HISTORY_MAX
    assert data["tests"] == {"t::a": {"success_rate": 1.0, "runs": 1}}
    # A reader of the first format sees what it always saw.
    assert set(data) == {"pytest-cekura-baseline", "tests", "history"}


def test_unwritable_html_path_is_refused_before_any_call(suite: Suite) -> None:
    suite.pytester.makepyfile(test_agent=SUITE)
    result = suite.run("--cekura-html=nowhere/report.html")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--cekura-html*the folder 'nowhere' does not exist*"])
    assert suite.emulator.requests == []


def pytest_html_tests(page: str) -> dict[str, Any]:
    """pytest-html's own data: the JSON blob its page renders from."""
    blob = re.search(r'data-jsonblob="([^"]*)"', page)
    assert blob is not None
    tests: dict[str, Any] = json.loads(html.unescape(blob.group(1)))["tests"]
    return tests


def test_pytest_html_report_gains_each_cekura_tests_runs(suite: Suite, tmp_path: Path) -> None:
    suite.pytester.makepyfile(test_agent=SUITE)
    path = tmp_path / "pytest-html.html"
    suite.run(f"--html={path}").assert_outcomes(passed=2, failed=1)
    tests = pytest_html_tests(path.read_text())
    extras = {
        nodeid: [extra for entry in entries for extra in entry["extras"]]
        for nodeid, entries in tests.items()
    }
    assert extras["test_agent.py::test_plain"] == []
    billing = extras["test_agent.py::test_billing"]
    assert [extra["format_type"] for extra in billing] == ["html"]
    content = billing[0]["content"]
    assert '<audio controls preload="none" src="https://recordings.emulator.invalid/' in content
    assert "<b>Main Agent</b>" in content
    assert "open in Cekura</a>" in content
    assert len(extras["test_agent.py::test_refill"]) == 1
    assert extras["test_agent.py::test_refill"][0]["content"].count("<audio") == 2


def test_without_an_html_report_no_hook_is_added(suite: Suite) -> None:
    suite.pytester.makepyfile(test_agent=SUITE)
    suite.pytester.makeconftest(
        """
        def pytest_sessionfinish(session):
            print("cekura-html registered:", session.config.pluginmanager.has_plugin("cekura-html"))
        """
    )
    result = suite.run("-s")
    result.stdout.fnmatch_lines(["*cekura-html registered: False*"])


def test_five_hundred_tests_stay_a_small_page_with_the_passed_ones_collapsed() -> None:
    """Issue #19: usable at 500 tests. Two runs each with an eight-line transcript."""
    lines = [
        {"role": "Main Agent" if i % 2 else "Testing Agent", "content": "x" * 80, "timestamp": i}
        for i in range(8)
    ]
    tests, details = [], {}
    for index in range(500):
        failed = index % 25 == 0
        runs = []
        for n in range(2):
            run_id = index * 2 + n
            run = Run.model_validate(
                {
                    "id": run_id,
                    "status": "completed",
                    "success": not failed,
                    "voice_recording_url": f"https://example.invalid/{run_id}.wav",
                    "transcript_object": lines,
                    "evaluation": {
                        "metrics": [{"name": "Latency", "type": "numeric", "score": 800}]
                    },
                }
            )
            details[run_id] = run_detail(run)
            runs.append(
                {
                    "id": run_id,
                    "scenario": 30,
                    "status": "completed",
                    "success": not failed,
                    "url": "https://d.invalid/",
                }
            )
        row = SummaryRow(
            f"t.py::test_{index}",
            (30,),
            1.0,
            0 if failed else 2,
            2,
            "failed" if failed else "passed",
            runs=tuple(runs),
        )
        tests.append(row.to_json())
    page = render({"tests": tests}, details)
    assert len(page.encode()) < 3_000_000
    assert page.count('<details class="card failed"') == 20
    assert page.count('<details class="card passed"') == 480
    assert page.count(' open><summary><span class="badge') == 20  # only the failures open
    assert page.count('class="bar"') == 500
    assert page.count('class="band thin"') == 20  # each failure marked in the chart
    assert "Show only the 20 test(s) that did not pass" in page
