"""The ``cekura_scenario`` marker: its documentation line and the validation of its arguments."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .livekit_data import LivekitDataError, livekit_data
from .providers import PROVIDERS

if TYPE_CHECKING:
    from .gates import Gate

MARKER = "cekura_scenario"
MARKER_DOC = (
    f"{MARKER}(*scenario_ids, frequency=1, min_success_rate=1.0, provider='livekit', "
    "agent=None, test_profile=None, personality=None, publish_data_message=None, "
    "scenario_fields=None, request_fields=None, concurrency_limit=None, mock_tool_names=None, "
    "livekit_data=None, gates=None): run these Cekura scenarios (each `frequency` times) and "
    "pass when the share of successful runs reaches min_success_rate and the metric gates "
    "hold, e.g. gates={'Latency': 'p95 <= 1200'}. See the pytest-cekura docs."
)
MAX_FREQUENCY = 100  # the API's documented range for ``frequency`` is 1-100
#: The API's integers are 64-bit signed: a larger id cannot name anything in Cekura.
MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class MarkerDefaults:
    """Session-wide defaults (command line / ini / environment) a marker may override."""

    provider: str = "livekit"
    agent: int | None = None
    concurrency_limit: int | None = None
    mock_tool_names: tuple[str, ...] | None = None
    #: Session-wide ``livekit_data`` keys; a marker's own keys override them one by one.
    livekit_data: Mapping[str, Any] = field(default_factory=dict)
    #: Session-wide metric gates (``--cekura-gates``); a marker's gates replace them by metric.
    gates: tuple[Gate, ...] = ()


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
    concurrency_limit: int | None = None
    mock_tool_names: tuple[str, ...] | None = None
    #: ``livekit_data`` as canonical JSON ("{}": none sent), for the same reason as ``extras``.
    livekit_data: str = "{}"

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
    #: Most calls Cekura keeps in flight for this request; None: Cekura's default.
    concurrency_limit: int | None = None
    #: Tools Cekura answers with mocks instead of calling them; None: none sent.
    mock_tool_names: tuple[str, ...] | None = None
    #: LiveKit v2 per-request override (``agent_name``, ``url``, ``config``); empty: none sent.
    livekit_data: Mapping[str, Any] = field(default_factory=dict)
    #: Metric gates (``gates.py``): not sent, judged with the verdict like min_success_rate.
    gates: tuple[Gate, ...] = ()

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
            self.concurrency_limit,
            self.mock_tool_names,
            json.dumps(self.livekit_data, sort_keys=True),
        )

    def request_lines(self) -> list[str]:
        """The request options a failure report shows, beyond scenarios and frequency: above
        all the room metadata the agent received when ``livekit_data.config`` replaced the
        agent's saved LiveKit Config."""
        lines = []
        data = self.livekit_data
        if data.get("agent_name") is not None:
            lines.append(f"LiveKit agent name (livekit_data.agent_name): {data['agent_name']}")
        if data.get("url") is not None:
            lines.append(f"LiveKit URL (livekit_data.url): {data['url']}")
        if "config" in data:
            lines.append(
                "room metadata sent (livekit_data.config, replacing the agent's saved LiveKit "
                f"Config): {json.dumps(data['config'], sort_keys=True)}"
            )
        if self.concurrency_limit is not None:
            lines.append(f"concurrency limit: {self.concurrency_limit}")
        if self.mock_tool_names:
            lines.append(f"mocked tools: {', '.join(self.mock_tool_names)}")
        return lines


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
    "concurrency_limit",
    "mock_tool_names",
    "livekit_data",
    "gates",
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
    takes = PROVIDERS[provider].options
    for name in _REQUEST_OPTIONS:
        if kwargs.get(name) is not None and name not in takes:
            raise _error(
                f"{name}= is not accepted by provider={provider!r}; providers that take it: "
                f"{', '.join(_taking(name))} (its endpoint has no such field and Cekura would "
                "drop it without a word: remove it, or choose one of those providers)"
            )
    # The session's agent (--cekura-agent) only where the endpoint takes one.
    default_agent = defaults.agent if "agent" in takes else None
    agent = _optional_id("agent", kwargs.get("agent", default_agent), "an agent")
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
        # Session defaults apply only where the provider takes the field, so a session-wide
        # LiveKit agent name does not break a voice test of the same session.
        concurrency_limit=(
            _concurrency(kwargs.get("concurrency_limit", defaults.concurrency_limit))
            if "concurrency_limit" in takes
            else None
        ),
        mock_tool_names=_tool_names(
            kwargs.get("mock_tool_names", defaults.mock_tool_names)
            if "mock_tool_names" in takes
            else None
        ),
        livekit_data=(
            _livekit_data(kwargs.get("livekit_data"), defaults.livekit_data)
            if "livekit_data" in takes
            else {}
        ),
        gates=_gates(kwargs.get("gates"), defaults.gates),
    )
    _check_provider_needs(spec)
    return spec


