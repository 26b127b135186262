"""Turn the selected tests' markers into as few run-starting POSTs as the API allows.

Tests whose markers agree on everything that shapes the request (``GroupKey``) share one POST;
a scenario wanted by several tests in a group is requested once and its runs are shared.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .cleanup import Ledger
from .client import PROVIDERS, CekuraClient
from .errors import ApiError, AuthError, CekuraError, RateLimitedError, TransportError
from .hookspec import HookError, ModifyRequest
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
    #: The POST could not connect at all (nothing was sent): why, for a session-level stop.
    unreachable: str | None = None

    def runs_for(self, spec: ScenarioSpec) -> tuple[tuple[Run, ...], list[str]]:
        """The runs of ``spec``'s scenarios, and a problem line per scenario short of runs."""
        runs: list[Run] = []
        problems: list[str] = []
        for scenario_id in spec.scenario_ids:
            found = self.runs_by_scenario.get(scenario_id, ())
            if len(found) != spec.frequency:
                problems.append(
                    f"Cekura listed {len(found)} run(s) for scenario {scenario_id}, "
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
    # An endpoint without ``name`` would drop it: the result could not be found by it anyway.
    body: dict[str, Any] = {"name": group.name} if provider.takes_name else {}
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
    ledger: Ledger | None = None,
    deadline: float | None = None,
    modify: ModifyRequest | None = None,
) -> Submission:
    """POST one group. ``AuthError`` propagates: it concerns the whole session, not a group.

    After an ambiguous failure (the POST may have started runs) the result is looked up by the
    group's unique name (``result_agent`` is the agent Cekura files it under) and adopted, so
    nothing is started twice. ``ledger`` learns of the result the moment Cekura answers (and
    of the name while the answer is unknown), so the session can end its calls whatever
    happens next; ``deadline`` bounds waiting on a 429's ``Retry-After``. ``modify`` (the
    ``pytest_cekura_modify_request`` hook) adjusts the body just before it is sent.
    """
    try:
        body = request_body(group)
        if modify is not None:
            modify(group.key.provider, body)
        # Checked before anything is sent: a body that cannot be JSON starts nothing.
        json.dumps(body, allow_nan=False)
    except HookError as exc:
        return Submission(group, error=f"{exc}. Nothing was started.")
    except (TypeError, ValueError) as exc:
        return Submission(group, error=f"{UNSENDABLE}: {exc}. Nothing was started.")
    return post_resolved(
        client,
        group,
        lambda: client.start_runs(group.key.provider, body, deadline=deadline),
        result_agent=result_agent,
        sleep=sleep,
        ledger=ledger,
    )


#: The error of a group whose request body cannot be sent (e.g. NaN in ``request_fields``).
UNSENDABLE = (
    "the request to start this group's runs cannot be sent as JSON (check the marker's "
    "request_fields and scenario_fields)"
)


def post_resolved(
    client: CekuraClient,
    group: Group,
    post: Callable[[], Result],
    *,
    result_agent: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    ledger: Ledger | None = None,
) -> Submission:
    """Send a call-starting ``post`` whose body carries ``group.name``; after an ambiguous
    failure, look the result up by that name and adopt it. Every run-starting POST of a named
    group goes through here, so each is tracked in ``ledger`` and resolved the same way."""
    if ledger is not None:
        ledger.posting(group.name, result_agent)
    outcome = _guarded(group, post)
    if ledger is not None:
        ledger.answered(group.name)
    if not isinstance(outcome, Submission):
        if ledger is not None:
            ledger.created(outcome, name=group.name)
        runs = reconciled_runs(client, outcome, group.run_count, ledger)
        return Submission(group, result_id=outcome.id, runs_by_scenario=by_scenario(runs))
    if not outcome.ambiguous:
        if ledger is not None:
            ledger.settled(group.name)
        return outcome
    if not PROVIDERS[group.key.provider].takes_name:
        # No name was sent (the endpoint has none): nothing to look up by; only the dashboard.
        if ledger is not None:
            ledger.settled(group.name)
        return Submission(group, error=_nameless_error(group, outcome, result_agent))
    agent = result_agent if result_agent is not None else _scenario_agent(client, group)
    found, failure = _look_up(client, group.name, agent, sleep)
    if found is None:
        # Left unresolved in the ledger: the session looks it up once more when it ends.
        return Submission(group, error=_ambiguous_error(group, outcome, failure))
    if ledger is not None:
        ledger.created(found, name=group.name)
    runs = reconciled_runs(client, found, group.run_count, ledger)
    return Submission(group, result_id=found.id, runs_by_scenario=by_scenario(runs), adopted=True)


