"""pytest-xdist support: submit once per test run, however many workers collect the suite.

Under xdist the controller collects nothing and every worker collects the whole suite, so a
naive plugin would start (and bill) every run once per worker. Instead the first worker to take
a file lock submits for all of them and writes the result to a manifest; the others read it.
A marker file written *before* the POST makes an interrupted submitter visible to the others,
so they error instead of posting a second time.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .errors import ConfigError

#: How long a worker waits for another worker's submission (many groups can take a while).
LOCK_TIMEOUT = 600.0


def is_worker(config: object) -> bool:
    return hasattr(config, "workerinput")


def worker_input(config: object) -> dict[str, Any]:
    value = getattr(config, "workerinput", {})
    return value if isinstance(value, dict) else {}


class SubmitOnce:
    """Runs a submission at most once across the processes sharing ``testrunuid``."""

    def __init__(self, testrunuid: str, directory: Path | None = None) -> None:
        base = directory or Path(tempfile.gettempdir())
        self.directory = base / f"pytest-cekura-{testrunuid}"

    def deadline(self, timeout: float) -> float:
        """The session's deadline (``time.monotonic()``): ``timeout`` from the first worker
        that asks, the same for every later one.

        A worker that crashed is replaced by a fresh process, which must not start a full
        ``--cekura-timeout`` of its own: the deadline belongs to the session. It is fixed when
        the first worker is about to submit, as in a serial run (not when the controller
        launches the workers: their start-up and collection would eat into it), and shared as
        a wall-clock instant, since monotonic clocks are per process.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / "deadline"
        if not path.exists():
            draft = self.directory / f"deadline.{os.getpid()}"
            draft.write_text(repr(time.time() + timeout))
            # A hard link is created whole or not at all: a reader never sees a half-written
            # file, and of several workers arriving together exactly one sets the deadline.
            with contextlib.suppress(FileExistsError):
                os.link(draft, path)
            draft.unlink()
        try:
            at = float(path.read_text())
        except (OSError, ValueError):
            at = time.time() + timeout  # unreadable: this worker's own, as without xdist
        return time.monotonic() + (at - time.time())

    def run(self, submit: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Return the manifest, calling ``submit`` only if no process has done so yet."""
        # Imported here: every pytest process loads this module, few of them run xdist.
        from filelock import FileLock

        self.directory.mkdir(parents=True, exist_ok=True)
        manifest = self.directory / "manifest.json"
        started = self.directory / "submitting"
        with FileLock(str(self.directory / "submit.lock"), timeout=LOCK_TIMEOUT):
            if manifest.exists():
                data: dict[str, Any] = json.loads(manifest.read_text())
            elif started.exists():
                raise ConfigError(
                    "pytest-cekura: another xdist worker was interrupted while starting Cekura "
                    "runs; they were not started again so you are not charged twice. Check "
                    "Cekura's dashboard for results named 'pytest-cekura ...' and re-run."
                )
            else:
                started.touch()
                try:
                    data = submit()
                except ConfigError as exc:
                    data = {"session_error": str(exc)}
                _write_atomically(manifest, json.dumps(data))
        if "session_error" in data:
            raise ConfigError(str(data["session_error"]))
        return data


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def manifest_run_ids(directories: Iterable[str]) -> list[int]:
    """Every run id the submitting worker recorded (none if it never got that far)."""
    run_ids: list[int] = []
    for directory in directories:
        manifest = Path(directory) / "manifest.json"
        try:
            data = json.loads(manifest.read_text())
        except (OSError, ValueError):
            continue
        for assignment in data.values():
            if isinstance(assignment, dict):
                run_ids += [run["id"] for run in assignment.get("runs", []) if "id" in run]
    return sorted(set(run_ids))
