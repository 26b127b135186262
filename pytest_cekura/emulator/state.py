"""The emulator's in-memory state: results, runs and the request log, behind one lock.

Lifecycles are derived from the clock whenever a run is read instead of being advanced by
background threads: a run stores only what it was created with (scenario, profile, result,
creation time) plus a cancellation time, and its status, transcript and scores are rebuilt on
demand. That keeps 10,000 runs cheap, makes a fake clock enough to step tests
deterministically, and means there is nothing to stop or join.

A run's phase at a moment (pending, in queue, running, evaluating, then terminal; ended calls
``cancelled``) is ``lifecycle.py``'s. Error and cancelled runs carry ``expected_outcome: null``
and no metrics, as nothing was evaluated.

Result counts: ``completed_runs_count`` counts terminal runs, ``success_runs_count`` runs with
``success: true`` and ``failed_runs_count`` terminal runs with ``success: false``.

``debug_runs`` adds what Cekura would hand a LiveKit agent for each run (cekura-api.md 8.2):
``job_metadata`` and ``room_metadata`` as the JSON strings ``ctx.job.metadata`` and
``ctx.room.metadata`` carry, the dispatch name, and the element's ``publish_data_message``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pytest_cekura.emulator.content import DEFAULT_PERSONALITY_ID
from pytest_cekura.emulator.lifecycle import phase_at
from pytest_cekura.emulator.records import (
    Combination,
    LivekitOverride,
    NewResult,
    Phase,
    RequestRecord,
    ResultFilter,
    ResultPage,
    ResultRecord,
    RunFilter,
    RunRecord,
    ScenarioItem,
    Status,
    SuccessRateFormat,
    slice_page,
)
from pytest_cekura.emulator.views import CANCELLED_MESSAGE, ERROR_MESSAGE, Views, runs_by_id

if TYPE_CHECKING:  # annotations only: the catalogue imports the fault rules, which need the state
    from pytest_cekura.emulator.catalogue import Catalogue, ScenarioEntry

# Names importers used before records.py and views.py were split out of this module.
__all__ = [
    "CANCELLED_MESSAGE",
    "ERROR_MESSAGE",
    "FIRST_RESULT_ID",
    "FIRST_RUN_ID",
    "Combination",
    "LivekitOverride",
    "NewResult",
    "RequestRecord",
    "ResultFilter",
    "ResultPage",
    "RunFilter",
    "ScenarioItem",
    "Status",
    "Store",
    "SuccessRateFormat",
    "slice_page",
]

FIRST_RESULT_ID = 5000
FIRST_RUN_ID = 90000
START_STATUSES = ("pending", "running", "completed", "failed")
CREATE_RESPONSE_KEYS = (
    "id",
    "name",
    "agent",
    "agent_inbound",
    "status",
    "success_rate",
    "run_as_text",
    "is_cronjob",
    "runs",
    "created_at",
)


class Store:
    """Thread-safe state of one emulator. Every public method takes the lock once."""

    def __init__(
        self,
        catalogue: Catalogue,
        *,
        time_scale: float,
        success_rate_format: SuccessRateFormat,
        clock: Callable[[], float],
    ) -> None:
        self._catalogue = catalogue
        self._time_scale = time_scale
        self._success_rate_format = success_rate_format
        self._clock = clock
        # Timestamps in responses are wall-clock; lifecycles use the (possibly fake) clock.
        self._wall_offset = datetime.now(UTC).timestamp() - clock()
        self._lock = threading.Lock()
        self._results: dict[int, ResultRecord] = {}
        self._runs: dict[int, RunRecord] = {}
        self._attempts: dict[int, int] = {}  # scenario id -> runs started so far
        self._requests: list[RequestRecord] = []
        self._never_finish: frozenset[int] = frozenset()  # scenario ids, from fault rules
        self._next_result_id = FIRST_RESULT_ID
        self._next_run_id = FIRST_RUN_ID
        self._views = Views(
            catalogue,
            self._results,
            self._runs,
            time_scale=time_scale,
            success_rate_format=success_rate_format,
            iso=self._iso,
            phase=self._phase,
        )

    # ----------------------------------------------------------------- commands

    def create_result(self, new: NewResult) -> dict[str, Any]:
        """Create a result and its runs; returns the short form a run-starting POST answers."""
        with self._lock:
            now = self._clock()
            result = self._new_result_record(new, now)
            for item in new.items:
                # The request's agent, else the scenario's own (Cekura's documented fallback).
                agent = new.agent or self._catalogue.scenario(item.scenario_id).agent
                for personality_id, profile_id in new.combinations:
                    for _ in range(new.frequency):
                        self._add_run(result, item, agent, personality_id, profile_id, now)
            if new.concurrency_limit is not None:
                self._schedule(result, new.concurrency_limit)
            self._results[result.result_id] = result
            view = self._views.result_view(result, now, detail=False)
        for stub in view["runs"]:
            # The spec's answer to a run-starting POST knows pending, running, completed and
            # failed only: a run waiting for a free line is "pending" there.
            if stub["status"] not in START_STATUSES:
                stub["status"] = "pending"
        return {key: view[key] for key in CREATE_RESPONSE_KEYS}

    def _add_run(
        self,
        result: ResultRecord,
        item: ScenarioItem,
        agent: int,
        personality_id: int | None,
        profile_id: int | None,
        now: float,
    ) -> None:
        attempt = self._attempts.get(item.scenario_id, 0)
        self._attempts[item.scenario_id] = attempt + 1
        run = RunRecord(
            run_id=self._next_run_id,
            result_id=result.result_id,
            item=item,
            agent=agent,
            personality_id=personality_id or DEFAULT_PERSONALITY_ID,
            profile_id=profile_id,
            created=now,
            attempt=attempt,
        )
        self._next_run_id += 1
        self._runs[run.run_id] = run
        result.run_ids.append(run.run_id)

    def _schedule(self, result: ResultRecord, limit: int) -> None:
        """Give each run of a new result the wait for a free line, in creation order.

        Computed once from the scenarios' durations (a ``hang`` call never frees its line);
        an ended call does not free its line early (a simplification: how Cekura refills
        lines is not documented).
        """
        free_at = [0.0] * limit  # clock offsets at which each line is free again
        for run_id in result.run_ids:
            run = self._runs[run_id]
            scenario = self._catalogue.scenario(run.scenario_id)
            line = min(range(limit), key=free_at.__getitem__)
            run.start_delay = free_at[line]
            length = math.inf if scenario.outcome == "hang" else scenario.duration_s
            free_at[line] = run.start_delay + length * self._time_scale

    def rerun(self, result_id: int, run_ids: Sequence[int] | None) -> dict[str, Any] | None:
        """Start a new result repeating some runs (all when ``run_ids`` is None) of a result.

        The spec's ``rerun`` takes no body and repeats every run (strict mode passes None);
        the lenient emulator still honours ``run_ids``. Raises ``KeyError`` naming a run that
        is not part of the result; None if the result is unknown.
        """
        with self._lock:
            original = self._results.get(result_id)
            if original is None:
                return None
            chosen = list(original.run_ids) if run_ids is None else list(run_ids)
            strangers = [run_id for run_id in chosen if run_id not in original.run_ids]
            if strangers:
                raise KeyError(strangers[0])
            now = self._clock()
            result = ResultRecord(
                result_id=self._next_result_id,
                name=f"{original.name} (rerun)",
                agent=original.agent,
                run_as_text=original.run_as_text,
                created=now,
                run_ids=[],
                settings=original.settings,
            )
            self._next_result_id += 1
            for run_id in chosen:
                old = self._runs[run_id]
                self._add_run(result, old.item, old.agent, old.personality_id, old.profile_id, now)
            if original.settings is not None and original.settings.concurrency_limit is not None:
                self._schedule(result, original.settings.concurrency_limit)
            self._results[result.result_id] = result
            view = runs_by_id(self._views.result_view(result, now, detail=False))
        return {key: view[key] for key in CREATE_RESPONSE_KEYS}

    def end_call(self, run_id: int) -> bool:
        """Cancel a non-terminal run; False if unknown. Terminal runs are left unchanged."""
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                return False
            self._cancel(run, self._clock())
            return True

    def end_calls(self, result_id: int) -> bool:
        """Cancel every non-terminal run of a result; False if the result is unknown."""
        with self._lock:
            result = self._results.get(result_id)
            if result is None:
                return False
            now = self._clock()
            for run_id in result.run_ids:
                self._cancel(self._runs[run_id], now)
            return True

    def set_never_finish(self, scenario_ids: frozenset[int]) -> None:
        """Keep the runs of these scenarios ``running`` (a ``never_finish`` fault); reads
        derive statuses from the clock, so switching this off lets overdue runs end at once."""
        with self._lock:
            self._never_finish = scenario_ids

    def log_request(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)

    def reset(self) -> None:
        """Forget results, runs and requests; ids keep counting so old ids never come back.

        Faults (``never_finish`` too) are configuration, like the catalogue, and stay."""
        with self._lock:
            self._results.clear()
            self._runs.clear()
            self._attempts.clear()
            self._requests.clear()
            self._views.forget()

    # ------------------------------------------------------------------ queries

    def result_detail(self, result_id: int) -> dict[str, Any] | None:
        with self._lock:
            result = self._results.get(result_id)
            if result is None:
                return None
            return self._views.result_view(result, self._clock(), detail=True)

    def list_results(self, where: ResultFilter, page: int, page_size: int) -> ResultPage | None:
        """Newest first, like the API's default ordering; None if ``page`` is out of range."""
        with self._lock:
            matching = [r for r in reversed(self._results.values()) if self._matches(r, where)]
            chosen = slice_page(matching, page, page_size)
            if chosen is None:
                return None
            now = self._clock()
            items = [runs_by_id(self._views.result_view(r, now, detail=False)) for r in chosen]
            return ResultPage(len(matching), items)

    def list_runs(self, where: RunFilter, page: int, page_size: int) -> ResultPage | None:
        """Runs matching ``where``, newest first; None if ``page`` is out of range.

        Statuses are derived from the clock, so the status and success filters look at every
        run's phase; that is a few milliseconds for 10,000 runs."""
        with self._lock:
            now = self._clock()
            matching: list[tuple[RunRecord, ScenarioEntry, Phase]] = []
            for run in reversed(self._runs.values()):
                scenario = self._catalogue.scenario(run.scenario_id)
                if not self._run_matches(run, where):
                    continue
                phase = self._phase(run, scenario, now)
                if where.statuses is not None and phase.status not in where.statuses:
                    continue
                if where.success is not None and (phase.verdict == "pass") is not where.success:
                    continue
                if where.success is False and phase.verdict is None:
                    continue  # success is null, not false, until the run has ended
                matching.append((run, scenario, phase))
            chosen_runs = slice_page(matching, page, page_size)
            if chosen_runs is None:
                return None
            return ResultPage(
                len(matching), [self._views.run_view_at(*found) for found in chosen_runs]
            )

    def _run_matches(self, run: RunRecord, where: RunFilter) -> bool:
        result = self._results[run.result_id]
        if where.created_from is not None or where.created_until is not None:
            # Only the time filters need the datetime (a bulk poll checks 10,000 runs).
            created = datetime.fromtimestamp(self._wall_offset + run.created, tz=UTC)
            if (where.created_from is not None and created < where.created_from) or (
                where.created_until is not None and created > where.created_until
            ):
                return False
        return not (
            (where.result_id is not None and run.result_id != where.result_id)
            or (where.scenario_ids is not None and run.scenario_id not in where.scenario_ids)
            or (where.agent_id is not None and result.agent != where.agent_id)
            or (where.run_agent_id is not None and run.agent != where.run_agent_id)
            or (where.run_ids is not None and run.run_id not in where.run_ids)
            or (
                where.project_id is not None
                and self._catalogue.agent(run.agent).project != where.project_id
            )
            or (where.run_as_text is not None and result.run_as_text is not where.run_as_text)
        )

    def runs(self, run_ids: Iterable[int], where: RunFilter | None = None) -> list[dict[str, Any]]:
        """Full run objects for the ids that exist (and match ``where``), in the order given."""
        with self._lock:
            now = self._clock()
            return [
                self._views.run_view(self._runs[i], now)
                for i in run_ids
                if i in self._runs and (where is None or self._run_matches(self._runs[i], where))
            ]

    def runs_json(self, run_ids: Iterable[int], where: RunFilter | None = None) -> bytes:
        """``runs`` as JSON text, made from each run's text as ``Views.run_json`` keeps it
        (a bulk answer at every poll)."""
        with self._lock:
            now = self._clock()
            texts = [
                self._views.run_json(self._runs[i], now)
                for i in run_ids
                if i in self._runs and (where is None or self._run_matches(self._runs[i], where))
            ]
        return b"[" + b", ".join(texts) + b"]"

    def run(self, run_id: int) -> dict[str, Any] | None:
        found = self.runs([run_id])
        return found[0] if found else None

    def debug_runs(self) -> list[dict[str, Any]]:
        """Every run with the LiveKit job/room metadata Cekura would dispatch it with."""
        with self._lock:
            now = self._clock()
            return [self._views.with_dispatch_metadata(run, now) for run in self._runs.values()]

    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    # ---------------------------------------------------------------- internals

    def _new_result_record(self, new: NewResult, now: float) -> ResultRecord:
        result_id = self._next_result_id
        self._next_result_id += 1
        # Cekura takes the agent from the scenarios when the request names none.
        agent = new.agent or self._catalogue.scenario(new.items[0].scenario_id).agent
        return ResultRecord(
            result_id=result_id,
            name=new.name if new.name is not None else f"Emulated result {result_id}",
            agent=agent,
            run_as_text=new.run_as_text,
            created=now,
            run_ids=[],
            settings=new,
        )

    def _cancel(self, run: RunRecord, now: float) -> None:
        phase = self._phase(run, self._catalogue.scenario(run.scenario_id), now)
        # A completed call whose evaluation is pending is over: nothing to end.
        if phase.verdict is None and phase.status != "completed":
            run.cancelled_at = now

    def _matches(self, result: ResultRecord, where: ResultFilter) -> bool:
        if where.agent_id is not None and result.agent != where.agent_id:
            return False
        if where.name is not None and result.name != where.name:
            return False
        if where.search is not None and where.search.lower() not in result.name.lower():
            return False
        if (
            where.project_id is not None
            and self._catalogue.agent(result.agent).project != where.project_id
        ):
            return False
        if where.scenario_ids is None:
            return True
        # Scanning the runs is fine: filtering by scenario is rare and results are small.
        return any(self._runs[i].scenario_id in where.scenario_ids for i in result.run_ids)

    def _phase(self, run: RunRecord, scenario: ScenarioEntry, now: float) -> Phase:
        return phase_at(run, scenario, now, self._time_scale, self._never_finish)

    def _iso(self, clock_time: float) -> str:
        moment = datetime.fromtimestamp(self._wall_offset + clock_time, tz=UTC)
        return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
