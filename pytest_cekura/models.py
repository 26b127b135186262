"""Typed, lenient models of Cekura's result and run objects.

Cekura's schema types many computed fields as strings, adds fields over time, and documents
statuses loosely (``cekura-api.md`` sections 3-5). So parsing never rejects an unknown field or
status value: unknown fields are kept (``extra="allow"``), statuses are kept as lower-case
strings and classified by ``is_terminal``, and numbers may arrive as strings.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from .lenient import (
    LenientBool,
    LenientFloat,
    LenientInt,
    Status,
    StringList,
    config_flag,
    dict_or_none,
    lenient_float,
    lenient_int,
    optional_status,
)

if TYPE_CHECKING:
    from .metrics import MetricValues

#: Statuses after which a run or result never changes again.
TERMINAL_STATUSES = frozenset({"completed", "failed", "timeout", "cancelled"})
#: Terminal statuses meaning Cekura could not complete the call (an infrastructure error).
ERROR_STATUSES = frozenset({"failed", "timeout", "cancelled"})
#: Every status value in the OpenAPI enum (``scaling_up`` is Cekura making room for the calls,
#: not an end); anything else is "unknown".
KNOWN_STATUSES = TERMINAL_STATUSES | {
    "pending",
    "in_queue",
    "running",
    "in_progress",
    "evaluating",
    "scaling_up",
}
#: A run's ``evaluation_status`` values in the OpenAPI enum.
EVALUATION_STATUSES = frozenset({"success", "failure", "reviewed_success", "reviewed_failure"})


def _succeeded(status: str, success: bool | None) -> bool:
    return status == "completed" and success is True


def _finished(status: str, success: bool | None) -> bool:
    """True once a run can no longer change. A ``completed`` run whose ``success`` is still
    null is being evaluated (Cekura's own suite runner waits for it), so it is not finished."""
    if status == "completed":
        return success is not None
    return status in TERMINAL_STATUSES


def evaluation_pending(status: str, success: bool | None) -> bool:
    """The call is over but Cekura has not scored it yet."""
    return status == "completed" and success is None


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Metric(_Model):
    """One entry of ``evaluation.metrics``."""

    id: LenientInt = None
    name: str = ""
    type: str = ""
    score: LenientFloat = None
    explanation: StringList = Field(default_factory=list)

    @property
    def failed(self) -> bool:
        """True for a binary metric that scored zero (Cekura's "did not adhere")."""
        return self.type.startswith("binary") and self.score is not None and self.score <= 0


class Evaluation(_Model):
    metrics: list[Metric] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _drop_bad_metrics(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            metrics = data.get("metrics")
            good = (
                [m for m in metrics if isinstance(m, Mapping)] if isinstance(metrics, list) else []
            )
            return {**data, "metrics": good}
        return {}


class ExpectedOutcome(_Model):
    score: LenientFloat = None
    explanation: StringList = Field(default_factory=list)


class TranscriptLine(_Model):
    role: str = ""
    content: str = ""
    timestamp: LenientFloat = None


def _transcript_lines(value: Any) -> list[Any]:
    if not isinstance(value, list):
        return []
    return [line for line in value if isinstance(line, Mapping)]


#: The distinct field sets of parsed runs, shared by the runs that have them (bounded).
_FIELDS_SETS: dict[frozenset[str], set[str]] = {}


def _shared_fields_set(fields: set[str]) -> set[str]:
    key = frozenset(fields)
    shared = _FIELDS_SETS.get(key)
    if shared is None:
        if len(_FIELDS_SETS) >= 256:
            return fields
        shared = _FIELDS_SETS.setdefault(key, fields)
    return shared


class Run(_Model):
    """One call: a scenario played once against the agent."""

    id: int
    scenario: LenientInt = None
    scenario_name: str | None = None
    status: Status = "pending"
    success: LenientBool = None
    #: How the evaluation came out (``success``/``failure``, or ``reviewed_*`` once a person
    #: reviewed it); absent while the run is being evaluated.
    evaluation_status: Annotated[str | None, BeforeValidator(optional_status)] = None
    #: The result this run belongs to (the v2 run object says; a result's runs are stamped).
    result_id: LenientInt = None
    result_name: str | None = None
    agent: LenientInt = None
    agent_name: str | None = None
    personality: LenientInt = None
    expected_outcome: Annotated[ExpectedOutcome | None, BeforeValidator(dict_or_none)] = None
    evaluation: Annotated[Evaluation | None, BeforeValidator(dict_or_none)] = None
    transcript: str | None = None
    transcript_object: Annotated[list[TranscriptLine], BeforeValidator(_transcript_lines)] = Field(
        default_factory=list
    )
    duration: str | None = None
    error_message: str | None = None
    test_profile_data: Annotated[dict[str, Any] | None, BeforeValidator(dict_or_none)] = None
    voice_recording_url: str | None = None
    personality_name: str | None = None
    timestamp: str | None = None
    executed_at: str | None = None

    def model_post_init(self, context: Any, /) -> None:
        # Which fields Cekura sent is the same for nearly every run of a session: one shared
        # set instead of one each (730 bytes a run; 7 MB for the 10,000 runs a session keeps
        # from its POST). The model is frozen, so nothing changes it; copies get their own.
        object.__setattr__(
            self, "__pydantic_fields_set__", _shared_fields_set(self.__pydantic_fields_set__)
        )

    @property
    def is_terminal(self) -> bool:
        """Finished: a final status, and scored if it completed."""
        return _finished(self.status, self.success)

    @property
    def evaluation_pending(self) -> bool:
        return evaluation_pending(self.status, self.success)

    @property
    def call_over(self) -> bool:
        """The call itself has ended (it may still be being scored): nothing left to end."""
        return self.status in TERMINAL_STATUSES

    @property
    def is_known_status(self) -> bool:
        return self.status in KNOWN_STATUSES

    @property
    def succeeded(self) -> bool:
        """Completed and judged successful by Cekura's evaluation."""
        return _succeeded(self.status, self.success)

    @property
    def duration_s(self) -> float | None:
        """The call length in seconds, parsed from Cekura's ``"MM:SS"`` (or ``"H:MM:SS"``)."""
        return parse_duration(self.duration)

    @property
    def failing_metrics(self) -> list[Metric]:
        return [m for m in self.evaluation.metrics if m.failed] if self.evaluation else []


_DURATION = re.compile(r"^\s*(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)\s*$")


def parse_duration(text: str | None) -> float | None:
    """``"01:42"`` -> 102.0; ``"1:02:03"`` -> 3723.0; anything else -> None."""
    if not text:
        return None
    match = _DURATION.match(text)
    if match is None:
        return lenient_float(text)
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)


def _runs(value: Any) -> list[Any]:
    # cekura-api.md 3.1: a list on create, a dict keyed by run id on detail, a bare object in
    # some old examples.
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, Mapping):
        return [value] if "id" in value else list(value.values())
    return []


