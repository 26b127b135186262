"""The emulator's in-memory state: results, runs and the request log, behind one lock.

Lifecycles are derived from the clock whenever a run is read instead of being advanced by
background threads: a run stores only what it was created with (scenario, profile, result,
creation time) plus a cancellation time, and its status, transcript and scores are rebuilt on
demand. That keeps 10,000 runs cheap, makes a fake clock enough to step tests
deterministically, and means there is nothing to stop or join.

Run lifecycle (``real seconds = emulated seconds * time_scale``): ``pending`` until 10 % of the
scenario's duration has passed, then ``running``, then terminal at the full duration:
``completed`` (pass/fail), ``failed`` (error). ``hang`` runs stay ``running``, and so do the
runs of scenarios a ``never_finish`` fault names, for as long as it is installed (it can be
switched off mid-session, and the runs then end as their clocks say); an ended call becomes
``cancelled``. Error and cancelled runs carry ``expected_outcome: null`` and no metrics,
as nothing was evaluated.

Result counts: ``completed_runs_count`` counts terminal runs, ``success_runs_count`` runs with
``success: true`` and ``failed_runs_count`` terminal runs with ``success: false``.

``debug_runs`` adds what Cekura would hand a LiveKit agent for each run (cekura-api.md 8.2):
``job_metadata`` and ``room_metadata`` as the JSON strings ``ctx.job.metadata`` and
``ctx.room.metadata`` carry, the dispatch name, and the element's ``publish_data_message``.
"""

from __future__ import annotations

import copy
import json
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pytest_cekura.emulator import content
from pytest_cekura.emulator.content import DEFAULT_PERSONALITY_ID, personality_name

if TYPE_CHECKING:  # annotations only: the catalogue imports the fault rules, which need the state
    from pytest_cekura.emulator.catalogue import Catalogue, ScenarioEntry, TestProfileEntry

SuccessRateFormat = Literal["percent", "fraction"]
Status = Literal[
    "pending", "in_queue", "scaling_up", "running", "evaluating", "completed", "failed", "cancelled"
]
TerminalVerdict = Literal["pass", "fail", "error", "cancelled"]

FIRST_RESULT_ID = 5000
FIRST_RUN_ID = 90000
# A call's life as fractions of its duration: created "pending", then "in_queue" waiting for a
# line, "running" while the caller and agent talk, "evaluating" while Cekura scores the call.
QUEUED_AFTER = 0.05
RUNNING_AFTER = 0.1  # fraction of the call's duration before it connects (room setup, dialling)
EVALUATING_AFTER = 0.9
ERROR_MESSAGE = "Agent did not join the room within 30 s"
CANCELLED_MESSAGE = "Call ended by user"
RECORDING_URL = "https://recordings.emulator.invalid/runs/{run_id}.wav"
CALL_ID = "emulated-call-{run_id}"
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


@dataclass(frozen=True)
class RequestRecord:
    """One request to a Cekura path as the emulator saw it (``path`` excludes the query).

    ``status`` is what the client received: 0 when the connection was dropped without an
    answer. ``fault`` names the injected fault that shaped the answer (``"error_after:500"``),
    None for an ordinary one.
    """

    method: str
    path: str
    query: dict[str, str]
    status: int
    fault: str | None = None
    #: The JSON body of a POST as sent (None without one, or when it is not JSON), so tests
    #: can check the exact request shape the client sent.
    body: Any = None


@dataclass(frozen=True)
class ScenarioItem:
    """One element of a request's ``scenarios``; ``extras`` are its other fields as sent."""

    scenario_id: int
    extras: Mapping[str, Any] = field(default_factory=dict, hash=False)


#: (personality id, test profile id) given to a run; None = the scenario's default.
Combination = tuple[int | None, int | None]


@dataclass(frozen=True)
class LivekitOverride:
    """A request's ``livekit_data`` (spec ``LivekitRunDataOverride``), as sent.

    ``agent_name`` is the dispatch name for this request's calls; ``config``, when given
    (``has_config``), replaces the agent's saved LiveKit Config (no merge) as room metadata.
    """

    agent_name: str | None = None
    url: str | None = None
    config: Any = None
    has_config: bool = False

    def as_api_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"agent_name": self.agent_name, "url": self.url}
        if self.has_config:
            found["config"] = copy.deepcopy(self.config)
        return found


