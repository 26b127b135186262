"""The ``cekura_scenario`` marker: its documentation line and the validation of its arguments."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError
from .providers import PROVIDERS

MARKER = "cekura_scenario"
MARKER_DOC = (
    f"{MARKER}(*scenario_ids, frequency=1, min_success_rate=1.0, provider='livekit', "
    "agent=None, test_profile=None, personality=None, publish_data_message=None, "
    "scenario_fields=None, request_fields=None): run these "
    "Cekura scenarios (each `frequency` times) and pass when the share of successful runs "
    "reaches min_success_rate. See the pytest-cekura docs."
)
MAX_FREQUENCY = 100  # the API's documented range for ``frequency`` is 1-100


@dataclass(frozen=True)
class MarkerDefaults:
    """Session-wide defaults (command line / ini / environment) a marker may override."""

    provider: str = "livekit"
    agent: int | None = None


@dataclass(frozen=True)
class GroupKey:
    """Everything that changes the run-starting request: tests sharing it share one POST."""

    provider: str
    agent: int | None
    frequency: int
    test_profile: int | None
    personality: int | None
    #: Per-element and top-level extra fields as canonical JSON, so the key stays hashable.
    extras: str = "{}"

    @property
    def scenario_fields(self) -> dict[str, Any]:
        return dict(json.loads(self.extras).get("scenario_fields", {}))

    @property
    def request_fields(self) -> dict[str, Any]:
        return dict(json.loads(self.extras).get("request_fields", {}))


@dataclass(frozen=True)
class ScenarioSpec:
    """A validated ``cekura_scenario`` marker, with session defaults applied."""

    scenario_ids: tuple[int, ...]
    frequency: int = 1
    min_success_rate: float = 1.0
    provider: str = "livekit"
    agent: int | None = None
    test_profile: int | None = None
    personality: int | None = None
    scenario_fields: Mapping[str, Any] = field(default_factory=dict)
    request_fields: Mapping[str, Any] = field(default_factory=dict)

    @property
    def group_key(self) -> GroupKey:
        extras = {"scenario_fields": self.scenario_fields, "request_fields": self.request_fields}
        return GroupKey(
            self.provider,
            self.agent,
            self.frequency,
            self.test_profile,
            self.personality,
            json.dumps(extras, sort_keys=True),
        )


_KEYWORDS = (
    "frequency",
    "min_success_rate",
    "provider",
    "agent",
    "test_profile",
    "personality",
    "publish_data_message",
    "scenario_fields",
    "request_fields",
)


def parse_marker(
    args: Sequence[Any], kwargs: Mapping[str, Any], defaults: MarkerDefaults | None = None
) -> ScenarioSpec:
    """Validate marker arguments; raise ``ConfigError`` naming the argument, value and fix."""
    defaults = defaults or MarkerDefaults()
    for name in kwargs:
        if name not in _KEYWORDS:
            raise _error(f"unknown argument {name}={kwargs[name]!r}{_suggest(name)}")
    provider = _provider(kwargs.get("provider", defaults.provider))
    agent = _optional_id("agent", kwargs.get("agent", defaults.agent), "an agent")
    scenario_fields = _fields("scenario_fields", kwargs.get("scenario_fields"))
    if "publish_data_message" in kwargs:
        scenario_fields["publish_data_message"] = _json("publish_data_message", kwargs)
    spec = ScenarioSpec(
        scenario_ids=_scenario_ids(args),
        frequency=_frequency(kwargs.get("frequency", 1)),
        min_success_rate=_rate(kwargs.get("min_success_rate", 1.0)),
        provider=provider,
        agent=agent,
        test_profile=_optional_id("test_profile", kwargs.get("test_profile"), "a test profile"),
        personality=_optional_id("personality", kwargs.get("personality"), "a personality"),
        scenario_fields=scenario_fields,
        request_fields=_fields("request_fields", kwargs.get("request_fields")),
    )
    _check_provider_needs(spec)
    return spec


def _error(detail: str) -> ConfigError:
    return ConfigError(f"@pytest.mark.{MARKER}: {detail}")


def _suggest(name: str) -> str:
    close = difflib.get_close_matches(name, _KEYWORDS, n=1)
    hint = f"did you mean {close[0]}=? " if close else ""
    return f" ({hint}known arguments: {', '.join(_KEYWORDS)})"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _scenario_ids(args: Sequence[Any]) -> tuple[int, ...]:
    if not args:
        raise _error("no scenario ids given; pass at least one, e.g. cekura_scenario(30)")
    seen: set[int] = set()
    for value in args:
        if not _is_int(value) or value <= 0:
            raise _error(
                f"scenario id {value!r} is invalid; "
                "use the positive integer id shown in Cekura's scenario list"
            )
        if value in seen:
            raise _error(
                f"scenario id {value} is listed twice; use frequency= to run it several times"
            )
        seen.add(value)
    return tuple(args)


def _frequency(value: Any) -> int:
    if not _is_int(value) or not 1 <= value <= MAX_FREQUENCY:
        raise _error(f"frequency={value!r} is invalid; use an integer from 1 to {MAX_FREQUENCY}")
    return int(value)


def _rate(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise _error(
            f"min_success_rate={value!r} is invalid; use a fraction from 0.0 to 1.0 "
            "(e.g. 0.8 for 80%)"
        )
    return float(value)


def _provider(value: Any) -> str:
    if value not in PROVIDERS:
        raise _error(f"provider={value!r} is not supported; use one of: {', '.join(PROVIDERS)}")
    return str(value)


def _optional_id(name: str, value: Any, what: str) -> int | None:
    if value is None:
        return None
    if not _is_int(value) or value <= 0:
        raise _error(
            f"{name}={value!r} is invalid; use the positive integer id of {what} in Cekura, "
            "or leave it out"
        )
    return int(value)


def _json(name: str, kwargs: Mapping[str, Any]) -> Any:
    value = kwargs[name]
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        raise _error(
            f"{name}={value!r} cannot be sent to Cekura; use JSON data (dict, list, str, number)"
        ) from None
    return value


#: Fields pytest-cekura sets itself: overriding them would break the mapping of runs to tests.
_OWN_FIELDS = frozenset(
    {"name", "scenarios", "scenario", "frequency", "agent", "agent_id"}
    | {"test_profile_ids", "personality_ids"}
)


def _fields(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise _error(f"{name}={value!r} is invalid; use a dict of request field names to values")
    taken = sorted(_OWN_FIELDS & set(value))
    if taken:
        raise _error(
            f"{name} may not set {', '.join(taken)}: use the marker's own arguments "
            "(scenario ids, frequency=, agent=, test_profile=, personality=)"
        )
    return dict(_json(name, {name: dict(value)}))


def _check_provider_needs(spec: ScenarioSpec) -> None:
    provider = PROVIDERS[spec.provider]
    if provider.family == "ids" and spec.agent is None:
        raise _error(
            f"provider={spec.provider!r} needs an agent: pass agent= on the marker, or set "
            "--cekura-agent / ini cekura_agent / CEKURA_AGENT_ID"
        )
    if provider.family == "ids" and "publish_data_message" in spec.scenario_fields:
        raise _error(
            f"publish_data_message is not supported by provider={spec.provider!r}; "
            "it exists only for LiveKit, Pipecat and websocket runs"
        )
    given = spec.scenario_fields if provider.family == "objects" else spec.request_fields
    where = "scenario_fields" if provider.family == "objects" else "request_fields"
    missing = [name for name in provider.required_fields if name not in given]
    if missing:
        raise _error(
            f"provider={spec.provider!r} needs {', '.join(missing)}: pass "
            f"{where}={{{', '.join(repr(m) + ': ...' for m in missing)}}}"
        )