#: Marker arguments that become top-level request fields only some providers accept.
_REQUEST_OPTIONS: tuple[str, ...] = ("agent", "test_profile", "personality", "concurrency_limit")
_REQUEST_OPTIONS += ("mock_tool_names", "livekit_data")


def _taking(name: str) -> list[str]:
    return [p.name for p in PROVIDERS.values() if name in p.options]


def _error(detail: str) -> ConfigError:
    return ConfigError(f"@pytest.mark.{MARKER}: {detail}")


def _suggest(name: str) -> str:
    close = difflib.get_close_matches(name, _KEYWORDS, n=1)
    hint = f"did you mean {close[0]}=? " if close else ""
    return f" ({hint}known arguments: {', '.join(_KEYWORDS)})"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_id(value: Any) -> bool:
    """A positive integer the API can hold (its integers are 64-bit signed)."""
    return _is_int(value) and 0 < value <= MAX_ID


def _scenario_ids(args: Sequence[Any]) -> tuple[int, ...]:
    if not args:
        raise _error("no scenario ids given; pass at least one, e.g. cekura_scenario(30)")
    seen: set[int] = set()
    for value in args:
        if _is_int(value) and value > MAX_ID:
            raise _error(
                f"scenario id {value} is too large: Cekura's ids are 64-bit integers (at most "
                f"{MAX_ID}); use the id shown in Cekura's scenario list"
            )
        if not _is_id(value):
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
    # A list or dict is unhashable: test the type first, or "in" raises TypeError.
    if not isinstance(value, str):
        raise _error(
            f"provider={value!r} is invalid; give one provider name as a string, e.g. "
            f"provider='livekit' (one of: {', '.join(PROVIDERS)})"
        )
    if value not in PROVIDERS:
        raise _error(f"provider={value!r} is not supported; use one of: {', '.join(PROVIDERS)}")
    return str(value)


def _optional_id(name: str, value: Any, what: str) -> int | None:
    if value is None:
        return None
    if _is_int(value) and value > MAX_ID:
        raise _error(
            f"{name}={value!r} is too large: Cekura's ids are 64-bit integers (at most "
            f"{MAX_ID}); use the id of {what} in Cekura, or leave it out"
        )
    if not _is_id(value):
        raise _error(
            f"{name}={value!r} is invalid; use the positive integer id of {what} in Cekura, "
            "or leave it out"
        )
    return int(value)


def _concurrency(value: Any) -> int | None:
    if value is None:
        return None
    if not _is_int(value) or not 0 < value <= MAX_ID:
        raise _error(
            f"concurrency_limit={value!r} is invalid; use a positive whole number of calls "
            "Cekura may run at once, or leave it out"
        )
    return int(value)


def _gates(value: Any, defaults: tuple[Gate, ...]) -> tuple[Gate, ...]:
    from .gates import GateSyntaxError, parse_gates  # with the first marker, not at start-up

    try:
        return parse_gates(value, defaults)
    except GateSyntaxError as exc:
        raise _error(str(exc)) from None


def _tool_names(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    # A bare string would be taken letter by letter: ask for a list instead.
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise _error(
            f"mock_tool_names={value!r} is invalid; use a list of tool names, "
            'e.g. mock_tool_names=["check_inventory"]'
        )
    for name in value:
        if not isinstance(name, str) or not name.strip():
            raise _error(
                f"mock_tool_names={value!r} is invalid: {name!r} is not a tool name; use a list "
                "of non-empty strings"
            )
    names = tuple(dict.fromkeys(name.strip() for name in value))
    return names or None  # [] means no mocked tools: nothing is sent


def _livekit_data(value: Any, defaults: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return livekit_data(value, defaults)
    except LivekitDataError as exc:
        raise _error(str(exc)) from None


def _json(name: str, kwargs: Mapping[str, Any]) -> Any:
    value = kwargs[name]
    try:
        # allow_nan=False: NaN and infinity are not JSON, and would fail only when sent.
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        raise _error(
            f"{name}={value!r} cannot be sent to Cekura; use JSON data (dict, list, str, number)"
        ) from None
    return value


#: Fields pytest-cekura sets itself: overriding them would break the mapping of runs to tests.
_OWN_FIELDS = frozenset(
    {"name", "scenarios", "scenario", "frequency", "agent", "agent_id"}
    | {"test_profile_ids", "personality_ids", "test_profile_id", "personality_id"}
    | set(_REQUEST_OPTIONS)
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
            "(scenario ids, frequency=, agent=, test_profile=, personality=, "
            "concurrency_limit=, mock_tool_names=, livekit_data=)"
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
