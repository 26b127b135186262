"""The emulator's catalogue: scenarios and how their calls end, agents, test profiles.

A catalogue is a TOML file::

    [[scenario]]
    id = 31
    name = "Billing dispute"
    outcome = "fail"          # pass | fail | error | flaky | hang   (default pass)
    duration_s = 120          # emulated call length in seconds (default 30)
    success_probability = 0.5 # flaky only (required there, 0..1)
    agent = 1                 # the scenario's own agent; optional, default 1
    exists = true             # false: the scenario is deleted (404, runs rejected)

    [[agent]]
    id = 42
    name = "Pharmacy agent"                  # Cekura's display name (agent_name in the API)
    provider = "livekit"                     # assistant_provider (default livekit)
    livekit_url = "wss://pharmacy.livekit.cloud"
    livekit_api_key = "APIxxxxxxxx"
    livekit_api_secret = "secret-value"
    livekit_agent_name = "pharmacy-agent"    # LiveKit explicit-dispatch name
    livekit_config = { empty_timeout = 300 } # "LiveKit Config" JSON, becomes room metadata
    exists = true

    [[test_profile]]
    id = 7
    name = "Jane"
    information = { customer_name = "Jane Doe" }

Scenarios and agents that are not listed still exist (real projects have many, and a test
should not need a catalogue entry just to run one): scenarios pass, agents have complete
LiveKit settings. A listed agent has only the LiveKit settings it lists, so tests can model
half-configured agents. Entries are numbered from 1 in error messages, in the order they
appear in the file, so ``scenario[2]`` is the second ``[[scenario]]`` table.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Literal, TypeVar, cast, get_args

from pytest_cekura.errors import ConfigError

Outcome = Literal["pass", "fail", "error", "flaky", "hang"]
OUTCOMES: tuple[str, ...] = get_args(Outcome)
DEFAULT_DURATION_S = 30.0
DEFAULT_AGENT = 1

#: Agents' ``assistant_provider`` values the catalogue accepts: the providers of the runners
#: in cekura-api.md 2.1. Cekura does not publish its enum; a closed list still catches typos.
PROVIDERS = (
    "livekit",
    "pipecat",
    "vapi",
    "retell",
    "elevenlabs",
    "websocket",
    "sip",
    "email",
    "chirp",
    "agora",
)
DEFAULT_PROVIDER = "livekit"
#: LiveKit settings of agents the catalogue does not list (complete, so LiveKit runs work).
DEFAULT_LIVEKIT_URL = "wss://emulated.livekit.cloud"
DEFAULT_LIVEKIT_API_KEY = "APIemulated"
DEFAULT_LIVEKIT_API_SECRET = "emulated-secret"
#: The server URL schemes LiveKit SDKs connect with.
_LIVEKIT_URL_SCHEMES = ("wss://", "ws://", "https://", "http://")

_SCENARIO_KEYS = (
    "id",
    "name",
    "outcome",
    "duration_s",
    "success_probability",
    "agent",
    "exists",
)
_AGENT_KEYS = (
    "id",
    "name",
    "provider",
    "livekit_url",
    "livekit_api_key",
    "livekit_api_secret",
    "livekit_agent_name",
    "livekit_config",
    "exists",
)
_PROFILE_KEYS = ("id", "name", "information")
_TABLES = ("scenario", "agent", "test_profile")


class CatalogueError(ConfigError, ValueError):
    """The catalogue file cannot be used; the message names file, entry, field and the fix."""


@dataclass(frozen=True)
class ScenarioEntry:
    """How the emulator plays one scenario."""

    id: int
    name: str
    outcome: Outcome = "pass"
    duration_s: float = DEFAULT_DURATION_S
    success_probability: float | None = None
    agent: int = DEFAULT_AGENT
    exists: bool = True


@dataclass(frozen=True)
class AgentEntry:
    """A Cekura agent; ``None`` LiveKit settings are missing on the agent."""

    id: int
    name: str
    provider: str = DEFAULT_PROVIDER
    livekit_url: str | None = None
    livekit_api_key: str | None = None
    livekit_api_secret: str | None = None
    livekit_agent_name: str | None = None
    livekit_config: Mapping[str, Any] = field(default_factory=dict, hash=False)
    exists: bool = True

    @classmethod
    def default(cls, agent_id: int) -> AgentEntry:
        """An unlisted agent: configured completely, so LiveKit runs need no catalogue."""
        return cls(
            id=agent_id,
            name=f"Agent {agent_id}",
            livekit_url=DEFAULT_LIVEKIT_URL,
            livekit_api_key=DEFAULT_LIVEKIT_API_KEY,
            livekit_api_secret=DEFAULT_LIVEKIT_API_SECRET,
            livekit_agent_name=f"agent-{agent_id}",
        )


@dataclass(frozen=True)
class TestProfileEntry:
    """A test profile as Cekura's REST views show it: ``{"id", "name", "information"}``."""

    # The name starts with "Test"; without this pytest would try to collect it from test modules.
    __test__: ClassVar[bool] = False

    id: int
    name: str
    information: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def as_api_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "information": dict(self.information)}


