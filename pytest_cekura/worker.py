"""Run the user's agent worker (e.g. ``python agent.py dev``) for the length of a test session.

Cekura can only dispatch calls to a LiveKit agent once its worker has registered with the
LiveKit server, so the worker is started first and every Cekura run waits for its readiness
line. Its output goes to a log file (the terminal belongs to pytest) and the last lines are
kept in memory so failures can show them.

This module knows nothing about pytest: the plugin owns the options and shows the messages.
Nothing here prints or logs.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from .errors import ConfigError
from .worker_lines import DEFAULT_READY_PATTERN, clean_line, registered_name
from .worker_process import describe_exit, launch, signal_group, stop_process

#: livekit-agents (1.6+) applies this variable over the agent name given in code, so a worker
#: started with it registers under the session's own name whatever its code says.
OVERRIDE_ENV = "LIVEKIT_AGENT_NAME_OVERRIDE"
#: The variable livekit-agents reads when the code gives no name (``--cekura-agent-name-env``).
DEFAULT_AGENT_NAME_ENV = "LIVEKIT_AGENT_NAME"
#: Lines kept in memory for ``tail()``; the log file has everything.
TAIL_LINES = 200
#: Lines shown in a WorkerError: enough for a traceback, short enough to read.
ERROR_TAIL_LINES = 20
#: Longest single sleep while waiting, so a KeyboardInterrupt is handled promptly.
_WAIT_SLICE = 0.2
#: Once the process is gone the pipe reaches EOF at once, unless something else holds it open.
_READER_JOIN_TIMEOUT = 1.0


class WorkerError(ConfigError):
    """The agent worker could not be started, or exited or stalled before it was ready."""


@dataclass(frozen=True)
class WorkerSpec:
    """How to run the agent worker. Validated on construction, so a bad option fails early."""

    command: str
    _: KW_ONLY
    log_path: Path
    ready_pattern: str = DEFAULT_READY_PATTERN
    ready_timeout: float = 60.0
    cwd: Path | None = None
    #: Added on top of ``os.environ`` (never replacing it: the worker needs PATH, HOME, …).
    env: Mapping[str, str] | None = field(default=None, hash=False)
    #: The LiveKit agent name the worker must register under (the session's own). Given, it is
    #: passed in ``LIVEKIT_AGENT_NAME_OVERRIDE`` and in ``agent_name_env``, and ``wait_ready()``
    #: refuses a worker whose registration line shows no name or another one.
    agent_name: str | None = None
    agent_name_env: str = DEFAULT_AGENT_NAME_ENV
    #: The name production's worker uses (the agent's saved one), to say so when it is the
    #: name the worker took; a callable is asked only then (it may cost an API request).
    production_name: str | Callable[[], str | None] | None = field(
        default=None, hash=False, compare=False
    )

    def __post_init__(self) -> None:
        _split_command(self.command)
        _compile_pattern(self.ready_pattern)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.agent_name_env):
            raise WorkerError(
                f"agent name variable {self.agent_name_env!r} is not a valid environment "
                "variable name: fix --cekura-agent-name-env (e.g. LIVEKIT_AGENT_NAME)"
            )
        if not self.ready_timeout > 0:
            raise WorkerError(
                f"agent worker ready timeout {self.ready_timeout!r} is invalid: "
                "use a positive number of seconds"
            )


class AgentWorker:
    """One run of the agent worker: ``start()``, ``wait_ready()``, then ``stop()``.

    Not meant to be shared between threads, except that the output is read by a daemon thread.
    """

    def __init__(self, spec: WorkerSpec, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._spec = spec
        self._argv = _split_command(spec.command)
        self._pattern = _compile_pattern(spec.ready_pattern)
        self._clock = clock
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._ready = threading.Event()
        self._lines: deque[str] = deque(maxlen=TAIL_LINES)
        self._lines_lock = threading.Lock()
        self._stopped = False
        self._ready_line: str | None = None

    # -- state ---------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """The readiness line has been seen (it stays True if the worker exits later)."""
        return self._ready.is_set()

    @property
    def ready_line(self) -> str | None:
        """The line that matched the readiness pattern (without colour codes)."""
        return self._ready_line

    @property
    def registered_name(self) -> str | None:
        """The agent name in the registration line: ``""`` for a worker registered with no
        name, None when the line does not say (not ready yet, or not livekit-agents' line)."""
        return None if self._ready_line is None else registered_name(self._ready_line)

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    @property
    def log_path(self) -> Path:
        return self._spec.log_path

    def tail(self, lines: int = 30) -> list[str]:
        """The last ``lines`` lines of output, without colour codes (at most ``TAIL_LINES``)."""
        if lines <= 0:
            return []
        with self._lines_lock:
            kept = list(self._lines)
        return kept[-lines:]

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Launch the worker; return at once (``wait_ready()`` waits for it)."""
        if self._proc is not None or self._stopped:
            raise RuntimeError("AgentWorker.start() was already called; create a new AgentWorker")
        spec = self._spec
        if spec.cwd is not None and not spec.cwd.is_dir():
            raise WorkerError(
                f"cannot start the agent worker: its working directory {str(spec.cwd)!r} "
                "does not exist; create it or point the worker's cwd at your agent's project"
            )
        try:
            spec.log_path.parent.mkdir(parents=True, exist_ok=True)
            log = spec.log_path.open("w", encoding="utf-8", errors="replace")
        except OSError as exc:
            raise WorkerError(
                f"cannot write the agent worker's log to {str(spec.log_path)!r}: "
                f"{exc.strerror or exc}; choose a writable location"
            ) from exc

        env = dict(os.environ)
        if spec.env:
            env.update(spec.env)
        if spec.agent_name is not None:
            env[OVERRIDE_ENV] = spec.agent_name
            env[spec.agent_name_env] = spec.agent_name
        # A Python worker's print() output would otherwise sit in an 8 KiB pipe buffer, and
        # a readiness line printed that way would never be seen.
        env.setdefault("PYTHONUNBUFFERED", "1")

        try:
            self._proc = launch(self._argv, cwd=spec.cwd, env=env)
        except FileNotFoundError as exc:
            log.close()
            raise WorkerError(
                f"cannot start the agent worker: {self._argv[0]!r} was not found "
                f"(command: {spec.command!r}); check the command, use a full path, or run "
                "pytest from the environment (virtualenv, PATH) where it is installed"
            ) from exc
        except PermissionError as exc:
            log.close()
            raise WorkerError(
                f"cannot start the agent worker: {self._argv[0]!r} is not executable "
                f"(command: {spec.command!r}); make it executable (chmod +x) or run it "
                "through its interpreter, e.g. 'python agent.py dev'"
            ) from exc
        except OSError as exc:
            log.close()
            raise WorkerError(
                f"cannot start the agent worker with command {spec.command!r}: {exc}"
            ) from exc

        stream = self._proc.stdout
        assert stream is not None  # stdout=PIPE
        self._reader = threading.Thread(
            target=self._pump,
            args=(stream, log),
            name=f"cekura-agent-worker-{self._proc.pid}",
            daemon=True,  # a worker that never closes its output must not hang interpreter exit
        )
        self._reader.start()

    def wait_ready(self) -> None:
        """Block until the readiness line is seen; on failure stop the worker and raise."""
        proc = self._proc
        if proc is None:
            raise RuntimeError("AgentWorker.wait_ready() called before start()")
        deadline = self._clock() + self._spec.ready_timeout
        while True:
            code = proc.poll()
            if code is not None:
                # Let the reader drain the pipe so the message shows the worker's last words.
                self._join_reader()
                error = self._error(
                    describe_exit(code, self.ready),
                    "Fix what its output reports and re-run (run the command yourself to "
                    "reproduce it). A LiveKit worker also needs LIVEKIT_URL, LIVEKIT_API_KEY "
                    "and LIVEKIT_API_SECRET in its environment.",
                )
                self.stop()
                raise error
            if self._ready.is_set():
                self._check_name()
                return
            remaining = deadline - self._clock()
            if remaining <= 0:
                error = self._error(
                    f"the agent worker was not ready after {self._spec.ready_timeout:g} s; "
                    f'no line matched "{self._spec.ready_pattern}"',
                    "Set --cekura-agent-ready to the line your worker prints when it is "
                    "registered, or raise --cekura-agent-ready-timeout if it is just slow."
                    + (
                        " livekit-agents prints 'registered worker' (at INFO level) once it "
                        "has connected to LIVEKIT_URL: check the URL, the credentials, and "
                        "that its log level is INFO or more verbose."
                        if self._spec.ready_pattern == DEFAULT_READY_PATTERN
                        else ""
                    ),
                )
                self.stop()
                raise error
            self._ready.wait(min(_WAIT_SLICE, remaining))

    def stop(
        self,
        *,
        interrupt_timeout: float = 5.0,
        terminate_timeout: float = 5.0,
        kill_timeout: float = 5.0,
    ) -> int | None:
        """Stop the worker, politely first; return its exit code (None if it could not be reaped).

        SIGINT (what Ctrl-C in a terminal would send, so the worker drains like it does for a
        developer), then SIGTERM, then SIGKILL, each to the whole process group and each
        followed by a bounded wait; collecting the last output adds at most ~2 s more, and
        only if a leftover process holds the pipe. Never raises: it runs while the session is
        finishing. Later calls only report the exit code.
        """
        try:
            return self._stop(interrupt_timeout, terminate_timeout, kill_timeout)
        except Exception:
            return self._poll_quietly()

    def __enter__(self) -> Self:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            # __exit__ does not run when __enter__ raises, and a Ctrl-C here must not orphan it.
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals ---------------------------------------------------------------------------

    def _stop(
        self, interrupt_timeout: float, terminate_timeout: float, kill_timeout: float
    ) -> int | None:
        proc = self._proc
        if proc is None:
            self._stopped = True
            return None
        if self._stopped:
            return self._poll_quietly()
        self._stopped = True

        stop_process(proc, interrupt_timeout, terminate_timeout, kill_timeout)

        self._join_reader()
        if sys.platform != "win32" and self._reader_alive() and proc.poll() is not None:
            # Something the worker started (a job process) outlived it and holds the pipe open.
            # While such a process is in the group its id cannot be reused, so this kill can
            # only reach the worker's own leftovers.
            signal_group(proc.pid, signal.SIGKILL)
            self._join_reader()
        return self._poll_quietly()

    def _check_name(self) -> None:
        """Refuse a worker registered under any name but the session's (stopping it first)."""
        expected = self._spec.agent_name
        if expected is None:
            return
        got = self.registered_name
        if got == expected:
            return
        production = self._production_name() if got else None
        if got is None:
            what = (
                f"the agent worker's registration line does not say which agent name it "
                f"registered under (expected {expected!r}), so pytest-cekura cannot tell "
                "whether it is isolated: with no name LiveKit would dispatch it to every new "
                "room of the project, real customer calls included, and with production's name "
                "it would join production's pool"
            )
        elif got == "":
            what = (
                f"the agent worker registered with no agent name instead of {expected!r}: "
                "LiveKit dispatches a worker with no name to every new room of the project, "
                "real customer calls included, and Cekura's calls would not reach it"
            )
        else:
            whose = "production's name" if got == production else "another name"
            what = (
                f"the agent worker registered as {got!r} ({whose}) instead of the session's "
                f"{expected!r}: it would join the pool of every worker of that name "
                "(production's, if it is production's name), so LiveKit would spread "
                "calls between them: test calls could reach production, real calls could "
                "reach this worker, and the verdict would describe a mix"
            )
        fix = (
            "The worker was stopped. Fix it so it takes its "
            f"name from the environment: livekit-agents 1.6 or later applies {OVERRIDE_ENV} "
            "over the name in code (upgrade it), or read the variable yourself: "
            f"WorkerOptions(agent_name=os.environ.get({self._spec.agent_name_env!r}, ...)). "
            "To test a worker that is already running, give --cekura-livekit-agent-name NAME "
            "without --cekura-agent-cmd."
        )
        error = self._error(what, fix)
        self.stop()
        raise error

    def _production_name(self) -> str | None:
        production = self._spec.production_name
        if not callable(production):
            return production
        try:
            return production()
        except Exception:
            return None  # only used to word the message: the refusal stands without it

    def _pump(self, stream: IO[str], log: IO[str]) -> None:
        # Runs in the reader thread: must not raise, or pytest reports an unraisable exception.
        try:
            for raw in stream:
                try:
                    log.write(raw if raw.endswith("\n") else raw + "\n")
                    log.flush()
                except (OSError, ValueError):
                    pass  # a full disk must not stop readiness detection
                line = clean_line(raw)
                with self._lines_lock:
                    self._lines.append(line)
                if not self._ready.is_set() and self._pattern.search(line):
                    self._ready_line = line  # before set(): a waiter reads it at once
                    self._ready.set()
        except (OSError, ValueError):
            pass  # the pipe was closed under us; nothing more to read
        finally:
            for handle in (stream, log):
                with contextlib.suppress(OSError, ValueError):
                    handle.close()

    def _join_reader(self) -> None:
        if self._reader is not None:
            self._reader.join(_READER_JOIN_TIMEOUT)

    def _reader_alive(self) -> bool:
        return self._reader is not None and self._reader.is_alive()

    def _poll_quietly(self) -> int | None:
        try:
            return self.returncode
        except Exception:
            return None

    def _error(self, what: str, fix: str) -> WorkerError:
        lines = self.tail(ERROR_TAIL_LINES)
        shown = "\n".join(f"    {line}" for line in lines) if lines else "    (no output)"
        return WorkerError(
            f"{what}.\n"
            f"{fix}\n"
            f"  command: {self._spec.command}\n"
            f"  full log: {self._spec.log_path}\n"
            f"  last {len(lines)} lines of output:\n{shown}"
        )


def _split_command(command: str) -> list[str]:
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise WorkerError(
            f"agent worker command {command!r} cannot be parsed ({exc}); "
            'check its quotes, e.g. --cekura-agent-cmd "python agent.py dev"'
        ) from exc
    if not argv:
        raise WorkerError(
            "agent worker command is empty; give the command that starts your worker, "
            'e.g. --cekura-agent-cmd "python agent.py dev"'
        )
    return argv


def _compile_pattern(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise WorkerError(
            f"agent worker ready pattern {pattern!r} is not a valid regular expression "
            f"({exc}); fix --cekura-agent-ready (put a backslash before ( ) [ ] . * + ? to "
            "match them literally)"
        ) from exc


__all__ = ["DEFAULT_AGENT_NAME_ENV", "DEFAULT_READY_PATTERN", "OVERRIDE_ENV", "AgentWorker"]
__all__ += ["WorkerError", "WorkerSpec", "registered_name"]
