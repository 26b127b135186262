"""Tests as Code across sessions and processes: xdist, reuse, rerun-failed, baselines, and a
run-starting POST that may have reached Cekura (looked up by name, never re-sent)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from test_tests_as_code import FOUR, case, document, write

from conftest import SENTINEL_KEY, Suite
from pytest_cekura.case_start import post_group
from pytest_cekura.cleanup import Ledger
from pytest_cekura.client import CekuraClient
from pytest_cekura.emulator import Emulator
from pytest_cekura.tests_as_code import CaseGroup, Shape

CATALOGUE = """
[[case]]
key = "refund-denied"
outcome = "fail"
duration_s = 5

[[case]]
key = "refund-ok"
duration_s = 5
"""


INLINE = """
import pytest

@pytest.mark.cekura_case(instructions="You ask where your parcel is.")
def test_where_is_my_parcel(cekura_result):
    assert len(cekura_result.runs) == 1

@pytest.mark.cekura_scenario(30)
def test_dashboard(): pass
"""


@pytest.fixture
def project(make_suite: Callable[[str], Suite]) -> Suite:
    suite = make_suite(CATALOGUE)
    suite.pytester.makeini("[pytest]\ncekura_agent = 42\n")
    return suite


def json_posts(project: Suite, endpoint: str = "run_scenarios_json") -> int:
    return project.emulator.count("POST", endpoint)


# -- xdist -----------------------------------------------------------------------------------


def test_cases_under_xdist_are_validated_and_started_once(project: Suite) -> None:
    write(project, FOUR)
    project.pytester.makepyfile(test_inline=INLINE)
    result = project.run("-n", "2", "-rA", subprocess=True)
    # As serially: refund-denied fails (its [[case]]), the unknown metric errors with the
    # service's message; the inline case and the dashboard scenario pass beside them.
    result.assert_outcomes(passed=4, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*Cekura rejected this case (validate_scenarios_json): scenarios?3?.metrics?0?*"]
    )
    assert json_posts(project) == 1
    assert json_posts(project, "validate_scenarios_json") == 2
    assert json_posts(project, "run_scenarios_livekit_v2") == 1
    (started,) = [r for r in project.emulator.requests if r.path.endswith("run_scenarios_json/")]
    names = [c["name"] for c in started.body["spec"]["scenarios"]]
    assert names == ["Refund ok", "Refund denied", "Angry caller", "test_where_is_my_parcel"]


def test_dry_run_under_xdist_prints_the_plan_once_and_starts_nothing(project: Suite) -> None:
    write(project, FOUR)
    result = project.run("-n", "2", "--cekura-dry-run", subprocess=True)
    result.assert_outcomes(skipped=3, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*cekura dry run: tests as code*",
            "cekura.tests.json::refund-ok: 1 run(s), estimated 15.2 credits",
            "cekura.tests.json::refund-denied: 1 run(s), estimated 15 credits",
            "cekura.tests.json::Angry caller: 1 run(s), estimated 15 credits",
            "tests as code: 3 run(s) in 1 request(s), estimated 45.2 credits in total",
        ]
    )
    assert result.stdout.str().count("tests as code: 3 run(s)") == 1
    # One worker validated for both (twice: once more without the rejected case).
    assert json_posts(project, "validate_scenarios_json") == 2
    assert project.emulator.count("POST", "run_scenarios") == 0


def test_max_cost_under_xdist_stops_every_worker_before_any_start(project: Suite) -> None:
    write(project, FOUR)
    project.pytester.makepyfile(test_inline=INLINE)
    result = project.run("-n", "2", "--cekura-max-cost", "40", subprocess=True)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "more than --cekura-max-cost 40; nothing was started" in result.stderr.str()
    # Not the dashboard scenario's POST either: the price is checked before any start.
    assert project.emulator.count("POST", "run_scenarios") == 0


# -- reuse, rerun-failed, baselines ----------------------------------------------------------

#: Reuse keeps results in pytest's cache: these runs keep the cache provider on.
POLL = "--cekura-poll-interval=0.02"
PASSING = document(case("Refund ok", key="refund-ok"), case("Angry caller", frequency=2))


def started_bodies(project: Suite) -> list[dict[str, Any]]:
    return [r.body for r in project.emulator.requests if r.path.endswith("run_scenarios_json/")]


def test_reuse_takes_the_last_all_passing_result_and_posts_nothing(project: Suite) -> None:
    write(project, PASSING)
    pytester = project.pytester
    pytester.runpytest(POLL).assert_outcomes(passed=2)
    assert json_posts(project) == 1
    again = pytester.runpytest(POLL, "--cekura-reuse=1h", "-rA")
    again.assert_outcomes(passed=2)
    # Validated (free) again, but nothing started: every case passed last time.
    assert json_posts(project) == 1
    again.stdout.fnmatch_lines(["PASSED  cekura.tests.json::Angry caller *reused result *"])
    # A changed case is another request: it is paid for.
    write(project, document(case("Refund ok", key="refund-ok"), case("Angry caller")))
    pytester.runpytest(POLL, "--cekura-reuse=1h").assert_outcomes(passed=2)
    assert json_posts(project) == 2


def test_reuse_never_takes_a_failed_result(project: Suite) -> None:
    write(
        project, document(case("Refund ok", key="refund-ok"), case("Denied", key="refund-denied"))
    )
    pytester = project.pytester
    pytester.runpytest(POLL).assert_outcomes(passed=1, failed=1)
    pytester.runpytest(POLL, "--cekura-reuse=1h").assert_outcomes(passed=1, failed=1)
    assert json_posts(project) == 2


def test_rerun_failed_posts_only_the_failed_cases_in_the_groups_shape(project: Suite) -> None:
    write(
        project,
        document(
            case("Refund ok", key="refund-ok"),
            case("Refund denied", key="refund-denied", frequency=2),
            case("Angry caller"),
        ),
    )
    pytester = project.pytester
    pytester.runpytest(POLL).assert_outcomes(passed=2, failed=1)
    first = started_bodies(project)[0]
    result = pytester.runpytest(POLL, "--cekura-rerun-failed", "-rA")
    result.assert_outcomes(passed=2, failed=1)
    # The suite document with only the failed case, run as many times as it failed; same
    # agent and channel, a name of its own (so an ambiguous failure is looked up by it).
    rerun = started_bodies(project)[1]
    assert [(c["key"], c["frequency"]) for c in rerun["spec"]["scenarios"]] == [
        ("refund-denied", 2)
    ]
    assert (rerun["agent_id"], rerun["channel"]) == (first["agent_id"], first["channel"])
    assert rerun["name"].endswith(" rerun")
    # The passing cases keep their earlier runs.
    result.stdout.fnmatch_lines(["PASSED  cekura.tests.json::refund-ok *"])
    assert len(project.emulator.runs) == 4 + 2


def test_baseline_and_compare_cover_cases(project: Suite, tmp_path: Any) -> None:
    write(
        project, document(case("Refund ok", key="refund-ok"), case("Denied", key="refund-denied"))
    )
    path = tmp_path / "baseline.json"
    recorded = project.run(f"--cekura-baseline={path}")
    recorded.assert_outcomes(passed=1, failed=1)
    tests = json.loads(path.read_text())["tests"]
    assert tests == {
        "cekura.tests.json::refund-denied": {"success_rate": 0.0, "runs": 1},
        "cekura.tests.json::refund-ok": {"success_rate": 1.0, "runs": 1},
    }
    # No worse than the baseline: the failing case passes under the baseline rule.
    compared = project.run(f"--cekura-compare={path}")
    compared.assert_outcomes(passed=2)
    compared.stdout.fnmatch_lines(
        [
            "*= cekura baseline comparison =*",
            "ok        cekura.tests.json::refund-ok: 100% -> 100% (+0 points)",
            "ok        cekura.tests.json::refund-denied: 0% -> 0% (+0 points; baseline below*",
        ]
    )


# -- a run_scenarios_json POST that may have reached Cekura -----------------------------------

TWO = document(case("Refund ok", key="refund-ok"), case("Angry caller"))


@pytest.mark.parametrize(
    ("action", "extra"),
    [("error_after", {"status": 502}), ("drop_after", {}), ("drop_after", {"drop_mode": "reset"})],
    ids=["502-after", "dropped", "reset"],
)
def test_ambiguous_post_is_looked_up_by_name_and_adopted(
    project: Suite, action: str, extra: dict[str, Any]
) -> None:
    project.emulator.inject("start", action, **extra)  # type: ignore[arg-type]
    write(project, TWO)
    project.run().assert_outcomes(passed=2)
    assert json_posts(project) == 1  # never re-sent
    (body,) = started_bodies(project)
    lookups = [r for r in project.emulator.requests if r.path.endswith("/results/")]
    assert lookups
    assert lookups[0].query["search"] == body["name"]
    assert len(project.emulator.runs) == 2


def test_ambiguous_post_with_no_result_errors_naming_what_to_check(project: Suite) -> None:
    # The connection drops before Cekura did anything: the look-up finds no such result.
    project.emulator.inject("start", "drop_before")
    write(project, TWO)
    result = project.run()
    result.assert_outcomes(errors=2)
    assert json_posts(project) == 1
    (body,) = started_bodies(project)
    name = body["name"]
    result.stdout.fnmatch_lines(
        [
            "*the request to start these Tests-as-Code cases (run_scenarios_json) failed after it "
            "may have reached Cekura (*). It was not re-sent, so you are not charged twice, and "
            f"no result named '{name}' could be found: check the results of agent 42 named "
            f"'{name}' in Cekura's dashboard*"
        ]
    )
    assert project.emulator.runs == []


def test_ambiguous_post_with_two_results_of_its_name_adopts_neither(
    make_emulator: Callable[[str], Emulator],
) -> None:
    """Two results already carry the request's name (nothing in a session makes that happen,
    so they are made here): which one is this request's cannot be told, so neither is adopted
    and nothing is sent again."""
    emulator = make_emulator(CATALOGUE)
    group = CaseGroup(
        Shape(agent=42, channel="livekit_v2"),
        "pytest-cekura duplicate suite 1",
        ["cekura.tests.json::refund-ok"],
        [{**case("Refund ok"), "key": "refund-ok"}],
    )
    ledger = Ledger()
    with CekuraClient(emulator.url, SENTINEL_KEY) as client:
        first = client.start_suite_json(group.body())
        second = client.start_suite_json(group.body())
        emulator.inject("start", "drop_before")
        posted = post_group(client, group, ledger=ledger, deadline=None, sleep=lambda _: None)
    assert posted.result is None
    assert posted.error is not None
    assert (
        f"2 results are named '{group.name}' (ids {first.id}, {second.id}), so which one is "
        "this request's cannot be told: check the results of agent 42 named" in posted.error
    )
    assert emulator.count("POST", "run_scenarios_json") == 3  # the two above, then one
    # Left for the session's clean-up to look up again and end.
    assert ledger.in_flight(group.name)


def test_dry_run_with_dashboard_scenarios_still_errors_a_rejected_case(project: Suite) -> None:
    write(project, FOUR)
    project.pytester.makepyfile(test_inline=INLINE)
    result = project.run("--cekura-dry-run")
    # The marked test and every valid case are skipped; the unknown metric errors.
    result.assert_outcomes(skipped=5, errors=1)
    result.stdout.fnmatch_lines(["*Cekura rejected this case (validate_scenarios_json)*"])
    assert project.emulator.count("POST", "run_scenarios") == 0


def test_dry_run_summaries_count_every_case_and_marked_test(project: Suite) -> None:
    """The summary line said "cekura: 3 test(s)" for 6 items: the valid cases were skipped
    without a summary row. The Markdown and JSON summaries count the same tests."""
    write(project, FOUR)
    project.pytester.makepyfile(test_inline=INLINE)
    md, report = project.pytester.path / "s.md", project.pytester.path / "r.json"
    result = project.run(
        "--cekura-dry-run", f"--cekura-summary-md={md}", f"--cekura-report={report}"
    )
    result.assert_outcomes(skipped=5, errors=1)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED cekura.tests.json::refund-ok · scenarios - · runs -*",
            "cekura: 6 test(s) (1 error, 5 skipped) over 0 run(s)*",
        ]
    )
    assert "6 Cekura test(s), 0 run(s)." in md.read_text()
    outcomes = sorted(test["outcome"] for test in json.loads(report.read_text())["tests"])
    assert outcomes == ["error", *["skipped"] * 5]
    assert project.emulator.count("POST", "run_scenarios") == 0