@dataclass(frozen=True)
class Catalogue:
    """Scenarios, agents and test profiles by id; lookups of unlisted ids return defaults.

    Lookups also answer for ids that do not exist (``exists = false``, or not positive);
    check ``.exists`` / ``has_scenario`` / ``has_agent`` before serving one.
    """

    scenarios: Mapping[int, ScenarioEntry] = field(default_factory=dict, hash=False)
    test_profiles: Mapping[int, TestProfileEntry] = field(default_factory=dict, hash=False)
    agents: Mapping[int, AgentEntry] = field(default_factory=dict, hash=False)
    source: str | None = None

    def scenario(self, scenario_id: int) -> ScenarioEntry:
        entry = self.scenarios.get(scenario_id)
        return entry if entry is not None else ScenarioEntry(scenario_id, f"Scenario {scenario_id}")

    def has_scenario(self, scenario_id: int) -> bool:
        return scenario_id > 0 and self.scenario(scenario_id).exists

    def agent(self, agent_id: int) -> AgentEntry:
        entry = self.agents.get(agent_id)
        return entry if entry is not None else AgentEntry.default(agent_id)

    def has_agent(self, agent_id: int) -> bool:
        return agent_id > 0 and self.agent(agent_id).exists

    def test_profile(self, profile_id: int) -> TestProfileEntry:
        entry = self.test_profiles.get(profile_id)
        if entry is not None:
            return entry
        return TestProfileEntry(profile_id, f"Test profile {profile_id}")


_E = TypeVar("_E", ScenarioEntry, AgentEntry, TestProfileEntry)


