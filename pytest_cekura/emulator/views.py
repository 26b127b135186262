"""The JSON objects of runs and results, built from the store's records on every read.

``Views`` only reads: the store calls it under its own lock, with its records and its
lifecycle (``phase``), so a view is always consistent with one instant of the clock.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pytest_cekura.emulator import content
from pytest_cekura.emulator.content import personality_name
from pytest_cekura.emulator.records import (
    NewResult,
    Phase,
    ResultRecord,
    RunRecord,
    SuccessRateFormat,
    TerminalVerdict,
)
from pytest_cekura.emulator.wire import json_bytes

if TYPE_CHECKING:  # annotations only: the catalogue imports the fault rules, which need the state
    from pytest_cekura.emulator.catalogue import Catalogue, ScenarioEntry, TestProfileEntry

ERROR_MESSAGE = "Agent did not join the room within 30 s"
CANCELLED_MESSAGE = "Call ended by user"
RECORDING_URL = "https://recordings.emulator.invalid/runs/{run_id}.wav"
CALL_ID = "emulated-call-{run_id}"


class Views:
    """Renders runs and results as Cekura's API shows them."""

    def __init__(
        self,
        catalogue: Catalogue,
        results: dict[int, ResultRecord],
        runs: dict[int, RunRecord],
        *,
        time_scale: float,
        success_rate_format: SuccessRateFormat,
        iso: Callable[[float], str],
        phase: Callable[[RunRecord, ScenarioEntry, float], Phase],
    ) -> None:
        # The store's own dicts (it clears them, never replaces them), read under its lock.
        self._catalogue = catalogue
        self._results = results
        self._runs = runs
        self._time_scale = time_scale
        self._success_rate_format = success_rate_format
        # Memoised: every run of a POST shares its creation time and a run's start time is
        # shown at every poll; formatting them was half the cost of a run still going.
        self._iso = _memo(iso)
        self._phase = phase
        #: Agent names by id: the catalogue's agents never change once loaded.
        self._agent_names: dict[int, str] = {}
        #: Each run's JSON text, with the record and phase it was made from (``run_json``).
        self._texts: dict[int, tuple[RunRecord, Phase, bytes]] = {}

    def run_json(self, run: RunRecord, now: float) -> bytes:
        """``run_view`` as JSON text (``json_bytes``), kept until the run's
        phase changes (a finished run's is not kept): a poller asks for every run still
        going at every interval, and a run changes a few times in its life (its view
        depends only on its record, which changes only through its phase, and on its result
        and catalogue entries, which never change)."""
        scenario = self._catalogue.scenario(run.scenario_id)
        phase = self._phase(run, scenario, now)
        kept = self._texts.get(run.run_id)
        if kept is not None and kept[0] is run and kept[1] == phase:
            return kept[2]
        text = json_bytes(self.run_view_at(run, scenario, phase))
        if phase.verdict is not None:
            # Final: a poller asks for it once, so its text (transcript and all) is not kept.
            self._texts.pop(run.run_id, None)
        else:
            self._texts[run.run_id] = (run, phase, text)
        return text

    def forget(self) -> None:
        """Drop the kept texts (the store forgot its runs)."""
        self._texts.clear()

    def run_view(self, run: RunRecord, now: float) -> dict[str, Any]:
        scenario = self._catalogue.scenario(run.scenario_id)
        return self.run_view_at(run, scenario, self._phase(run, scenario, now))

    def run_view_at(self, run: RunRecord, scenario: ScenarioEntry, phase: Phase) -> dict[str, Any]:
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
            "agent_name": self._agent_name(run.agent),
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
        run: RunRecord,
        scenario: ScenarioEntry,
        profile: TestProfileEntry | None,
        phase: Phase,
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

    def _agent_name(self, agent_id: int) -> str:
        name = self._agent_names.get(agent_id)
        if name is None:
            name = self._agent_names[agent_id] = self._catalogue.agent(agent_id).name
        return name

    def _emulated_seconds_talked(self, phase: Phase) -> float:
        if phase.started_at is None or phase.ended_at is None or self._time_scale <= 0:
            return 0.0
        return (phase.ended_at - phase.started_at) / self._time_scale

    def _profile(self, run: RunRecord) -> TestProfileEntry | None:
        if run.profile_id is None:
            return None
        return self._catalogue.test_profile(run.profile_id)

    def result_view(self, result: ResultRecord, now: float, *, detail: bool) -> dict[str, Any]:
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
                {str(r.run_id): self.run_view_at(r, s, p) for r, s, p in triples}
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

    def _run_stub(self, run: RunRecord, scenario: ScenarioEntry, phase: Phase) -> dict[str, Any]:
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

    def with_dispatch_metadata(self, run: RunRecord, now: float) -> dict[str, Any]:
        view = self.run_view(run, now)
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
            **self._line_held(run),
        }
        if "publish_data_message" in run.item.extras:
            # A copy: callers of Emulator.runs must not be able to edit the stored request.
            message = run.item.extras["publish_data_message"]
            dispatch["publish_data_message"] = copy.deepcopy(message)
        return {**view, **dispatch}

    def _line_held(self, run: RunRecord) -> dict[str, str | None]:
        """When the call took one of the request's lines (``concurrency_limit``) and when it
        freed it (None: a ``hang`` call never does), so tests can count the calls at once.
        As the schedule does, an ended call keeps its line until its duration is over."""
        scenario = self._catalogue.scenario(run.scenario_id)
        taken = run.created + run.start_delay
        freed = (
            None if scenario.outcome == "hang" else taken + scenario.duration_s * self._time_scale
        )
        return {
            "line_held_from": self._iso(taken),
            "line_held_until": None if freed is None else self._iso(freed),
        }


#: Timestamps a ``_memo`` keeps before it starts over (a few MB at most).
_MEMO_LIMIT = 100_000


def _memo(iso: Callable[[float], str]) -> Callable[[float], str]:
    """``iso`` with its answers kept (called under the store's lock, so one thread at a time)."""
    cache: dict[float, str] = {}

    def memo(moment: float) -> str:
        found = cache.get(moment)
        if found is None:
            if len(cache) >= _MEMO_LIMIT:
                cache.clear()
            found = cache[moment] = iso(moment)
        return found

    return memo


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


def _result_status(phases: list[Phase]) -> str:
    if all(p.status in ("pending", "in_queue") for p in phases):
        return "pending"
    # A completed call still being evaluated counts as "evaluating", not "in progress".
    if any(p.verdict is None and p.status not in ("evaluating", "completed") for p in phases):
        return "in_progress"
    if any(p.status in ("evaluating", "completed") and p.verdict is None for p in phases):
        return "evaluating"  # every call is over; scores are still being computed
    return "failed" if all(p.status == "failed" for p in phases) else "completed"


def runs_by_id(view: dict[str, Any]) -> dict[str, Any]:
    """The spec's ``Result`` (results list, rerun) types ``runs`` as an object: key the run
    stubs by id, as the detail view keys full runs."""
    return {**view, "runs": {str(stub["id"]): stub for stub in view["runs"]}}


def _failed_reasons(triples: list[tuple[RunRecord, ScenarioEntry, Phase]]) -> list[str]:
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
