"""--cekura-agent-cmd: the user's worker is started, waited for, shown and stopped."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

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
    cmd = worker_cmd("--ready-line", "agent up and listening")
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
