"""Checks made before any run is started, so a wrong setting costs nothing.

Every distinct scenario is looked up once, through the scenario list a page at a time (per
agent the tests name, or unfiltered when they name none), then one by one for the ids the
pages did not show: a missing one only errors the tests that use it, and is left out of the
batch. The agents the runs would call are looked up too. Only certain
evidence stops the session before any POST: an agent that does not exist, or one set up for
another provider than the runs use. A LiveKit setting missing on the agent is only a warning:
Cekura also takes LiveKit credentials from the agent's *project*, which no endpoint shows, so
the service may well accept runs whose agent shows no URL, key or secret (cekura-api.md 10.1).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from .client import CekuraClient, ScenarioPage
from .errors import AuthError, CekuraError, ConfigError, NotFoundError, TransportError
from .markers import ScenarioSpec
from .models import AgentSettings, Scenario

#: Lookups in flight at once: enough to hide latency, few enough to stay clear of rate limits.
CONCURRENCY = 8
#: Private, for the benchmarks only: True looks every scenario up on its own, as before the
#: scenario list was used, so a benchmark can measure both in one run.
_ONE_BY_ONE = False

T = TypeVar("T")
K = TypeVar("K")


@dataclass(frozen=True)
class ScenarioCheck:
    missing: frozenset[int]
    #: Each found scenario's own agent (the one LiveKit runs dispatch when no agent is given).
    own_agents: Mapping[int, int | None]
    #: Set when a look-up could not connect to Cekura at all: nothing later can either.
    unreachable: TransportError | None = None


def missing_scenario_message(scenario_id: int) -> str:
    return (
        f"scenario {scenario_id} does not exist in your Cekura project: check the id in "
        "Cekura's scenario list (this test's runs were not started)"
    )


def check_scenarios(
    client: CekuraClient,
    scenario_ids: Iterable[int],
    agents: Iterable[int | None] = (None,),
) -> ScenarioCheck:
    """Look every scenario up once. ``agents``: the agents the tests name (None for a test
    that names none); the scenario list is read per agent, unfiltered for None."""
    wanted = sorted(set(scenario_ids))
    listed: dict[int, Scenario | CekuraError] = {}
    if not _ONE_BY_ONE and wanted:
        listed = _from_list(client, set(wanted), agents)
    unlisted = [sid for sid in wanted if sid not in listed]
    answers = {**listed, **_concurrently(client.get_scenario, unlisted)}
    missing = frozenset(sid for sid, answer in answers.items() if isinstance(answer, NotFoundError))
    own_agents = {
        sid: answer.agent for sid, answer in answers.items() if not isinstance(answer, Exception)
    }
    unreachable = next(
        (
            answer
            for answer in answers.values()
            if isinstance(answer, TransportError) and not answer.may_have_reached_server
        ),
        None,
    )
    return ScenarioCheck(missing, own_agents, unreachable)


def _from_list(
    client: CekuraClient, wanted: set[int], agents: Iterable[int | None]
) -> dict[int, Scenario | CekuraError]:
    """The wanted scenarios the scenario list shows, read a page at a time per scope (each
    agent; None: unfiltered). A scope is read past its first page only while its remaining
    pages are fewer than the ids still wanted, so paging never costs more GETs than looking
    the rest up one by one. Anything the list cannot answer is left to single look-ups:
    a list that is not served (404), an unreadable page, a scenario of another agent.
    A transport failure that never reached Cekura is returned for every id (nothing later
    can reach it either); a rejected key is raised."""
    found: dict[int, Scenario | CekuraError] = {}

    def take(page: ScenarioPage) -> None:
        for scenario in page.scenarios:
            if scenario.id in wanted:
                found.setdefault(scenario.id, scenario)

    scopes = sorted({a for a in agents if a is not None}) + (
        [None] if any(a is None for a in agents) else []
    )
    for agent in scopes:
        if len(found) == len(wanted):
            break
        try:
            first = client.list_scenarios(agent_id=agent)
        except AuthError:
            raise
        except TransportError as exc:
            if not exc.may_have_reached_server:
                return dict.fromkeys(wanted, exc)
            continue
        except NotFoundError:
            return found  # no scenario list here: every scope would answer the same
        except CekuraError:
            continue
        take(first)
        if first.size == 0:
            continue
        pages = -(-first.count // first.size)
        if pages - 1 >= len(wanted) - len(found):
            continue  # the rest of this list costs more GETs than single look-ups

        def page_of(page: int, agent: int | None = agent, size: int = first.size) -> ScenarioPage:
            return client.list_scenarios(page=page, page_size=size, agent_id=agent)

        rest = _concurrently(page_of, list(range(2, pages + 1)))
        for answer in rest.values():
            if isinstance(answer, TransportError) and not answer.may_have_reached_server:
                return {**dict.fromkeys(wanted, answer), **found}
            if isinstance(answer, ScenarioPage):
                take(answer)
    return found


def check_agents(
    client: CekuraClient, specs: Iterable[ScenarioSpec], own_agents: Mapping[int, int | None]
) -> list[str]:
    """Raise one ``ConfigError`` listing every agent that certainly cannot take the runs;
    return a warning per LiveKit setting the agent itself does not show."""
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
    warnings: list[str] = []
    for agent_id, answer in answers.items():
        if isinstance(answer, NotFoundError):
            problems.append(
                f"agent {agent_id} does not exist in your Cekura project: check agent= on the "
                "marker, --cekura-agent, ini cekura_agent or CEKURA_AGENT_ID"
            )
        elif isinstance(answer, AgentSettings) and agent_id in livekit:
            problems.extend(livekit_problems(answer))
            warnings.extend(livekit_warnings(answer))
    if problems:
        raise ConfigError(
            "pytest-cekura: no run was started, because of the agents these tests would call:\n"
            + "\n".join(f"  - {problem}" for problem in problems)
            + "\n(Skip these checks with --cekura-no-preflight.)"
        )
    return warnings


def livekit_problems(agent: AgentSettings) -> list[str]:
    """What certainly stops LiveKit runs: the agent is set up for another provider."""
    if agent.provider and agent.provider != "livekit":
        return [
            f"agent {agent.id} ({agent.name!r}) is set up for provider {agent.provider!r}, not "
            "LiveKit: choose a LiveKit agent (agent= / --cekura-agent), or set provider= to "
            "match"
        ]
    return []


def livekit_warnings(agent: AgentSettings) -> list[str]:
    """One line per LiveKit setting the agent shows as not configured. Only the ``*_configured``
    flags are read, never a secret; a setting the answer does not mention is not reported."""
    if livekit_problems(agent):
        return []
    checks = [
        (agent.has_livekit_url, "LiveKit URL (livekit_data.url)"),
        (agent.has_livekit_api_key, "LiveKit API key (livekit_api_key_configured)"),
        (agent.has_livekit_api_secret, "LiveKit API secret (livekit_data.api_secret_configured)"),
        (agent.has_livekit_agent_name, "LiveKit agent name (livekit_data.agent_name)"),
    ]
    return [
        f"agent {agent.id} ({agent.name!r}) shows no {what}: the runs were started anyway, "
        "as Cekura may take it from the project; if its calls fail with 'agent did not join', "
        "set it in Cekura's agent or project settings"
        for present, what in checks
        if present is False
    ]


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
    return dict(zip(keys, _map_on_daemons(one, keys, CONCURRENCY), strict=True))


def _map_on_daemons(fn: Callable[[K], T], keys: list[K], workers: int) -> list[T]:
    """``[fn(k) for k in keys]`` on at most ``workers`` daemon threads; the first exception
    is raised. Not an executor: its threads are joined at interpreter exit, so a look-up
    stuck on a slow server would keep the process alive after the session gave up on it."""
    results: dict[int, T] = {}
    errors: list[BaseException] = []
    queue = iter(range(len(keys)))
    lock = threading.Lock()

    def work() -> None:
        while not errors:
            with lock:
                index = next(queue, None)
            if index is None:
                return
            try:
                value = fn(keys[index])
            except BaseException as exc:  # handed to the caller's thread
                errors.append(exc)
                return
            results[index] = value

    threads = [
        threading.Thread(target=work, name="cekura-preflight", daemon=True)
        for _ in range(min(workers, len(keys)))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return [results[index] for index in range(len(keys))]
