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
appear in the file, so ``scenario[2]`` is the second ``[[scenario]]`` table. Fault rules are
validated here too, because the same rules also arrive from ``Emulator.inject`` and the
``/_emulator/faults`` control endpoint, and all three must accept and reject the same things.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from os import PathLike
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Literal, TypeVar, cast, get_args

from pytest_cekura.errors import ConfigError

Outcome = Literal["pass", "fail", "error", "flaky", "hang"]
OUTCOMES: tuple[str, ...] = get_args(Outcome)
DEFAULT_DURATION_S = 30.0
#: Upper bounds for times read from a catalogue or a fault rule: larger values overflow the
#: clock arithmetic (``Event.wait(1e308)`` raises OverflowError) and are always a mistake.
MAX_DURATION_S = 30 * 24 * 3600.0
MAX_DELAY_S = 3600.0
DEFAULT_PROJECT = 1
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
    "evaluation_delay_s",
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
    "livekit_credentials",
    "project",
    "exists",
)
_PROFILE_KEYS = ("id", "name", "information")
_TABLES = ("scenario", "agent", "test_profile", "fault")

#: Which requests a fault rule applies to: one endpoint family each, or every Cekura request.
FaultMatch = Literal[
    "start",  # any run-starting POST scenarios/<runner>/
    "bulk",  # GET runs/bulk/
    "result",  # GET results/<id>/
    "results",  # GET results/ (the list)
    "run",  # GET runs/<id>/
    "end_call",  # POST runs/<id>/end_call/ and results/<id>/end_calls/
    "rerun",  # POST results/<id>/rerun/
    "scenario",  # GET scenarios/ and scenarios/<id>/
    "agent",  # GET aiagents/<id>/
    "test_profile",  # GET test-profiles-external/ and test-profiles-external/<id>/
    "any",
]
FaultAction = Literal[
    "error_before",
    "error_after",
    "drop_before",
    "drop_after",
    "rate_limit",
    "slow",
    "malformed_json",
    "unknown_status",
    "omit_runs",
    "duplicate_runs",
    "extra_runs",
    "never_finish",
]
#: How a connection is dropped: FIN without an answer, FIN after half a header block, or RST.
DropMode = Literal["close", "partial", "reset"]
FAULT_MATCHES: tuple[str, ...] = get_args(FaultMatch)
FAULT_ACTIONS: tuple[str, ...] = get_args(FaultAction)
DROP_MODES: tuple[str, ...] = get_args(DropMode)
DEFAULT_UNKNOWN_STATUS = "paused"

#: Answers that carry run objects (unknown_status rewrites them) and answers whose runs are a
#: JSON list (omit/duplicate/extra rewrite the list; a result detail's runs are an object).
_RUN_READS = ("bulk", "run", "result", "results", "start", "rerun")
_RUN_LISTS = ("bulk", "start", "rerun")
#: Actions limited to some matches; the others work on every kind of request.
_ACTION_MATCHES: dict[str, tuple[str, ...]] = {
    "unknown_status": _RUN_READS,
    "omit_runs": _RUN_LISTS,
    "duplicate_runs": _RUN_LISTS,
    "extra_runs": _RUN_LISTS,
    # It changes how runs play out, not how one request is answered.
    "never_finish": ("any",),
}
#: The options each action reads; giving one it does not read is an error, not ignored, so a
#: misplaced option (delay_s on error_after) cannot silently test nothing.
_ACTION_OPTIONS: dict[str, tuple[str, ...]] = {
    "error_before": ("status",),
    "error_after": ("status",),
    "drop_before": ("drop_mode",),
    "drop_after": ("drop_mode",),
    "rate_limit": ("retry_after", "retry_after_ms", "status"),
    "slow": ("delay_s",),
    "malformed_json": (),
    "unknown_status": ("status_value", "scenario_ids"),
    "omit_runs": ("omit", "omit_ids"),
    "duplicate_runs": (),
    "extra_runs": (),
    "never_finish": ("scenario_ids",),
}
_FAULT_OPTIONS = (
    "status",
    "retry_after",
    "retry_after_ms",
    "delay_s",
    "drop_mode",
    "status_value",
    "omit",
    "omit_ids",
    "scenario_ids",
)
_FAULT_KEYS = ("match", "action", "times", *_FAULT_OPTIONS)


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
    #: Emulated seconds after the call ends during which the run is ``completed`` with
    #: ``success`` null (Cekura's evaluation still pending).
    evaluation_delay_s: float = 0.0
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
    #: "project": the LiveKit key and secret live on the Cekura project, so the agent object
    #: reports them as not configured while runs still work (cekura-api.md 10.1).
    livekit_credentials: Literal["agent", "project"] = "agent"
    project: int = DEFAULT_PROJECT
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


