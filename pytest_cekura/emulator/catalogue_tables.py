"""The catalogue file's tables as pydantic models: they validate a table and build its entry.

Their JSON Schemas (``schemas.py``) are published in ``docs/schemas/`` for editor
completion; ``tables.TableModel`` turns pydantic's errors into the emulator's messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
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
    Outcome,
    Provider,
    ScenarioEntry,
    TestProfileEntry,
)
from pytest_cekura.emulator.fault_actions import AnyFault
from pytest_cekura.emulator.tables import Hint, NonEmpty, TableModel, invalid, rule_error

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
