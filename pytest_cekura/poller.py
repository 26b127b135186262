"""One background poller per session: fetches every outstanding run in bulk until a deadline.

Tests block in ``Poller.wait`` for their own runs only, so a test whose runs finish early is
reported early, and the number of GETs depends on the number of runs, not of tests.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from .client import BULK_CHUNK_SIZE, CekuraClient
from .errors import CekuraError
from .models import Run

#: How long the main thread blocks at a time, so signals (Ctrl-C, pytest-timeout) land promptly.
WAIT_SLICE = 0.25
#: Up to 10 % off each interval, so many CI jobs don't poll in lock-step. Only ever shorter:
#: a finished run is then seen at most one interval (plus a poll) after it ends.
JITTER = 0.1


@dataclass(frozen=True)
class RunState:
    """The latest known state of one run."""

    run: Run
    #: Why Cekura's answer for this run could not be read (the run counts as broken).
    invalid: str | None = None
    #: The last polling error, if the last attempt to refresh this run failed.
    poll_error: str | None = None

    @property
    def done(self) -> bool:
        return self.invalid is not None or self.run.is_terminal


class Poller:
    def __init__(
        self,
        client: CekuraClient,
        *,
        interval: float,
        deadline: float,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._client = client
        self._interval = interval
        self._deadline = deadline
        self._clock = clock
        self._rng = rng
        self._states: dict[int, RunState] = {}
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._wake = threading.Event()  # set to poll now rather than at the next interval
        self._thread = threading.Thread(target=self._loop, name="cekura-poller", daemon=True)

    def track(self, runs: Iterable[Run], *, poll_now: bool = False) -> None:
        with self._changed:
            for run in runs:
                self._states.setdefault(run.id, RunState(run))
        if poll_now:
            self._wake.set()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        with self._changed:
            self._changed.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def outstanding(self) -> list[int]:
        with self._changed:
            return [run_id for run_id, state in self._states.items() if not state.done]

    @property
    def expired(self) -> bool:
        return self._clock() >= self._deadline

    def wait(
        self,
        run_ids: Sequence[int],
        on_tick: Callable[[dict[str, int]], None] | None = None,
        until: Callable[[Sequence[RunState]], bool] | None = None,
    ) -> dict[int, RunState]:
        """Block until every run in ``run_ids`` is done, ``until`` says enough, or the
        deadline passes. ``on_tick`` gets ``_counts()`` on this (the main) thread each slice.
        """
        last_tick = self._clock()
        with self._changed:
            while not self._all_done(run_ids) and self._clock() < self._deadline:
                if self._stop.is_set():
                    break
                if until is not None and until([self._states[r] for r in run_ids]):
                    break
                self._changed.wait(min(WAIT_SLICE, max(0.0, self._deadline - self._clock())))
                # The poller wakes us once per chunk it fetched; counting every run each time
                # would make a big session quadratic, so progress is counted once per slice.
                if on_tick is not None and self._clock() - last_tick >= WAIT_SLICE:
                    last_tick = self._clock()
                    on_tick(self._counts())
            return {run_id: self._states[run_id] for run_id in run_ids}

    def _counts(self) -> dict[str, int]:
        counts = {"done": 0, "running": 0, "queued": 0, "failed": 0}
        for state in self._states.values():
            run = state.run
            if state.done:
                counts["done"] += 1
                counts["failed"] += not run.succeeded
            elif run.status in {"pending", "in_queue"}:
                counts["queued"] += 1
            else:
                counts["running"] += 1
        return counts

    def _all_done(self, run_ids: Sequence[int]) -> bool:
        return all(self._states[run_id].done for run_id in run_ids)

    # -- background thread -------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            remaining = self._deadline - self._clock()
            if remaining <= 0:
                break
            jitter = 1.0 - JITTER * self._rng()
            self._wake.wait(min(self._interval * jitter, remaining))
            self._wake.clear()
            if self._stop.is_set():
                break
            self.poll_once()
        with self._changed:
            self._changed.notify_all()

    def poll_once(self) -> None:
        """Fetch every outstanding run once, in chunks; record errors instead of raising."""
        pending = self.outstanding()
        for start in range(0, len(pending), BULK_CHUNK_SIZE):
            if self._stop.is_set():
                return
            chunk = pending[start : start + BULK_CHUNK_SIZE]
            try:
                batch = self._client.get_runs(chunk, deadline=self._deadline)
            except CekuraError as exc:
                self._record_error(chunk, str(exc))
                continue
            self._update(chunk, batch.runs, batch.invalid)

    def _update(
        self, asked: Iterable[int], runs: Iterable[Run], invalid: Mapping[int, str]
    ) -> None:
        with self._changed:
            answered = {run.id for run in runs} | set(invalid)
            for run_id in set(asked) - answered:
                old = self._states[run_id]
                self._states[run_id] = RunState(
                    old.run, poll_error="missing from Cekura's last bulk answer"
                )
            for run in runs:
                # Ids we did not ask for are ignored: never attribute a stranger's run to a test.
                if run.id in self._states:
                    self._states[run.id] = RunState(run)
            for run_id, reason in invalid.items():
                if run_id in self._states:
                    old = self._states[run_id]
                    self._states[run_id] = RunState(old.run, invalid=reason)
            self._changed.notify_all()

    def _record_error(self, run_ids: Iterable[int], message: str) -> None:
        with self._changed:
            for run_id in run_ids:
                old = self._states[run_id]
                self._states[run_id] = RunState(old.run, old.invalid, poll_error=message)
