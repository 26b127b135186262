"""The agent-worker runner against real subprocesses (tests/stand_in_worker.py), no mocks."""

from __future__ import annotations

import os
import re
import shlex
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_cekura.errors import ConfigError
from pytest_cekura.worker import (
    DEFAULT_READY_PATTERN,
    AgentWorker,
    WorkerError,
    WorkerSpec,
    registered_name,
)

STAND_IN = Path(__file__).with_name("stand_in_worker.py")
#: Generous: a passing wait returns as soon as the line appears, so this only bounds failures.
READY_TIMEOUT = 10.0

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups")


def stand_in(*args: str) -> str:
    return shlex.join([sys.executable, str(STAND_IN), *args])


MakeWorker = Callable[..., AgentWorker]


@pytest.fixture
def make_worker(tmp_path: Path) -> Iterator[MakeWorker]:
    """Build workers on the stand-in; whatever a test leaves running is stopped afterwards."""
    made: list[AgentWorker] = []

    def make(*args: str, **spec: object) -> AgentWorker:
        spec.setdefault("log_path", tmp_path / f"worker-{len(made)}.log")
        spec.setdefault("ready_timeout", READY_TIMEOUT)
        worker = AgentWorker(WorkerSpec(stand_in(*args), **spec))  # type: ignore[arg-type]
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.stop(interrupt_timeout=1, terminate_timeout=1, kill_timeout=1)


