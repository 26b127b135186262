"""pytest-xdist, all of it: who this process is (``role``), what passes between the controller
and its workers (``WorkerInput``, ``WorkerOutput``), and submitting once per test run.

Under xdist the controller collects nothing and every worker collects the whole suite, so a
naive plugin would start (and bill) every run once per worker. Instead the first worker to take
a file lock submits for all of them and writes the result to a manifest; the others read it.
A marker file written *before* the POST makes an interrupted submitter visible to the others,
so they error instead of posting a second time.

The rest of the plugin never asks "are we distributed?": it calls its ``Role``, which without
xdist (or with ``-n 0``) is ``Serial``, a null object that does what one process does alone
(the pattern pytest-rerunfailures uses for its status database).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypedDict, cast

import pytest

from .errors import ConfigError
from .secret import Secret
from .xdist_messages import MANIFEST_FORMAT, MANIFEST_VERSION, Manifest, WorkerOutput

__all__ = [
    "MANIFEST_FORMAT",
    "MANIFEST_VERSION",
    "Manifest",
    "WorkerInput",
    "WorkerOutput",
    "role",
]

#: How long a worker waits for another worker's submission (many groups can take a while).
LOCK_TIMEOUT = 600.0


def is_worker(config: object) -> bool:
    return hasattr(config, "workerinput")


class WorkerInput(TypedDict, total=False):
    """What the controller hands each worker (``node.workerinput``), besides xdist's own."""

    #: xdist's own: the same for every worker of one test run.
    testrunuid: str
    #: Under --cekura-emulator: the controller's emulator, ``[url, key]``.
    cekura_emulator: list[str]
    #: With --cekura-agent-cmd: where the agent worker's output goes.
    cekura_agent_log: str
    #: The LiveKit agent name the controller chose for the session (every worker uses it).
    cekura_livekit_agent_name: str


def worker_input(config: object) -> WorkerInput:
    value = getattr(config, "workerinput", {})
    return cast(WorkerInput, value if isinstance(value, dict) else {})


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

    def run(self, submit: Callable[[], Manifest]) -> Manifest:
        """Return the manifest, calling ``submit`` only if no process has done so yet."""
        # Imported here: every pytest process loads this module, few of them run xdist.
        from filelock import FileLock

        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / "manifest.json"
        started = self.directory / "submitting"
        with FileLock(str(self.directory / "submit.lock"), timeout=LOCK_TIMEOUT):
            if path.exists():
                manifest = Manifest.from_json(json.loads(path.read_text()))
            elif started.exists():
                raise ConfigError(
                    "pytest-cekura: another xdist worker was interrupted while starting Cekura "
                    "runs; they were not started again so you are not charged twice. Check "
                    "Cekura's dashboard for results named 'pytest-cekura ...' and re-run."
                )
            else:
                started.touch()
                try:
                    manifest = submit()
                except ConfigError as exc:
                    manifest = Manifest(error=str(exc))
                _write_atomically(path, json.dumps(manifest.to_json()))
        if manifest.error is not None:
            raise ConfigError(manifest.error)
        return manifest


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def manifest_run_ids(directories: Iterable[str]) -> list[int]:
    """Every run id the submitting worker recorded (none if it never got that far)."""
    run_ids: list[int] = []
    for directory in directories:
        try:
            manifest = Manifest.from_json(
                json.loads((Path(directory) / "manifest.json").read_text())
            )
        except (OSError, ValueError, ConfigError, KeyError, TypeError):
            continue
        run_ids += manifest.run_ids()
    return sorted(set(run_ids))


class Host(Protocol):
    """What the controller asks of the plugin (``pluginstate._State`` implements it)."""

    @property
    def agent_log(self) -> Path | None: ...

    @property
    def livekit_agent_name(self) -> str | None: ...

    def start_agent_worker(self) -> None: ...

    def start_emulator(self) -> tuple[str, Secret] | None: ...


