"""Every paid call this session started is ended when the session cannot use it.

``Ledger`` records each result the moment Cekura's answer to a run-starting POST arrives (and
the name of each POST still in flight or answered ambiguously), whatever happens next: an
interrupt during submission, a later group that fails, the deadline. ``end_calls`` ends them
at session end with one ``results/{id}/end_calls/`` request per result (per-run ``end_call``
only as a fallback), on daemon threads and within a fixed budget, and says what it could not
end, so a cancelled CI job never leaves calls running unannounced.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .client import CekuraClient
from .errors import CekuraError
from .models import Result, Run

#: Seconds the clean-up may take in all. GitHub Actions sends SIGTERM 7.5 s after SIGINT and
#: SIGKILL after that; Cekura's own CI action keeps its clean-up to 5 s.
CLEANUP_BUDGET = 5.0
#: Clean-up requests in flight at once.
CLEANUP_CONCURRENCY = 8
#: How long the main thread blocks at a time, so a second Ctrl-C lands at once.
WAIT_SLICE = 0.1
#: Seconds of the clean-up budget kept for looking up, by name, a POST that never answered.
LOOKUP_RESERVE = 1.5
#: Seconds between look-ups by name of a POST whose sender is gone (``patient``).
PATIENT_DELAY = 0.5
#: In an xdist run's shared folder: the results the submitting worker created so far.
CREATED_FILE = "created.json"


@dataclass(frozen=True)
class Created:
    """What an xdist run's submitting worker created: results with their runs, and the names
    (with agents) of POSTs it sent whose result it does not know."""

    results: Mapping[int, list[int]] = field(default_factory=dict)
    names: Mapping[str, int | None] = field(default_factory=dict)


@dataclass
class _Entry:
    run_ids: set[int] = field(default_factory=set)
    #: Runs known to be finished (from the POST answer or the poller).
    done: set[int] = field(default_factory=set)


class Ledger:
    """The results this session created, and the names of POSTs that may have created one.

    Thread-safe: submission threads add to it while the main thread may be cleaning up.
    ``on_change`` (xdist) is called with every result known so far and the names of POSTs
    with no known result, after each change.
    """

    def __init__(self, on_change: Callable[[Created], None] | None = None) -> None:
        self._lock = threading.Condition()
        self._results: dict[int, _Entry] = {}
        #: name -> the agent its result is filed under: POSTs not (yet) known to have a result.
        self._unresolved: dict[str, int | None] = {}
        #: The names among those whose POST has not been answered yet.
        self._sending: set[str] = set()
        self._by_name: dict[str, int] = {}
        self._on_change = on_change
        self._writing = threading.Lock()

    def posting(self, name: str, agent: int | None) -> None:
        """A run-starting POST named ``name`` is about to be sent."""
        with self._lock:
            self._unresolved[name] = agent
            self._sending.add(name)
            snapshot = self._snapshot()
        self._changed(snapshot)

    def answered(self, name: str) -> None:
        """The POST named ``name`` came back (possibly failed: then it stays unresolved)."""
        with self._lock:
            self._sending.discard(name)
            self._lock.notify_all()

    def settled(self, name: str) -> None:
        """That POST's fate is known (a result was recorded, or nothing was started)."""
        with self._lock:
            self._unresolved.pop(name, None)
            self._sending.discard(name)
            self._lock.notify_all()
            snapshot = self._snapshot()
        self._changed(snapshot)

    def wait_answered(self, name: str, until: float) -> int | None:
        """Wait (until ``until``) for the POST named ``name`` to come back; the id of the
        result it created, if it is known by then."""
        with self._lock:
            while name in self._sending and (left := until - time.monotonic()) > 0:
                self._lock.wait(min(WAIT_SLICE, left))
            return self._by_name.get(name)

    def created(self, result: Result, runs: Iterable[Run] = (), *, name: str | None = None) -> None:
        """Cekura answered with ``result``: track it and its runs from now on."""
        with self._lock:
            entry = self._results.setdefault(result.id, _Entry())
            for run in [*result.runs, *runs]:
                entry.run_ids.add(run.id)
                if run.is_terminal:
                    entry.done.add(run.id)
            if name is not None:
                self._unresolved.pop(name, None)
                self._sending.discard(name)
                self._by_name[name] = result.id
                self._lock.notify_all()
            snapshot = self._snapshot()
        self._changed(snapshot)

    def _changed(self, _: Created) -> None:
        if self._on_change is None:
            return
        # One writer at a time, and always the latest state: two threads' snapshots must not
        # land out of order (an older one would hide a result from the controller).
        with self._writing:
            with self._lock:
                latest = self._snapshot()
            with contextlib.suppress(OSError):
                self._on_change(latest)

    def _snapshot(self) -> Created:
        results = {rid: sorted(entry.run_ids) for rid, entry in self._results.items()}
        return Created(results, dict(self._unresolved))

    def in_flight(self, name: str) -> bool:
        """True while the POST named ``name`` may have started calls nobody knows of yet."""
        with self._lock:
            return name in self._unresolved

    @property
    def empty(self) -> bool:
        """True when nothing this session asked for can have started a call."""
        with self._lock:
            return not self._results and not self._unresolved

    def runs_of(self, result_id: int) -> list[int]:
        """The result's runs not known to be finished."""
        with self._lock:
            entry = self._results.get(result_id)
            return sorted(entry.run_ids - entry.done) if entry is not None else []

    def result_ids(self) -> list[int]:
        with self._lock:
            return list(self._results)

    def started(self) -> list[tuple[int, str | None, list[int]]]:
        """(result id, the name of the POST that created it, its run ids) for each result:
        what an interrupted session's JSON report names, since its tests have no rows."""
        with self._lock:
            names = {rid: name for name, rid in self._by_name.items()}
            return [
                (rid, names.get(rid), sorted(entry.run_ids)) for rid, entry in self._results.items()
            ]

    def pending(self) -> tuple[dict[int, list[int]], dict[str, int | None]]:
        """What to end at session end: each result's runs not known to be finished, and the
        names of POSTs with no known result (in flight, or answered ambiguously)."""
        with self._lock:
            going = {
                rid: sorted(entry.run_ids - entry.done) for rid, entry in self._results.items()
            }
            return going, dict(self._unresolved)


