"""Pass, fail and error as a user sees them, with reports a person can act on."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from conftest import FAST, PLAYBOOK, Suite


@pytest.fixture
def catalogued(make_suite: Callable[[str], Suite]) -> Suite:
    return make_suite(PLAYBOOK)


def test_passing_scenarios_pass_without_a_body(catalogued: Suite) -> None:
    catalogued.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30, frequency=3)
        def test_refill_flow():
            '''No body needed.'''
        """
    )
    result = catalogued.run()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*= cekura =*",
            "PASSED  test_passing_scenarios_pass_without_a_body.py::test_refill_flow"
            " · scenarios 30 · runs 3/3 (100%), needs 100%",
            "cekura: 1 test(s) (1 passed) over 3 run(s); API requests: 1 POST start runs, *",
        ]
    )


def test_agent_failure_fails_with_an_actionable_report(catalogued: Suite) -> None:
    catalogued.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30, 31, frequency=2)
        def test_billing():
            pass
        """
    )
    result = catalogued.run()
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*Cekura: 2 of 4 runs succeeded (50%); this test needs 100%.",
            "*scenarios 30, 31 x 2 (livekit) · result *",
            '*run * · scenario 31 "Billing dispute" · completed, not successful',
            "*why: the agent did not meet the scenario's expectations",
            "*expected outcome: 0/100",
            "*failing metrics:",
            "*transcript (last * of * lines):",
            "*link: https://dashboard.cekura.ai/1/results/*?call_id=*",  # project 1: the agent's
        ]
    )
    # Only the two failing runs are detailed, each with its own link. (Under CI=true pytest
    # repeats the whole message in its short summary, so count in the report section only.)
    report = out.split("short test summary info")[0]
    assert report.count('scenario 31 "Billing dispute" · completed, not successful') == 2
    assert "Refill a prescription" not in out
    assert re.search(r"\[\d\d:\d\d\.\d\] (Main|Testing) Agent: ", out)


def test_threshold_lets_a_partly_failing_test_pass(catalogued: Suite) -> None:
    catalogued.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30, 31, frequency=2, min_success_rate=0.5)
        def test_billing(cekura_result):
            assert cekura_result.success_rate == 0.5
            assert all(r.duration_s is not None and r.duration_s < 300 for r in cekura_result.runs)
        """
    )
    catalogued.run().assert_outcomes(passed=1)


def test_cekura_could_not_run_it_is_an_error(catalogued: Suite) -> None:
    catalogued.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30, 32)
        def test_unlucky():
            pass

        @pytest.mark.cekura_scenario(30)
        def test_fine():
            pass
        """
    )
    result = catalogued.run()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_unlucky*",
            "*Cekura could not decide this test: 1 of 2 runs succeeded and 1 could not be run*",
            '*run * · scenario 32 "Agent never joins" · failed, not successful',
            "*why: Cekura could not complete the call (status failed): Agent did not join*",
        ]
    )


def test_unfinished_runs_error_at_the_deadline_naming_them(catalogued: Suite) -> None:
    catalogued.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(33)
        def test_stuck():
            pass

        @pytest.mark.cekura_scenario(30)
        def test_fine():
            pass
        """
    )
    result = catalogued.run("--cekura-timeout=0.5")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            '*run * · scenario 33 "Endless hold music" · running, not scored',
            "*why: not finished by the deadline; last status 'running'",
        ]
    )
    # The stuck call is ended at session end so it stops costing money.
    assert catalogued.emulator.count("POST", "end_call") == 1


def test_flaky_scenario_is_judged_on_the_threshold(catalogued: Suite) -> None:
    catalogued.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(34, frequency=10, min_success_rate=0.0)
        def test_coin(cekura_result):
            wins = sum(r.success is True for r in cekura_result.runs)
            assert 0 < wins < 10  # deterministic per run id, and not all alike
            assert cekura_result.success_rate == wins / 10
        """
    )
    catalogued.run().assert_outcomes(passed=1)


def test_body_assertions_run_after_a_pass_and_can_fail_it(catalogued: Suite) -> None:
    catalogued.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30, frequency=2, test_profile=7)
        def test_profile(cekura_result):
            assert len(cekura_result.runs) == 2
            assert cekura_result.runs[0].test_profile_data["name"] == "Jane"

        @pytest.mark.cekura_scenario(30)
        def test_strict(cekura_result):
            assert cekura_result.runs[0].duration_s < 1, "calls must be short"
        """
    )
    result = catalogued.run()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*AssertionError: calls must be short*"])
    result.stdout.fnmatch_lines(["FAILED  *::test_strict · scenarios 30 · runs 1/1 (100%)*"])