class Result(_Model):
    """One batch of runs, created by one run-starting POST."""

    id: int
    name: str | None = None
    agent: LenientInt = None
    agent_name: str | None = None
    status: Status = "pending"
    #: As sent: a percent, 0 to 100 (the spec's ``success_rate``); see ``success_rate``.
    raw_success_rate: LenientFloat = Field(default=None, alias="success_rate")
    runs: Annotated[list[Run], BeforeValidator(_runs)] = Field(default_factory=list)
    run_as_text: LenientBool = None
    is_cronjob: LenientBool = None
    total_runs_count: LenientInt = None
    success_runs_count: LenientInt = None
    completed_runs_count: LenientInt = None
    failed_runs_count: LenientInt = None
    met_expected_outcome_count: LenientInt = None
    total_expected_outcome_count: LenientInt = None
    created_at: str | None = None
    updated_at: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _result_id_fallback(cls, data: Any) -> Any:
        # The CLI docs describe a top-level ``result_id``; ``id`` is preferred (section 2.7).
        if isinstance(data, Mapping) and data.get("id") is None and "result_id" in data:
            data = {**data, "id": data["result_id"]}
        return _stamp_runs(data)

    @property
    def success_rate(self) -> float | None:
        """The success rate as a fraction in [0, 1], from the run counts when present."""
        return normalise_success_rate(
            self.raw_success_rate, self.success_runs_count, self.total_runs_count
        )


def _stamp_runs(data: Any) -> Any:
    """Give each run of a result the result's id, unless the run says otherwise: the run
    stubs of a run-starting answer do not carry it, and links and polls need it."""
    if not isinstance(data, Mapping):
        return data
    result_id = lenient_int(data.get("id"))
    runs = _runs(data.get("runs"))
    if result_id is None or not runs:
        return data
    stamped = [
        {**run, "result_id": result_id}
        if isinstance(run, Mapping) and run.get("result_id") is None
        else run
        for run in runs
    ]
    return {**data, "runs": stamped}