def reconciled_runs(
    client: CekuraClient, result: Result, expected: int, ledger: Ledger | None
) -> list[Run]:
    """The result's runs, each once. When the answer does not hold exactly the ``expected``
    runs (Cekura left some out, or listed some twice), the result itself is read: runs the
    service started but did not list are found (and tracked), so none is left running."""
    runs = unique_runs(result.runs)
    if len(runs) == expected:
        return runs
    try:
        detail = client.get_result(result.id)
    except AuthError:
        raise
    except CekuraError:
        return runs  # the short tests say which runs are missing
    if ledger is not None:
        ledger.created(detail)
    return unique_runs([*runs, *detail.runs])


def unique_runs(runs: Iterable[Run]) -> list[Run]:
    """Each run once (by id), in the order first seen."""
    seen: dict[int, Run] = {}
    for run in runs:
        seen.setdefault(run.id, run)
    return list(seen.values())


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
    return _look_up(client, name, agent, sleep)[0]


def _look_up(
    client: CekuraClient, name: str, agent: int | None, sleep: Callable[[float], None]
) -> tuple[Result | None, CekuraError | None]:
    """``find_by_name``, and the error of the last look-up when none got an answer."""
    failure: CekuraError | None = None
    answered = False
    for delay in LOOKUP_DELAYS:
        sleep(delay)
        try:
            matches = [r for r in client.find_results(name=name, agent_id=agent) if r.name == name]
            if matches:
                return client.get_result(matches[0].id), None
            answered = True  # Cekura answered: there is no such result (yet)
        except AuthError:
            raise
        except CekuraError as exc:
            failure = exc  # the look-up is best effort; the caller reports the ambiguity
    return None, None if answered else failure


def _guarded(group: Group, post: Callable[[], Result]) -> Result | Submission:
    """Run a call-starting POST; turn its failure into a Submission saying what to do."""
    try:
        return post()
    except AuthError:
        raise
    except RateLimitedError as exc:
        # Only a Retry-After the session cannot wait out reaches here (shorter ones are
        # waited for): fail the group now rather than sleep past the deadline.
        wait = f" {exc.retry_after:g}s" if exc.retry_after is not None else ""
        return Submission(group, error=RATE_LIMITED.format(wait=wait, error=exc))
    except ApiError as exc:
        if exc.status_code >= 500:
            return _maybe_started(group, exc)
        return Submission(group, error=f"Cekura rejected the request; nothing was started: {exc}")
    except TransportError as exc:
        if not exc.may_have_reached_server:
            return Submission(
                group,
                error=f"could not reach Cekura; nothing was started: {exc}",
                unreachable=str(exc),
            )
        return _maybe_started(group, exc)
    except CekuraError as exc:  # ProtocolError: 2xx we cannot read, so runs may exist
        return _maybe_started(group, exc)


#: A 429 whose Retry-After is longer than the session can wait (or one that kept coming).
RATE_LIMITED = (
    "Cekura kept rate-limiting the request to start this group's runs (HTTP 429, asked to "
    "wait{wait}) beyond what the session can wait (--cekura-timeout); nothing was started: "
    "{error}"
)


def by_scenario(runs: Iterable[Run]) -> dict[int, tuple[Run, ...]]:
    found: dict[int, list[Run]] = {}
    for run in runs:
        if run.scenario is not None:
            found.setdefault(run.scenario, []).append(run)
    return {scenario_id: tuple(group) for scenario_id, group in found.items()}


def _maybe_started(group: Group, exc: Exception) -> Submission:
    return Submission(group, error=str(exc), ambiguous=True)


def _nameless_error(group: Group, outcome: Submission, agent: int | None) -> str:
    """An ambiguous failure of a POST whose endpoint takes no ``name``: it cannot be found."""
    whose, ids = f"agent {agent}'s" if agent else "the agents'", map(str, group.scenario_ids)
    return (
        f"the request to start runs failed after it may have reached Cekura ({outcome.error}). "
        "It was not re-sent, so you are not charged twice, and it cannot be looked up: provider "
        f"{group.key.provider!r}'s endpoint takes no result name. Check {whose} newest results "
        f"in Cekura's dashboard for runs of scenarios {', '.join(ids)} started now, and end "
        "them if they are still going."
    )


def _ambiguous_error(group: Group, outcome: Submission, failure: CekuraError | None) -> str:
    """What to tell the user after a call-starting POST failed ambiguously. Whether Cekura
    answered the look-up by name (and had no such result) or the look-up itself failed is
    told apart: the message never claims a look-up found nothing when none got an answer."""
    start = (
        f"the request to start runs failed after it may have reached Cekura ({outcome.error}). "
        "It was not re-sent, so you are not charged twice, "
    )
    found = (
        f"and no result named {group.name!r} could be found"
        if failure is None
        else f"and looking for a result named {group.name!r} failed too ({failure})"
    )
    return (
        start + found + ": look for it in Cekura's dashboard, where its runs may still be "
        "going (the session looks it up once more when it ends, and ends its calls)."
    )
