"""The plugin's own hooks (pytest_cekura/hookspec.py), implemented in a conftest.py as a user
would, against the emulator over loopback HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from conftest import PLAYBOOK, SENTINEL_KEY, Suite, wire
from pytest_cekura.emulator import Emulator

POLL = "--cekura-poll-interval=0.02"

TWO_GROUPS = """
import pytest

@pytest.mark.cekura_scenario(30)
def test_once(): pass

@pytest.mark.cekura_scenario(30, 31, frequency=2, min_success_rate=0.5)
def test_twice(): pass
"""


def start_bodies(emulator: Emulator) -> list[Any]:
    return [r.body for r in emulator.requests if r.method == "POST" and "run_scenarios" in r.path]


def test_modify_request_changes_every_posted_body(suite: Suite) -> None:
    suite.pytester.makeconftest(
        """
        def pytest_cekura_modify_request(config, provider, body):
            body["mock_tool_names"] = [provider, str(len(body["scenarios"]))]
        """
    )
    suite.pytester.makepyfile(TWO_GROUPS)
    suite.run().assert_outcomes(passed=2)
    bodies = start_bodies(suite.emulator)
    assert sorted(body["mock_tool_names"] for body in bodies) == [
        ["livekit", "1"],
        ["livekit", "2"],
    ]
    assert all(body["name"].startswith("pytest-cekura ") for body in bodies)


def test_modify_request_in_a_sub_folder_conftest_is_called(suite: Suite) -> None:
    # A sub-folder's conftest.py registers its hooks during collection.
    sub = suite.pytester.mkpydir("sub")
    (sub / "conftest.py").write_text(
        "def pytest_cekura_modify_request(body):\n    body['mock_tool_names'] = ['sub']\n"
    )
    (sub / "test_sub.py").write_text(TWO_GROUPS)
    suite.run().assert_outcomes(passed=2)
    assert [body["mock_tool_names"] for body in start_bodies(suite.emulator)] == [["sub"]] * 2


@pytest.mark.parametrize(
    ("hook", "message"),
    [
        (
            "raise ValueError('no budget code for ' + provider)",
            "*the pytest_cekura_modify_request hook raised ValueError: no budget code for "
            "livekit at *conftest.py:2. Nothing was started.*",
        ),
        (
            "body['name'] = 'mine'",
            '*the pytest_cekura_modify_request hook changed the request\'s "name": leave it*',
        ),
        (
            "return dict(body, x=1)",
            "*the pytest_cekura_modify_request hook returned a value: change the body in place*",
        ),
    ],
)
def test_a_failing_modify_request_errors_its_tests_and_posts_nothing(
    suite: Suite, hook: str, message: str
) -> None:
    suite.pytester.makeconftest(
        f"""
        def pytest_cekura_modify_request(config, provider, body):
            {hook}
        """
    )
    suite.pytester.makepyfile(TWO_GROUPS)
    result = suite.run()
    result.assert_outcomes(errors=2)
    output = result.stdout.str()
    assert "INTERNALERROR" not in output
    result.stdout.fnmatch_lines([message])
    assert start_bodies(suite.emulator) == []
    assert suite.emulator.runs == []


def test_a_failing_hook_never_shows_the_api_key(suite: Suite) -> None:
    suite.pytester.makeconftest(
        """
        import os

        def pytest_cekura_modify_request(body):
            raise RuntimeError("key is " + os.environ["CEKURA_API_KEY"])

        def pytest_cekura_runs_final(item, result):
            raise RuntimeError("key is " + os.environ["CEKURA_API_KEY"])
        """
    )
    suite.pytester.makepyfile(TWO_GROUPS)
    result = suite.run("-rA")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*modify_request hook raised RuntimeError: key is [*][*][*] at *",
            "*runs_final hook raised RuntimeError: key is [*][*][*] at *",
        ]
    )
    assert SENTINEL_KEY not in result.stdout.str() + result.stderr.str()


def test_modify_request_applies_to_rerun_failed_requests(
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
        def test_coin(): pass
        """
    )
    suite.pytester.runpytest(POLL).assert_outcomes(passed=1)
    suite.pytester.makeconftest(
        """
        def pytest_cekura_modify_request(body):
            body["mock_tool_names"] = [body["name"].rsplit(" ", 1)[-1]]
        """
    )
    suite.pytester.runpytest(POLL, "--cekura-rerun-failed").assert_outcomes(passed=1)
    first, again = start_bodies(suite.emulator)
    assert "mock_tool_names" not in first
    assert again["mock_tool_names"] == ["rerun"]


