"""One background poller per session: fetches every outstanding run in bulk until a deadline.

Tests block in ``Poller.wait`` for their own runs only, so a test whose runs finish early is
reported early, and the number of GETs depends on the number of runs, not of tests.
"""

from __future__ import annotations

import ctypes
import math
import os
import queue
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from .client import BULK_CHUNK_SIZE, CekuraClient, RunBatch
from .errors import ApiError, AuthError, CekuraError
from .interrupts import raise_pending
from .models import Run
from .snapshot import RunSnapshot

#: How long the main thread blocks at a time, so signals (Ctrl-C, pytest-timeout) land promptly.
WAIT_SLICE = 0.25
#: Up to 10 % off each interval, so many CI jobs don't poll in lock-step. Only ever shorter:
#: a finished run is then seen at most one interval (plus a poll) after it ends.
JITTER = 0.1
#: Bulk GETs in flight (or fetched and not yet decoded) at once during a poll cycle: 10,000
#: runs are about 24 chunks, so a cycle is two round trips (three at 8: 0.05-0.1 s more a
#: cycle at 50 ms; each answer waiting to be decoded holds ~0.5 MB). Retry-After pauses them
#: all (``CekuraClient``).
POLL_CONCURRENCY = 12
#: Private, for the benchmarks only: True polls as before paging (chunks of
#: ``BULK_CHUNK_SIZE`` ids, four in flight), so a benchmark can measure both in one run.
_SMALL_CHUNKS = False


#: glibc's ``mallopt`` parameter number for the mmap threshold, and the value set: its
#: default starting value, 128 KB.
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 128 * 1024


def fix_mmap_threshold() -> bool:
    """Keep glibc's mmap threshold at its default 128 KB instead of letting it rise; True if
    set. Bulk answers are single buffers of 0.5-1 MB. glibc serves a block that size with
    its own mmap, returned to the system when freed, but it raises the threshold to the
    size of each such block freed, so later answers come from the heap of the thread that
    read them and stay in the process when freed: 30 to 50 MB at 10,000 runs, the peak RSS
    target missed (docs/performance.md). Not done where glibc is absent, nor when the user
    set the threshold (``MALLOC_MMAP_THRESHOLD_``, ``GLIBC_TUNABLES``)."""
    if sys.platform != "linux" or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    if "mmap_threshold" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018  (glibc only: musl has no such function)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD))


@dataclass(frozen=True)
class RunState:
    """The latest known state of one run, as a test's verdict reads it."""

    run: Run
    #: Why Cekura's answer for this run could not be read (the run counts as broken).
    invalid: str | None = None
    #: The last polling error, if the last attempt to refresh this run failed.
    poll_error: str | None = None

    @property
    def done(self) -> bool:
        return self.invalid is not None or self.run.is_terminal


@dataclass(frozen=True, slots=True)
class _Tracked:
    """What the poller keeps per run: a compact snapshot, parsed only for a waiting test."""

    snapshot: RunSnapshot
    invalid: str | None = None
    poll_error: str | None = None

    @property
    def done(self) -> bool:
        return self.invalid is not None or self.snapshot.is_terminal

    @property
    def tally(self) -> str:
        """Which progress counter this run is in."""
        if self.done:
            return "done" if self.invalid is None and self.snapshot.succeeded else "failed"
        return "queued" if self.snapshot.status in {"pending", "in_queue"} else "running"

    def state(self) -> RunState:
        return RunState(self.snapshot.run(), self.invalid, self.poll_error)


