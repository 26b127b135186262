"""--cekura-agent-cmd: the user's worker is started, waited for, shown and stopped."""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from conftest import Suite

STAND_IN = Path(__file__).with_name("stand_in_worker.py")
SUITE = """
import pytest

@pytest.mark.cekura_scenario(30)
def test_good(): pass

@pytest.mark.cekura_scenario(31)
def test_bad(): pass
"""


def worker_cmd(*args: str) -> str:
    return shlex.join([sys.executable, str(STAND_IN), *args])


@pytest.fixture
def agent_suite(make_suite: Callable[[str], Suite]) -> Suite:
    suite = make_suite('[[scenario]]\nid = 31\noutcome = "fail"\n')
    suite.pytester.makepyfile(SUITE)
    return suite


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_worker_is_started_before_submission_and_stopped_after(
    agent_suite: Suite, tmp_path: Path
) -> None:
    pid_file = tmp_path / "worker.pid"
    cmd = worker_cmd(
        "--ready-after", "0.2", "--pid-file", str(pid_file), "--print-on-sigint", "bye"
    )
    result = agent_suite.run(f"--cekura-agent-cmd={cmd}")
    result.assert_outcomes(passed=1, failed=1)
    assert agent_suite.posts() == 1
    assert gone(int(pid_file.read_text()))
    # The failing test's report ends with the worker's output, for the agent-side story.
    result.stdout.fnmatch_lines(["agent worker output (last * lines):", "*registered worker*"])
    log = next(line for line in result.stdout.lines if "agent worker output goes to" in line)
    assert "bye" in Path(log.split("goes to ")[1]).read_text()


def test_worker_never_ready_submits_nothing(agent_suite: Suite) -> None:
    cmd = worker_cmd("--never-ready")
    result = agent_suite.run(f"--cekura-agent-cmd={cmd}", "--cekura-agent-ready-timeout=1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "pytest-cekura: nothing was submitted." in err
    assert "--cekura-agent-ready" in err
    assert agent_suite.emulator.requests == []


def test_worker_exiting_early_submits_nothing(agent_suite: Suite) -> None:
    cmd = worker_cmd("--never-ready", "--exit-after", "0.1", "--exit-code", "3")
    result = agent_suite.run(f"--cekura-agent-cmd={cmd}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*exited with code 3 before*"])
    assert agent_suite.emulator.requests == []


def test_custom_ready_pattern(agent_suite: Suite) -> None:
    # The line must still say the name the worker took (see test_worker_name_*).
    cmd = worker_cmd("--ready-line", 'agent up as {"agent_name": "{name}"}, listening')
    result = agent_suite.run(f"--cekura-agent-cmd={cmd}", "--cekura-agent-ready=listening$")
    result.assert_outcomes(passed=1, failed=1)


def test_dry_run_does_not_start_the_worker(agent_suite: Suite, tmp_path: Path) -> None:
    pid_file = tmp_path / "worker.pid"
    cmd = worker_cmd("--pid-file", str(pid_file))
    agent_suite.run(f"--cekura-agent-cmd={cmd}", "--cekura-dry-run").assert_outcomes(skipped=2)
    assert not pid_file.exists()


def test_xdist_controller_starts_one_worker(agent_suite: Suite, tmp_path: Path) -> None:
    pid_file = tmp_path / "worker.pid"
    cmd = worker_cmd("--ready-after", "0.1", "--pid-file", str(pid_file))
    result = agent_suite.run(f"--cekura-agent-cmd={cmd}", "-n", "2", subprocess=True)
    result.assert_outcomes(passed=1, failed=1)
    assert agent_suite.posts() == 1
    assert gone(int(pid_file.read_text()))
    result.stdout.fnmatch_lines(["agent worker output (last * lines):"])


# -- an isolated worker per session (issue #17 items 1 and 2) ---------------------------------


def _session_name(result: pytest.RunResult) -> str:
    line = next(line for line in result.stdout.lines if "agent worker registers as" in line)
    return line.split("registers as ")[1].split(";")[0]


def test_worker_name_every_run_is_dispatched_to_the_sessions_own_worker(
    agent_suite: Suite,
) -> None:
    # A livekit-agents 1.6+ worker whose code names production's agent: the override wins.
    cmd = worker_cmd("--code-name", "pharmacy-agent", "--echo-env", "LIVEKIT_AGENT_NAME")
    result = agent_suite.run(f"--cekura-agent-cmd={cmd}", "--cekura-agent-name-base=ci")
    result.assert_outcomes(passed=1, failed=1)
    name = _session_name(result)
    assert re.fullmatch(r"ci-pytest-[0-9a-f]{8}", name)
    runs = agent_suite.emulator.runs
    assert len(runs) == 2
    assert {run["livekit_agent_name"] for run in runs} == {name}
    # The failure report names where its calls went.
    result.stdout.fnmatch_lines([f"*livekit_data.agent_name): {name}"])
    assert f"LIVEKIT_AGENT_NAME={name}" in result.stdout.str()


