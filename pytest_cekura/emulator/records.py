"""The emulator's records: what a request asked for, what the store keeps, and page slices.

Plain values shared by the store (``state.py``), the JSON views (``views.py``) and the request
validation (``validation.py``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

SuccessRateFormat = Literal["percent", "fraction"]
Status = Literal[
    "pending", "in_queue", "scaling_up", "running", "evaluating", "completed", "failed", "cancelled"
]
TerminalVerdict = Literal["pass", "fail", "error", "cancelled"]


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
class RunRecord:
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
class ResultRecord:
    result_id: int
    name: str
    agent: int
    run_as_text: bool
    created: float
    run_ids: list[int]
    #: The request's run settings, shown as ``run_settings`` on the result detail.
    settings: NewResult | None = None


@dataclass(frozen=True, slots=True)
class Phase:
    status: Status
    started_at: float | None  # clock time the call connected ("running")
    ended_at: float | None  # clock time it became terminal
    verdict: TerminalVerdict | None  # None while non-terminal (and while evaluation is pending)

    @property
    def last_change(self) -> float | None:
        return self.ended_at if self.ended_at is not None else self.started_at