def load_catalogue(path: str | PathLike[str]) -> Catalogue:
    """Read and validate a TOML catalogue; raises ``CatalogueError`` with one clear message."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise CatalogueError(
            f"{source}: cannot read the emulator catalogue ({reason}); "
            "check the path given with --cekura-emulator-catalogue / --catalogue"
        ) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise CatalogueError(
            f"{source}: not UTF-8 text (byte {exc.start}); save the catalogue as UTF-8 TOML"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message already ends with "(at line N, column M)".
        raise CatalogueError(f"{source}: TOML syntax error: {exc}") from None
    return parse_catalogue(data, source=source)


def parse_catalogue(data: Mapping[str, Any], *, source: str = "<catalogue>") -> Catalogue:
    """Validate already-parsed TOML data (also handy for building catalogues in code)."""
    for key in data:
        if key not in _TABLES:
            raise CatalogueError(
                f"{source}: unknown top-level table {key!r}{_suggest(key, _TABLES)}; "
                "allowed: [[scenario]], [[agent]] and [[test_profile]]"
            )
    scenarios = _parse_table(data, "scenario", source, _parse_scenario)
    agents = _parse_table(data, "agent", source, _parse_agent)
    profiles = _parse_table(data, "test_profile", source, _parse_profile)
    _check_scenario_agents(data, source, agents)
    return Catalogue(
        scenarios=MappingProxyType(scenarios),
        test_profiles=MappingProxyType(profiles),
        agents=MappingProxyType(agents),
        source=source,
    )


def _check_scenario_agents(
    data: Mapping[str, Any], source: str, agents: Mapping[int, AgentEntry]
) -> None:
    # In Cekura a scenario's agent is a foreign key: a scenario cannot belong to a deleted
    # agent, and the emulator would have no sensible agent for its runs.
    default = agents.get(DEFAULT_AGENT)
    if default is not None and not default.exists:
        number = 1 + [raw.get("id") for raw in data["agent"]].index(DEFAULT_AGENT)
        ctx = _Entry(source, "agent", number, data["agent"][number - 1])
        raise ctx.error(
            "exists",
            False,
            f"agent {DEFAULT_AGENT} owns every scenario the catalogue does not list (and those "
            "without an agent key), so it must exist; delete a different agent id",
        )
    for number, raw in enumerate(data.get("scenario", []), start=1):
        agent_id = raw.get("agent", DEFAULT_AGENT)
        agent = agents.get(agent_id)
        if agent is not None and not agent.exists:
            ctx = _Entry(source, "scenario", number, raw)
            raise ctx.error(
                "agent",
                agent_id,
                f"agent {agent_id} has exists = false, so no scenario can belong to it; "
                "point the scenario at an existing agent or remove exists = false",
            )


class _Entry:
    """Context for messages about one entry: ``file: scenario[2] (id=31): ...``."""

    def __init__(self, source: str, table: str, number: int, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        ident = raw.get("id")
        shown_id = f" (id={ident!r})" if ident is not None else ""
        self.where = f"{source}: {table}[{number}]{shown_id}"

    def error(self, field_name: str, value: Any, allowed: str) -> CatalogueError:
        return CatalogueError(
            f"{self.where}: field {field_name!r} has invalid value {value!r}; {allowed}"
        )


def _parse_table(
    data: Mapping[str, Any], table: str, source: str, parse: Callable[[_Entry], _E]
) -> dict[int, _E]:
    items = data.get(table, [])
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise CatalogueError(
            f"{source}: {table!r} must be an array of tables; write each entry as [[{table}]]"
        )
    entries: dict[int, _E] = {}
    first_seen: dict[int, int] = {}
    for number, raw in enumerate(items, start=1):
        ctx = _Entry(source, table, number, raw)
        entry = parse(ctx)
        if entry.id in first_seen:
            raise CatalogueError(
                f"{ctx.where}: duplicate id {entry.id}, already used by "
                f"{table}[{first_seen[entry.id]}]; give every [[{table}]] a unique id"
            )
        first_seen[entry.id] = number
        entries[entry.id] = entry
    return entries


def _parse_scenario(ctx: _Entry) -> ScenarioEntry:
    _check_keys(ctx, _SCENARIO_KEYS)
    scenario_id = _positive_int(ctx, "id", required=True)
    outcome = ctx.raw.get("outcome", "pass")
    if outcome not in OUTCOMES:
        raise ctx.error("outcome", outcome, f"allowed: {', '.join(OUTCOMES)}")
    probability = _probability(ctx, outcome)
    return ScenarioEntry(
        id=scenario_id,
        name=_name(ctx, default=f"Scenario {scenario_id}"),
        outcome=cast(Outcome, outcome),
        duration_s=_duration(ctx),
        success_probability=probability,
        agent=_positive_int(ctx, "agent", required=False) or DEFAULT_AGENT,
        exists=_bool(ctx, "exists", default=True),
    )


def _parse_agent(ctx: _Entry) -> AgentEntry:
    _check_keys(ctx, _AGENT_KEYS)
    agent_id = _positive_int(ctx, "id", required=True)
    provider = ctx.raw.get("provider", DEFAULT_PROVIDER)
    if provider not in PROVIDERS:
        raise ctx.error(
            "provider", provider, f"allowed: {', '.join(PROVIDERS)}{_suggest_any(provider)}"
        )
    url = _optional_text(ctx, "livekit_url", "wss://my-project.livekit.cloud")
    if url is not None and not url.startswith(_LIVEKIT_URL_SCHEMES):
        raise ctx.error(
            "livekit_url",
            url,
            f"must start with {', '.join(_LIVEKIT_URL_SCHEMES)}, "
            'e.g. "wss://my-project.livekit.cloud"',
        )
    config = ctx.raw.get("livekit_config", {})
    if not isinstance(config, dict):
        raise ctx.error(
            "livekit_config", config, "use an inline table, e.g. { empty_timeout = 300 }"
        )
    return AgentEntry(
        id=agent_id,
        name=_name(ctx, default=f"Agent {agent_id}"),
        provider=provider,
        livekit_url=url,
        livekit_api_key=_optional_text(ctx, "livekit_api_key", "APIxxxxxxxx"),
        livekit_api_secret=_optional_text(ctx, "livekit_api_secret", "secret-value"),
        livekit_agent_name=_optional_text(ctx, "livekit_agent_name", "my-agent"),
        livekit_config=MappingProxyType(config),
        exists=_bool(ctx, "exists", default=True),
    )


def _parse_profile(ctx: _Entry) -> TestProfileEntry:
    _check_keys(ctx, _PROFILE_KEYS)
    profile_id = _positive_int(ctx, "id", required=True)
    information = ctx.raw.get("information", {})
    if not isinstance(information, dict):
        raise ctx.error(
            "information", information, 'use an inline table, e.g. { customer_name = "Jane" }'
        )
    return TestProfileEntry(
        id=profile_id,
        name=_name(ctx, default=f"Test profile {profile_id}"),
        information=MappingProxyType(information),
    )


def _check_keys(ctx: _Entry, allowed: tuple[str, ...]) -> None:
    for key in ctx.raw:
        if key not in allowed:
            raise CatalogueError(
                f"{ctx.where}: unknown key {key!r}{_suggest(key, allowed)}; "
                f"allowed keys: {', '.join(allowed)}"
            )


def _positive_int(ctx: _Entry, name: str, *, required: bool) -> int:
    if name not in ctx.raw:
        if required:
            raise CatalogueError(
                f"{ctx.where}: missing required field {name!r}; add {name} = <positive integer>"
            )
        return 0
    value = ctx.raw[name]
    # TOML booleans are Python bools, which are ints; "id = true" is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ctx.error(name, value, "must be a positive integer, e.g. 31")
    return value


def _name(ctx: _Entry, *, default: str) -> str:
    value = ctx.raw.get("name", default)
    if not isinstance(value, str) or not value.strip():
        raise ctx.error("name", value, 'must be a non-empty string, e.g. "Billing dispute"')
    return value


def _optional_text(ctx: _Entry, name: str, example: str) -> str | None:
    if name not in ctx.raw:
        return None
    value = ctx.raw[name]
    # An empty string would be a third state between "set" and "missing"; absence already
    # models a missing setting, so "" is more likely a mistake than a test of one.
    if not isinstance(value, str) or not value.strip():
        raise ctx.error(
            name,
            value,
            f'must be a non-empty string, e.g. "{example}"; leave {name} out to model a '
            "missing setting",
        )
    return value


def _bool(ctx: _Entry, name: str, *, default: bool) -> bool:
    value = ctx.raw.get(name, default)
    if not isinstance(value, bool):
        raise ctx.error(name, value, "must be true or false (a TOML boolean, without quotes)")
    return value


def _duration(ctx: _Entry) -> float:
    value = ctx.raw.get("duration_s", DEFAULT_DURATION_S)
    if not _is_number(value) or value < 0:
        raise ctx.error("duration_s", value, "must be a number of seconds >= 0, e.g. 120")
    return float(value)


def _probability(ctx: _Entry, outcome: str) -> float | None:
    value = ctx.raw.get("success_probability")
    if outcome != "flaky":
        if value is not None:
            raise ctx.error(
                "success_probability",
                value,
                f'only allowed with outcome = "flaky" (outcome is {outcome!r}); remove it',
            )
        return None
    if value is None:
        raise CatalogueError(
            f"{ctx.where}: outcome \"flaky\" needs field 'success_probability'; "
            "add success_probability = <number between 0 and 1>, e.g. 0.5"
        )
    if not _is_number(value) or not 0 <= value <= 1:
        raise ctx.error("success_probability", value, "must be a number between 0 and 1")
    return float(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _suggest_any(value: Any) -> str:
    return _suggest(value, PROVIDERS) if isinstance(value, str) else ""


def _suggest(word: str, options: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