@dataclass(frozen=True)
class NewResult:
    """A validated run-starting request.

    Runs are created in this order: for each item, for each combination, ``frequency`` runs.
    """

    items: Sequence[ScenarioItem]
    frequency: int = 1
    name: str | None = None
    agent: int | None = None  # None: each run takes its scenario's own agent
    combinations: Sequence[Combination] = ((None, None),)
    run_as_text: bool = False
    #: At most this many of the request's calls are connected at once; the rest wait
    #: ``in_queue`` for a free line.
    concurrency_limit: int | None = None
    mock_tool_names: Sequence[str] = ()
    livekit_data: LivekitOverride | None = None


@dataclass(frozen=True)
class ResultFilter:
    agent_id: int | None = None
    name: str | None = None
    scenario_ids: frozenset[int] | None = None
    search: str | None = None  # case-insensitive substring of the name
    project_id: int | None = None


@dataclass(frozen=True)
class RunFilter:
    """The filters of ``GET runs-external/`` (cekura-api.md 6); None = not filtered."""

    result_id: int | None = None
    statuses: frozenset[str] | None = None  # status and status__in
    success: bool | None = None
    scenario_ids: frozenset[int] | None = None
    created_from: datetime | None = None  # timestamp__gte
    created_until: datetime | None = None  # timestamp__lte
    agent_id: int | None = None  # result__agent_id: the result's agent
    run_agent_id: int | None = None  # agent_id (v2): the run's own agent
    run_as_text: bool | None = None  # result__run_as_text
    run_ids: frozenset[int] | None = None  # id__in
    project_id: int | None = None


@dataclass(frozen=True)
class ResultPage:
    count: int
    items: list[dict[str, Any]]


_T = TypeVar("_T")


