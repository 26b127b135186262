"""Turn the selected tests' markers into as few run-starting POSTs as the API allows.

Tests whose markers agree on everything that shapes the request (``GroupKey``) share one POST;
a scenario wanted by several tests in a group is requested once and its runs are shared.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .client import PROVIDERS, CekuraClient
from .errors import ApiError, AuthError, CekuraError, TransportError
from .markers import GroupKey, ScenarioSpec
from .models import Result, Run


@dataclass(frozen=True)
class Group:
    key: GroupKey
    scenario_ids: tuple[int, ...]
    name: str

    @property
    def run_count(self) -> int:
        """Calls this group starts (each costs credits)."""
        return len(self.scenario_ids) * self.key.frequency

    def describe(self) -> str:
        key = self.key
        agent = f"agent {key.agent}" if key.agent is not None else "each scenario's own agent"
        livekit_data = json.loads(key.livekit_data)
        extras = [
            f"test profile {key.test_profile}" if key.test_profile is not None else "",
            f"personality {key.personality}" if key.personality is not None else "",
            f"concurrency limit {key.concurrency_limit}"
            if key.concurrency_limit is not None
            else "",
            f"mocked tools {', '.join(key.mock_tool_names)}" if key.mock_tool_names else "",
            f"livekit_data {json.dumps(livekit_data, sort_keys=True)}" if livekit_data else "",
        ]
        options = "".join(f", {extra}" for extra in extras if extra)
        ids = ", ".join(str(i) for i in self.scenario_ids)
        return (
            f"{key.provider}, {agent}{options}: scenarios {ids} x {key.frequency} "
            f"= {self.run_count} call(s)"
        )


@dataclass(frozen=True)
class Submission:
    """What one group's POST produced: its result and runs, or why there are none."""

    group: Group
    result_id: int | None = None
    runs_by_scenario: Mapping[int, tuple[Run, ...]] = field(default_factory=dict)
    error: str | None = None
    #: Set when an earlier session's result was reused (--cekura-reuse): its age in seconds.
    reused_age: float | None = None
    #: Set by --cekura-rerun-failed: the earlier result whose successful runs were kept.
    earlier_result_id: int | None = None
    earlier_run_ids: frozenset[int] = frozenset()
    #: The POST failed in a way that leaves unknown whether runs were started.
    ambiguous: bool = False
    #: The POST failed ambiguously, and its result was then found by name and adopted.
    adopted: bool = False

    def runs_for(self, spec: ScenarioSpec) -> tuple[tuple[Run, ...], list[str]]:
        """The runs of ``spec``'s scenarios, and a problem line per scenario short of runs."""
        runs: list[Run] = []
        problems: list[str] = []
        for scenario_id in spec.scenario_ids:
            found = self.runs_by_scenario.get(scenario_id, ())
            if len(found) != spec.frequency:
                problems.append(
                    f"Cekura started {len(found)} run(s) for scenario {scenario_id}, "
                    f"expected {spec.frequency} (result {self.result_id})"
                )
            runs.extend(found)
        return tuple(runs), problems


def plan_groups(specs: Iterable[ScenarioSpec], session_id: str) -> list[Group]:
    """Group specs by request shape; scenario ids keep first-seen order and appear once."""
    by_key: dict[GroupKey, dict[int, None]] = {}
    for spec in specs:
        by_key.setdefault(spec.group_key, {}).update(dict.fromkeys(spec.scenario_ids))
    return [
        Group(key, tuple(ids), _group_name(session_id, index, key))
        for index, (key, ids) in enumerate(by_key.items(), start=1)
    ]


def _group_name(session_id: str, index: int, key: GroupKey) -> str:
    # Unique per session and group: the handle to find the result after an ambiguous failure.
    profile = f" profile {key.test_profile}" if key.test_profile is not None else ""
    return f"pytest-cekura {session_id} #{index} {key.provider} x{key.frequency}{profile}"


def request_body(group: Group) -> dict[str, Any]:
    """The documented body for the group's provider (cekura-api.md section 2)."""
    key = group.key
    provider = PROVIDERS[key.provider]
    body: dict[str, Any] = {"name": group.name}
    if provider.family == "objects":
        fields = key.scenario_fields
        # v1 room-URL runners take no frequency: each element is one run, so repeat it.
        repeat = 1 if provider.takes_frequency else key.frequency
        body["scenarios"] = [
            {"scenario": scenario_id, **fields}
            for scenario_id in group.scenario_ids
            for _ in range(repeat)
        ]
        if key.agent is not None:
            body["agent"] = key.agent  # LiveKit v2 calls it agent, not agent_id
    else:
        body["scenarios"] = list(group.scenario_ids)
        body["agent_id"] = key.agent
    if provider.takes_frequency:
        body["frequency"] = key.frequency
    single = provider.single_overrides
    if key.test_profile is not None:
        profile = key.test_profile
        body.update({"test_profile_id": profile} if single else {"test_profile_ids": [profile]})
    if key.personality is not None:
        person = key.personality
        body.update({"personality_id": person} if single else {"personality_ids": [person]})
    if key.concurrency_limit is not None:
        body["concurrency_limit"] = key.concurrency_limit
    if key.mock_tool_names:
        body["mock_tool_names"] = list(key.mock_tool_names)
    livekit_data = json.loads(key.livekit_data)
    if livekit_data:
        body["livekit_data"] = livekit_data
    body.update(key.request_fields)
    return body