@dataclass
class CleanupReport:
    """What the clean-up did: one line for the user, if there is anything to say."""

    ended_results: list[int] = field(default_factory=list)
    ended_runs: int = 0
    #: Results (or runs, when no result is known) whose calls may still be going.
    left_results: list[int] = field(default_factory=list)
    left_runs: list[int] = field(default_factory=list)
    left_names: list[str] = field(default_factory=list)
    interrupted: bool = False
    timed_out: bool = False

    def lines(self) -> list[str]:
        lines = []
        if self.ended_results or self.ended_runs:
            where = f" of result(s) {_ids(self.ended_results)}" if self.ended_results else ""
            lines.append(
                f"pytest-cekura: ended the calls still going{where} ({self.ended_runs} run(s)) "
                "so they stop costing credits."
            )
        left = [
            *(f"result {rid}" for rid in self.left_results),
            *(f"run {rid}" for rid in self.left_runs),
            *(f"the result named {name!r}" for name in self.left_names),
        ]
        if left:
            why = (
                "clean-up was interrupted"
                if self.interrupted
                else f"they could not be ended within {CLEANUP_BUDGET:g} s"
                if self.timed_out
                else "Cekura did not accept the requests to find or end them"
            )
            lines.append(
                f"pytest-cekura: calls may still be going ({why}): end them in Cekura's "
                f"dashboard: {', '.join(left)}."
            )
        return lines


def _ids(ids: Sequence[int]) -> str:
    return ", ".join(str(i) for i in ids)