def test_runs_final_gets_each_tests_result_once(make_suite: Callable[[str], Suite]) -> None:
    suite = make_suite(PLAYBOOK)
    suite.pytester.makeconftest(
        """
        import pytest

        def pytest_cekura_runs_final(item, result):
            rate = result.success_rate
            print(f"FINAL {item.name} {len(result.runs)} {rate:g} {result.scenario_ids}")
        """
    )
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30, 31, frequency=2, min_success_rate=0.5)
        def test_half(cekura_result):
            assert cekura_result.success_rate == 0.5

        @pytest.mark.cekura_scenario(31, 32)
        def test_fails(): pass

        def test_plain(): pass
        """
    )
    result = suite.run("-s")
    result.assert_outcomes(passed=2, failed=1)
    output = result.stdout.str()
    assert output.count("FINAL ") == 2
    result.stdout.fnmatch_lines(["*FINAL test_half 4 0.5 (30, 31)*"])
    result.stdout.fnmatch_lines(["*FINAL test_fails 2 0 (31, 32)*"])


def test_a_failing_runs_final_errors_that_test_alone(suite: Suite) -> None:
    suite.pytester.makeconftest(
        """
        def pytest_cekura_runs_final(item, result):
            if item.name == "test_once":
                raise KeyError("exporter down")
        """
    )
    suite.pytester.makepyfile(TWO_GROUPS)
    result = suite.run()
    result.assert_outcomes(passed=1, errors=1)  # reported like any Cekura test's error
    assert "INTERNALERROR" not in result.stdout.str()
    assert "During handling" not in result.stdout.str()
    result.stdout.fnmatch_lines(
        ["*the pytest_cekura_runs_final hook raised KeyError: 'exporter down' at *conftest.py:3*"]
    )
    assert len(start_bodies(suite.emulator)) == 2


def test_under_xdist_each_request_is_modified_once(suite: Suite) -> None:
    # Only the worker that submits calls the hook: each POST carries its change once.
    suite.pytester.makeconftest(
        """
        def pytest_cekura_modify_request(body):
            body.setdefault("mock_tool_names", []).append("send_sms")

        def pytest_cekura_runs_final(item, result):
            # In whichever worker ran the test.
            (item.config.rootpath / f"final-{item.name}").write_text(str(len(result.runs)))
        """
    )
    suite.pytester.makepyfile(TWO_GROUPS)
    result = suite.run("-n", "2", subprocess=True)
    result.assert_outcomes(passed=2)
    bodies = start_bodies(suite.emulator)
    assert [body["mock_tool_names"] for body in bodies] == [["send_sms"]] * 2
    finals = {p.name: p.read_text() for p in suite.pytester.path.glob("final-*")}
    assert finals == {"final-test_once": "1", "final-test_twice": "4"}


def test_a_dry_run_calls_no_hook(suite: Suite) -> None:
    suite.pytester.makeconftest(
        """
        def pytest_cekura_modify_request(body):
            raise AssertionError("called on a dry run")

        def pytest_cekura_runs_final(item, result):
            raise AssertionError("called on a dry run")
        """
    )
    suite.pytester.makepyfile(TWO_GROUPS)
    result = suite.run("--cekura-dry-run")
    result.assert_outcomes(skipped=2)
    assert "called on a dry run" not in result.stdout.str()
    assert start_bodies(suite.emulator) == []
