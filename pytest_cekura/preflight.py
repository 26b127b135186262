"""Checks made before any run is started, so a wrong setting costs nothing.

Every distinct scenario is looked up once: a missing one only errors the tests that use it,
and is left out of the batch. The agents the LiveKit runs would dispatch are looked up too: an
agent without complete LiveKit settings fails the session before any POST, because every call
to it would fail with "agent did not join" and still be billed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from .client import CekuraClient
from .errors import AuthError, CekuraError, ConfigError, NotFoundError, TransportError
from .markers import ScenarioSpec
from .models import AgentSettings

#: Lookups in flight at once: enough to hide latency, few enough to stay clear of rate limits.
CONCURRENCY = 8

T = TypeVar("T")
K = TypeVar("K")


@dataclass(frozen=True)
class ScenarioCheck:
    missing: frozenset[int]
    #: Each found scenario's own agent (the one LiveKit runs dispatch when no agent is given).
    own_agents: Mapping[int, int | None]


def missing_scenario_message(scenario_id: int) -> str:
    return (
        f"scenario {scenario_id} does not exist in your Cekura project: check the id in "
        "Cekura's scenario list (this test's runs were not started)"
    )


def check_scenarios(client: CekuraClient, scenario_ids: Iterable[int]) -> ScenarioCheck:
    answers = _concurrently(client.get_scenario, sorted(set(scenario_ids)))
    missing = frozenset(sid for sid, answer in answers.items() if isinstance(answer, NotFoundError))
    own_agents = {
        sid: answer.agent for sid, answer in answers.items() if not isinstance(answer, Exception)
    }
    return ScenarioCheck(missing, own_agents)


def check_agents(
    client: CekuraClient, specs: Iterable[ScenarioSpec], own_agents: Mapping[int, int | None]
) -> None:
    """Raise one ``ConfigError`` listing every agent problem, or return quietly."""
    livekit: set[int] = set()
    others: set[int] = set()
    for spec in specs:
        agents = (
            {spec.agent}
            if spec.agent is not None
            else {own_agents.get(s) for s in spec.scenario_ids}
        )
        target = livekit if spec.provider == "livekit" else others
        target.update(a for a in agents if a is not None)
    answers = _concurrently(client.get_agent, sorted(livekit | others))
    problems: list[str] = []
    for agent_id, answer in answers.items():
        if isinstance(answer, NotFoundError):
            problems.append(
                f"agent {agent_id} does not exist in your Cekura project: check agent= on the "
                "marker, --cekura-agent, ini cekura_agent or CEKURA_AGENT_ID"
            )
        elif isinstance(answer, AgentSettings) and agent_id in livekit:
            problems.extend(livekit_problems(answer))
    if problems:
        raise ConfigError(
            "pytest-cekura: no run was started, because of the agents these tests would call:\n"
            + "\n".join(f"  - {problem}" for problem in problems)
            + "\n(Skip these checks with --cekura-no-preflight if your LiveKit credentials "
            "are set on the project rather than the agent.)"
        )


def livekit_problems(agent: AgentSettings) -> list[str]:
    who = f"agent {agent.id} ({agent.name!r})"
    where = "set it in Cekura's agent settings"
    if agent.provider and agent.provider != "livekit":
        return [
            f"{who} is set up for provider {agent.provider!r}, not LiveKit: choose a LiveKit "
            "agent (agent= / --cekura-agent), or set provider= to match"
        ]
    checks = [
        (agent.has_livekit_url, "LiveKit URL (wss://<project>.livekit.cloud)"),
        (agent.has_livekit_api_key, "LiveKit API key"),
        (agent.has_livekit_api_secret, "LiveKit API secret"),
        (agent.livekit_agent_name is not None, "LiveKit agent name (its dispatch name)"),
    ]
    return [f"{who} has no {what}: {where}" for present, what in checks if not present]


def _concurrently(fetch: Callable[[K], T], keys: list[K]) -> dict[K, T | CekuraError]:
    """Fetch each key, at most ``CONCURRENCY`` at a time; errors are returned, not raised.

    Once one fetch could not reach Cekura at all, the rest are not tried: each would wait out
    its own retries (seconds apiece) only to fail the same way.
    """
    unreachable: list[TransportError] = []

    def one(key: K) -> T | CekuraError:
        if unreachable:
            return unreachable[0]
        try:
            return fetch(key)
        except AuthError:
            raise  # a session-level problem, reported as such by the caller
        except TransportError as exc:
            if not exc.may_have_reached_server:
                unreachable.append(exc)
            return exc
        except CekuraError as exc:
            return exc

    if not keys:
        return {}
    with ThreadPoolExecutor(max_workers=CONCURRENCY, thread_name_prefix="cekura-preflight") as pool:
        return dict(zip(keys, pool.map(one, keys), strict=True))