def submit_group(
    client: CekuraClient,
    group: Group,
    *,
    result_agent: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Submission:
    """POST one group. ``AuthError`` propagates: it concerns the whole session, not a group.

    After an ambiguous failure (the POST may have started runs) the result is looked up by the
    group's unique name (``result_agent`` is the agent Cekura files it under) and adopted, so
    nothing is started twice.
    """
    outcome = _guarded(group, lambda: client.start_runs(group.key.provider, request_body(group)))
    if not isinstance(outcome, Submission):
        return Submission(group, result_id=outcome.id, runs_by_scenario=by_scenario(outcome.runs))
    if not outcome.ambiguous:
        return outcome
    agent = result_agent if result_agent is not None else _scenario_agent(client, group)
    found = find_by_name(client, group.name, agent, sleep)
    if found is None:
        return outcome
    return Submission(
        group, result_id=found.id, runs_by_scenario=by_scenario(found.runs), adopted=True
    )


def _scenario_agent(client: CekuraClient, group: Group) -> int | None:
    """The agent Cekura files the group's result under when the request names none: its
    first scenario's (the results list needs ``agent_id``; preflight may not have run)."""
    try:
        return client.get_scenario(group.scenario_ids[0]).agent
    except AuthError:
        raise
    except CekuraError:
        return None  # the look-up without an agent may still find it


#: Seconds to wait before each look-up of a result whose POST failed ambiguously: a server
#: that timed out on us may still be creating it.
LOOKUP_DELAYS = (0.0, 1.0, 2.0)


def find_by_name(
    client: CekuraClient,
    name: str,
    agent: int | None,
    sleep: Callable[[float], None] = time.sleep,
) -> Result | None:
    """The result this session created under ``name``, with its runs; None if not found."""
    for delay in LOOKUP_DELAYS:
        sleep(delay)
        try:
            matches = [r for r in client.find_results(name=name, agent_id=agent) if r.name == name]
            if matches:
                return client.get_result(matches[0].id)
        except AuthError:
            raise
        except CekuraError:
            continue  # the look-up is best effort; the caller reports the ambiguity
    return None


def rerun_failed(
    client: CekuraClient, group: Group, earlier: int, kept: Sequence[Run], failed: Sequence[int]
) -> Submission:
    """Ask Cekura to rerun the ``failed`` runs of result ``earlier``; keep the ``kept`` ones."""
    outcome = _guarded(group, lambda: client.rerun(earlier, failed))
    if isinstance(outcome, Submission):
        return outcome
    return Submission(
        group,
        result_id=outcome.id,
        runs_by_scenario=by_scenario([*kept, *outcome.runs]),
        earlier_result_id=earlier,
        earlier_run_ids=frozenset(run.id for run in kept),
    )


def _guarded(group: Group, post: Callable[[], Result]) -> Result | Submission:
    """Run a call-starting POST; turn its failure into a Submission saying what to do."""
    try:
        return post()
    except AuthError:
        raise
    except ApiError as exc:
        if exc.status_code >= 500:
            return _maybe_started(group, exc)
        return Submission(group, error=f"Cekura rejected the request; nothing was started: {exc}")
    except TransportError as exc:
        if not exc.may_have_reached_server:
            return Submission(group, error=f"could not reach Cekura; nothing was started: {exc}")
        return _maybe_started(group, exc)
    except CekuraError as exc:  # ProtocolError: 2xx we cannot read, so runs may exist
        return _maybe_started(group, exc)


def by_scenario(runs: Iterable[Run]) -> dict[int, tuple[Run, ...]]:
    found: dict[int, list[Run]] = {}
    for run in runs:
        if run.scenario is not None:
            found.setdefault(run.scenario, []).append(run)
    return {scenario_id: tuple(group) for scenario_id, group in found.items()}


def _maybe_started(group: Group, exc: Exception) -> Submission:
    error = (
        f"the request to start runs failed after it may have reached Cekura ({exc}). "
        "It was not re-sent, so you are not charged twice, and no result named "
        f"{group.name!r} could be found: look for it in Cekura's dashboard, where its runs "
        "may still be going."
    )
    return Submission(group, error=error, ambiguous=True)