def test_worker_name_is_new_for_each_session(agent_suite: Suite) -> None:
    first = _session_name(agent_suite.run(f"--cekura-agent-cmd={worker_cmd()}"))
    second = _session_name(agent_suite.run(f"--cekura-agent-cmd={worker_cmd()}"))
    assert first != second
    assert first.startswith("cekura-agent-pytest-")


def test_worker_name_base_is_the_agents_saved_name(make_suite: Callable[[str], Suite]) -> None:
    suite = make_suite('[[agent]]\nid = 45\nlivekit_agent_name = "pharmacy agent"\n')
    suite.pytester.makepyfile(SUITE)
    result = suite.run(f"--cekura-agent-cmd={worker_cmd()}", "--cekura-agent=45")
    result.assert_outcomes(passed=2)
    name = _session_name(result)
    # Production's name, made a valid base, then the session's own part: never production's.
    assert re.fullmatch(r"pharmacy-agent-pytest-[0-9a-f]{8}", name)
    assert {run["livekit_agent_name"] for run in suite.emulator.runs} == {name}
    # Looked up once, before the worker started (the preflight asks again, in the session).
    assert suite.emulator.count("GET", "/aiagents/45/") == 2
    # A base given wins, and asks nothing.
    before = suite.emulator.count("GET", "/aiagents/45/")
    result = suite.run(
        f"--cekura-agent-cmd={worker_cmd()}", "--cekura-agent=45", "--cekura-agent-name-base=ci"
    )
    assert _session_name(result).startswith("ci-pytest-")
    assert suite.emulator.count("GET", "/aiagents/45/") == before + 1


def test_worker_name_base_under_the_built_in_emulator_is_read_from_its_catalogue(
    pytester: pytest.Pytester,
) -> None:
    catalogue = pytester.makefile(".toml", cat='[[agent]]\nid = 45\nlivekit_agent_name = "rx"\n')
    pytester.makepyfile(SUITE)
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--cekura-emulator", "--cekura-emulator-time-scale=0.001",
        f"--cekura-emulator-catalogue={catalogue}", "--cekura-agent=45",
        f"--cekura-agent-cmd={worker_cmd()}", "--cekura-poll-interval=0.02",
    )  # fmt: skip
    result.assert_outcomes(passed=2)
    assert _session_name(result).startswith("rx-pytest-")


def test_worker_name_base_without_a_reachable_agent_is_the_default(
    make_suite: Callable[[str], Suite],
) -> None:
    suite = make_suite("[[agent]]\nid = 46\nexists = false\n")
    suite.pytester.makepyfile(SUITE)
    result = suite.run(f"--cekura-agent-cmd={worker_cmd()}", "--cekura-agent=46")
    # The preflight, not the naming, says the agent does not exist.
    assert _session_name(result).startswith("cekura-agent-pytest-")
    assert suite.posts() == 0