def normalise_success_rate(
    value: float | None, success_count: int | None, total_count: int | None
) -> float | None:
    """Return a fraction in [0, 1] from the run counts, else from Cekura's percent.

    The spec defines ``success_rate`` as a percent, 0 to 100 (cekura-api.md 10.1); the counts
    still win when present, because they cannot be misread.
    """
    if success_count is not None and total_count:
        return max(0.0, min(1.0, success_count / total_count))
    if value is None:
        return None
    return max(0.0, min(1.0, value / 100.0))


class Scenario(_Model):
    """A scenario as ``GET scenarios/{id}/`` shows it (the fields preflight needs)."""

    id: int
    name: str | None = None
    agent: LenientInt = None


@dataclass(frozen=True)
class AgentSettings:
    """An agent's non-secret settings: its project, provider and which LiveKit settings it
    has. Never holds a secret: the live service masks them (``livekit_api_key`` is write-only,
    ``livekit_data.api_secret`` comes back as ``api_secret_configured``), and only those
    ``*_configured`` flags are read.

    Each ``has_*`` is None when the answer does not say (the v2 agent object shows no LiveKit
    settings), so "unknown" is never mistaken for "missing".
    """

    id: int
    name: str
    provider: str
    has_livekit_url: bool | None
    has_livekit_api_key: bool | None
    has_livekit_api_secret: bool | None
    livekit_agent_name: str | None
    #: The Cekura project the agent belongs to (dashboard links need it).
    project: int | None = None

    @property
    def has_livekit_agent_name(self) -> bool | None:
        if self.livekit_agent_name is not None:
            return True
        return None if self.has_livekit_url is None else False

    @classmethod
    def from_api(cls, agent_id: int, data: Any) -> AgentSettings:
        """Read the v1 (``AIAgent``) or v2 (``AIAgentV2``) agent object."""
        data = data if isinstance(data, Mapping) else {}
        provider: Any = data.get("assistant_provider")
        nested = data.get("provider")
        if not provider and isinstance(nested, Mapping):
            provider = nested.get("type")  # v2: {"provider": {"type": "livekit", ...}}
        elif not provider and isinstance(nested, str):
            provider = nested
        livekit: Any = data.get("livekit_data")
        if isinstance(livekit, str) and livekit.strip():
            with contextlib.suppress(ValueError):
                livekit = json.loads(livekit)  # the spec types the JSON column as a string
        shown = "livekit_data" in data  # a v1 object always has the column, maybe empty
        livekit = livekit if isinstance(livekit, Mapping) else {}
        dispatch_name = livekit.get("agent_name")
        return cls(
            id=agent_id,
            name=str(data.get("agent_name") or data.get("name") or f"agent {agent_id}"),
            provider=str(provider or "").strip().lower(),
            has_livekit_url=bool(livekit.get("url")) if shown else None,
            has_livekit_api_key=config_flag(data.get("livekit_api_key_configured")),
            has_livekit_api_secret=(
                bool(config_flag(livekit.get("api_secret_configured"))) if shown else None
            ),
            livekit_agent_name=str(dispatch_name) if dispatch_name else None,
            project=lenient_int(data.get("project")),
        )


@dataclass(frozen=True)
class CekuraResult:
    """What one test gets from Cekura: its runs and their success rate.

    ``runs`` are the runs of this test's scenarios (``len(scenario_ids) * frequency`` of them),
    in scenario order. ``success_rate`` is the fraction of them that succeeded.
    """

    scenario_ids: tuple[int, ...]
    runs: tuple[Run, ...]
    min_success_rate: float
    result_ids: tuple[int, ...]

    @property
    def success_rate(self) -> float:
        if not self.runs:
            return 0.0
        return sum(run.succeeded for run in self.runs) / len(self.runs)

    @property
    def passed(self) -> bool:
        """True when the success rate reaches the test's ``min_success_rate``."""
        return bool(self.runs) and self.success_rate >= self.min_success_rate

    def metric(self, name: str) -> MetricValues:
        """The metric ``name`` across ``runs`` with its aggregates (``metrics.py``); raises
        ``UnknownMetricError`` (a ``KeyError``) naming the metrics the runs have."""
        from .metrics import metric_values

        return metric_values(self.runs, name)
