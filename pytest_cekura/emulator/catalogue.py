"""The emulator's catalogue: scenarios and how their calls end, agents, test profiles.

A catalogue is a TOML file::

    [[scenario]]
    id = 31
    name = "Billing dispute"
    outcome = "fail"          # pass | fail | error | flaky | hang   (default pass)
    duration_s = 120          # emulated call length in seconds (default 30)
    evaluation_delay_s = 20   # after the call: "completed" with success null this long (default 0)
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
    livekit_credentials = "agent"            # "project": key/secret live on the Cekura project
    project = 1                              # the Cekura project id (default 1)
    exists = true

    [[test_profile]]
    id = 7
    name = "Jane"
    information = { customer_name = "Jane Doe" }

    [[fault]]                 # see FaultRule: break requests on purpose
    match = "start"
    action = "error_after"
    status = 500

Scenarios and agents that are not listed still exist (real projects have many, and a test
should not need a catalogue entry just to run one): scenarios pass, agents have complete
LiveKit settings. A listed agent has only the LiveKit settings it lists, so tests can model
half-configured agents. Entries are numbered from 1 in error messages, in the order they
appear in the file, so ``scenario[2]`` is the second ``[[scenario]]`` table.

Each table is a pydantic model (``ScenarioTable``, ``AgentTable``, ``TestProfileTable``; fault
rules in ``fault_actions.py``) that validates it and builds the entry the emulator uses; their
JSON Schemas are published in ``docs/schemas/`` for editors (``schemas.py``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from pytest_cekura.emulator.catalogue_tables import (
    AgentTable,
    CatalogueFile,
    ScenarioTable,
    TestProfileTable,
)
from pytest_cekura.emulator.entries import (
    DEFAULT_AGENT,
    DEFAULT_DURATION_S,
    DEFAULT_PROJECT,
    DEFAULT_PROVIDER,
    MAX_DURATION_S,
    OUTCOMES,
    PROVIDERS,
    AgentEntry,
    Outcome,
    Provider,
    ScenarioEntry,
    TestProfileEntry,
)
from pytest_cekura.emulator.fault_base import (
    DEFAULT_UNKNOWN_STATUS,
    DROP_MODES,
    FAULT_ACTIONS,
    FAULT_MATCHES,
    MAX_DELAY_S,
    FaultAction,
    FaultMatch,
)
from pytest_cekura.emulator.faults import FaultRule, parse_fault
from pytest_cekura.emulator.tables import CatalogueError, invalid, suggest
from pytest_cekura.emulator.wire import DropMode

_TABLES = ("scenario", "agent", "test_profile", "fault", "case", "metric", "pricing")

# Names defined here before the tables, entries and fault actions had modules of their own;
# code importing them from here still works.
__all__ = [
    "DEFAULT_AGENT",
    "DEFAULT_DURATION_S",
    "DEFAULT_PROJECT",
    "DEFAULT_PROVIDER",
    "DEFAULT_UNKNOWN_STATUS",
    "DROP_MODES",
    "FAULT_ACTIONS",
    "FAULT_MATCHES",
    "MAX_DELAY_S",
    "MAX_DURATION_S",
    "OUTCOMES",
    "PROVIDERS",
    "AgentEntry",
    "AgentTable",
    "Catalogue",
    "CatalogueError",
    "CatalogueFile",
    "DropMode",
    "FaultAction",
    "FaultMatch",
    "FaultRule",
    "Outcome",
    "Provider",
    "ScenarioEntry",
    "ScenarioTable",
    "TestProfileEntry",
    "TestProfileTable",
    "load_catalogue",
    "parse_catalogue",
    "parse_fault",
]


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
    #: Fault rules the emulator starts with (``[[fault]]`` tables), in file order.
    faults: tuple[FaultRule, ...] = ()
    #: Tests-as-Code cases by key or name (``[[case]]``): how their runs play.
    cases: Mapping[str, ScenarioEntry] = field(default_factory=dict, hash=False)
    #: Metric slug to id (``[[metric]]``); None: the built-in metrics of ``suites_json``.
    metrics: Mapping[str, int] | None = field(default=None, hash=False)
    #: The ``[pricing]`` table as written (``suites_json.Pricing`` reads it).
    pricing: Mapping[str, float] = field(default_factory=dict, hash=False)
    #: Scenarios the emulator made for Tests-as-Code cases while serving (by scenario id).
    case_scenarios: dict[int, ScenarioEntry] = field(
        default_factory=dict, hash=False, compare=False
    )

    def scenario(self, scenario_id: int) -> ScenarioEntry:
        entry = self.scenarios.get(scenario_id) or self.case_scenarios.get(scenario_id)
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
                f"{source}: unknown top-level table {key!r}{suggest(key, _TABLES)}; "
                "allowed: [[scenario]], [[agent]], [[test_profile]], [[fault]], [[case]], "
                "[[metric]] and [pricing]"
            )
    scenarios = _parse_table(data, "scenario", source, ScenarioTable)
    agents = _parse_table(data, "agent", source, AgentTable)
    profiles = _parse_table(data, "test_profile", source, TestProfileTable)
    _check_scenario_agents(data, source, agents)
    return Catalogue(
        scenarios=MappingProxyType(scenarios),
        test_profiles=MappingProxyType(profiles),
        agents=MappingProxyType(agents),
        source=source,
        faults=_parse_faults(data, source),
        cases=MappingProxyType(_parse_cases(data, source)),
        metrics=_parse_metrics(data, source),
        pricing=MappingProxyType(_parse_pricing(data, source)),
    )


def _parse_cases(data: Mapping[str, Any], source: str) -> dict[str, ScenarioEntry]:
    """``[[case]] key = "..."`` plus any ``[[scenario]]`` field but ``id`` and ``agent``."""
    cases: dict[str, ScenarioEntry] = {}
    for number, raw in enumerate(data.get("case", []), start=1):
        where = f"{source}: case[{number}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("key"), str) or not raw["key"]:
            raise CatalogueError(
                f'{where}: needs key = "<case key or name>" (the case it plays, by key or name)'
            )
        rest = {name: value for name, value in raw.items() if name != "key"}
        if "id" in rest or "agent" in rest:
            raise CatalogueError(f"{where}: id and agent come from the request; remove them")
        entry = ScenarioTable.validate_table({**rest, "id": 1}, where).entry()
        cases[raw["key"]] = entry
    return cases


def _parse_metrics(data: Mapping[str, Any], source: str) -> Mapping[str, int] | None:
    if "metric" not in data:
        return None
    metrics: dict[str, int] = {}
    for number, raw in enumerate(data["metric"], start=1):
        ident, slug = (raw.get("id"), raw.get("slug")) if isinstance(raw, dict) else (None, None)
        if not isinstance(ident, int) or isinstance(ident, bool) or not isinstance(slug, str):
            raise CatalogueError(
                f'{source}: metric[{number}]: needs id = <integer> and slug = "<slug>"'
            )
        metrics[slug] = ident
    return MappingProxyType(metrics)


def _parse_pricing(data: Mapping[str, Any], source: str) -> dict[str, float]:
    raw = data.get("pricing", {})
    allowed = ("per_minute", "text_per_run", "per_metric", "default_max_duration_s")
    if not isinstance(raw, dict):
        raise CatalogueError(f"{source}: 'pricing' must be a table; write it as [pricing]")
    for name, value in raw.items():
        if name not in allowed:
            raise CatalogueError(
                f"{source}: pricing: unknown key {name!r}{suggest(name, allowed)}; "
                f"allowed: {', '.join(allowed)}"
            )
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise CatalogueError(f"{source}: pricing: {name} must be a number >= 0")
    return {name: float(value) for name, value in raw.items()}


def _check_scenario_agents(
    data: Mapping[str, Any], source: str, agents: Mapping[int, AgentEntry]
) -> None:
    # In Cekura a scenario's agent is a foreign key: a scenario cannot belong to a deleted
    # agent, and the emulator would have no sensible agent for its runs.
    default = agents.get(DEFAULT_AGENT)
    if default is not None and not default.exists:
        number = 1 + [raw.get("id") for raw in data["agent"]].index(DEFAULT_AGENT)
        raise _entry_error(
            _where(source, "agent", number, data["agent"][number - 1]),
            "exists",
            False,
            f"agent {DEFAULT_AGENT} owns every scenario the catalogue does not list (and those "
            "without an agent key), so it must exist; delete a different agent id",
        )
    for number, raw in enumerate(data.get("scenario", []), start=1):
        agent_id = raw.get("agent", DEFAULT_AGENT)
        agent = agents.get(agent_id)
        if agent is not None and not agent.exists:
            raise _entry_error(
                _where(source, "scenario", number, raw),
                "agent",
                agent_id,
                f"agent {agent_id} has exists = false, so no scenario can belong to it; "
                "point the scenario at an existing agent or remove exists = false",
            )


_T = TypeVar("_T", ScenarioTable, AgentTable, TestProfileTable)


def _where(source: str, table: str, number: int, raw: Mapping[str, Any]) -> str:
    """Where an entry is, for messages: ``file: scenario[2] (id=31)``."""
    ident = raw.get("id")
    shown_id = f" (id={ident!r})" if ident is not None else ""
    return f"{source}: {table}[{number}]{shown_id}"


def _entry_error(where: str, field_name: str, value: Any, allowed: str) -> CatalogueError:
    return CatalogueError(f"{where}: {invalid(field_name, value, allowed)}")


def _parse_table(
    data: Mapping[str, Any], table: str, source: str, model: type[_T]
) -> dict[int, Any]:
    items = data.get(table, [])
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise CatalogueError(
            f"{source}: {table!r} must be an array of tables; write each entry as [[{table}]]"
        )
    entries: dict[int, Any] = {}
    first_seen: dict[int, int] = {}
    for number, raw in enumerate(items, start=1):
        where = _where(source, table, number, raw)
        entry = model.validate_table(raw, where).entry()
        if entry.id in first_seen:
            raise CatalogueError(
                f"{where}: duplicate id {entry.id}, already used by "
                f"{table}[{first_seen[entry.id]}]; give every [[{table}]] a unique id"
            )
        first_seen[entry.id] = number
        entries[entry.id] = entry
    return entries


def _parse_faults(data: Mapping[str, Any], source: str) -> tuple[FaultRule, ...]:
    items = data.get("fault", [])
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise CatalogueError(
            f"{source}: 'fault' must be an array of tables; write each rule as [[fault]]"
        )
    return tuple(
        parse_fault(raw, where=f"{source}: fault[{number}]")
        for number, raw in enumerate(items, start=1)
    )