def slice_page(items: Sequence[_T], page: int, size: int) -> Sequence[_T] | None:
    """Page ``page`` (from 1) of ``size`` items; None past the last page (DRF's 404). An
    empty list still has page 1, which is empty."""
    last_page = max(1, -(-len(items) // size))
    if page > last_page:
        return None
    return items[(page - 1) * size : page * size]


@dataclass(slots=True)
class _RunRecord:
    run_id: int
    result_id: int
    item: ScenarioItem
    agent: int
    personality_id: int
    profile_id: int | None
    created: float
    #: How many runs of this scenario the emulator started before this one. Flaky outcomes
    #: hash this rather than the run id, so a scenario's first N calls play the same way in
    #: every session, whatever else the session runs.
    attempt: int = 0
    cancelled_at: float | None = None
    #: Clock seconds the run waits for a free line (the request's ``concurrency_limit``).
    start_delay: float = 0.0

    @property
    def scenario_id(self) -> int:
        return self.item.scenario_id


@dataclass(slots=True)
class _ResultRecord:
    result_id: int
    name: str
    agent: int
    run_as_text: bool
    created: float
    run_ids: list[int]
    #: The request's run settings, shown as ``run_settings`` on the result detail.
    settings: NewResult | None = None


@dataclass(frozen=True, slots=True)
class _Phase:
    status: Status
    started_at: float | None  # clock time the call connected ("running")
    ended_at: float | None  # clock time it became terminal
    verdict: TerminalVerdict | None  # None while non-terminal (and while evaluation is pending)

    @property
    def last_change(self) -> float | None:
        return self.ended_at if self.ended_at is not None else self.started_at


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
        self._results: dict[int, _ResultRecord] = {}
        self._runs: dict[int, _RunRecord] = {}
        self._attempts: dict[int, int] = {}  # scenario id -> runs started so far
        self._requests: list[RequestRecord] = []
        self._never_finish: frozenset[int] = frozenset()  # scenario ids, from fault rules
        self._next_result_id = FIRST_RESULT_ID
        self._next_run_id = FIRST_RUN_ID

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
            view = self._result_view(result, now, detail=False)
        for stub in view["runs"]:
            # The spec's answer to a run-starting POST knows pending, running, completed and
            # failed only: a run waiting for a free line is "pending" there.
            if stub["status"] not in START_STATUSES:
                stub["status"] = "pending"
        return {key: view[key] for key in CREATE_RESPONSE_KEYS}

    def _add_run(
        self,
        result: _ResultRecord,
        item: ScenarioItem,
        agent: int,
        personality_id: int | None,
        profile_id: int | None,
        now: float,
    ) -> None:
        attempt = self._attempts.get(item.scenario_id, 0)
        self._attempts[item.scenario_id] = attempt + 1
        run = _RunRecord(
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

    def _schedule(self, result: _ResultRecord, limit: int) -> None:
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
            result = _ResultRecord(
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
            view = _runs_by_id(self._result_view(result, now, detail=False))
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

    # ------------------------------------------------------------------ queries

    def result_detail(self, result_id: int) -> dict[str, Any] | None:
        with self._lock:
            result = self._results.get(result_id)
            if result is None:
                return None
            return self._result_view(result, self._clock(), detail=True)

    def list_results(self, where: ResultFilter, page: int, page_size: int) -> ResultPage | None:
        """Newest first, like the API's default ordering; None if ``page`` is out of range."""
        with self._lock:
            matching = [r for r in reversed(self._results.values()) if self._matches(r, where)]
            chosen = slice_page(matching, page, page_size)
            if chosen is None:
                return None
            now = self._clock()
            items = [_runs_by_id(self._result_view(r, now, detail=False)) for r in chosen]
            return ResultPage(len(matching), items)

    def list_runs(self, where: RunFilter, page: int, page_size: int) -> ResultPage | None:
        """Runs matching ``where``, newest first; None if ``page`` is out of range.

        Statuses are derived from the clock, so the status and success filters look at every
        run's phase; that is a few milliseconds for 10,000 runs."""
        with self._lock:
            now = self._clock()
            matching: list[tuple[_RunRecord, ScenarioEntry, _Phase]] = []
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
            return ResultPage(len(matching), [self._run_view_at(*found) for found in chosen_runs])

    def _run_matches(self, run: _RunRecord, where: RunFilter) -> bool:
        result = self._results[run.result_id]
        created = datetime.fromtimestamp(self._wall_offset + run.created, tz=UTC)
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
            or (where.created_from is not None and created < where.created_from)
            or (where.created_until is not None and created > where.created_until)
        )

    def runs(self, run_ids: Iterable[int], where: RunFilter | None = None) -> list[dict[str, Any]]:
        """Full run objects for the ids that exist (and match ``where``), in the order given."""
        with self._lock:
            now = self._clock()
            return [
                self._run_view(self._runs[i], now)
                for i in run_ids
                if i in self._runs and (where is None or self._run_matches(self._runs[i], where))
            ]

    def run(self, run_id: int) -> dict[str, Any] | None:
        found = self.runs([run_id])
        return found[0] if found else None

    def debug_runs(self) -> list[dict[str, Any]]:
        """Every run with the LiveKit job/room metadata Cekura would dispatch it with."""
        with self._lock:
            now = self._clock()
            return [self._with_dispatch_metadata(run, now) for run in self._runs.values()]

    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    # ---------------------------------------------------------------- internals

    def _new_result_record(self, new: NewResult, now: float) -> _ResultRecord:
        result_id = self._next_result_id
        self._next_result_id += 1
        # Cekura takes the agent from the scenarios when the request names none.
        agent = new.agent or self._catalogue.scenario(new.items[0].scenario_id).agent
        return _ResultRecord(
            result_id=result_id,
            name=new.name if new.name is not None else f"Emulated result {result_id}",
            agent=agent,
            run_as_text=new.run_as_text,
            created=now,
            run_ids=[],
            settings=new,
        )

    def _cancel(self, run: _RunRecord, now: float) -> None:
        phase = self._phase(run, self._catalogue.scenario(run.scenario_id), now)
        # A completed call whose evaluation is pending is over: nothing to end.
        if phase.verdict is None and phase.status != "completed":
            run.cancelled_at = now

    def _matches(self, result: _ResultRecord, where: ResultFilter) -> bool:
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

    def _phase(self, run: _RunRecord, scenario: ScenarioEntry, now: float) -> _Phase:
        duration = scenario.duration_s * self._time_scale
        begin = run.created + run.start_delay  # when a line was free for this call
        start = begin + RUNNING_AFTER * duration
        end = begin + duration
        if run.cancelled_at is not None:
            started = start if run.cancelled_at >= start else None
            return _Phase("cancelled", started, run.cancelled_at, "cancelled")
        if now < start:
            queued = run.start_delay > 0 or now >= begin + QUEUED_AFTER * duration
            return _Phase("in_queue" if queued else "pending", None, None, None)
        if scenario.outcome == "hang" or scenario.id in self._never_finish:
            return _Phase("running", start, None, None)
        if now < begin + EVALUATING_AFTER * duration:
            return _Phase("running", start, None, None)
        if now < end:
            return _Phase("evaluating", start, None, None)
        verdict = self._verdict(run, scenario)
        if verdict == "error":
            return _Phase("failed", start, end, verdict)
        if now < end + scenario.evaluation_delay_s * self._time_scale:
            # Cekura's own suite runner reads a completed run with success null as
            # "evaluation still pending" (cekura-api.md 10.1).
            return _Phase("completed", start, None, None)
        return _Phase("completed", start, end, verdict)

    @staticmethod
    def _verdict(run: _RunRecord, scenario: ScenarioEntry) -> TerminalVerdict:
        if scenario.outcome == "flaky":
            probability = scenario.success_probability or 0.0
            passed = content.flaky_passes(scenario.id, run.attempt, probability)
            return "pass" if passed else "fail"
        if scenario.outcome in ("pass", "fail", "error"):
            return scenario.outcome
        raise AssertionError(f"outcome {scenario.outcome!r} has no verdict")

    def _iso(self, clock_time: float) -> str:
        moment = datetime.fromtimestamp(self._wall_offset + clock_time, tz=UTC)
        return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")

    # ------------------------------------------------------------------- views

    def _run_view(self, run: _RunRecord, now: float) -> dict[str, Any]:
        scenario = self._catalogue.scenario(run.scenario_id)
        return self._run_view_at(run, scenario, self._phase(run, scenario, now))

    def _run_view_at(
        self, run: _RunRecord, scenario: ScenarioEntry, phase: _Phase
    ) -> dict[str, Any]:
        result = self._results[run.result_id]
        profile = self._profile(run)
        settings = result.settings
        view: dict[str, Any] = {
            "id": run.run_id,
            "result_id": result.result_id,
            "result_name": result.name,
            "scenario": scenario.id,
            "scenario_name": scenario.name,
            "scenario_type": "instruction",
            "agent": run.agent,
            "agent_name": self._catalogue.agent(run.agent).name,
            "agent_number": None,
            "run_type": None,
            "personality": run.personality_id,
            "personality_name": personality_name(run.personality_id),
            "status": phase.status,
            "success": None,
            "scenario_instructions": content.scenario_instructions(scenario),
            "expected_outcome_prompt": content.expected_outcome_prompt(scenario),
            "expected_outcome": None,
            # The spec's Evaluation object (metrics required) even before scoring: empty.
            "evaluation": {"metrics": []},
            "transcript": "",
            "transcript_object": [],
            # Strings in the spec (not nullable): empty until the call has them.
            "duration": "",
            "voice_recording_url": "",
            # The provider's call id: data, not an id of any endpoint, and deliberately not
            # a number, so a client that takes it for the run id fails here, not on Cekura.
            "call_id": CALL_ID.format(run_id=run.run_id) if phase.started_at is not None else "",
            "provider_call_id": "",
            "number": None,
            # Strings in the spec's Run (not nullable): empty, as no phone line is involved.
            "inbound_number": "",
            "outbound_number": "",
            "error_message": "",
            "feedback": "",
            "is_reviewed": False,
            "critical_categories": [],
            "run_as_text": result.run_as_text,
            "test_profile_data": profile.as_api_dict() if profile is not None else None,
            "trace_id": "",
            "metadata": {},
            "mocked_tool_names": list(settings.mock_tool_names) if settings is not None else [],
            "generated_mock_tool_entries": [],
            "testing_channel_index": None,
            "timestamp": self._iso(run.created),
            "executed_at": self._iso(phase.started_at) if phase.started_at is not None else None,
        }
        if phase.verdict is not None:
            self._fill_terminal(view, run, scenario, profile, phase)
        return view

    def _fill_terminal(
        self,
        view: dict[str, Any],
        run: _RunRecord,
        scenario: ScenarioEntry,
        profile: TestProfileEntry | None,
        phase: _Phase,
    ) -> None:
        view["success"] = phase.verdict == "pass"
        view["evaluation"] = {"metrics": []}
        if phase.verdict in ("pass", "fail"):
            view["evaluation_status"] = "success" if phase.verdict == "pass" else "failure"
        if phase.verdict == "error":
            view.update(duration="00:00", error_message=ERROR_MESSAGE)
            return
        if phase.verdict == "cancelled":
            talked = self._emulated_seconds_talked(phase)
            lines = content.transcript_object(scenario, run.run_id, profile, "pass")
            lines = [line for line in lines if line["timestamp"] <= talked]
            view.update(
                duration=content.format_duration(talked),
                error_message=CANCELLED_MESSAGE,
                transcript=content.transcript_text(lines),
                transcript_object=lines,
            )
            return
        verdict: content.Verdict = "pass" if phase.verdict == "pass" else "fail"
        lines = content.transcript_object(scenario, run.run_id, profile, verdict)
        view.update(
            duration=content.format_duration(scenario.duration_s),
            transcript=content.transcript_text(lines),
            transcript_object=lines,
            voice_recording_url=RECORDING_URL.format(run_id=run.run_id),
            expected_outcome=content.expected_outcome(scenario, verdict),
            evaluation={"metrics": content.metrics(scenario, run.run_id, verdict)},
        )

    def _emulated_seconds_talked(self, phase: _Phase) -> float:
        if phase.started_at is None or phase.ended_at is None or self._time_scale <= 0:
            return 0.0
        return (phase.ended_at - phase.started_at) / self._time_scale

    def _profile(self, run: _RunRecord) -> TestProfileEntry | None:
        if run.profile_id is None:
            return None
        return self._catalogue.test_profile(run.profile_id)

    def _result_view(self, result: _ResultRecord, now: float, *, detail: bool) -> dict[str, Any]:
        runs = [self._runs[run_id] for run_id in result.run_ids]
        scenarios = [self._catalogue.scenario(run.scenario_id) for run in runs]
        phases = [self._phase(r, s, now) for r, s in zip(runs, scenarios, strict=True)]
        verdicts = [p.verdict for p in phases]
        successes = verdicts.count("pass")
        terminal = len(verdicts) - verdicts.count(None)
        changes = [p.last_change for p in phases if p.last_change is not None]
        triples = list(zip(runs, scenarios, phases, strict=True))
        view: dict[str, Any] = {
            "id": result.result_id,
            "name": result.name,
            "agent": result.agent,
            "agent_name": self._catalogue.agent(result.agent).name,
            "agent_inbound": False,
            "run_type": None,
            "status": _result_status(phases),
            "success_rate": self._success_rate(successes, len(runs)),
            "run_as_text": result.run_as_text,
            "is_cronjob": False,
            # Full run objects only in the detail view: building transcripts for every run of
            # every listed result would make list pages and large POST answers slow.
            "runs": (
                {str(r.run_id): self._run_view_at(r, s, p) for r, s, p in triples}
                if detail
                else [self._run_stub(r, s, p) for r, s, p in triples]
            ),
            "met_expected_outcome_count": successes,
            "total_expected_outcome_count": successes + verdicts.count("fail"),
            "total_runs_count": len(runs),
            "completed_runs_count": terminal,
            "success_runs_count": successes,
            "failed_runs_count": terminal - successes,
            "scenarios": {str(s.id): {"id": s.id, "name": s.name} for s in scenarios},
            "overall_evaluation": None,
            "failed_reasons": _failed_reasons(triples) or None,
            "created_at": self._iso(result.created),
            "updated_at": self._iso(max([result.created, *changes])),
        }
        if detail:
            # ResultDetailV2 (the spec's example): scenarios as a list, the request's settings;
            # agent_inbound is a field of the list's Result only.
            unique = {s.id: s for s in scenarios}
            view["scenarios"] = [{"id": s.id, "name": s.name} for s in unique.values()]
            view["run_settings"] = _run_settings(result.settings)
            del view["agent_inbound"]
        else:
            # The spec's Result (list, create, rerun) has no evaluation summary.
            del view["overall_evaluation"], view["failed_reasons"]
        return view

    def _run_stub(self, run: _RunRecord, scenario: ScenarioEntry, phase: _Phase) -> dict[str, Any]:
        profile = self._profile(run)
        return {
            "id": run.run_id,
            "status": phase.status,
            "scenario": scenario.id,
            "number": None,
            "inbound_number": None,
            "outbound_dial_window_opens_at": None,
            "outbound_dial_window_closes_at": None,
            "outbound_dial_window_seconds": None,
            "scenario_name": scenario.name,
            "test_profile_data": profile.as_api_dict() if profile is not None else None,
        }

    def _success_rate(self, successes: int, total: int) -> float:
        fraction = successes / total if total else 0.0
        scale = 100.0 if self._success_rate_format == "percent" else 1.0
        return round(fraction * scale, 2)

    def _with_dispatch_metadata(self, run: _RunRecord, now: float) -> dict[str, Any]:
        view = self._run_view(run, now)
        job: dict[str, Any] = {"scenario_id": run.scenario_id, "run_id": run.run_id}
        if view["test_profile_data"] is not None:
            job["test_profile_data"] = view["test_profile_data"]
        agent = self._catalogue.agent(run.agent)
        settings = self._results[run.result_id].settings
        override = settings.livekit_data if settings is not None else None
        room: Any = dict(agent.livekit_config)
        dispatch_name = agent.livekit_agent_name
        url = agent.livekit_url
        if override is not None:
            # livekit_data.config replaces the saved LiveKit Config, no merge (section 10.2).
            room = override.config if override.has_config else room
            dispatch_name = override.agent_name or dispatch_name
            url = override.url or url
        dispatch: dict[str, Any] = {
            # Strings, not objects: LiveKit hands agents ctx.job.metadata and
            # ctx.room.metadata as JSON text, and agents must json.loads them.
            "job_metadata": json.dumps(job),
            "room_metadata": json.dumps(room),
            "livekit_agent_name": dispatch_name,
            "livekit_url": url,
            "concurrency_limit": settings.concurrency_limit if settings is not None else None,
        }
        if "publish_data_message" in run.item.extras:
            # A copy: callers of Emulator.runs must not be able to edit the stored request.
            message = run.item.extras["publish_data_message"]
            dispatch["publish_data_message"] = copy.deepcopy(message)
        return {**view, **dispatch}


def _run_settings(settings: NewResult | None) -> dict[str, Any] | None:
    """The request's settings as the spec's result example shows ``run_settings``."""
    if settings is None:
        return None
    personalities = sorted({p for p, _ in settings.combinations if p is not None})
    profiles = sorted({t for _, t in settings.combinations if t is not None})
    found: dict[str, Any] = {
        "frequency": settings.frequency,
        "concurrency_limit": settings.concurrency_limit,
        "personality_ids": personalities,
        "test_profile_ids": profiles,
        "mock_tool_names": list(settings.mock_tool_names),
    }
    if settings.livekit_data is not None:
        found["livekit_data"] = settings.livekit_data.as_api_dict()
    return found


def _result_status(phases: list[_Phase]) -> str:
    if all(p.status in ("pending", "in_queue") for p in phases):
        return "pending"
    # A completed call still being evaluated counts as "evaluating", not "in progress".
    if any(p.verdict is None and p.status not in ("evaluating", "completed") for p in phases):
        return "in_progress"
    if any(p.status in ("evaluating", "completed") and p.verdict is None for p in phases):
        return "evaluating"  # every call is over; scores are still being computed
    return "failed" if all(p.status == "failed" for p in phases) else "completed"


def _runs_by_id(view: dict[str, Any]) -> dict[str, Any]:
    """The spec's ``Result`` (results list, rerun) types ``runs`` as an object: key the run
    stubs by id, as the detail view keys full runs."""
    return {**view, "runs": {str(stub["id"]): stub for stub in view["runs"]}}


def _failed_reasons(triples: list[tuple[_RunRecord, ScenarioEntry, _Phase]]) -> list[str]:
    return [
        f"Run {run.run_id} ({scenario.name}): {reason}"
        for run, scenario, phase in triples
        if (reason := _failure_reason(scenario, phase.verdict)) is not None
    ]


def _failure_reason(scenario: ScenarioEntry, verdict: TerminalVerdict | None) -> str | None:
    if verdict == "fail":
        explanation: list[str] = content.expected_outcome(scenario, "fail")["explanation"]
        return explanation[0]
    if verdict == "error":
        return ERROR_MESSAGE
    if verdict == "cancelled":
        return CANCELLED_MESSAGE
    return None
