"""Under pytest-xdist every worker collects the suite, yet each group is submitted once."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conftest import Suite

SUITE = """
import pytest

@pytest.mark.parametrize("i", range(6))
@pytest.mark.cekura_scenario(30, 31, frequency=2)
def test_shared(i, cekura_result):
    assert len(cekura_result.runs) == 4

@pytest.mark.cekura_scenario(32)
def test_single(): pass

def test_plain(): pass
"""


#: Two modules and a class, so loadscope and loadfile really spread the tests over workers;
#: four groups (x2; x1; x3; x1 with a test profile); scenarios 40-44 belong to one test each.
MODULE_A = """
import pytest

@pytest.mark.parametrize("i", range(4))
@pytest.mark.cekura_scenario(30, 31, frequency=2)
def test_shared(i, cekura_result):
    assert len(cekura_result.runs) == 4

class TestClass:
    @pytest.mark.cekura_scenario(32)
    def test_single(self): pass

    @pytest.mark.cekura_scenario(33, frequency=3)
    def test_thrice(self, cekura_result):
        assert len(cekura_result.runs) == 3
"""
MODULE_B = """
import pytest

@pytest.mark.parametrize("sid", [40, 41, 42, 43])
def test_each(sid): pass

@pytest.mark.cekura_scenario(44, test_profile=7)
def test_profiled(): pass

def test_plain(): pass
"""
CONFTEST = """
import pytest

def pytest_collection_modifyitems(items):
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "sid" in callspec.params:
            item.add_marker(pytest.mark.cekura_scenario(callspec.params["sid"]))
"""
#: The scenarios whose runs each test waits for (a poll asks for those not yet finished).
WAITS_FOR = [{30, 31}, {32}, {33}, {40}, {41}, {42}, {43}, {44}]


@pytest.mark.parametrize("dist", ["load", "loadscope", "loadfile"])
def test_workers_submit_each_group_once(suite: Suite, dist: str) -> None:
    """Row 20: -n 4 makes as many POSTs as a serial run, and each worker polls only the runs
    of the tests it runs itself (the request log shows every bulk GET)."""
    suite.pytester.makepyfile(test_a=MODULE_A, test_b=MODULE_B)
    suite.pytester.makeconftest(CONFTEST)
    totals = "cekura: 11 test(s) (11 passed) over 13 run(s); API requests: 4 POST start runs, *"
    serial = suite.run()
    serial.assert_outcomes(passed=12)
    serial.stdout.fnmatch_lines([totals])
    serial_posts, serial_runs = suite.posts(), len(suite.emulator.runs)
    suite.emulator.reset()

    result = suite.run("-n", "4", "--dist", dist, subprocess=True)
    result.assert_outcomes(passed=12)
    result.stdout.fnmatch_lines([totals])
    assert suite.posts() == serial_posts == 4  # one per (provider, frequency, profile) group
    assert len(suite.emulator.runs) == serial_runs == 13
    scenario_of = {run["id"]: run["scenario"] for run in suite.emulator.runs}
    polled = [
        {scenario_of[int(i)] for i in r.query["run_ids"].split(",")}
        for r in suite.emulator.requests
        if r.path.endswith("/runs/bulk/")
    ]
    # The controller's last look at every run (to end calls no worker reached) comes after
    # the workers are done; every poll before it is one worker waiting for one test.
    *waits, cleanup = polled
    assert cleanup == set(scenario_of.values())
    assert waits
    assert all(any(asked <= wanted for wanted in WAITS_FOR) for asked in waits), waits
    assert set().union(*waits) == set(scenario_of.values())


def test_emulator_mode_shares_one_emulator_across_workers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SUITE)
    result = pytester.runpytest_subprocess("-n", "2", "--cekura-emulator", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines(
        ["cekura: 7 test(s) (7 passed) over 5 run(s); API requests: 2 POST start runs, *"]
    )


def test_collect_only_with_workers_submits_nothing(suite: Suite) -> None:
    suite.pytester.makepyfile(SUITE)
    suite.run("-n", "2", "--collect-only", subprocess=True)
    assert suite.emulator.requests == []


def test_calls_of_tests_no_worker_reached_are_ended(make_suite: Callable[[str], Suite]) -> None:
    hanging = "".join(f'[[scenario]]\nid = {i}\noutcome = "hang"\n' for i in range(60, 68))
    suite = make_suite(hanging)
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("sid", range(60, 68))
        def test_stuck(sid): pass
        """
    )
    suite.pytester.makeconftest(
        """
        import pytest

        def pytest_collection_modifyitems(items):
            for item in items:
                item.add_marker(pytest.mark.cekura_scenario(item.callspec.params["sid"]))
        """
    )
    result = suite.run("-n", "2", "-x", "--cekura-timeout=1", subprocess=True)
    # xdist reports -x as an interruption.
    assert result.ret in (pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.INTERRUPTED)
    assert len(suite.emulator.runs) == 8
    assert {run["status"] for run in suite.emulator.runs} == {"cancelled"}


def test_dry_run_plan_is_shown_once_under_xdist(suite: Suite) -> None:
    # The controller collects nothing: the plan comes from a worker, and is shown once.
    suite.pytester.makepyfile(SUITE)
    result = suite.run("-n", "2", "--cekura-dry-run")
    result.assert_outcomes(passed=1, skipped=7)
    result.stdout.fnmatch_lines(
        [
            "*= cekura dry run =*",
            "request 1: *scenarios 30, 31 x 2 = 4 call(s)",
            "cekura dry run: would start 5 call(s) in 2 request(s); nothing was submitted",
        ]
    )
    assert result.stdout.str().count("cekura dry run: would start") == 1
    assert suite.emulator.requests == []
