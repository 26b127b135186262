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


def scenario_object(
    catalogue: Catalogue, scenario: ScenarioEntry, *, listed: bool = False
) -> dict[str, Any]:
    """``GET scenarios/{id}/`` (the spec's ``SchemaScenario``) or, ``listed``, an entry of
    ``GET scenarios/`` (``ScenarioList``): the fields each declares, with the two prompts."""
    agent = catalogue.agent(scenario.agent)
    found: dict[str, Any] = {
        "id": scenario.id,
        "name": scenario.name,
        "agent": scenario.agent,
        "agent_name": agent.name,
        "personality": content.DEFAULT_PERSONALITY_ID,
        "personality_name": content.personality_name(content.DEFAULT_PERSONALITY_ID),
        "folder_path": None,
        "scenario_type": "instruction",
        "first_message": "Hello",
        "expected_outcome_prompt": content.expected_outcome_prompt(scenario),
        "instructions": content.scenario_instructions(scenario),
        "test_profile": None,
        "inbound_phone_number": None,
    }
    if listed:
        found.update(created_at=CATALOGUE_CREATED_AT, updated_at=CATALOGUE_CREATED_AT)
    else:
        found["project"] = agent.project
    return found


#: The catalogue's providers that the spec's ``assistant_provider`` enum does not have: an
#: agent reached over a websocket, SIP or email is a "self_hosted" agent there.
_SPEC_PROVIDER = {"websocket": "self_hosted", "sip": "self_hosted", "email": "self_hosted"}


#: The v2 ``provider.type`` enum has "custom" where v1's has "self_hosted".
_V2_PROVIDER = {"websocket": "custom", "sip": "custom", "email": "custom"}


def spec_provider(agent: AgentEntry) -> str:
    return _SPEC_PROVIDER.get(agent.provider, agent.provider)


def _agent_secrets(agent: AgentEntry) -> tuple[bool, bool]:
    """Whether the agent itself holds a LiveKit key and secret (not the project)."""
    on_agent = agent.livekit_credentials == "agent"
    return on_agent and bool(agent.livekit_api_key), on_agent and bool(agent.livekit_api_secret)


def agent_object(agent: AgentEntry) -> dict[str, Any]:
    """``GET /test_framework/v1/aiagents/{id}/`` (the spec's ``AIAgent``), secrets masked.

    As on the live service (cekura-api.md 10.1): ``livekit_api_key`` is write-only and never
    returned, ``livekit_api_key_configured`` says whether it is set; in ``livekit_data`` the
    ``api_secret`` is replaced by ``api_secret_configured``. Unset settings are left out of
    ``livekit_data``, so tests can model half-configured agents.
    """
    has_key, has_secret = _agent_secrets(agent)
    livekit_data: dict[str, Any] = {
        key: value
        for key, value in (("url", agent.livekit_url), ("agent_name", agent.livekit_agent_name))
        if value is not None
    }
    livekit_data["api_secret_configured"] = has_secret
    if agent.livekit_config:
        # The spec's LiveKit settings (LiveKitConfig) keep the LiveKit Config JSON as "config".
        livekit_data["config"] = dict(agent.livekit_config)
    return {
        "id": agent.id,
        "project": agent.project,
        "agent_name": agent.name,
        "description": "",
        "contact_number": "",
        "inbound": False,
        "language": "en",
        "assistant_provider": spec_provider(agent),
        "assistant_id": "",
        "websocket_url": "",
        "livekit_api_key_configured": has_key,
        "livekit_data": livekit_data,
        "enabled_personalities": [],
        "created_at": CATALOGUE_CREATED_AT,
        "updated_at": CATALOGUE_CREATED_AT,
    }


def agent_object_v2(agent: AgentEntry) -> dict[str, Any]:
    """``GET /test_framework/v2/aiagents/{id}/`` (the spec's ``AIAgentV2``).

    ``provider.credentials`` is null: the spec's ``ProviderCredentialsConfig`` is a ``oneOf``
    of schemas that all accept any object, so no credentials object can validate against it;
    the v1 shape carries the ``*_configured`` flags.
    """
    return {
        "id": agent.id,
        "project": agent.project,
        "name": agent.name,
        "description": "",
        "language": "en",
        "agent_speaks_first": None,
        "email_id": None,
        "enabled_personalities": [],
        "knowledge_base_files": [],
        "dynamic_variables": [],
        "mock_tools": [],
        "mock_tools_enabled": False,
        "mock_tools_provider": None,
        "provider": {
            "type": _V2_PROVIDER.get(agent.provider, agent.provider),
            "agent_id": None,
            "credentials": None,
        },
        "telephony": {
            "inbound": False,
            "outbound_numbers": [],
            "phone_number": "",
            "sip_uri": None,
            "websocket_url": None,
        },
        "created_at": CATALOGUE_CREATED_AT,
        "updated_at": CATALOGUE_CREATED_AT,
    }
