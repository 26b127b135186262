"""Catalogue entries as Cekura's REST views show them: scenarios, agents, test profiles.

Kept apart from ``state`` because these objects never change while the emulator runs: they
need the catalogue only, no lock and no clock.
"""

from __future__ import annotations

from typing import Any

from pytest_cekura.emulator import content
from pytest_cekura.emulator.catalogue import AgentEntry, Catalogue, ScenarioEntry

#: Catalogue entries existed before any emulator started; a fixed time keeps answers stable.
CATALOGUE_CREATED_AT = "2025-01-01T00:00:00.000000Z"
PROJECT_ID = 1


def scenario_object(catalogue: Catalogue, scenario: ScenarioEntry) -> dict[str, Any]:
    """``GET scenarios/{id}/``: the fields of cekura-api.md 6b plus the two prompts."""
    return {
        "id": scenario.id,
        "name": scenario.name,
        "agent": scenario.agent,
        "agent_name": catalogue.agent(scenario.agent).name,
        "personality_name": content.personality_name(content.DEFAULT_PERSONALITY_ID),
        "tags": [],
        "scenario_type": "simulation",
        "expected_outcome_prompt": content.expected_outcome_prompt(scenario),
        "instructions": content.scenario_instructions(scenario),
    }


def agent_object(agent: AgentEntry) -> dict[str, Any]:
    """``GET aiagents/{id}/`` (cekura-api.md 6b); settings the catalogue left out stay empty.

    Missing settings look the way a DRF model serializer shows unset columns: an empty
    ``livekit_api_key`` string, and ``livekit_data`` (a JSON column) without the key.
    """
    livekit_data = {
        key: value
        for key, value in (
            ("url", agent.livekit_url),
            ("api_secret", agent.livekit_api_secret),
            ("agent_name", agent.livekit_agent_name),
        )
        if value is not None
    }
    return {
        "id": agent.id,
        "project": PROJECT_ID,
        "agent_name": agent.name,
        "contact_number": None,
        "inbound": False,
        "description": "",
        "language": "en",
        "assistant_provider": agent.provider,
        "assistant_id": "",
        "websocket_url": "",
        "livekit_api_key": agent.livekit_api_key or "",
        "livekit_data": livekit_data,
        # Where Cekura keeps the LiveKit Config JSON is unverified (cekura-api.md 8.1).
        "livekit_config": dict(agent.livekit_config),
        "pipecat_data": None,
        "created_at": CATALOGUE_CREATED_AT,
        "updated_at": CATALOGUE_CREATED_AT,
    }
