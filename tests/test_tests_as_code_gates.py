"""Tests-as-Code cases with metric gates and the pytest_cekura_modify_request hook, as
cekura_scenario tests have them: pytester runs against the emulator, whose [[case]] tables
decide each case's metrics."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from conftest import Suite
from pytest_cekura.emulator import Emulator

# "slow" runs with a Latency of 1300-1900 ms (p95 over 1200), "quick" with the built-in
# 600-1199 ms.
CATALOGUE = """
[[case]]
key = "slow"
duration_s = 1
metrics = [{ name = "Latency", min = 1300, max = 1900 }]

[[case]]
key = "quick"
duration_s = 1

[[case]]
key = "slow-file"
duration_s = 1
metrics = [{ name = "Latency", min = 1300, max = 1900 }]

[[case]]
key = "quick-file"
duration_s = 1

[[case]]
key = "denied"
outcome = "fail"
duration_s = 1
"""

INLINE = """
import pytest

@pytest.mark.cekura_case(
    key="slow", instructions="You call about a refill.", frequency=2,
    gates={"Latency": "p95 <= 1200"},
)
def test_slow(): pass

@pytest.mark.cekura_case(key="quick", instructions="You call about a refund.",
                         gates={"Latency": "p95 <= 1200"})
def test_quick(): pass
"""


def document(*keys: str) -> str:
    cases = [{"name": key, "key": key, "instructions": f"You call about {key}."} for key in keys]
    return json.dumps({"version": "1", "suite": {"name": "Refunds"}, "scenarios": cases})


def posts(emulator: Emulator, path: str) -> list[Any]:
    return [r.body for r in emulator.requests if r.method == "POST" and path in r.path]


@pytest.fixture
def project(make_suite: Callable[[str], Suite]) -> Suite:
    suite = make_suite(CATALOGUE)
    suite.pytester.makeini("[pytest]\ncekura_agent = 42\n")
    return suite


def test_a_case_whose_runs_succeed_fails_a_broken_latency_gate(project: Suite) -> None:
    project.pytester.makepyfile(INLINE)
    result = project.run("--cekura-poll-interval=0.02", "--cekura-early-verdict")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*Cekura: 2 of 2 runs succeeded (100%), but it broke the metric gate "
            "Latency: p95 <= 1200*",
            "  !! Latency p95 1* over 2 run(s) breaks the gate p95 <= 1200",
        ]
    )
    assert "test_quick" not in "".join(line for line in result.outlines if "FAILED" in line)
    # Gates are pytest's: the suite document sent has none.
    (body,) = posts(project.emulator, "run_scenarios_json")
    assert all("gates" not in case for case in body["spec"]["scenarios"])


def test_session_gates_apply_to_a_json_file_case(project: Suite) -> None:
    project.pytester.makeini("[pytest]\ncekura_agent = 42\ncekura_gates = Latency: p95 <= 1200\n")
    project.pytester.path.joinpath("cekura.tests.json").write_text(document("slow", "quick"))
    result = project.run("--cekura-poll-interval=0.02")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*FAILED*cekura.tests.json::slow*broke the metric gate Latency: p95 <= 1200*"]
    )


def test_a_case_marker_gate_replaces_the_session_gate_and_bad_gates_error(
    project: Suite,
) -> None:
    project.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_case(key="slow", instructions="x", gates={"Latency": None})
        def test_ungated(): pass

        @pytest.mark.cekura_case(key="quick", instructions="y", gates={"Latency": "p99 <= 1"})
        def test_bad(): pass
        """
    )
    result = project.run("--cekura-poll-interval=0.02", "--cekura-gates=Latency: p95 <= 1200")
    result.assert_outcomes(passed=1, errors=1)
    # Worded as cekura_scenario's (brackets would be character classes to fnmatch).
    assert (
        "@pytest.mark.cekura_case: gates['Latency'] = 'p99 <= 1' has unknown aggregate "
        "'p99'; use one of: mean, min, p50, p90, p95, max, pass_rate"
    ) in result.stdout.lines
    # The bad one was never sent, nor validated.
    for body in posts(project.emulator, "scenarios_json"):
        assert [case["key"] for case in body["spec"]["scenarios"]] == ["slow"]


def test_modify_request_changes_the_body_that_is_priced_and_sent(project: Suite) -> None:
    project.pytester.makeconftest(
        """
        def pytest_cekura_modify_request(config, provider, body):
            body["concurrency_limit"] = 3
            for case in body["spec"]["scenarios"]:
                case["max_duration"] = 60
                case["instructions"] += " (modified)"
        """
    )
    project.pytester.path.joinpath("cekura.tests.json").write_text(document("quick"))
    result = project.run("--cekura-poll-interval=0.02", "-s")
    result.assert_outcomes(passed=1)
    (validated,) = posts(project.emulator, "validate_scenarios_json")
    (sent,) = posts(project.emulator, "run_scenarios_json")
    assert validated == sent  # what was priced is what was sent
    assert sent["concurrency_limit"] == 3
    (case,) = sent["spec"]["scenarios"]
    assert case["max_duration"] == 60
    assert case["instructions"] == "You call about quick. (modified)"