def is_gone(pid: int) -> bool:
    """True once ``pid`` no longer runs; an unreaped zombie (of someone else's) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] == "Z"


def wait_gone(pid: int, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while not is_gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# -- the default pattern ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        '{"message": "registered worker", "level": "INFO", "name": "livekit.agents", '
        '"id": "AW_abc", "url": "wss://x.livekit.cloud"}',
        '2026-01-01 12:00:00,000 - INFO livekit.agents - registered worker {"id": "AW_abc"}',
        '12:00:00 INFO livekit.agents registered worker {"id": "AW_abc"}',
        "12:00:00.123 INFO     livekit.agents     Registered  Worker",
    ],
)
def test_default_pattern_matches_livekit_log_formats(line: str) -> None:
    assert re.search(DEFAULT_READY_PATTERN, line)


@pytest.mark.parametrize(
    "line",
    ['{"message": "starting worker", "version": "1.2.0"}', "unregistered worker AW_abc"],
)
def test_default_pattern_ignores_other_lines(line: str) -> None:
    assert not re.search(DEFAULT_READY_PATTERN, line)


# -- readiness ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "text", "colored"])
def test_ready_on_livekit_registered_line(make_worker: MakeWorker, fmt: str) -> None:
    worker = make_worker("--format", fmt)
    assert not worker.ready
    assert worker.pid is None
    worker.start()
    assert worker.pid is not None
    worker.wait_ready()
    assert worker.ready
    assert worker.returncode is None
    # Colour codes are gone from what is kept, so messages stay readable.
    assert any("registered worker" in line and "AW_stand_in" in line for line in worker.tail())
    assert not any("\x1b" in line for line in worker.tail())


def test_ready_on_custom_pattern(make_worker: MakeWorker) -> None:
    worker = make_worker(
        "--ready-line", "Agent ready on port 8081", ready_pattern=r"ready on port \d+"
    )
    worker.start()
    worker.wait_ready()
    assert worker.tail(1) == ["Agent ready on port 8081"]


def test_custom_pattern_replaces_the_default(make_worker: MakeWorker) -> None:
    worker = make_worker(ready_pattern="never printed", ready_timeout=0.8)
    worker.start()
    with pytest.raises(WorkerError, match="never printed"):
        worker.wait_ready()


def test_log_file_has_stdout_and_stderr_raw(make_worker: MakeWorker, tmp_path: Path) -> None:
    log_path = tmp_path / "logs" / "nested" / "agent.log"
    log_path.parent.mkdir(parents=True)
    log_path.write_text("stale content from a previous session\n")
    worker = make_worker("--format", "colored", log_path=log_path)
    assert worker.log_path == log_path
    worker.start()
    worker.wait_ready()
    worker.stop()
    text = log_path.read_text()
    assert "stale content" not in text
    assert "starting worker" in text
    assert "this line goes to stderr" in text
    assert "registered worker" in text
    assert "\x1b[32mINFO" in text  # the log is the worker's output as it was
    assert "worker shutting down" in text


def test_log_directory_is_created(make_worker: MakeWorker, tmp_path: Path) -> None:
    log_path = tmp_path / "does" / "not" / "exist" / "agent.log"
    with make_worker(log_path=log_path):
        pass
    assert "registered worker" in log_path.read_text()


def test_tail(make_worker: MakeWorker) -> None:
    worker = make_worker()
    worker.start()
    worker.wait_ready()
    everything = worker.tail(1000)
    assert len(everything) == 4
    assert worker.tail() == everything
    assert worker.tail(2) == everything[-2:]
    assert worker.tail(0) == []
    assert "registered worker" in worker.tail(1)[0]


def test_env_and_cwd_reach_the_worker(make_worker: MakeWorker, tmp_path: Path) -> None:
    worker = make_worker(
        "--echo-env",
        "CEKURA_STAND_IN",
        "--echo-env",
        "PYTHONUNBUFFERED",
        "--echo-env",
        "PATH",
        "--echo-cwd",
        env={"CEKURA_STAND_IN": "extra value"},
        cwd=tmp_path,
    )
    worker.start()
    worker.wait_ready()
    output = worker.tail(100)
    assert "CEKURA_STAND_IN=extra value" in output
    assert "PYTHONUNBUFFERED=1" in output  # so print() in a Python worker is not held back
    assert f"PATH={os.environ['PATH']}" in output  # on top of the environment, not instead
    assert f"cwd={tmp_path.resolve()}" in output


# -- failing to become ready -------------------------------------------------------------------


def test_exit_before_ready(make_worker: MakeWorker) -> None:
    worker = make_worker("--never-ready", "--exit-after", "0.1", "--exit-code", "3")
    worker.start()
    with pytest.raises(WorkerError) as excinfo:
        worker.wait_ready()
    message = str(excinfo.value)
    assert "exited with code 3 before it was ready" in message
    assert "fatal: stand-in worker giving up with code 3" in message  # stderr, in the tail
    assert "starting worker" in message
    assert str(worker.log_path) in message
    assert "LIVEKIT_URL" in message
    assert worker.returncode == 3
    assert not worker.ready


def test_worker_error_is_a_config_error() -> None:
    assert issubclass(WorkerError, ConfigError)


def test_never_ready_times_out(make_worker: MakeWorker) -> None:
    worker = make_worker("--never-ready", ready_timeout=0.8)
    worker.start()
    started = time.monotonic()
    with pytest.raises(WorkerError) as excinfo:
        worker.wait_ready()
    elapsed = time.monotonic() - started
    message = str(excinfo.value)
    assert 0.7 <= elapsed < 3.0
    assert "was not ready after 0.8 s" in message
    assert f'no line matched "{DEFAULT_READY_PATTERN}"' in message
    assert "--cekura-agent-ready" in message
    assert "starting worker" in message
    assert str(worker.log_path) in message
    # wait_ready() stopped it, politely.
    pid = worker.pid
    assert pid is not None
    assert is_gone(pid)
    assert worker.returncode == 0
    assert "worker shutting down" in worker.log_path.read_text()


def test_ready_timeout_follows_the_injected_clock(tmp_path: Path) -> None:
    now = [1000.0]

    def clock() -> float:
        now[0] += 100.0  # every look at the clock is 100 s later
        return now[0]

    worker = AgentWorker(
        WorkerSpec(
            stand_in("--never-ready"),
            log_path=tmp_path / "agent.log",
            ready_timeout=250.0,
        ),
        clock=clock,
    )
    worker.start()
    try:
        started = time.monotonic()
        with pytest.raises(WorkerError, match="not ready after 250 s"):
            worker.wait_ready()
        assert time.monotonic() - started < 2.0
    finally:
        worker.stop()


def test_command_not_found(tmp_path: Path) -> None:
    worker = AgentWorker(
        WorkerSpec("no-such-agent-binary-4f2a dev", log_path=tmp_path / "agent.log")
    )
    with pytest.raises(WorkerError, match="'no-such-agent-binary-4f2a' was not found"):
        worker.start()
    assert worker.pid is None
    assert worker.stop() is None


def test_command_not_executable(tmp_path: Path) -> None:
    script = tmp_path / "agent.py"
    script.write_text("print('hi')\n")
    worker = AgentWorker(WorkerSpec(str(script), log_path=tmp_path / "agent.log"))
    with pytest.raises(WorkerError, match="is not executable"):
        worker.start()


def test_missing_cwd(tmp_path: Path) -> None:
    spec = WorkerSpec(stand_in(), log_path=tmp_path / "a.log", cwd=tmp_path / "missing")
    with pytest.raises(WorkerError, match="working directory"):
        AgentWorker(spec).start()


def test_invalid_regex_names_the_pattern(tmp_path: Path) -> None:
    with pytest.raises(WorkerError, match=re.escape("'registered (worker'")) as excinfo:
        WorkerSpec(stand_in(), log_path=tmp_path / "a.log", ready_pattern="registered (worker")
    assert "--cekura-agent-ready" in str(excinfo.value)


@pytest.mark.parametrize(
    ("command", "match"),
    [("", "is empty"), ("   ", "is empty"), ("python 'agent.py dev", "cannot be parsed")],
)
def test_bad_command(tmp_path: Path, command: str, match: str) -> None:
    with pytest.raises(WorkerError, match=match):
        WorkerSpec(command, log_path=tmp_path / "a.log")


@pytest.mark.parametrize("timeout", [0.0, -1.0, float("nan")])
def test_bad_timeout(tmp_path: Path, timeout: float) -> None:
    with pytest.raises(WorkerError, match="positive number of seconds"):
        WorkerSpec(stand_in(), log_path=tmp_path / "a.log", ready_timeout=timeout)


# -- stopping -----------------------------------------------------------------------------


def test_stop_is_graceful_with_sigint(make_worker: MakeWorker) -> None:
    worker = make_worker("--print-on-sigint", "drained 0 jobs, bye")
    worker.start()
    worker.wait_ready()
    pid = worker.pid
    assert pid is not None
    started = time.monotonic()
    assert worker.stop() == 0
    assert time.monotonic() - started < 2.0
    assert "drained 0 jobs, bye" in worker.log_path.read_text()
    assert worker.tail(1) == ["drained 0 jobs, bye"]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_graceful_even_when_pytest_ignores_sigint(make_worker: MakeWorker) -> None:
    # CI runners and `cmd &` start processes with SIGINT ignored, which children inherit.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        worker = make_worker()
        worker.start()
    finally:
        signal.signal(signal.SIGINT, previous)
    worker.wait_ready()
    assert worker.stop(interrupt_timeout=2) == 0
    assert "worker shutting down" in worker.log_path.read_text()


def test_stop_escalates_to_sigterm(make_worker: MakeWorker) -> None:
    worker = make_worker("--ignore-sigint")
    worker.start()
    worker.wait_ready()
    pid = worker.pid
    assert pid is not None
    started = time.monotonic()
    code = worker.stop(interrupt_timeout=0.3, terminate_timeout=2, kill_timeout=2)
    elapsed = time.monotonic() - started
    assert code == -signal.SIGTERM
    assert 0.3 <= elapsed < 0.3 + 2 + 2 + 1
    assert "worker shutting down" not in worker.log_path.read_text()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_stop_escalates_to_sigkill(make_worker: MakeWorker) -> None:
    worker = make_worker("--ignore-sigint", "--ignore-sigterm")
    worker.start()
    worker.wait_ready()
    pid = worker.pid
    assert pid is not None
    started = time.monotonic()
    code = worker.stop(interrupt_timeout=0.3, terminate_timeout=0.3, kill_timeout=2)
    elapsed = time.monotonic() - started
    assert code == -signal.SIGKILL
    assert 0.6 <= elapsed < 0.3 + 0.3 + 2 + 1
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_stop_reaches_the_whole_process_group(make_worker: MakeWorker, tmp_path: Path) -> None:
    child_pid_file = tmp_path / "child.pid"
    worker = make_worker("--child-pid-file", str(child_pid_file))
    worker.start()
    worker.wait_ready()
    child_pid = int(child_pid_file.read_text())
    assert not is_gone(child_pid)
    worker.stop(interrupt_timeout=2)
    assert wait_gone(child_pid)


def test_stop_is_idempotent(make_worker: MakeWorker, tmp_path: Path) -> None:
    pid_file = tmp_path / "worker.pid"
    worker = make_worker("--pid-file", str(pid_file))
    worker.start()
    worker.wait_ready()
    assert int(pid_file.read_text()) == worker.pid
    assert worker.stop() == 0
    started = time.monotonic()
    assert worker.stop() == 0
    assert worker.stop(interrupt_timeout=0, terminate_timeout=0, kill_timeout=0) == 0
    assert time.monotonic() - started < 0.5
    assert worker.returncode == 0


def test_stop_when_never_started(tmp_path: Path) -> None:
    worker = AgentWorker(WorkerSpec(stand_in(), log_path=tmp_path / "a.log"))
    assert worker.stop() is None
    assert worker.stop() is None
    assert worker.returncode is None
    assert worker.tail() == []
    assert not (tmp_path / "a.log").exists()


def test_stop_after_the_worker_exited_on_its_own(make_worker: MakeWorker) -> None:
    worker = make_worker("--exit-after", "0.3", "--exit-code", "0")
    worker.start()
    worker.wait_ready()
    pid = worker.pid
    assert pid is not None
    assert wait_gone(pid)
    assert worker.stop() == 0


def test_start_twice_is_a_programming_error(make_worker: MakeWorker) -> None:
    worker = make_worker()
    worker.start()
    with pytest.raises(RuntimeError, match="already"):
        worker.start()


def test_wait_ready_before_start_is_a_programming_error(make_worker: MakeWorker) -> None:
    with pytest.raises(RuntimeError, match="before start"):
        make_worker().wait_ready()


# -- context manager ------------------------------------------------------------------------


def test_context_manager(make_worker: MakeWorker) -> None:
    worker = make_worker()
    with worker as running:
        assert running is worker
        assert worker.ready
        pid = worker.pid
        assert pid is not None
        assert worker.returncode is None
    assert worker.returncode == 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_context_manager_stops_when_not_ready(make_worker: MakeWorker) -> None:
    worker = make_worker("--never-ready", ready_timeout=0.5)
    with pytest.raises(WorkerError, match="not ready"), worker:
        pytest.fail("the body must not run")
    pid = worker.pid
    assert pid is not None
    assert is_gone(pid)


# -- the name the worker registered under (issue #17 item 1) ----------------------------------


@pytest.mark.parametrize(
    ("line", "name"),
    [
        # livekit-agents 1.8's JSON formatter: the extras are keys of the record.
        (
            '{"message": "registered worker", "agent_name": "a-pytest-1", "id": "AW_x"}',
            "a-pytest-1",
        ),
        # Its dev formatter: the extras as JSON after the message.
        (
            "2026-01-01 12:00:00,000 - INFO livekit.agents - registered worker "
            '{"agent_name": "", "deployment": "", "id": "AW_x"}',
            "",
        ),
        ('registered worker {"agent_name": "q\\"x"}', 'q"x'),
        # Before agent_name was logged: the line does not say.
        ('registered worker {"id": "AW_x", "region": "local"}', None),
        ('registered worker {"agent_name": 3}', None),
    ],
)
def test_registered_name_is_read_from_the_line(line: str, name: str | None) -> None:
    assert registered_name(line) == name


@pytest.mark.parametrize("fmt", ["json", "text", "colored"])
def test_worker_takes_the_session_name_from_the_override(make_worker: MakeWorker, fmt: str) -> None:
    worker = make_worker(
        "--format",
        fmt,
        "--code-name",
        "prod",
        "--echo-env",
        "MY_NAME",
        agent_name="s-pytest-1",
        agent_name_env="MY_NAME",
    )
    worker.start()
    worker.wait_ready()
    assert worker.registered_name == "s-pytest-1"
    assert "MY_NAME=s-pytest-1" in worker.tail()


def test_worker_under_production_name_is_stopped(make_worker: MakeWorker) -> None:
    worker = make_worker(
        "--before-1-6", "--code-name", "prod", agent_name="s-pytest-1", production_name="prod"
    )
    worker.start()
    with pytest.raises(WorkerError, match=r"registered as 'prod' \(production's name\)"):
        worker.wait_ready()
    assert worker.returncode is not None


def test_worker_with_no_name_is_stopped(make_worker: MakeWorker) -> None:
    worker = make_worker("--no-name-from-env", agent_name="s-pytest-1")
    worker.start()
    with pytest.raises(WorkerError, match="registered with no agent name") as info:
        worker.wait_ready()
    assert "real customer calls included" in str(info.value)
    assert worker.returncode is not None


def test_without_a_session_name_any_registration_is_ready(make_worker: MakeWorker) -> None:
    worker = make_worker("--no-name-from-env")
    worker.start()
    worker.wait_ready()
    assert worker.registered_name == ""


def test_bad_agent_name_env(tmp_path: Path) -> None:
    with pytest.raises(WorkerError, match="--cekura-agent-name-env"):
        WorkerSpec(stand_in(), log_path=tmp_path / "w.log", agent_name_env="MY-NAME")
