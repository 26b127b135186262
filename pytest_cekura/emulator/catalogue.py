"""The emulator's catalogue: which scenarios exist, how their calls end, and test profiles.

A catalogue is a TOML file::

    [[scenario]]
    id = 31
    name = "Billing dispute"
    outcome = "fail"          # pass | fail | error | flaky | hang   (default pass)
    duration_s = 120          # emulated call length in seconds (default 30)
    success_probability = 0.5 # flaky only (required there, 0..1)
    agent = 1                 # optional, default 1

    [[test_profile]]
    id = 7
    name = "Jane"
    information = { customer_name = "Jane Doe" }

Scenarios that are not listed still exist and pass (real projects have many scenarios and a
test should not need a catalogue entry just to run one). Entries are numbered from 1 in error
messages, in the order they appear in the file, so ``scenario[2]`` is the second
``[[scenario]]`` table.
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

_SCENARIO_KEYS = ("id", "name", "outcome", "duration_s", "success_probability", "agent")
_PROFILE_KEYS = ("id", "name", "information")
_TABLES = ("scenario", "test_profile")


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
    """Scenarios and test profiles by id; lookups of unlisted ids return defaults."""

    scenarios: Mapping[int, ScenarioEntry] = field(default_factory=dict, hash=False)
    test_profiles: Mapping[int, TestProfileEntry] = field(default_factory=dict, hash=False)
    source: str | None = None

    def scenario(self, scenario_id: int) -> ScenarioEntry:
        entry = self.scenarios.get(scenario_id)
        return entry if entry is not None else ScenarioEntry(scenario_id, f"Scenario {scenario_id}")

    def test_profile(self, profile_id: int) -> TestProfileEntry:
        entry = self.test_profiles.get(profile_id)
        if entry is not None:
            return entry
        return TestProfileEntry(profile_id, f"Test profile {profile_id}")


_E = TypeVar("_E", ScenarioEntry, TestProfileEntry)


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
                "allowed: [[scenario]] and [[test_profile]]"
            )
    scenarios = _parse_table(data, "scenario", source, _parse_scenario)
    profiles = _parse_table(data, "test_profile", source, _parse_profile)
    return Catalogue(
        scenarios=MappingProxyType(scenarios),
        test_profiles=MappingProxyType(profiles),
        source=source,
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


def _suggest(word: str, options: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