class Serial:
    """No xdist, or ``-n 0``: the null role. This process collects, submits, runs the tests
    and reports, alone; nothing is shared and nothing arrives from elsewhere."""

    #: This process speaks for the run: progress, the summary, reports, the agent worker.
    reports = True
    #: This process runs tests (an xdist controller runs none).
    runs_tests = True
    #: --cekura-order=finish may reorder the tests (under xdist the scheduler decides).
    orders_tests = True
    #: The poller follows only the runs of tests that wait (a worker runs only some).
    lazy = False

    def __init__(self) -> None:
        #: From the workers, each once: preflight's warnings, the clients' notices.
        self.warnings: dict[str, None] = {}
        self.api_notices: dict[str, None] = {}
        self.request_counts: dict[str, int] = {}
        #: Under --cekura-dry-run: the plan, as a worker printed it.
        self.dry_run: list[str] | None = None
        #: Under --cekura-dry-run: Cekura's plan for the Tests-as-Code cases, from a worker.
        self.case_plan: list[str] | None = None
        #: In a worker: why its session stopped before any test ran.
        self.session_error: str | None = None
        #: A session-level error a worker met after tests had started.
        self.late_error: str | None = None

    def session_id(self) -> str:
        return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"

    @property
    def emulator(self) -> tuple[str, Secret] | None:
        """An emulator another process started for this one."""
        return None

    @property
    def agent_log(self) -> Path | None:
        """Where another process said the agent worker's output goes."""
        return None

    def deadline(self, timeout: float) -> float | None:
        """The session's deadline if it is fixed elsewhere (None: at submission)."""
        return None

    def ledger_sink(self) -> Callable[[Any], None] | None:
        """Where the ledger also records what it created (for a controller to end)."""
        return None

    def submit(
        self,
        start: Callable[[], Any],
        to_manifest: Callable[[Any], Manifest],
        from_manifest: Callable[[Manifest], Any],
    ) -> Any:
        """Start the runs: here, at once."""
        return start()

    def stop_session(self, message: str) -> None:
        """The session cannot go on (e.g. the key was rejected at submission)."""
        raise pytest.UsageError(message)

    def end_unfinished(self, end: Callable[[list[int], Any], None]) -> None:
        """End the calls of runs started by other processes (a controller's workers)."""

    def show_cleanup(self, config: pytest.Config, lines: list[str]) -> None:
        """What the clean-up had to say, on this terminal."""
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            for line in lines:
                reporter.write_line(line, yellow=True)

    def publish(self, config: pytest.Config, output: WorkerOutput) -> None:
        """Hand what the controller reports to it (nobody to hand it to here)."""

    def finish(self) -> None:
        """Remove what was shared between processes."""


class Worker(Serial):
    """An xdist worker: submits once with the other workers, runs the tests it is sent, and
    hands its notices, counts and errors to the controller."""

    reports = False
    orders_tests = False
    lazy = True

    def __init__(self, given: WorkerInput) -> None:
        super().__init__()
        self._given = given
        self._uid = str(given["testrunuid"])
        self._once = SubmitOnce(self._uid)
        self._cleanup_lines: list[str] = []

    def session_id(self) -> str:
        return self._uid[:12]

    @property
    def emulator(self) -> tuple[str, Secret] | None:
        given = self._given.get("cekura_emulator")
        return (given[0], Secret(given[1])) if given else None

    @property
    def agent_log(self) -> Path | None:
        given = self._given.get("cekura_agent_log")
        return Path(given) if given else None

    def deadline(self, timeout: float) -> float | None:
        # A replacement for a worker that crashed gets the deadline the first worker set.
        return self._once.deadline(timeout)

    def ledger_sink(self) -> Callable[[Any], None] | None:
        from .cleanup import record_created

        return record_created(self._once.directory)

    def submit(
        self,
        start: Callable[[], Any],
        to_manifest: Callable[[Any], Manifest],
        from_manifest: Callable[[Manifest], Any],
    ) -> Any:
        return from_manifest(self._once.run(lambda: to_manifest(start())))

    def stop_session(self, message: str) -> None:
        # A worker's UsageError makes xdist fail with "assert not crashitem" and hides this
        # message: the worker runs nothing and hands it to the controller instead.
        self.session_error = message

    def show_cleanup(self, config: pytest.Config, lines: list[str]) -> None:
        self._cleanup_lines = list(lines)  # a worker's terminal is not shown

    def publish(self, config: pytest.Config, output: WorkerOutput) -> None:
        output.cleanup_lines = self._cleanup_lines
        output.session_error = self.session_error
        target = getattr(config, "workeroutput", None)
        if isinstance(target, dict):
            target.update(output.to_dict())


