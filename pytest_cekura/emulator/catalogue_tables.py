"""The catalogue file's tables as pydantic models: they validate a table and build its entry.

Their JSON Schemas (``schemas.py``) are published in ``docs/schemas/`` for editor
completion; ``tables.TableModel`` turns pydantic's errors into the emulator's messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BeforeValidator,
    Field,
    ModelWrapValidatorHandler,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from pytest_cekura.emulator.entries import (
    DEFAULT_AGENT,
    DEFAULT_DURATION_S,
    DEFAULT_PROJECT,
    DEFAULT_PROVIDER,
    LIVEKIT_URL_SCHEMES,
    MAX_DURATION_S,
    AgentEntry,
    MetricEntry,
    MetricKind,
    Outcome,
    Provider,
    ScenarioEntry,
    TestProfileEntry,
)
from pytest_cekura.emulator.fault_actions import AnyFault
from pytest_cekura.emulator.tables import (
    CatalogueError,
    Hint,
    NonEmpty,
    TableModel,
    invalid,
    rule_error,
)

_Id = Annotated[StrictInt, Field(gt=0), Hint("must be a positive integer, e.g. 31")]
_Name = Annotated[StrictStr, NonEmpty, Hint('must be a non-empty string, e.g. "Billing dispute"')]
_Seconds = Annotated[
    StrictFloat,
    Field(ge=0, le=MAX_DURATION_S, allow_inf_nan=False),
    Hint(f"must be a number of seconds from 0 to {MAX_DURATION_S:g}, e.g. 120"),
]
_Exists = Annotated[StrictBool, Hint("must be true or false (a TOML boolean, without quotes)")]
_UNSET_HINT = "; leave {} out to model a missing setting"
_LivekitUrl = Annotated[
    StrictStr,
    NonEmpty,
    Hint(
        'must be a non-empty string, e.g. "wss://my-project.livekit.cloud"'
        + _UNSET_HINT.format("livekit_url")
    ),
]
_LivekitKey = Annotated[
    StrictStr,
    NonEmpty,
    Hint('must be a non-empty string, e.g. "APIxxxxxxxx"' + _UNSET_HINT.format("livekit_api_key")),
]
_LivekitSecret = Annotated[
    StrictStr,
    NonEmpty,
    Hint(
        'must be a non-empty string, e.g. "secret-value"' + _UNSET_HINT.format("livekit_api_secret")
    ),
]
_LivekitAgentName = Annotated[
    StrictStr,
    NonEmpty,
    Hint('must be a non-empty string, e.g. "my-agent"' + _UNSET_HINT.format("livekit_agent_name")),
]


_Score = Annotated[
    StrictFloat,
    Field(allow_inf_nan=False),
    Hint("must be a number, e.g. 1200"),
]
#: Which keys each kind of metric takes (besides name, type and id).
_METRIC_KEYS: Mapping[str, tuple[str, ...]] = {
    "numeric": ("min", "max"),
    "binary": ("pass_probability",),
    "enum": ("values",),
}


class MetricTable(TableModel):
    """One entry of a scenario's ``metrics``: a metric its evaluated runs carry."""

    missing_hints: ClassVar[Mapping[str, str]] = {"name": '"Latency"'}

    name: _Name
    type: MetricKind = "numeric"
    #: Numeric: the range of each run's score (equal bounds: the same score on every run).
    min: _Score = 600.0
    max: _Score = 1200.0
    pass_probability: Annotated[
        StrictFloat,
        Field(ge=0, le=1, allow_inf_nan=False),
        Hint("must be a number between 0 and 1, the share of runs that pass the metric"),
    ] = 1.0
    values: Annotated[
        list[Annotated[StrictStr, NonEmpty]],
        Field(min_length=1),
        Hint('must be a non-empty list of strings, e.g. ["positive", "neutral"]'),
    ] = Field(default_factory=list)
    id: _Id | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _keys_of_its_type(
        cls, raw: Any, validate: ModelWrapValidatorHandler[MetricTable]
    ) -> MetricTable:
        table = validate(raw)
        for kind, keys in _METRIC_KEYS.items():
            for key in keys:
                if kind != table.type and key in raw:
                    raise rule_error(
                        f"key {key!r} is for {kind} metrics, and this one has type = "
                        f"{table.type!r}; remove it or set type = {kind!r}"
                    )
        if table.min > table.max:
            raise rule_error(f"min = {table.min:g} is above max = {table.max:g}; make min <= max")
        if table.type == "enum" and not table.values:
            raise rule_error(
                "an enum metric needs field 'values'; add values = [\"positive\", ...]"
            )
        return table

    def entry(self) -> MetricEntry:
        return MetricEntry(
            name=self.name,
            kind=self.type,
            low=self.min,
            high=self.max,
            pass_probability=self.pass_probability,
            values=tuple(self.values),
            id=self.id,
        )


def _metric_tables(value: Any) -> Any:
    """Each metric table validated on its own, so a message names it: ``metrics[2]: ...``."""
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        return value  # the field's own type check says what is wrong
    try:
        return [
            MetricTable.validate_table(item, f"metrics[{number}]")
            for number, item in enumerate(value, start=1)
        ]
    except CatalogueError as exc:
        raise rule_error(str(exc)) from None