class _InvalidFaultError(Exception):
    """A fault field is wrong; the message lacks the "where", which the caller adds."""


@dataclass(frozen=True)
class FaultRule:
    """One injected fault: which requests it matches, what it does, how many times.

    Options an action does not read must be left as None (or empty); the ones it reads get their
    defaults on construction (``times`` 1, ``status`` 500 or 429, ``drop_mode`` "close",
    ``status_value`` "paused"). An invalid rule raises ``CatalogueError``. Build rules with
    ``parse_fault`` (from TOML or JSON data) or ``Emulator.inject``; constructing one directly
    validates the same way.
    """

    match: FaultMatch
    action: FaultAction
    #: Matching requests it applies to (0 = all); None only for never_finish, which lasts
    #: until the faults are cleared.
    times: int | None = None
    status: int | None = None  # error_before, error_after, rate_limit
    retry_after: str | None = None  # rate_limit: the Retry-After header, as sent
    retry_after_ms: int | None = None  # rate_limit: an extra retry-after-ms header
    delay_s: float | None = None  # slow: real seconds to wait before handling the request
    drop_mode: DropMode | None = None  # drop_before, drop_after
    status_value: str | None = None  # unknown_status: the status the runs show
    omit: int | None = None  # omit_runs: leave out the first N runs of the answer
    omit_ids: tuple[int, ...] = ()  # omit_runs: leave out these run ids
    scenario_ids: tuple[int, ...] = ()  # never_finish (required), unknown_status (filter)

    def __post_init__(self) -> None:
        try:
            normalized = _normalize_fault({f.name: getattr(self, f.name) for f in fields(self)})
        except _InvalidFaultError as exc:
            raise CatalogueError(f"FaultRule: {exc}") from None
        for name, value in normalized.items():
            object.__setattr__(self, name, value)  # frozen: defaults are filled in once, here

    @property
    def label(self) -> str:
        """How the request log names the fault when it fires, e.g. ``error_after:500``."""
        detail: object = None
        if self.action in ("error_before", "error_after", "rate_limit"):
            detail = self.status
        elif self.action == "slow" and self.delay_s is not None:
            detail = f"{self.delay_s:g}s"
        elif self.action in ("drop_before", "drop_after") and self.drop_mode != "close":
            detail = self.drop_mode
        elif self.action == "unknown_status":
            detail = self.status_value
        elif self.action == "omit_runs":
            detail = self.omit if self.omit is not None else ",".join(map(str, self.omit_ids))
        return self.action if detail is None else f"{self.action}:{detail}"

    def as_dict(self) -> dict[str, Any]:
        """The rule's fields as TOML/JSON would give them, unset options left out."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or value == ():
                continue
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


def parse_fault(raw: Any, *, where: str = "fault") -> FaultRule:
    """Validate one fault rule given as a mapping (a ``[[fault]]`` table or a JSON object).

    ``where`` starts every error message, e.g. ``"cekura-catalogue.toml: fault[2]"``.
    """
    if not isinstance(raw, Mapping):
        raise CatalogueError(
            f"{where}: a fault rule must be a table (a JSON object) with match and action, "
            f'e.g. {{"match": "start", "action": "error_after", "status": 500}}; got {raw!r}'
        )
    for key in raw:
        if key not in _FAULT_KEYS:
            raise CatalogueError(
                f"{where}: unknown key {key!r}{_suggest(str(key), _FAULT_KEYS)}; "
                f"allowed keys: {', '.join(_FAULT_KEYS)}"
            )
    for key, allowed in (("match", FAULT_MATCHES), ("action", FAULT_ACTIONS)):
        if key not in raw:
            raise CatalogueError(
                f"{where}: missing required field {key!r}; add {key} = <one of: "
                f"{', '.join(allowed)}>"
            )
    try:
        normalized = _normalize_fault(raw)
    except _InvalidFaultError as exc:
        raise CatalogueError(f"{where}: {exc}") from None
    return FaultRule(**normalized)


def _normalize_fault(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Every FaultRule field, checked and with the action's defaults filled in."""
    action = raw.get("action")
    if action not in FAULT_ACTIONS:
        raise _InvalidFaultError(
            _invalid("action", action, f"allowed: {', '.join(FAULT_ACTIONS)}", FAULT_ACTIONS)
        )
    match = raw.get("match")
    if match not in FAULT_MATCHES:
        raise _InvalidFaultError(
            _invalid("match", match, f"allowed: {', '.join(FAULT_MATCHES)}", FAULT_MATCHES)
        )
    works_with = _ACTION_MATCHES.get(action, FAULT_MATCHES)
    if match not in works_with:
        raise _InvalidFaultError(
            _invalid(
                "match", match, f"action {action!r} works with match = {', '.join(works_with)}"
            )
        )
    reads = _ACTION_OPTIONS[action]
    for name in _FAULT_OPTIONS:
        if _given(raw.get(name)) and name not in reads:
            users = [a for a, options in _ACTION_OPTIONS.items() if name in options]
            raise _InvalidFaultError(
                f"field {name!r} is not used by action {action!r}; remove it "
                f"({name} is read by action {' / '.join(users)})"
            )
    out: dict[str, Any] = {name: None for name in _FAULT_KEYS}
    out.update(match=match, action=action, omit_ids=(), scenario_ids=())
    out["times"] = _fault_times(action, raw.get("times"))
    if "status" in reads:
        default = 429 if action == "rate_limit" else 500
        out["status"] = _fault_status(raw.get("status"), default)
    if action == "rate_limit":
        out["retry_after"] = _retry_after(raw.get("retry_after"))
        out["retry_after_ms"] = _optional_count("retry_after_ms", raw.get("retry_after_ms"), 0)
    if action == "slow":
        out["delay_s"] = _delay(raw.get("delay_s"))
    if "drop_mode" in reads:
        mode = raw.get("drop_mode") if _given(raw.get("drop_mode")) else "close"
        if mode not in DROP_MODES:
            raise _InvalidFaultError(
                _invalid("drop_mode", mode, f"allowed: {', '.join(DROP_MODES)}")
            )
        out["drop_mode"] = mode
    if action == "unknown_status":
        out["status_value"] = _status_value(raw.get("status_value"))
    if action == "omit_runs":
        out["omit"], out["omit_ids"] = _omission(raw.get("omit"), raw.get("omit_ids"))
    if "scenario_ids" in reads:
        ids = _id_list("scenario_ids", raw.get("scenario_ids"), "e.g. [31, 35]")
        if action == "never_finish" and not ids:
            raise _InvalidFaultError(
                "action 'never_finish' needs field 'scenario_ids', the scenarios whose runs "
                "stay running; add scenario_ids = [31]"
            )
        out["scenario_ids"] = ids
    return out


