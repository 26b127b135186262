"""The agent worker's process: launched in its own session (process group), signalled as a
group, and its exit described for an error message. Nothing here knows about readiness."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any


def describe_exit(code: int, was_ready: bool) -> str:
    """How the worker ended, for an error message: its exit code or the signal that killed it."""
    when = "after it was ready" if was_ready else "before it was ready"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the agent worker was killed by {name} {when}"
    return f"the agent worker exited with code {code} {when}"


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to the worker's whole process group (its job processes too)."""
    # OSError: already gone (ProcessLookupError), or only zombies left (EPERM on macOS).
    with contextlib.suppress(OSError):
        os.killpg(pgid, sig)


def _default_signals() -> None:
    # A process started with SIGINT ignored keeps it ignored across exec (CI runners and
    # `cmd &` in scripts do that), and a Python worker would then never see KeyboardInterrupt:
    # the graceful first step of stop() would be lost.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def launch(argv: list[str], *, cwd: Path | None, env: dict[str, str]) -> subprocess.Popen[str]:
    """Start the worker with its output on one text pipe, isolated from pytest's signals."""
    isolation: dict[str, Any]
    if sys.platform == "win32":
        isolation = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    else:
        # Its own session: Ctrl-C on pytest's terminal does not also reach the worker (stop()
        # sends it once, on purpose), and signalling the group reaches the job processes it
        # forks.
        isolation = {"start_new_session": True, "preexec_fn": _default_signals}
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env=env,
        text=True,
        encoding="utf-8",
        errors="replace",  # a stray non-UTF-8 byte must not end the reader
        bufsize=1,
        **isolation,
    )


def stop_process(
    proc: subprocess.Popen[str],
    interrupt_timeout: float,
    terminate_timeout: float,
    kill_timeout: float,
) -> None:
    """Stop the worker's process group gently first: SIGINT, then SIGTERM, then SIGKILL (on
    Windows terminate, then kill), each given its timeout to take effect."""
    if sys.platform == "win32":
        steps: list[tuple[Callable[[], None], float]] = [
            (proc.terminate, interrupt_timeout + terminate_timeout),
            (proc.kill, kill_timeout),
        ]
    else:
        steps = [
            (partial(signal_group, proc.pid, signal.SIGINT), interrupt_timeout),
            (partial(signal_group, proc.pid, signal.SIGTERM), terminate_timeout),
            (partial(signal_group, proc.pid, signal.SIGKILL), kill_timeout),
        ]
    for send, timeout in steps:
        if proc.poll() is not None:
            break
        with contextlib.suppress(OSError):  # it exited between poll() and the signal
            send()
        try:
            proc.wait(timeout=max(timeout, 0.0))
            break
        except subprocess.TimeoutExpired:
            continue
