"""One pytest process's Cekura work: submission, the poller, each test's verdict, clean-up.

Pytest-free on purpose: ``plugin.py`` translates hooks into calls on ``CekuraSession``. The
session is built once with its collaborators (the connection, the rules, the poller, the
result cache, the xdist coordination) and sets up nothing else by itself; starting the runs is
``starter.py``'s, deciding a verdict ``outcome.decide``'s (pure), and this module does the
waiting and picks the calls nobody needs any more, which ``call_ender.CallEnder`` ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .call_ender import CallEnder
from .cleanup import Created, Ledger
from .client import CekuraClient
from .connection import Connection
from .errors import AuthError
from .hookspec import ModifyRequest
from .markers import ScenarioSpec
from .models import CekuraResult, Run
from .options import Settings
from .outcome import Outcome, Rules, Verdict, decide
from .poller import Poller, RunState
from .records import Assignment, TestRecord
from .report import Links
from .reuse import ResultCache
from .starter import Started, Starter, check_budget
from .submit import Group, plan_groups
from .tests_as_code import Priced, price_cases, with_gates
from .xdist import Serial

if TYPE_CHECKING:
    from .testsuite_json import CaseSpec


class WaitCutShort(Exception):  # noqa: N818  (not an error of Cekura's: a bounded wait ended)
    """The wait for a test's runs ended at the caller's limit, before they all finished."""

    def __init__(self, run_ids: list[int]) -> None:
        super().__init__(f"runs {', '.join(map(str, run_ids))} still going")
        self.run_ids = run_ids


class CekuraSession:
    """Submission and verdicts for the tests of this process.

    ``connection`` makes the client (and starts the emulator) when a test first needs it;
    ``rules`` judge every test (confidence, baseline, tolerance); ``poller`` follows the
    runs once submitted (started here, with the client and deadline); ``result_cache`` serves
    --cekura-reuse and --cekura-rerun-failed (None without pytest's cache). ``deadline``
    (``time.monotonic()``) bounds preflight, submission and the wait for the runs; without
    one it is set at submission, --cekura-timeout from then. ``role`` is this process's part
    under xdist (``xdist.Serial`` without it): workers submit once between them, and follow
    only the runs of tests they wait for.
    """

    def __init__(
        self,
        settings: Settings,
        session_id: str,
        *,
        connection: Connection,
        rules: Rules,
        role: Serial,
        poller: Poller,
        result_cache: ResultCache | None = None,
        deadline: float | None = None,
        modify_request: ModifyRequest | None = None,
    ) -> None:
        self.settings = settings
        self.session_id = session_id
        self.connection = connection
        self._rules = rules
        self._result_cache = result_cache
        #: When the session's time is up (``time.monotonic()``).
        self.deadline = deadline
        self._role = role
        self._lazy = role.lazy
        #: The ``pytest_cekura_modify_request`` hook, called on each body before its POST.
        self._modify_request = modify_request
        self.records: dict[str, TestRecord] = {}
        #: Set by a dry run: what would have been submitted.
        self.dry_run_groups: list[Group] | None = None
        #: Set by a dry run with Tests-as-Code cases: Cekura's plan, a line per test and total.
        self.case_plan: list[str] | None = None
        #: The poller, built with the session; it starts (and is ``_poller``) once there
        #: are runs to follow.
        self._unstarted_poller = poller
        self._poller: Poller | None = None
        self._own_agents: dict[int, int | None] = {}  # scenario -> its agent (from preflight)
        #: LiveKit settings the agents do not show (runs were started anyway).
        self.preflight_warnings: list[str] = []
        #: Every result this session created, from the moment Cekura answered.
        self.ledger = Ledger(role.ledger_sink())
        #: Ends calls, each at most once, and remembers what it ended for the reports.
        self._ender = CallEnder(connection, self.ledger)

    # -- what the reports read ---------------------------------------------------------------

    @property
    def cleanup_lines(self) -> list[str]:
        """What the clean-up at session end had to say (calls ended, or left going)."""
        return self._ender.lines

    @property
    def ended_runs(self) -> set[int]:
        """Calls this session ended before they finished (early verdicts, clean-up): reports
        show those runs as ended, not "running"."""
        return self._ender.ended_runs

    @property
    def ended_results(self) -> set[int]:
        """The results whose calls this session ended."""
        return self._ender.ended_results

    def started_results(self) -> list[dict[str, Any]]:
        """Each result this session created, for the JSON report: its id, the request's
        name, its runs and whether the session ended its calls."""
        return [
            {
                "result_id": rid,
                "name": name,
                "run_ids": runs,
                "ended_by_session": rid in self.ended_results,
            }
            for rid, name, runs in sorted(self.ledger.started())
        ]

    def client(self) -> CekuraClient:
        """The session's client, made (and the emulator started) on the first call."""
        return self.connection.client()

    @property
    def api_url(self) -> str:
        """Where this session's requests go (the emulator's URL under --cekura-emulator)."""
        return self.connection.api_url

    @property
    def links(self) -> Links:
        """Dashboard links, computed now from the settings (see ``Connection.links``)."""
        return self.connection.links(self._own_agents)

    @property
    def api_notices(self) -> list[str]:
        """What the client decided on its own, e.g. to fall back to a v1 path (shown at -v)."""
        return self.connection.api_notices

    @property
    def key_rejected(self) -> AuthError | None:
        """Cekura's rejection of the key while polling, if it came: polling has stopped."""
        return self._poller.rejected if self._poller is not None else None

    @property
    def request_counts(self) -> dict[str, int]:
        return self.connection.request_counts

    # -- submission --------------------------------------------------------------------------

    def submit(
        self,
        specs: Mapping[str, ScenarioSpec],
        on_progress: Callable[[int, int, float], None] | None = None,
        cases: Mapping[str, CaseSpec] | None = None,
    ) -> None:
        """Start every group's runs (once per test run), map them to tests, start polling.

        ``cases`` are Tests-as-Code cases (``tests_as_code.py``): validated and priced first
        (``--cekura-max-cost`` refuses the session before any run-starting request), then
        started after the marked tests' groups, in the same submission, so under xdist one
        worker starts both and the manifest carries both. ``on_progress`` is called on the
        main thread while submitting: (requests answered, requests, seconds)."""
        self.records = {nodeid: TestRecord(spec) for nodeid, spec in specs.items()}
        if not specs and not cases:
            return
        dry_run = self.settings.dry_run
        if dry_run and specs:
            self.dry_run_groups = plan_groups(specs.values(), self.session_id)
            # A plan the real run would refuse is refused the same way (same exit status).
            check_budget(self.dry_run_groups, self.settings.max_runs, dry_run=True)
        if dry_run and not cases:
            return
        if self.deadline is None:
            self.deadline = time.monotonic() + self.settings.timeout
        client = self.client()
        starter = Starter(
            self.settings,
            self.session_id,
            client,
            ledger=self.ledger,
            deadline=self.deadline,
            result_cache=self._result_cache,
            modify_request=self._modify_request,
            on_progress=on_progress,
        )

        def start() -> Started:
            modify = self._modify_request
            priced = (
                price_cases(self.client, self.settings, self.session_id, cases, modify)
                if cases
                else None
            )
            started = starter.start(specs) if specs and not dry_run else Started({})
            self._own_agents = started.own_agents
            if priced is not None:
                started.case_plan = priced.outcome.plan_lines
                started.cases = (
                    priced.dry_run_assignments() if dry_run else self._start_cases(priced)
                )
            return started

        # Under xdist one worker starts the runs and the others read its manifest.
        started: Started = self._role.submit(start, Started.to_manifest, Started.from_manifest)
        # Every worker learns preflight's warnings, whichever of them submitted.
        self.preflight_warnings = list(started.warnings)
        self.case_plan = started.case_plan if dry_run else None
        # Gates are pytest's, not the manifest's: each worker applies its own cases' gates.
        started.cases = with_gates(started.cases, cases or {})
        if dry_run:
            self.adopt(started.cases)  # the cases Cekura rejected error, the rest skip
            return
        assignments = started.assignments
        poller = self._unstarted_poller
        for nodeid, record in self.records.items():
            self.records[nodeid] = record = replace(record, assignment=assignments[nodeid])
            if not self._lazy:
                poller.track(record.assignment.runs)
        self._poller = poller
        poller.start(client, self.deadline)
        self.adopt(started.cases)

    def _start_cases(self, priced: Priced) -> dict[str, tuple[ScenarioSpec, Assignment]]:
        from .case_start import start_priced

        args = (self.client(), priced, self.settings, self._result_cache, self.ledger)
        return start_priced(
            *args, deadline=self.deadline, session_id=self.session_id, modify=self._modify_request
        )

    def adopt(self, assignments: Mapping[str, tuple[ScenarioSpec, Assignment]]) -> None:
        """Judge and poll tests whose runs were started elsewhere (Tests-as-Code cases,
        ``tests_as_code.py``) like the marked ones, after ``submit``."""
        if not assignments:
            return
        if self.deadline is None:
            self.deadline = time.monotonic() + self.settings.timeout
        if self._poller is None:
            self._poller = self._unstarted_poller
            self._poller.start(self.client(), self.deadline)
        for nodeid, (spec, assignment) in assignments.items():
            self.records[nodeid] = TestRecord(spec, assignment=assignment)
            if not self._lazy:
                self._poller.track(assignment.runs)

    # -- verdicts ----------------------------------------------------------------------------

    def verdict(
        self,
        nodeid: str,
        on_tick: Callable[[dict[str, int]], None] | None = None,
        *,
        give_up_at: float | None = None,
    ) -> TestRecord:
        """Wait for the test's runs (bounded by the deadline), decide, then act; cached.

        ``give_up_at`` (a ``time.monotonic()`` instant, e.g. just before the test's own
        timeout) stops the wait early with ``WaitCutShort``; the verdict stays undecided.
        """
        record = self.records[nodeid]
        if record.verdict is not None:
            if record.result is None and self._poller is not None:
                # Released after an earlier report of this test (pytest-rerunfailures runs it
                # again): the same runs, read again from the poller's snapshots.
                snapshots = self._poller.states([run.id for run in record.assignment.runs])
                record = replace(record, result=_result(record, list(snapshots.values())))
                self.records[nodeid] = record
            return record
        states = self._wait(nodeid, record, on_tick, give_up_at)
        # Calls a test decided early need no more (unless another test still waits on them).
        idle = self._idle(nodeid, states) if _early(self.settings, record) else []
        verdict = self._decide(nodeid, record, states, ended_early=len(idle))
        self._ender.cancel(idle)
        record = replace(
            record, verdict=verdict, result=_result(record, states), ended_early=len(idle)
        )
        self.records[nodeid] = record
        return record

    def _decide(
        self, nodeid: str, record: TestRecord, states: Sequence[RunState], ended_early: int = 0
    ) -> Verdict:
        spec, problems = record.spec, record.assignment.problems
        return decide(
            nodeid,
            states,
            spec.min_success_rate,
            problems,
            self._rules,
            ended_early=ended_early,
            gates=spec.gates,
        )

    def _wait(
        self,
        nodeid: str,
        record: TestRecord,
        on_tick: Callable[[dict[str, int]], None] | None,
        give_up_at: float | None,
    ) -> list[RunState]:
        """The test's runs, once all are done, the verdict is decided (early verdicts), or
        the deadline passed; ``WaitCutShort`` at ``give_up_at``."""
        runs = record.assignment.runs

        def decided(now: Sequence[RunState]) -> bool:
            return self._decide(nodeid, record, now).outcome is not Outcome.ERROR

        states: dict[int, RunState] = {}
        if self._poller is not None:
            if self._lazy:
                self._poller.track(runs, poll_now=True)
            states = self._poller.wait(
                [run.id for run in runs],
                on_tick,
                decided if _early(self.settings, record) else None,
                give_up_at=give_up_at,
            )
        ordered = [states[run.id] for run in runs]
        going = [state.run.id for state in ordered if not state.done]
        if going and give_up_at is not None and time.monotonic() >= give_up_at:
            raise WaitCutShort(going)
        return ordered

    def ready(self, nodeid: str) -> bool:
        """True when the test can run without waiting for Cekura: it is not a Cekura test,
        its runs are all done, or the session's deadline has passed."""
        record = self.records.get(nodeid)
        poller = self._poller
        if record is None or record.verdict is not None or poller is None or poller.expired:
            return True
        return poller.all_done([run.id for run in record.assignment.runs])

    def ready_version(self) -> object:
        """Changes whenever ``ready`` may turn true for a test it was false for."""
        return None if self._poller is None else self._poller.version()

    def wait_for_poll(self) -> None:
        """Block until the poller's next update (briefly; returns at once without one)."""
        if self._poller is not None:
            self._poller.wait_for_poll()

    def release(self, nodeid: str) -> None:
        """The test is reported: let go of its runs' full detail (transcripts, metrics).

        A session of 10,000 runs would otherwise hold them all until it ends. The verdict
        (with the failed runs it reports) and the summary row are kept.
        """
        record = self.records.get(nodeid)
        if record is not None:
            self.records[nodeid] = replace(record, result=None)

    def end_unfinished(self, run_ids: Sequence[int], created: Created | None = None) -> None:
        """End every call among ``run_ids`` and of the results ``created`` by an xdist
        worker that may have died (``CallEnder.end_unfinished``)."""
        self._ender.end_unfinished(self.client, run_ids, created)

    def _idle(self, nodeid: str, states: Sequence[RunState]) -> list[int]:
        """The calls still going of a test now decided that no other test still needs."""
        if self._poller is None or self._poller.expired:
            return []
        needed = {
            run.id
            for other, record in self.records.items()
            if other != nodeid and record.verdict is None
            for run in record.assignment.runs
        }
        idle = [
            s.run.id
            for s in states
            if not s.done and not s.run.call_over and s.run.id not in needed
        ]
        return idle

    # -- shutdown ----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop polling, end calls still in progress (they cost money), release everything.

        Every result the session created is ended unless its runs are known to be finished,
        whatever stopped the session (an interrupt during submission, a failed group, the
        deadline); POSTs never answered are looked up by name once more. Bounded by
        ``CLEANUP_BUDGET`` on daemon threads; a second Ctrl-C cuts it short."""
        try:
            if self._poller is not None:
                self._poller.stop()
            if self.connection.connected is not None:
                self._end_all()
        finally:
            self.connection.close()

    def _end_all(self) -> None:
        poller = self._poller
        going, names = self.ledger.pending()
        # Calls over but still being scored are left alone: there is nothing to end.
        outstanding = set(poller.calls_going()) if poller is not None else set()
        if self._lazy and poller is not None:
            # An xdist worker that got the manifest: other workers may still need runs of
            # these results; each worker ends the runs it waited for, the controller the rest.
            self._ender.end({}, sorted(outstanding), {})
            return
        assigned = {run.id for record in self.records.values() for run in record.assignment.runs}
        results: dict[int, list[int]] = {}
        for rid, run_ids in going.items():
            if poller is None:
                results[rid] = run_ids  # never polled: nothing is known to be finished
                continue
            # Runs nobody waited for (not assigned to a test) may be going too.
            still = [r for r in run_ids if r in outstanding or r not in assigned]
            still = [r for r in still if not self._ender.asked(r)]
            if still:
                results[rid] = still
        covered = {run_id for run_ids in results.values() for run_id in run_ids}
        owned = {run_id for run_ids in going.values() for run_id in run_ids}
        loose = sorted(outstanding - covered - owned)
        self._ender.end(results, loose, names)


def _early(settings: Settings, record: TestRecord) -> bool:
    """--cekura-early-verdict, but never for a test with metric gates: a run still going
    could break a gate however the success rate stands, so its calls all run to the end."""
    return settings.early_verdict and not record.spec.gates


def _result(record: TestRecord, states: Sequence[RunState]) -> CekuraResult:
    assignment = record.assignment
    owners = [assignment.earlier_result_id, assignment.result_id]
    runs: list[Run] = [state.run for state in states]
    return CekuraResult(
        scenario_ids=record.spec.scenario_ids,
        runs=tuple(runs),
        min_success_rate=record.spec.min_success_rate,
        result_ids=tuple(owner for owner in owners if owner is not None),
    )