class Poller:
    """Polls the runs it is told to ``track`` every ``interval`` seconds until ``deadline``.

    The session's poller is built with the session (``pluginstate``), before the client
    exists (making it may start the emulator) and before submission sets the deadline: both
    are then given to ``start``.
    """

    def __init__(
        self,
        client: CekuraClient | None = None,
        *,
        interval: float,
        deadline: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._client = client
        self._interval = interval
        self._deadline = math.inf if deadline is None else deadline
        self._has_deadline = deadline is not None
        self._clock = clock
        self._rng = rng
        self._runs: dict[int, _Tracked] = {}
        #: Each run's result, when known: a chunk of one result's runs is polled scoped to it.
        self._owners: dict[int, int] = {}
        #: How many tracked runs are in each progress counter, kept as runs change so the
        #: progress line costs nothing per run.
        self._tally: Counter[str] = Counter()
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._wake = threading.Event()  # set to poll now rather than at the next interval
        self._thread = threading.Thread(target=self._loop, name="cekura-poller", daemon=True)
        #: When Cekura's Retry-After (on a 429 or 503 poll) lets polling resume.
        self._resume_at = 0.0
        self._cycles = 0  # poll cycles completed, for wait_for_poll
        self._changes = 0  # run states recorded, for version
        #: Cekura's rejection of the key (401/403) on a poll. Polling stops at the first one:
        #: every later poll would be rejected too, until the deadline.
        self.rejected: AuthError | None = None

    def track(self, runs: Iterable[Run], *, poll_now: bool = False) -> None:
        with self._changed:
            for run in runs:
                if run.id not in self._runs:
                    self._set(run.id, _Tracked(RunSnapshot.of(run)))
                    if run.result_id is not None:
                        self._owners[run.id] = run.result_id
        if poll_now:
            self._wake.set()

    def start(self, client: CekuraClient | None = None, deadline: float | None = None) -> None:
        """Start polling (once), with the client and deadline given here or when built."""
        if client is not None:
            self._client = client
        if deadline is not None:
            self._deadline, self._has_deadline = deadline, True
        if self._client is None or not self._has_deadline:
            raise ValueError("Poller.start needs a client and a deadline")
        fix_mmap_threshold()
        self._thread.start()

    @property
    def _api(self) -> CekuraClient:
        assert self._client is not None, "only polled once started, which needs a client"
        return self._client

    def stop(self, timeout: float = 0.5) -> None:
        """Stop polling. A bulk GET still in flight is not waited for beyond ``timeout``: its
        threads are daemons, and its answer is no longer needed."""
        self._stop.set()
        self._wake.set()
        with self._changed:
            self._changed.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def outstanding(self) -> list[int]:
        with self._changed:
            return [run_id for run_id, tracked in self._runs.items() if not tracked.done]

    def calls_going(self) -> list[int]:
        """Runs not done whose call may still be going: a completed call waiting for its
        score is not done, but there is nothing left to end."""
        with self._changed:
            return [
                run_id
                for run_id, tracked in self._runs.items()
                if not tracked.done and not tracked.snapshot.call_over
            ]

    @property
    def expired(self) -> bool:
        """Past the deadline, or stopped by a rejected key: no run will change any more, so
        nothing should wait for one (e.g. ``--cekura-order=finish``)."""
        return self.rejected is not None or self._clock() >= self._deadline

    def wait(
        self,
        run_ids: Sequence[int],
        on_tick: Callable[[dict[str, int]], None] | None = None,
        until: Callable[[Sequence[RunState]], bool] | None = None,
        *,
        give_up_at: float | None = None,
    ) -> dict[int, RunState]:
        """Block until every run in ``run_ids`` is done, ``until`` says enough, the deadline
        passes or ``give_up_at`` comes. ``on_tick`` gets the progress counts, and ``until``
        the runs' states, on this (the main) thread at most once per wait slice: parsing
        every run of a big test each time a chunk arrives would slow the poller down.
        """
        end = self._deadline if give_up_at is None else min(self._deadline, give_up_at)
        last_slice = -WAIT_SLICE
        with self._changed:
            while not self._all_done(run_ids) and self._clock() < end:
                if self._stop.is_set():
                    break
                raise_pending()  # a Ctrl-C or SIGTERM lost on its way (``interrupts``)
                if self._clock() - last_slice >= WAIT_SLICE:
                    last_slice = self._clock()
                    if on_tick is not None:
                        on_tick(self._counts())
                    if until is not None and until([self._runs[r].state() for r in run_ids]):
                        break
                self._changed.wait(min(WAIT_SLICE, max(0.0, end - self._clock())))
            return self.states(run_ids)

    def states(self, run_ids: Sequence[int]) -> dict[int, RunState]:
        """The runs' latest known states, without waiting."""
        with self._changed:
            return {run_id: self._runs[run_id].state() for run_id in run_ids}

    def _counts(self) -> dict[str, int]:
        tally = self._tally
        return {
            "done": tally["done"] + tally["failed"],
            "running": tally["running"],
            "queued": tally["queued"],
            "failed": tally["failed"],
        }

    def _all_done(self, run_ids: Sequence[int]) -> bool:
        return all(self._runs[run_id].done for run_id in run_ids)

    def all_done(self, run_ids: Sequence[int]) -> bool:
        with self._changed:
            return self._all_done(run_ids)

    def version(self) -> tuple[int, bool]:
        """Changes whenever a run's state may have changed (or waiting stopped making
        sense): while it is the same, a run found not done is still not done."""
        return self._changes, self.expired

    def wait_for_poll(self, timeout: float = WAIT_SLICE) -> None:
        """Block until the current poll cycle ends (or ``timeout``, or polling stops)."""
        raise_pending()
        with self._changed:
            seen = self._cycles
            self._changed.wait_for(
                lambda: self._cycles != seen or not self._thread.is_alive(), timeout
            )

    def _set(self, run_id: int, tracked: _Tracked) -> None:
        """Record a run's new state (the caller holds the lock)."""
        old = self._runs.get(run_id)
        if old is not None:
            self._tally[old.tally] -= 1
        self._tally[tracked.tally] += 1
        self._runs[run_id] = tracked
        self._changes += 1

    # -- background thread -------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            remaining = self._deadline - self._clock()
            if remaining <= 0:
                break
            jitter = 1.0 - JITTER * self._rng()
            self._wake.wait(min(self._interval * jitter, remaining))
            self._wake.clear()
            # Cekura asked for a pause: hold every poll until then, even one asked for early.
            held = min(self._resume_at, self._deadline) - self._clock()
            if held > 0:
                self._stop.wait(held)
            if self._stop.is_set() or self.expired:
                break
            self.poll_once()
        with self._changed:
            self._changed.notify_all()

    def poll_once(self) -> None:
        """Fetch every outstanding run once, in the biggest chunks a bulk GET carries
        (``CekuraClient.bulk_chunks``), ``POLL_CONCURRENCY`` at a time; errors are recorded
        per run, not raised.

        Bulk, not the run list filtered on the unfinished statuses: the list's pages are
        capped (at 100 runs in the emulator, as DRF usually is; Cekura documents no cap)
        where a bulk GET takes about 430 ids, and a run that finishes while the list is read
        shifts the later pages under the reader, so a run could be skipped. A bulk GET
        names each run, so every outstanding run is asked for exactly once a cycle, and a
        run's final state arrives in full with the poll that first sees it final (it is not
        asked for again)."""
        with self._changed:
            # Each result's runs side by side, so most chunks can be scoped to one result.
            pending = sorted(
                (run_id for run_id, tracked in self._runs.items() if not tracked.done),
                key=lambda run_id: (self._owners.get(run_id, -1), run_id),
            )
        if _SMALL_CHUNKS:
            chunks = [
                pending[start : start + BULK_CHUNK_SIZE]
                for start in range(0, len(pending), BULK_CHUNK_SIZE)
            ]
        else:
            chunks = self._api.bulk_chunks(pending)
        concurrency = 4 if _SMALL_CHUNKS else POLL_CONCURRENCY
        to_fetch = iter(chunks)
        lock = threading.Lock()
        # Fetcher threads only wait on the network; this thread decodes every answer. glibc
        # gives each thread that allocates its own heap: 8 threads decoding answers of 400
        # runs kept 8 heaps of garbage, 40 MB at 10,000 runs (docs/performance.md). At most
        # ``concurrency`` answers are fetched and not yet decoded: decoding is the slower
        # step, and answers waiting for it held 20 MB of bytes.
        answers: queue.SimpleQueue[tuple[list[int], Callable[[], RunBatch] | None] | None]
        answers = queue.SimpleQueue()
        slots = threading.Semaphore(concurrency)

        def fetch() -> None:
            try:
                while not self._stop.is_set():
                    slots.acquire()
                    with lock:
                        chunk = next(to_fetch, None)
                    if chunk is None:
                        slots.release()
                        return
                    answers.put((chunk, self._fetch_chunk(chunk)))
            finally:
                answers.put(None)  # this fetcher is done

        # Daemon threads, not an executor: a GET stuck on a slow server must not hold up the
        # end of the session (executor threads are joined at interpreter exit).
        fetchers = [
            threading.Thread(target=fetch, name="cekura-poll", daemon=True)
            for _ in range(min(concurrency, len(chunks)))
        ]
        for thread in fetchers:
            thread.start()
        going = len(fetchers)
        while going:
            answer = answers.get()
            if answer is None:
                going -= 1
            else:
                if answer[1] is not None:
                    self._decode_chunk(answer[0], answer[1])
                slots.release()
        with self._changed:
            self._cycles += 1
            self._changed.notify_all()

    def _fetch_chunk(self, chunk: list[int]) -> Callable[[], RunBatch] | None:
        """One bulk GET (on a fetcher thread): its answer, to decode; None if it failed (the
        error is recorded for its runs)."""
        with self._changed:
            owners = {self._owners.get(run_id) for run_id in chunk}
        result_id = owners.pop() if len(owners) == 1 else None
        try:
            return self._api.fetch_runs(chunk, result_id=result_id, deadline=self._deadline)
        except CekuraError as exc:
            self._failed(chunk, exc)
        except Exception:
            if not self._stop.is_set():
                raise
            # The session closed the client under this request: nothing to report.
        return None

    def _decode_chunk(self, chunk: list[int], answer: Callable[[], RunBatch]) -> None:
        try:
            batch = answer()
        except CekuraError as exc:  # an answer that is not a list of runs
            self._failed(chunk, exc)
            return
        self._update(chunk, batch.runs, batch.invalid)

    def _failed(self, chunk: list[int], exc: CekuraError) -> None:
        if isinstance(exc, AuthError):
            with self._changed:
                self.rejected = self.rejected or exc
            self._stop.set()
            self._wake.set()
        if isinstance(exc, ApiError) and exc.retry_after:
            with self._changed:
                self._resume_at = max(self._resume_at, self._clock() + exc.retry_after)
        self._record_error(chunk, str(exc))

    def _update(
        self, asked: Iterable[int], runs: Iterable[RunSnapshot], invalid: Mapping[int, str]
    ) -> None:
        with self._changed:
            answered = {run.id for run in runs} | set(invalid)
            for run_id in set(asked) - answered:
                old = self._runs[run_id]
                error = "missing from Cekura's last bulk answer"
                self._set(run_id, _Tracked(old.snapshot, poll_error=error))
            for run in runs:
                # Ids we did not ask for are ignored: never attribute a stranger's run to a test.
                kept = self._runs.get(run.id)
                if kept is None:
                    continue
                # Most runs of a poll have not changed since the last one: keeping them as
                # they are saves a third of the poller's time on them (and leaves
                # ``version`` alone, so finish order asks no test again).
                if kept.invalid is None and kept.poll_error is None and kept.snapshot == run:
                    continue
                self._set(run.id, _Tracked(run))
            for run_id, reason in invalid.items():
                if run_id in self._runs:
                    self._set(run_id, _Tracked(self._runs[run_id].snapshot, invalid=reason))
            self._changed.notify_all()

    def _record_error(self, run_ids: Iterable[int], message: str) -> None:
        with self._changed:
            for run_id in run_ids:
                old = self._runs[run_id]
                self._set(run_id, _Tracked(old.snapshot, old.invalid, poll_error=message))
