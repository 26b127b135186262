"""The client's reads of what exists at Cekura before anything is paid for: scenarios (one, or
a page of the list) and agents (each looked up once per session, with its project).

``Lookups`` is a part of ``CekuraClient`` (``client.py``), which inherits it; the preflight
and the dashboard links call these methods on the client.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from pydantic import ValidationError

from .errors import CekuraError, NotFoundError, ProtocolError
from .models import AgentSettings, Scenario
from .responses import ScenarioPage, first_error
from .transport import Transport

#: ``page_size`` asked of list endpoints; the server answers smaller pages when it caps the
#: size (DRF clamps to its maximum), and the caller pages on from the size it got.
LIST_PAGE_SIZE = 1000
#: Key of ``CekuraClient.request_counts`` for these reads.
PREFLIGHT_LABEL = "GET preflight"


class Lookups(Transport):
    """Scenario and agent reads (``CekuraClient`` inherits them); thread-safe."""

    #: Agent look-ups, once per agent per session (None: it could not be read); created by
    #: ``CekuraClient.__init__``.
    _agents: dict[int, AgentSettings | None]

    def get_scenario(self, scenario_id: int) -> Scenario:
        path = f"/test_framework/v1/scenarios/{scenario_id}/"
        data = self._request("GET", path, label=PREFLIGHT_LABEL)
        try:
            return Scenario.model_validate(data)
        except ValidationError as exc:
            raise ProtocolError(
                f"GET {path}: unexpected response shape: {first_error(exc)}"
            ) from None

    def list_scenarios(
        self,
        *,
        page: int = 1,
        page_size: int = LIST_PAGE_SIZE,
        agent_id: int | None = None,
        project_id: int | None = None,
    ) -> ScenarioPage:
        """One page of ``GET v1/scenarios/``, filtered by agent and/or project. A 404 on the
        first page means the list is not served (``NotFoundError``: look scenarios up one by
        one); past the last page it is DRF's "Invalid page.", answered as an empty page.
        Entries that do not parse are left out (look those ids up one by one)."""
        params = {"page": str(page), "page_size": str(page_size)}
        if agent_id is not None:
            params["agent_id"] = str(agent_id)
        if project_id is not None:
            params["project_id"] = str(project_id)
        path = "/test_framework/v1/scenarios/"
        try:
            data = self._request("GET", path, params=params, label=PREFLIGHT_LABEL)
        except NotFoundError:
            if page == 1:
                raise
            return ScenarioPage([], 0, 0)
        entries = data.get("results") if isinstance(data, Mapping) else None
        if not isinstance(entries, list):
            raise ProtocolError(f"GET {path}: expected a page of scenarios, got {data!r:.200}")
        count = data.get("count")
        scenarios = []
        for entry in entries:
            with contextlib.suppress(ValidationError):
                scenarios.append(Scenario.model_validate(entry))
        total = count if isinstance(count, int) and count >= len(entries) else len(entries)
        return ScenarioPage(scenarios, total, len(entries))

    def get_agent(self, agent_id: int) -> AgentSettings:
        """The agent's non-secret settings. The v1 path first (its object shows the LiveKit
        ``*_configured`` flags), then v2. Remembered for the session (see ``project_of``)."""
        for api_version in ("v1", "v2"):
            path = f"/test_framework/{api_version}/aiagents/{agent_id}/"
            try:
                data = self._request("GET", path, label=PREFLIGHT_LABEL)
            except NotFoundError:
                if api_version == "v2":
                    raise
                continue
            # Keep only non-secret fields: never the answer itself (cekura-api.md 6b).
            agent = AgentSettings.from_api(agent_id, data)
            with self._lock:
                self._agents[agent_id] = agent
            return agent
        raise AssertionError("unreachable")  # pragma: no cover

    def known_project(self, agent_id: int) -> int | None:
        """The agent's project if this session has looked the agent up; never a request."""
        with self._lock:
            agent = self._agents.get(agent_id)
        return agent.project if agent is not None else None

    def project_of(self, agent_id: int) -> int | None:
        """The Cekura project of an agent (dashboard links need it), looked up at most once
        per agent per session; None when it cannot be read."""
        with self._lock:
            if agent_id in self._agents:
                agent = self._agents[agent_id]
                return agent.project if agent is not None else None
        try:
            return self.get_agent(agent_id).project
        except CekuraError:
            with self._lock:
                self._agents.setdefault(agent_id, None)  # a link is not worth asking twice
            return None


__all__ = ["LIST_PAGE_SIZE", "PREFLIGHT_LABEL", "Lookups"]
