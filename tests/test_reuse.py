"""--cekura-reuse: a re-run reuses the newest successful result of the same request."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import SENTINEL_KEY, Suite, wire
from pytest_cekura.client import CekuraClient
from pytest_cekura.emulator import Emulator
from pytest_cekura.markers import ScenarioSpec
from pytest_cekura.models import Run
from pytest_cekura.rerun import rerun_failed
from pytest_cekura.submit import plan_groups

SUITE = """
import pytest

@pytest.mark.cekura_scenario(30, 31, frequency=2)
def test_good(): pass

@pytest.mark.cekura_scenario(33)
def test_bad(): pass
"""
#: Reuse needs pytest's cache, so these runs keep the cache provider on.
POLL = "--cekura-poll-interval=0.02"


@pytest.fixture
def suite_with_cache(make_suite: Callable[[str], Suite]) -> Suite:
    suite = make_suite('[[scenario]]\nid = 33\noutcome = "fail"\n')
    suite.pytester.makepyfile(SUITE)
    return suite


def test_second_run_reuses_the_successful_result(suite_with_cache: Suite, tmp_path: Path) -> None:
    pytester = suite_with_cache.pytester
    pytester.runpytest(POLL).assert_outcomes(passed=1, failed=1)
    assert suite_with_cache.posts() == 2
    junit = tmp_path / "junit.xml"
    result = pytester.runpytest(POLL, "--cekura-reuse=1h", f"--junitxml={junit}")
    result.assert_outcomes(passed=1, failed=1)
    # The passing group is reused; the failing one is paid for again (that is what a re-run
    # after a fix is for).
    assert suite_with_cache.posts() == 3
    result.stdout.fnmatch_lines(
        ["PASSED  *::test_good · scenarios 30,31 · runs 4/4 (100%), needs 100% · reused result *"]
    )
    assert "cekura_reused_age_s" in junit.read_text()


def test_all_passing_suite_rerun_makes_no_post(suite_with_cache: Suite) -> None:
    pytester = suite_with_cache.pytester
    pytester.runpytest(POLL, "-k", "good").assert_outcomes(passed=1, deselected=1)
    pytester.runpytest(POLL, "-k", "good", "--cekura-reuse=1h").assert_outcomes(
        passed=1, deselected=1
    )
    assert suite_with_cache.posts() == 1


def test_changed_options_are_not_reused(suite_with_cache: Suite) -> None:
    pytester = suite_with_cache.pytester
    pytester.runpytest(POLL, "-k", "good")
    pytester.makepyfile(SUITE.replace("frequency=2", "frequency=3"))
    pytester.runpytest(POLL, "-k", "good", "--cekura-reuse=1h").assert_outcomes(
        passed=1, deselected=1
    )
    assert suite_with_cache.posts() == 2


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("livekit_data={'agent_name': 'pr-12'}", "livekit_data={'agent_name': 'pr-13'}"),
        ("livekit_data={'config': {'locale': 'de'}}", "livekit_data={'config': {'locale': 'fr'}}"),
        ("", "livekit_data={'config': {}}"),  # an empty Config replaces the saved one too
        ("concurrency_limit=2", "concurrency_limit=3"),
        ("mock_tool_names=['lookup']", "mock_tool_names=['lookup', 'book']"),
        ("", "mock_tool_names=['lookup']"),
    ],
)
def test_another_request_shape_is_not_reused(
    suite_with_cache: Suite, first: str, second: str
) -> None:
    def suite(options: str) -> str:
        return f"import pytest\n\n@pytest.mark.cekura_scenario(30, {options})\ndef test_a(): pass\n"

    pytester = suite_with_cache.pytester
    pytester.makepyfile(suite(first))
    pytester.runpytest(POLL).assert_outcomes(passed=1)
    pytester.makepyfile(suite(second))
    pytester.runpytest(POLL, "--cekura-reuse=1h").assert_outcomes(passed=1)
    assert suite_with_cache.posts() == 2
    # The same shape again is reused: no third POST.
    pytester.runpytest(POLL, "--cekura-reuse=1h").assert_outcomes(passed=1)
    assert suite_with_cache.posts() == 2


def test_a_session_default_shapes_the_reused_request_too(suite_with_cache: Suite) -> None:
    pytester = suite_with_cache.pytester
    pytester.runpytest(POLL, "-k", "good", "--cekura-livekit-agent-name=pr-12")
    pytester.runpytest(POLL, "-k", "good", "--cekura-reuse=1h", "--cekura-livekit-agent-name=pr-13")
    assert suite_with_cache.posts() == 2
    pytester.runpytest(POLL, "-k", "good", "--cekura-reuse=1h", "--cekura-livekit-agent-name=pr-13")
    assert suite_with_cache.posts() == 2


def test_results_older_than_the_window_are_not_reused(suite_with_cache: Suite) -> None:
    pytester = suite_with_cache.pytester
    pytester.runpytest(POLL, "-k", "good")
    pytester.runpytest(POLL, "-k", "good", "--cekura-reuse=0.001s")
    assert suite_with_cache.posts() == 2


def test_reuse_needs_the_cache_provider(suite_with_cache: Suite) -> None:
    result = suite_with_cache.run("--cekura-reuse=1h")  # runs with -p no:cacheprovider
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--cekura-reuse keeps results in pytest's cache*"])


def test_bad_duration_is_a_clear_error(suite_with_cache: Suite) -> None:
    result = suite_with_cache.pytester.runpytest("--cekura-reuse=soon")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--cekura-reuse='soon' is invalid: use a duration such as 90s*"])


def test_rerun_failed_pays_only_for_the_failed_runs(
    pytester: pytest.Pytester,
    make_emulator: Callable[[str], Emulator],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    flaky = '[[scenario]]\nid = 34\noutcome = "flaky"\nsuccess_probability = 0.5\n'
    suite = wire(pytester, make_emulator(flaky), monkeypatch)
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(34, frequency=6, min_success_rate=0.0)
        def test_coin(cekura_result):
            print("RUNS", sorted(r.id for r in cekura_result.runs))
        """
    )
    suite.pytester.runpytest(POLL)
    first = list(suite.emulator.runs)
    failed = [run["id"] for run in first if not run["success"]]
    assert 0 < len(failed) < 6  # the emulator's coin is deterministic
    result = suite.pytester.runpytest(POLL, "-s", "--cekura-rerun-failed", "-rA")
    result.assert_outcomes(passed=1)
    posts = [r for r in suite.emulator.requests if r.method == "POST"]
    # Cekura's rerun/ would re-execute all six runs: the failed scenario is started again
    # through the run endpoint, in the same request shape, as many times as it failed.
    assert [r.path.rstrip("/").rsplit("/", 1)[1] for r in posts] == [
        "run_scenarios_livekit_v2",
        "run_scenarios_livekit_v2",
    ]
    first_body, again = (r.body for r in posts)
    assert again["scenarios"] == first_body["scenarios"] == [{"scenario": 34}]
    assert again["frequency"] == len(failed)
    assert set(again) == set(first_body)
    assert again["name"].endswith(" rerun")  # its own name: found by it if the POST fails
    assert len(suite.emulator.runs) == 6 + len(failed)
    kept = {run["id"] for run in first if run["success"]}
    new = {run["id"] for run in suite.emulator.runs} - {run["id"] for run in first}
    shown = re.search(r"RUNS \[([\d, ]+)\]", result.stdout.str())
    assert shown is not None
    assert {int(i) for i in shown[1].split(",")} == kept | new
    result.stdout.fnmatch_lines(["PASSED  *::test_coin · * · failed runs rerun in result 5001"])