def test_worker_name_from_a_custom_env_variable(agent_suite: Suite) -> None:
    # A worker before livekit-agents 1.6 that reads its name from a variable of its own.
    cmd = worker_cmd("--before-1-6", "--echo-env", "MY_AGENT_NAME")
    result = agent_suite.run(f"--cekura-agent-cmd={cmd}", "--cekura-agent-name-env=MY_AGENT_NAME")
    # This stand-in reads LIVEKIT_AGENT_NAME, which is not set: it registers with no name.
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"MY_AGENT_NAME={_session_name(result)}" in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize(
    ("worker_args", "said"),
    [
        # livekit-agents before 1.6 ignores the override; the code names production's agent.
        (("--before-1-6", "--code-name", "pharmacy-agent"), "registered as 'pharmacy-agent'"),
        # A worker that reads no name at all: LiveKit would send it every new room.
        (("--no-name-from-env",), "registered with no agent name"),
        # A line that does not say: isolation cannot be checked.
        (("--no-name-field",), "does not say which agent name"),
    ],
    ids=["production-name", "no-name", "unknown-name"],
)
def test_worker_name_wrong_stops_the_worker_and_submits_nothing(
    agent_suite: Suite, tmp_path: Path, worker_args: tuple[str, ...], said: str
) -> None:
    pid_file = tmp_path / "worker.pid"
    cmd = worker_cmd("--pid-file", str(pid_file), *worker_args)
    result = agent_suite.run(f"--cekura-agent-cmd={cmd}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "pytest-cekura: nothing was submitted." in err
    assert said in err
    assert "LIVEKIT_AGENT_NAME_OVERRIDE" in err  # how to fix the worker
    assert "WorkerOptions(agent_name=" in err
    assert agent_suite.posts() == 0
    assert not [r for r in agent_suite.emulator.requests if r.method == "POST"]
    assert gone(int(pid_file.read_text()))


def test_worker_with_production_name_explains_the_danger(agent_suite: Suite) -> None:
    # The emulator's agent 7 has the LiveKit agent name "agent-7" saved: production's.
    cmd = worker_cmd("--before-1-6", "--code-name", "agent-7")
    result = agent_suite.run(f"--cekura-agent-cmd={cmd}", "--cekura-agent=7")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "registered as 'agent-7' (production's name)" in err
    assert "join the pool" in err
    assert agent_suite.posts() == 0


def test_worker_with_another_name_is_not_called_production(agent_suite: Suite) -> None:
    cmd = worker_cmd("--before-1-6", "--code-name", "someone-else")
    err = agent_suite.run(f"--cekura-agent-cmd={cmd}", "--cekura-agent=7").stderr.str()
    assert "registered as 'someone-else' (another name)" in err


def test_worker_with_no_name_explains_the_danger(agent_suite: Suite) -> None:
    err = agent_suite.run(f"--cekura-agent-cmd={worker_cmd('--no-name-from-env')}").stderr.str()
    assert "every new room of the project, real customer calls included" in err


def test_livekit_agent_name_targets_a_running_worker_without_starting_one(
    agent_suite: Suite, tmp_path: Path
) -> None:
    result = agent_suite.run("--cekura-livekit-agent-name=preview-pr-42")
    result.assert_outcomes(passed=1, failed=1)
    assert {run["livekit_agent_name"] for run in agent_suite.emulator.runs} == {"preview-pr-42"}
    assert "agent worker" not in result.stdout.str()


def test_livekit_agent_name_and_agent_cmd_together_is_one_clear_error(
    agent_suite: Suite, tmp_path: Path
) -> None:
    pid_file = tmp_path / "worker.pid"
    cmd = worker_cmd("--pid-file", str(pid_file))
    result = agent_suite.run(
        f"--cekura-agent-cmd={cmd}", "--cekura-livekit-agent-name=preview-pr-42"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--cekura-agent-cmd*--cekura-livekit-agent-name*give one*"])
    assert not pid_file.exists()
    assert agent_suite.emulator.requests == []


def test_worker_name_under_xdist_is_the_same_for_every_worker(agent_suite: Suite) -> None:
    result = agent_suite.run(f"--cekura-agent-cmd={worker_cmd()}", "-n", "2", subprocess=True)
    result.assert_outcomes(passed=1, failed=1)
    name = _session_name(result)
    assert {run["livekit_agent_name"] for run in agent_suite.emulator.runs} == {name}


def test_json_report_shows_each_runs_dispatch_name(agent_suite: Suite, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    result = agent_suite.run(f"--cekura-agent-cmd={worker_cmd()}", f"--cekura-report={report}")
    name = _session_name(result)
    data = json.loads(report.read_text())
    runs = [run for test in data["tests"] for run in test["runs"]]
    assert len(runs) == 2
    assert {run["livekit_agent_name"] for run in runs} == {name}


# -- concurrency with a local worker (issue #17 item 3) ---------------------------------------


def test_local_worker_gets_a_small_concurrency_limit_stated_in_the_header(
    agent_suite: Suite,
) -> None:
    result = agent_suite.run(f"--cekura-agent-cmd={worker_cmd()}")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["cekura: at most 3 call(s) at once per request*"])
    assert [run["concurrency_limit"] for run in agent_suite.emulator.runs] == [3, 3]


def test_a_given_concurrency_limit_wins_over_the_local_default(agent_suite: Suite) -> None:
    result = agent_suite.run(f"--cekura-agent-cmd={worker_cmd()}", "--cekura-concurrency-limit=1")
    result.stdout.fnmatch_lines(["cekura: at most 1 call(s) at once per request*"])
    assert [run["concurrency_limit"] for run in agent_suite.emulator.runs] == [1, 1]


def test_without_a_local_worker_no_concurrency_limit_is_sent(agent_suite: Suite) -> None:
    agent_suite.run().assert_outcomes(passed=1, failed=1)
    assert [run["concurrency_limit"] for run in agent_suite.emulator.runs] == [None, None]


def most_calls_at_once(runs: list[dict[str, Any]]) -> int:
    """The most calls holding a line at the same instant, from the emulator's record."""
    events = []
    for run in runs:
        events.append((datetime.fromisoformat(run["line_held_from"]), 1))
        events.append((datetime.fromisoformat(run["line_held_until"]), -1))
    at_once = most = 0
    for _, step in sorted(events):  # at a tie a freed line (-1) sorts first: it is reused
        at_once += step
        most = max(most, at_once)
    return most


def test_the_emulator_keeps_at_most_the_limit_of_calls_running(
    make_suite: Callable[[str], Suite],
) -> None:
    suite = make_suite("")
    suite.pytester.makepyfile(
        "import pytest\n\n"
        "@pytest.mark.cekura_scenario(30, frequency=7)\n"
        "def test_many_calls(): pass\n"
    )
    suite.run(f"--cekura-agent-cmd={worker_cmd()}").assert_outcomes(passed=1)
    limited = suite.emulator.runs
    assert [run["concurrency_limit"] for run in limited] == [3] * 7
    assert most_calls_at_once(limited) == 3
    # The same test without a local worker: no limit, every call at once (so the count above
    # measures the limit, not a test that happens to run its calls one by one).
    suite.run().assert_outcomes(passed=1)
    unlimited = suite.emulator.runs[7:]
    assert [run["concurrency_limit"] for run in unlimited] == [None] * 7
    assert most_calls_at_once(unlimited) == 7
