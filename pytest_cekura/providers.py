"""Cekura's run-starting endpoints and the body each takes (cekura-api.md section 2).

Plain data with no third-party import, so the plugin can validate markers and settings at
start-up without loading the HTTP stack.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

DEFAULT_BASE_URL = "https://api.cekura.ai"


@dataclass(frozen=True)
class Provider:
    """A run-starting endpoint and the shape of body it takes (cekura-api.md section 2).

    ``objects`` endpoints take ``scenarios: [{"scenario": id, ...}]`` and an ``agent``;
    ``ids`` endpoints take ``scenarios: [id, ...]`` and a required ``agent_id``.
    """

    name: str
    path: str
    family: Literal["objects", "ids"]
    #: False for the v1 room-URL runners, which start one run per element: repeat it instead.
    takes_frequency: bool = True
    #: Fields the endpoint requires in each scenario element (objects) or at the top (ids).
    required_fields: tuple[str, ...] = ()
    #: Optional fields of the marker the endpoint's schema accepts (``agent``,
    #: ``test_profile``, ``personality``, ``concurrency_limit``, ``mock_tool_names``,
    #: ``livekit_data``); the contract's request schemas are the source. A marker giving
    #: another is refused at collection: the live service would drop it silently.
    options: frozenset[str] = frozenset()
    #: The schema has ``name``: the result carries the request's unique name, so a POST that
    #: may have reached Cekura is looked up by it. Without it, it cannot be (docs/reliability.md).
    takes_name: bool = True
    #: Sends one personality or test profile as ``personality_id`` / ``test_profile_id``,
    #: the form the LiveKit v2 schema gives for a single value (cekura-api.md 10.2); the
    #: others get the list forms, which every schema that takes either form has.
    single_overrides: bool = False


def _provider(name: str, path: str, family: Literal["objects", "ids"], **kw: Any) -> Provider:
    return Provider(name, f"/test_framework/v1/{path}/", family, **kw)


_LIMIT_AND_MOCKS = frozenset({"concurrency_limit", "mock_tool_names"})
_MOCKS = frozenset({"mock_tool_names"})
_AGENT = frozenset({"agent"})
#: The agent, test profile and personality overrides.
_OVERRIDES = frozenset({"agent", "test_profile", "personality"})
#: Every option an endpoint with the full ``SchemaPostRunScenarios`` body takes.
_ALL = _LIMIT_AND_MOCKS | _OVERRIDES


#: Every run-starting endpoint of the reference, by the name the marker's ``provider=`` takes.
#: Paths are the API reference's where it has one, else the official SDK's, with the slash.
PROVIDERS: Mapping[str, Provider] = {
    p.name: p
    for p in (
        _provider(
            "livekit",
            "scenarios-external/run_scenarios_livekit_v2",
            "objects",
            options=_ALL | {"livekit_data"},
            single_overrides=True,
        ),
        _provider(
            "livekit_v1",
            "scenarios-external/run_scenarios_livekit",
            "objects",
            takes_frequency=False,
            required_fields=("livekit_room_url", "access_token"),
            options=_OVERRIDES,
        ),
        # SchemaPostRunScenariosPipecatV2 has no agent: the runs take their scenarios' own.
        _provider(
            "pipecat",
            "scenarios/run_scenarios_pipecat_v2",
            "objects",
            options=_ALL - _AGENT,
        ),
        _provider(
            "pipecat_v1",
            "scenarios/run_scenarios_pipecat",
            "objects",
            takes_frequency=False,
            required_fields=("pipecat_room_url",),
            options=_MOCKS | _AGENT,
            takes_name=False,
        ),
        _provider(
            "websocket",
            "scenarios/run_scenarios_with_websockets",
            "objects",
            required_fields=("websocket_url",),
            options=_MOCKS | _AGENT,
            takes_name=False,
        ),
        _provider("voice", "scenarios/run_scenarios", "ids", options=_ALL),
        _provider("text", "scenarios/run_scenarios_text", "ids", options=_ALL),
        _provider(
            "vapi",
            "scenarios/run_scenarios_vapi_webrtc",
            "ids",
            required_fields=("vapi_assistant_id",),
            # RunScenariosVapiWebRTCRequest / ...RetellWebRTCRequest: no profile, no personality.
            options=_LIMIT_AND_MOCKS | _AGENT,
        ),
        _provider(
            "retell",
            "scenarios-external/run_scenarios_retell_webrtc",
            "ids",
            options=_LIMIT_AND_MOCKS | _AGENT,
        ),
        _provider(
            "elevenlabs",
            "scenarios-external/run_scenarios_elevenlabs",
            "ids",
            options=_ALL,
        ),
        _provider("sip", "scenarios-external/run_scenarios_sip", "ids", options=_ALL),
        # RunScenariosEmail: agent_id, agent_email, frequency and scenarios only.
        _provider(
            "email", "scenarios/run_scenarios_email", "ids", options=_AGENT, takes_name=False
        ),
        _provider("chirp", "scenarios/run_scenarios_chirp", "ids", options=_ALL),
        _provider("agora", "scenarios-external/run_scenarios_agora", "ids", options=_ALL),
    )
}