def _given(value: Any) -> bool:
    return value is not None and value != ()


def _invalid(name: str, value: Any, allowed: str, options: tuple[str, ...] = ()) -> str:
    hint = _suggest(value, options) if isinstance(value, str) and options else ""
    return f"field {name!r} has invalid value {value!r}{hint}; {allowed}"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _fault_times(action: str, value: Any) -> int | None:
    if action == "never_finish":
        if value is not None:
            raise _InvalidFaultError(
                "field 'times' is not used by action 'never_finish' (it lasts until the faults "
                "are cleared); remove it"
            )
        return None
    if value is None:
        return 1
    if not _is_int(value) or value < 0:
        raise _InvalidFaultError(
            _invalid("times", value, "must be an integer >= 0 (0 = every matching request)")
        )
    return int(value)


def _fault_status(value: Any, default: int) -> int:
    if value is None:
        return default
    if not _is_int(value) or not 400 <= value <= 599:
        raise _InvalidFaultError(
            _invalid("status", value, "must be an HTTP error status from 400 to 599, e.g. 500")
        )
    return int(value)


def _retry_after(value: Any) -> str:
    if value is None:
        raise _InvalidFaultError(
            "action 'rate_limit' needs field 'retry_after', the Retry-After header to send; "
            'add retry_after = "2" (seconds) or an HTTP date, e.g. '
            '"Wed, 21 Oct 2026 07:28:00 GMT"'
        )
    if _is_number(value) and value >= 0:
        return str(value) if _is_int(value) else f"{value:g}"
    # Any other header-safe text is sent as given, so clients' handling of odd values can be
    # tested too; only what cannot be a header value at all is refused.
    if isinstance(value, str) and value.strip() and value.isascii() and value.isprintable():
        return value
    raise _InvalidFaultError(
        _invalid(
            "retry_after",
            value,
            'must be seconds >= 0 or an HTTP date, e.g. "2" or "Wed, 21 Oct 2026 07:28:00 GMT" '
            "(printable ASCII)",
        )
    )


