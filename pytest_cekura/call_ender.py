"""Ending a session's paid calls, each at most once, and remembering what was ended.

``CekuraSession`` decides *which* calls to end (an early verdict's, every call still going at
the end, those of an xdist worker that died); ``CallEnder`` ends them within the clean-up
budget (``cleanup.end_calls``, ``cleanup.run_bounded``) and keeps what the reports show: the
runs and results it ended and the lines the summary prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from .cleanup import CLEANUP_BUDGET, CleanupReport, Created, Ledger, end_calls, run_bounded
from .client import CekuraClient
from .connection import Connection
from .errors import CekuraError

#: Upper bound on the time spent ending calls (the session's clean-up has its own budget,
#: ``cleanup.CLEANUP_BUDGET``), so Ctrl-C stays responsive.
CANCEL_BUDGET = CLEANUP_BUDGET


class CallEnder:
    """Ends calls through the session's client, if it has one: a session that never
    connected started nothing."""

    def __init__(self, connection: Connection, ledger: Ledger) -> None:
        self._connection = connection
        self._ledger = ledger
        self._ended: set[int] = set()  # calls already ended: never ask twice
        #: What the clean-up at session end had to say (calls ended, or left going).
        self.lines: list[str] = []
        #: Calls ended before they finished (early verdicts, clean-up), and the results whose
        #: calls were ended: reports show those runs as ended, not "running".
        self.ended_runs: set[int] = set()
        self.ended_results: set[int] = set()

    def asked(self, run_id: int) -> bool:
        """True once this run's call was asked to end (it is never asked twice)."""
        return run_id in self._ended

    def end(
        self,
        results: Mapping[int, Sequence[int]],
        runs: Sequence[int],
        names: Mapping[str, int | None],
        *,
        patient: bool = False,
    ) -> CleanupReport:
        """End these calls within the clean-up budget; note what was (not) ended."""
        runs = [run_id for run_id in runs if run_id not in self._ended]
        client = self._connection.connected
        if (not results and not runs and not names) or client is None:
            return CleanupReport()
        self._ended.update(runs)
        self._ended.update(run_id for run_ids in results.values() for run_id in run_ids)
        report = end_calls(
            client, results, runs=runs, names=names, ledger=self._ledger, patient=patient
        )
        self.lines += report.lines()
        left = {
            *report.left_runs,
            *(r for rid in report.left_results for r in results.get(rid, ())),
        }
        self.ended_runs.update({*runs, *(r for ids in results.values() for r in ids)} - left)
        self.ended_results.update(report.ended_results)
        return report

    def cancel(self, run_ids: list[int]) -> None:
        """End these calls (the early verdict's), each on its own: other runs of the same
        result may still be needed. Daemon threads, bounded; Ctrl-C is not swallowed."""
        run_ids = [run_id for run_id in run_ids if run_id not in self._ended]
        client = self._connection.connected
        if not run_ids or client is None:
            return
        self._ended.update(run_ids)
        jobs = [lambda run_id=run_id: client.end_call(run_id) for run_id in run_ids]
        self.ended_runs.update(run_ids)
        if run_bounded(jobs, 8, time.monotonic() + CANCEL_BUDGET) is None:
            raise KeyboardInterrupt

    def end_unfinished(
        self,
        client: Callable[[], CekuraClient],
        run_ids: Sequence[int],
        created: Created | None = None,
    ) -> None:
        """End every call among ``run_ids`` and of the results ``created`` by an xdist
        worker that may have died (best effort, bounded): a result with a call going is
        ended in one request; a POST it never saw answered is looked up by name. ``client``
        is called only when there is something to end."""
        created = created or Created()
        results = created.results
        owner = {run_id: rid for rid, runs in results.items() for run_id in runs}
        every = sorted({*run_ids, *owner})
        if not every and not created.names:
            return
        try:
            going = [run.id for run in client().get_all_runs(every) if not run.call_over]
        except CekuraError:
            # Cannot tell what is still going: end every result we know of.
            going = every
        by_result: dict[int, list[int]] = {}
        loose = []
        for run_id in going:
            if run_id in owner:
                by_result.setdefault(owner[run_id], []).append(run_id)
            else:
                loose.append(run_id)
        # A created result whose runs nobody listed may still have calls: end it too.
        by_result.update({rid: [] for rid, runs in results.items() if not runs})
        self.end(by_result, loose, created.names, patient=True)