def test_cekura_client_fixture_reads_the_same_result(catalogued: Suite) -> None:
    catalogued.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30, frequency=2)
        def test_lookup(cekura_result, cekura_client):
            (result_id,) = cekura_result.result_ids
            result = cekura_client.get_result(result_id)
            assert sorted(r.id for r in result.runs) == sorted(r.id for r in cekura_result.runs)
            assert result.success_rate == 1.0
        """
    )
    catalogued.run().assert_outcomes(passed=1)


def test_cekura_result_without_marker_is_a_clear_error(suite: Suite) -> None:
    suite.pytester.makepyfile("def test_unmarked(cekura_result): pass")
    result = suite.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*cekura_result fixture needs @pytest.mark.cekura_scenario*"])


def test_gets_do_not_grow_with_the_number_of_tests(make_suite: Callable[[str], Suite]) -> None:
    slow = "".join(f"[[scenario]]\nid = {i}\nduration_s = 300\n" for i in range(100, 130))
    suite = make_suite(slow)
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("sid", range(100, 130))
        def test_many(sid):
            pass
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
    suite.run("--cekura-poll-interval=0.1").assert_outcomes(passed=30)
    gets = [r for r in suite.emulator.requests if r.path.endswith("/runs/bulk/")]
    # Calls last 0.3 s and the poller asks every 0.1 s for all outstanding runs at once:
    # a handful of GETs, not one (or more) per test.
    assert 1 <= len(gets) <= 8
    assert len(gets[0].query["run_ids"].split(",")) == 30


@pytest.mark.parametrize("method", ["signal", "thread"])
def test_pytest_timeout_ends_a_waiting_test_and_spares_the_others(
    catalogued: Suite, method: str
) -> None:
    catalogued.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(33)
        def test_stuck(): pass

        @pytest.mark.cekura_scenario(30)
        def test_fine(): pass
        """
    )
    result = catalogued.run("--timeout=1", f"--timeout-method={method}", subprocess=True)
    # The wait ends itself just before pytest-timeout fires, so even the "thread" method, which
    # would end the process, leaves the other tests their outcomes.
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*Timeout (>1s) from pytest-timeout while waiting for Cekura*"])
    assert catalogued.posts() == 1
    assert catalogued.emulator.count("POST", "end_call") == 1


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
# In finish order the wait is in the test loop, before any test starts.
@pytest.mark.parametrize("order", ["collection", "finish"])
def test_interrupt_while_waiting_ends_the_calls_and_exits_interrupted(
    catalogued: Suite, sig: signal.Signals, order: str
) -> None:
    catalogued.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(33, frequency=2)
        def test_stuck(): pass
        """
    )
    # The readiness signal: the test loop has started, so the session submitted and is about
    # to wait (in the loop in finish order, in the test's setup otherwise).
    catalogued.pytester.makeconftest(
        """
        import pathlib
        import pytest

        @pytest.hookimpl(tryfirst=True)
        def pytest_runtestloop(session):
            pathlib.Path("loop-started").touch()
        """
    )
    ready = catalogued.pytester.path / "loop-started"
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", *FAST, f"--cekura-order={order}"],
        cwd=catalogued.pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # CI may start us with SIGINT ignored, which the child would inherit.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ready.exists(), "the session never reached its test loop"
        assert catalogued.posts() == 1
        process.send_signal(sig)
        output, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "KeyboardInterrupt" in output
    assert "Exception in thread" not in output
    # One request ends the result's two calls (results/{id}/end_calls/), and says so.
    assert catalogued.emulator.count("POST", "end_calls") == 1
    assert catalogued.emulator.count("POST", "end_call/") == 0
    assert {run["status"] for run in catalogued.emulator.runs} == {"cancelled"}
    assert "pytest-cekura: ended the calls still going of result(s) " in output
    assert "(2 run(s)) so they stop costing credits." in output


def test_skipif_test_is_not_waited_for(catalogued: Suite) -> None:
    catalogued.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.skipif(True, reason="not on this platform")
        @pytest.mark.cekura_scenario(33)
        def test_stuck_but_skipped(): pass
        """
    )
    # Scenario 33 never finishes: waiting for it would take the whole timeout.
    result = catalogued.run("--cekura-timeout=30")
    result.assert_outcomes(skipped=1)
    assert result.duration < 10


def test_report_header_names_the_emulator(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain(): pass")
    result = pytester.runpytest("--cekura-emulator")
    result.stdout.fnmatch_lines(["cekura: built-in emulator (time scale 0.01), poll every 0.1s*"])


def test_a_rerun_test_gets_its_runs_again_without_a_second_submission(catalogued: Suite) -> None:
    # A test's full run detail is let go once it is reported (sessions of 10,000 runs would
    # otherwise hold every transcript); pytest-rerunfailures then runs the same test again.
    catalogued.pytester.makepyfile(
        """
        import pytest

        attempts = []

        @pytest.mark.flaky(reruns=1)
        @pytest.mark.cekura_scenario(30, frequency=2)
        def test_refill_flow(cekura_result):
            attempts.append(cekura_result)
            assert len(cekura_result.runs) == 2
            assert all(run.transcript_object for run in cekura_result.runs)
            assert len(attempts) == 2, "first attempt fails on purpose"
            assert attempts[0].runs == attempts[1].runs
        """
    )
    result = catalogued.run()
    assert result.parseoutcomes() == {"passed": 1, "rerun": 1}
    assert catalogued.posts() == 1
    # One summary row per test: the rerun replaces the attempt before it.
    result.stdout.fnmatch_lines(["cekura: 1 test(s) (1 passed) over 2 run(s); *"])