def end_calls(
    client: CekuraClient,
    results: Mapping[int, Sequence[int]],
    *,
    runs: Sequence[int] = (),
    names: Mapping[str, int | None] | None = None,
    budget: float = CLEANUP_BUDGET,
    ledger: Ledger | None = None,
    patient: bool = False,
) -> CleanupReport:
    """End the calls of ``results`` (result id -> its runs not known to be finished), of loose
    ``runs`` and of the results named ``names`` (looked up once), within ``budget`` seconds.

    Work runs on daemon threads: Python does not wait for them at exit, so a server that does
    not answer cannot keep the process alive. A Ctrl-C here stops the wait at once.
    """
    report = CleanupReport()
    until = time.monotonic() + budget
    # A pause Cekura asked for (Retry-After on a poll) is honoured only as long as the
    # request can still be sent and answered within the budget.
    send_by = until - LOOKUP_RESERVE
    lock = threading.Lock()
    pending_results = set(results)
    pending_runs = set(runs)
    pending_names = set(names or {})

    def end_result(rid: int, run_ids: Sequence[int]) -> None:
        try:
            exists = client.end_calls(rid, deadline=send_by)
        except CekuraError:
            # The result-level request failed: end its calls one by one instead.
            failed = [r for r in run_ids if not _end_run(client, r)]
            if failed or not run_ids:
                return
        else:
            if not exists:  # Cekura knows no such result: nothing to end
                with lock:
                    pending_results.discard(rid)
                return
        with lock:
            pending_results.discard(rid)
            report.ended_results.append(rid)
            report.ended_runs += len(run_ids)

    def end_run(run_id: int) -> None:
        if _end_run(client, run_id):
            with lock:
                pending_runs.discard(run_id)
                report.ended_runs += 1

    def look_up(name: str, agent: int | None) -> None:
        # A POST still in flight may yet answer with its result: wait for it while the budget
        # leaves time for one look-up after.
        if ledger is not None:
            rid = ledger.wait_answered(name, until - LOOKUP_RESERVE)
            if rid is not None:
                with lock:
                    pending_names.discard(name)
                end_result(rid, ledger.runs_of(rid))
                return
        looked = False
        while True:
            try:
                found = [
                    r for r in client.find_results(name=name, agent_id=agent) if r.name == name
                ]
                looked = True
            except CekuraError:
                found = []
            # The POST's sender may have died with it in flight (xdist): Cekura may still
            # create the result, so look again while the budget allows.
            if found or not patient or time.monotonic() + PATIENT_DELAY > until - 0.5:
                break
            time.sleep(PATIENT_DELAY)
        if not looked:
            return  # named in the report: it could not be looked up
        with lock:
            pending_names.discard(name)  # what Cekura has under the name is ended below
        for result in found:
            try:
                client.end_calls(result.id, deadline=send_by)
            except CekuraError:
                with lock:
                    report.left_results.append(result.id)
                continue
            with lock:
                report.ended_results.append(result.id)
                report.ended_runs += sum(1 for run in result.runs if not run.is_terminal)

    jobs: list[Callable[[], None]] = [
        *(lambda rid=rid, ids=ids: end_result(rid, ids) for rid, ids in results.items()),
        *(lambda r=r: end_run(r) for r in runs),
        *(lambda n=n, a=a: look_up(n, a) for n, a in (names or {}).items()),
    ]
    finished = run_bounded(jobs, CLEANUP_CONCURRENCY, until)
    report.interrupted = finished is None
    report.timed_out = finished is False
    with lock:
        report.left_results = sorted({*report.left_results, *pending_results})
        report.left_runs = sorted(pending_runs)
        report.left_names = sorted(pending_names)
        report.ended_results.sort()
    return report


def _end_run(client: CekuraClient, run_id: int) -> bool:
    try:
        client.end_call(run_id)
    except CekuraError:
        return False
    return True


def run_bounded(
    jobs: Sequence[Callable[[], None]], concurrency: int, deadline: float
) -> bool | None:
    """Run ``jobs`` on at most ``concurrency`` daemon threads until all are done (True) or
    ``deadline`` passes (False); a KeyboardInterrupt while waiting returns None at once.
    Jobs not yet started when the wait ends are never started."""
    if not jobs:
        return True
    queue = iter(jobs)
    lock = threading.Lock()
    done = threading.Condition()
    stop = threading.Event()
    left = [len(jobs)]

    def work() -> None:
        while not stop.is_set():
            with lock:
                job = next(queue, None)
            if job is None:
                return
            try:
                # Best effort: one failure must not stop the rest.
                with contextlib.suppress(Exception):
                    job()
            finally:
                with done:
                    left[0] -= 1
                    done.notify_all()

    for index in range(min(concurrency, len(jobs))):
        threading.Thread(target=work, name=f"cekura-cleanup-{index}", daemon=True).start()
    try:
        with done:
            while left[0] > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                done.wait(min(WAIT_SLICE, remaining))
        return True
    except KeyboardInterrupt:
        return None
    finally:
        stop.set()


def record_created(directory: Path) -> Callable[[Created], None]:
    """For the xdist worker that submits: keep ``created.json`` in the run's shared folder up
    to date, so the controller can end those calls even if this worker is killed."""

    def write(created: Created) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f"{CREATED_FILE}.{os.getpid()}.tmp"
        results = {str(rid): runs for rid, runs in created.results.items()}
        tmp.write_text(json.dumps({"results": results, "names": dict(created.names)}))
        os.replace(tmp, directory / CREATED_FILE)

    return write


def created_results(directories: Iterable[str]) -> Created:
    """Every result (with its runs) and unresolved POST name an xdist run's submitting
    worker recorded."""
    results: dict[int, list[int]] = {}
    names: dict[str, int | None] = {}
    for directory in directories:
        try:
            data = json.loads((Path(directory) / CREATED_FILE).read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        for rid, runs in dict(data.get("results") or {}).items():
            with contextlib.suppress(ValueError, TypeError):
                results[int(rid)] = [int(r) for r in runs]
        for name, agent in dict(data.get("names") or {}).items():
            names[str(name)] = agent if isinstance(agent, int) else None
    return Created(results, names)