class ScenarioTable(TableModel):
    """A ``[[scenario]]`` table: how the emulator plays one scenario's calls."""

    missing_hints: ClassVar[Mapping[str, str]] = {"id": "<positive integer>"}

    id: _Id
    name: _Name | None = None
    outcome: Outcome = "pass"
    duration_s: _Seconds = DEFAULT_DURATION_S
    success_probability: (
        Annotated[
            StrictFloat,
            Field(ge=0, le=1, allow_inf_nan=False),
            Hint("must be a number between 0 and 1"),
        ]
        | None
    ) = None
    agent: _Id = DEFAULT_AGENT
    evaluation_delay_s: _Seconds = 0.0
    exists: _Exists = True
    #: Metrics the evaluated runs carry besides (or, by name, instead of) the built-in ones.
    metrics: Annotated[
        list[MetricTable],
        BeforeValidator(_metric_tables),
        Hint(
            'must be a list of tables, e.g. metrics = [{ name = "Latency", min = 1300, '
            "max = 1900 }] or [[scenario.metrics]] tables"
        ),
    ] = Field(default_factory=list)

    @model_validator(mode="wrap")
    @classmethod
    def _probability_with_flaky(
        cls, raw: Any, validate: ModelWrapValidatorHandler[ScenarioTable]
    ) -> ScenarioTable:
        table = validate(raw)
        if table.outcome != "flaky" and table.success_probability is not None:
            raise rule_error(
                invalid(
                    "success_probability",
                    raw["success_probability"],  # as written: 1, not the float 1.0
                    f'only allowed with outcome = "flaky" (outcome is {table.outcome!r}); '
                    "remove it",
                )
            )
        if table.outcome == "flaky" and table.success_probability is None:
            raise rule_error(
                "outcome \"flaky\" needs field 'success_probability'; "
                "add success_probability = <number between 0 and 1>, e.g. 0.5"
            )
        return table

    def entry(self) -> ScenarioEntry:
        return ScenarioEntry(
            id=self.id,
            name=self.name or f"Scenario {self.id}",
            outcome=self.outcome,
            duration_s=self.duration_s,
            success_probability=self.success_probability,
            agent=self.agent,
            evaluation_delay_s=self.evaluation_delay_s,
            exists=self.exists,
            metrics=tuple(metric.entry() for metric in self.metrics),
        )


class AgentTable(TableModel):
    """An ``[[agent]]`` table: a Cekura agent; LiveKit settings left out are missing on it."""

    missing_hints: ClassVar[Mapping[str, str]] = {"id": "<positive integer>"}

    id: _Id
    name: _Name | None = None
    provider: Provider = DEFAULT_PROVIDER
    livekit_url: _LivekitUrl | None = None
    livekit_api_key: _LivekitKey | None = None
    livekit_api_secret: _LivekitSecret | None = None
    livekit_agent_name: _LivekitAgentName | None = None
    #: The agent's "LiveKit Config" JSON; it becomes the room metadata.
    livekit_config: Annotated[
        dict[str, Any], Hint("use an inline table, e.g. { empty_timeout = 300 }")
    ] = Field(default_factory=dict)
    #: "project": the LiveKit key and secret live on the Cekura project.
    livekit_credentials: Annotated[
        Literal["agent", "project"], Hint('allowed: "agent", "project"')
    ] = "agent"
    project: _Id = DEFAULT_PROJECT
    exists: _Exists = True

    @field_validator("livekit_url")
    @classmethod
    def _livekit_scheme(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(LIVEKIT_URL_SCHEMES):
            raise rule_error(
                invalid(
                    "livekit_url",
                    url,
                    f"must start with {', '.join(LIVEKIT_URL_SCHEMES)}, "
                    'e.g. "wss://my-project.livekit.cloud"',
                )
            )
        return url

    def entry(self) -> AgentEntry:
        return AgentEntry(
            id=self.id,
            name=self.name or f"Agent {self.id}",
            provider=self.provider,
            livekit_url=self.livekit_url,
            livekit_api_key=self.livekit_api_key,
            livekit_api_secret=self.livekit_api_secret,
            livekit_agent_name=self.livekit_agent_name,
            livekit_config=MappingProxyType(self.livekit_config),
            livekit_credentials=self.livekit_credentials,
            project=self.project,
            exists=self.exists,
        )


class TestProfileTable(TableModel):
    """A ``[[test_profile]]`` table: a test profile as Cekura's REST views show it."""

    __test__: ClassVar[bool] = False  # not a test class, despite its name

    missing_hints: ClassVar[Mapping[str, str]] = {"id": "<positive integer>"}

    id: _Id
    name: _Name | None = None
    information: Annotated[
        dict[str, Any], Hint('use an inline table, e.g. { customer_name = "Jane" }')
    ] = Field(default_factory=dict)

    def entry(self) -> TestProfileEntry:
        return TestProfileEntry(
            id=self.id,
            name=self.name or f"Test profile {self.id}",
            information=MappingProxyType(self.information),
        )


class CatalogueFile(TableModel):
    """A whole catalogue file, for its JSON Schema. Loading validates each table on its own
    (``parse_catalogue``), so messages can number the entries: ``scenario[2] (id=31)``."""

    scenario: list[ScenarioTable] = Field(default_factory=list)
    agent: list[AgentTable] = Field(default_factory=list)
    test_profile: list[TestProfileTable] = Field(default_factory=list)
    fault: list[AnyFault] = Field(default_factory=list)