def test_modify_request_prices_a_dry_run_as_it_would_send(project: Suite) -> None:
    project.pytester.makeconftest(
        """
        def pytest_cekura_modify_request(body):
            body["spec"]["scenarios"][0]["max_duration"] = 60
        """
    )
    project.pytester.path.joinpath("cekura.tests.json").write_text(document("quick"))
    result = project.run("--cekura-dry-run")
    result.assert_outcomes(skipped=1)
    # 5 credits a minute of max_duration on a call channel: 60 s is 5, not 180 s's 15.
    result.stdout.fnmatch_lines(["*cekura.tests.json::quick: 1 run(s), estimated 5 credits"])
    assert posts(project.emulator, "run_scenarios_json") == []


@pytest.mark.parametrize(
    ("hook", "message"),
    [
        (
            "raise ValueError('no budget code')",
            "*the pytest_cekura_modify_request hook raised ValueError: no budget code at "
            "*conftest.py:*. Nothing was started.*",
        ),
        (
            "body['spec']['scenarios'].pop()",
            '*the pytest_cekura_modify_request hook changed which cases "spec.scenarios" '
            "holds*Nothing was started.*",
        ),
    ],
)
def test_a_failing_modify_request_errors_the_cases_and_sends_nothing(
    project: Suite, hook: str, message: str
) -> None:
    project.pytester.makeconftest(
        f"""
        def pytest_cekura_modify_request(body):
            {hook}
        """
    )
    project.pytester.path.joinpath("cekura.tests.json").write_text(document("quick", "slow"))
    result = project.run("--cekura-poll-interval=0.02")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines([message])
    assert posts(project.emulator, "scenarios_json") == []


def test_a_result_that_broke_a_case_gate_is_not_reused(project: Suite) -> None:
    project.pytester.path.joinpath("cekura.tests.json").write_text(document("slow"))
    # Not project.run: its FAST arguments turn pytest's cache (where results are kept) off.
    run = project.pytester.runpytest
    gated = ("--cekura-poll-interval=0.02", "--cekura-gates=Latency: p95 <= 1200")
    run(*gated).assert_outcomes(failed=1)
    # Every run succeeded, but the gate broke: after a fix the calls must run again.
    run(*gated, "--cekura-reuse=1h").assert_outcomes(failed=1)
    assert len(posts(project.emulator, "run_scenarios_json")) == 2
    # Without the gate the same result is taken as it is.
    run("--cekura-poll-interval=0.02", "--cekura-reuse=1h").assert_outcomes(passed=1)
    assert len(posts(project.emulator, "run_scenarios_json")) == 2


def test_gates_judge_cases_on_every_xdist_worker(project: Suite) -> None:
    # The manifest carries the runs, not the gates: each worker applies its own cases' gates.
    project.pytester.path.joinpath("cekura.tests.json").write_text(
        document("slow-file", "quick-file")
    )
    project.pytester.makepyfile(INLINE)
    result = project.run("-n", "2", "--cekura-gates=Latency: p95 <= 1200", subprocess=True)
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines_random(
        [
            "*FAILED*cekura.tests.json::slow-file*broke the metric gate Latency: p95 <= 1200*",
            "*FAILED*test_slow*broke the metric gate Latency: p95 <= 1200*",
        ]
    )
    assert len(posts(project.emulator, "run_scenarios_json")) == 1


def test_modify_request_is_called_for_a_rerun_failed_request(project: Suite) -> None:
    project.pytester.makeconftest(
        """
        def pytest_cekura_modify_request(body):
            body["concurrency_limit"] = 2
            body["spec"]["scenarios"][0]["tags"] = [body["name"][-5:]]
        """
    )
    project.pytester.path.joinpath("cekura.tests.json").write_text(document("quick", "denied"))
    run = project.pytester.runpytest  # with pytest's cache, where results are kept
    run("--cekura-poll-interval=0.02").assert_outcomes(passed=1, failed=1)
    run("--cekura-poll-interval=0.02", "--cekura-rerun-failed").assert_outcomes(passed=1, failed=1)
    _, rerun = posts(project.emulator, "run_scenarios_json")
    assert [c["key"] for c in rerun["spec"]["scenarios"]] == ["denied"]
    assert rerun["name"].endswith(" suite 1 rerun")
    assert rerun["concurrency_limit"] == 2
    assert rerun["spec"]["scenarios"][0]["tags"] == ["rerun"]
