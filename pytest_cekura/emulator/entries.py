"""What the emulator knows about a scenario, an agent or a test profile, and the defaults.

Plain frozen values, built from a catalogue's tables (``catalogue_tables.py``) or as defaults
for ids the catalogue does not list (``catalogue.Catalogue``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, get_args

Outcome = Literal["pass", "fail", "error", "flaky", "hang"]
OUTCOMES: tuple[str, ...] = get_args(Outcome)
DEFAULT_DURATION_S = 30.0
#: Upper bound for times read from a catalogue: larger values overflow the clock arithmetic
#: (``Event.wait(1e308)`` raises OverflowError) and are always a mistake.
MAX_DURATION_S = 30 * 24 * 3600.0
DEFAULT_PROJECT = 1
DEFAULT_AGENT = 1

#: Agents' ``assistant_provider`` values the catalogue accepts: the providers of the runners
#: in cekura-api.md 2.1. Cekura does not publish its enum; a closed list still catches typos.
Provider = Literal[
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
]
PROVIDERS: tuple[str, ...] = get_args(Provider)
DEFAULT_PROVIDER: Provider = "livekit"
#: LiveKit settings of agents the catalogue does not list (complete, so LiveKit runs work).
DEFAULT_LIVEKIT_URL = "wss://emulated.livekit.cloud"
DEFAULT_LIVEKIT_API_KEY = "APIemulated"
DEFAULT_LIVEKIT_API_SECRET = "emulated-secret"
#: The server URL schemes LiveKit SDKs connect with.
LIVEKIT_URL_SCHEMES = ("wss://", "ws://", "https://", "http://")


MetricKind = Literal["numeric", "binary", "enum"]


@dataclass(frozen=True)
class MetricEntry:
    """A metric the scenario's evaluated runs carry, beside (or replacing, by name) the
    built-in ones; each run's value is a pure function of the metric, scenario and run id."""

    name: str
    kind: MetricKind = "numeric"
    #: Numeric: each run's score lies in [low, high] (equal bounds: the same on every run).
    low: float = 600.0
    high: float = 1200.0
    #: Binary: the share of runs that pass it (score 100, else 0).
    pass_probability: float = 1.0
    #: Enum: the values a run may get, equally likely.
    values: tuple[str, ...] = ()
    id: int | None = None


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
    #: Metrics from the catalogue (``metrics = [...]``); a name of a built-in replaces it.
    metrics: tuple[MetricEntry, ...] = ()


@dataclass(frozen=True)
class AgentEntry:
    """A Cekura agent; ``None`` LiveKit settings are missing on the agent."""

    id: int
    name: str
    provider: Provider = DEFAULT_PROVIDER
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
