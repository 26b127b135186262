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


@pytest.mark.parametrize("dist", ["load", "loadscope", "loadfile"])
def test_workers_submit_each_group_once(suite: Suite, dist: str) -> None:
    suite.pytester.makepyfile(SUITE)
    result = suite.run("-n", "3", "--dist", dist, subprocess=True)
    result.assert_outcomes(passed=8)
    assert suite.posts() == 2  # as many as a serial run: one per (provider, frequency) group
    assert len(suite.emulator.runs) == 5
    result.stdout.fnmatch_lines(
        ["cekura: 7 test(s) (7 passed) over 5 run(s); API requests: 2 POST start runs, *"]
    )


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