def _optional_count(name: str, value: Any, minimum: int) -> int | None:
    if value is None:
        return None
    if not _is_int(value) or value < minimum:
        raise _InvalidFaultError(_invalid(name, value, f"must be an integer >= {minimum}"))
    return int(value)


def _delay(value: Any) -> float:
    if value is None:
        raise _InvalidFaultError(
            "action 'slow' needs field 'delay_s', the real seconds to wait before answering; "
            "add delay_s = 2.0"
        )
    if not _is_number(value) or not 0 <= value <= MAX_DELAY_S:
        raise _InvalidFaultError(
            _invalid("delay_s", value, f"must be a number of seconds from 0 to {MAX_DELAY_S:g}")
        )
    return float(value)


def _status_value(value: Any) -> str:
    if value is None:
        return DEFAULT_UNKNOWN_STATUS
    if not isinstance(value, str) or not value.strip():
        raise _InvalidFaultError(
            _invalid("status_value", value, 'must be a non-empty string, e.g. "paused"')
        )
    return value


def _omission(omit: Any, omit_ids: Any) -> tuple[int | None, tuple[int, ...]]:
    ids = _id_list("omit_ids", omit_ids, "e.g. [90001, 90002]")
    if (omit is None) == (not ids):
        raise _InvalidFaultError(
            "action 'omit_runs' needs exactly one of 'omit' (leave out the first N runs, e.g. "
            "omit = 2) and 'omit_ids' (leave out these run ids, e.g. omit_ids = [90001])"
        )
    return _optional_count("omit", omit, 1), ids


def _id_list(name: str, value: Any, example: str) -> tuple[int, ...]:
    if value is None or value == ():
        return ()
    if (
        isinstance(value, str | bytes)
        or not isinstance(value, Sequence)
        or not value
        or not all(_is_int(item) and item > 0 for item in value)
    ):
        raise _InvalidFaultError(
            _invalid(name, value, f"must be a non-empty list of positive ids, {example}")
        )
    return tuple(int(item) for item in value)


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
                "allowed: [[scenario]], [[agent]], [[test_profile]] and [[fault]]"
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
        faults=_parse_faults(data, source),
    )


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
        evaluation_delay_s=_seconds(ctx, "evaluation_delay_s", 0.0),
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
        livekit_credentials=_credentials(ctx),
        project=_positive_int(ctx, "project", required=False) or DEFAULT_PROJECT,
        exists=_bool(ctx, "exists", default=True),
    )


def _credentials(ctx: _Entry) -> Literal["agent", "project"]:
    value = ctx.raw.get("livekit_credentials", "agent")
    if value == "agent":
        return "agent"
    if value == "project":
        return "project"
    raise ctx.error("livekit_credentials", value, 'allowed: "agent", "project"')


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
    return _seconds(ctx, "duration_s", DEFAULT_DURATION_S)


def _seconds(ctx: _Entry, name: str, default: float) -> float:
    value = ctx.raw.get(name, default)
    if not _is_number(value) or not 0 <= value <= MAX_DURATION_S:
        raise ctx.error(
            name, value, f"must be a number of seconds from 0 to {MAX_DURATION_S:g}, e.g. 120"
        )
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