def test_rerun_failed_labels_each_test_by_where_its_runs_came_from(
    make_suite: Callable[[str], Suite], tmp_path: Path
) -> None:
    """A passing and a failing test in one request: the passing one was labelled "failed runs
    of result N rerun" though none of its runs was rerun, and from the third session on N
    (the previous session's rerun result) did not even hold its run."""
    suite = make_suite('[[scenario]]\nid = 33\noutcome = "fail"\n')
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30)
        def test_pass(): pass

        @pytest.mark.cekura_scenario(33)
        def test_fail(): pass
        """
    )
    suite.pytester.runpytest(POLL).assert_outcomes(passed=1, failed=1)
    (kept,) = [run["id"] for run in suite.emulator.runs if run["success"]]
    for session, rerun in ((2, 5001), (3, 5002)):
        report = tmp_path / f"r{session}.json"
        result = suite.pytester.runpytest(
            POLL, "--cekura-rerun-failed", f"--cekura-report={report}"
        )
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(
            [
                f"*result {rerun} (failed runs rerun in result {rerun})*",
                "PASSED  *::test_pass · * · runs of result 5000 reused",
                f"FAILED  *::test_fail · * · failed runs rerun in result {rerun}",
            ]
        )
        tests = {t["nodeid"].rsplit("::")[-1]: t for t in json.loads(report.read_text())["tests"]}
        assert [(r["id"], r["result_id"]) for r in tests["test_pass"]["runs"]] == [(kept, 5000)]
        assert tests["test_pass"]["rerun"] == "runs of result 5000 reused"
        assert [r["result_id"] for r in tests["test_fail"]["runs"]] == [rerun]
    assert suite.emulator.count("POST", "run_scenarios") == 3  # only scenario 33 was re-sent


def test_rerun_failed_sends_one_request_per_number_of_lost_runs(emulator: Emulator) -> None:
    # frequency is per request: scenario 30 lost two runs and 31 one, so two requests, each
    # in the group's own shape and with its own name; never rerun/ (it reruns everything).
    group = plan_groups([ScenarioSpec((30, 31), frequency=3, agent=42)], "s1")[0]
    kept = [Run(id=1, scenario=30, status="completed", success=True)] + [
        Run(id=i, scenario=31, status="completed", success=True) for i in (2, 3)
    ]
    failed = [Run(id=i, scenario=30, status="completed", success=False) for i in (4, 5)]
    failed.append(Run(id=6, scenario=31, status="failed"))
    with CekuraClient(emulator.url, SENTINEL_KEY) as client:
        submission = rerun_failed(client, group, 4999, kept, failed)
    posts = [r for r in emulator.requests if r.method == "POST"]
    assert [(r.body["scenarios"], r.body["frequency"], r.body["agent"]) for r in posts] == [
        ([{"scenario": 31}], 1, 42),
        ([{"scenario": 30}], 2, 42),
    ]
    assert [r.body["name"] for r in posts] == [f"{group.name} rerun x1", f"{group.name} rerun x2"]
    assert submission.error is None
    assert submission.earlier_result_id == 4999
    assert {s: len(runs) for s, runs in submission.runs_by_scenario.items()} == {30: 3, 31: 3}
    # Each new run knows its own result, so its link points there.
    new = [r for runs in submission.runs_by_scenario.values() for r in runs if r.id > 6]
    assert {r.result_id for r in new} == {5000, 5001}


def test_results_cached_before_the_livekit_options_still_match() -> None:
    # The key as versions without concurrency_limit / mock_tool_names / livekit_data wrote it:
    # an upgrade must not make every cached result unusable.
    from pytest_cekura.markers import parse_marker
    from pytest_cekura.reuse import ResultCache
    from pytest_cekura.submit import plan_groups

    (group,) = plan_groups([parse_marker((30, 31), {"frequency": 2, "test_profile": 7})], "s")
    old_request = {
        "provider": "livekit",
        "agent": None,
        "frequency": 2,
        "test_profile": 7,
        "personality": None,
        "extras": '{"request_fields": {}, "scenario_fields": {}}',
    }
    old_key = json.dumps(
        {"api": "https://api.cekura.ai", "request": old_request, "scenarios": [30, 31]},
        sort_keys=True,
    )
    assert ResultCache.key(group, "https://api.cekura.ai") == old_key
    (shaped,) = plan_groups(
        [parse_marker((30, 31), {"frequency": 2, "test_profile": 7, "concurrency_limit": 2})], "s"
    )
    assert ResultCache.key(shaped, "https://api.cekura.ai") != old_key