class Controller(Serial):
    """The xdist controller: runs no test; starts what every worker shares (the agent
    worker, the emulator), gathers what they hand back, and reports once."""

    runs_tests = False
    orders_tests = False

    def __init__(self, config: pytest.Config, host: Host) -> None:
        super().__init__()
        self._config = config
        self._host = host
        self._shared_dirs: set[str] = set()

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # Before xdist's own sessionstart spawns the workers, which submit once collected.
        self._host.start_agent_worker()

    def pytest_configure_node(self, node: Any) -> None:
        given: WorkerInput = node.workerinput
        self._shared_dirs.add(str(SubmitOnce(given["testrunuid"]).directory))
        log = self._host.agent_log
        if log is not None:
            given["cekura_agent_log"] = str(log)
        name = self._host.livekit_agent_name
        if name is not None:
            given["cekura_livekit_agent_name"] = name
        # One emulator for the whole run: runs started by one worker must be visible to all.
        emulator = self._host.start_emulator()
        if emulator is not None:
            given["cekura_emulator"] = [emulator[0], emulator[1].reveal()]

    def pytest_testnodedown(self, node: Any, error: object) -> None:
        output = WorkerOutput.from_dict(getattr(node, "workeroutput", {}) or {})
        for name, count in output.request_counts.items():
            self.request_counts[name] = self.request_counts.get(name, 0) + count
        self.show_cleanup(self._config, output.cleanup_lines)
        self.warnings.update(dict.fromkeys(output.warnings))
        self.api_notices.update(dict.fromkeys(output.api_notices))
        self.late_error = self.late_error or output.late_error
        if output.dry_run is not None and self.dry_run is None:
            self.dry_run = output.dry_run  # every worker plans the same
        if output.case_plan is not None and self.case_plan is None:
            self.case_plan = output.case_plan  # one worker validated; all read its manifest
        if output.session_error is not None:
            # Raised here, in the controller's loop, it ends the run as it ends a serial
            # one: "ERROR: <message>" and exit status 4. Every worker is told to shut down
            # first, or xdist would wait for each to time out.
            dsession = self._config.pluginmanager.getplugin("dsession")
            if dsession is not None:
                dsession.triggershutdown()
            raise pytest.UsageError(output.session_error)

    def end_unfinished(self, end: Callable[[list[int], Any], None]) -> None:
        # Workers end only the calls of tests they reached: after -x, --maxfail or Ctrl-C the
        # rest would go on costing money. The controller sees every run in the manifest, and
        # every result the submitting worker created (even if it died).
        if self._shared_dirs:
            from .cleanup import created_results

            end(manifest_run_ids(self._shared_dirs), created_results(self._shared_dirs))

    def finish(self) -> None:
        for directory in self._shared_dirs:
            shutil.rmtree(directory, ignore_errors=True)


def role(config: pytest.Config, host: Host) -> Serial:
    """This process's part in the run; an xdist controller is registered for xdist's hooks."""
    if is_worker(config):
        return Worker(worker_input(config))
    if getattr(config.option, "dist", "no") == "no":
        return Serial()
    controller = Controller(config, host)
    config.pluginmanager.register(controller, "cekura-xdist")
    return controller
