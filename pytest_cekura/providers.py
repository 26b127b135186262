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
    #: Optional top-level fields of the marker the endpoint's schema accepts
    #: (``concurrency_limit``, ``mock_tool_names``, ``livekit_data``); the contract's
    #: request schemas are the source.
    options: frozenset[str] = frozenset()
    #: Sends one personality or test profile as ``personality_id`` / ``test_profile_id``,
    #: the form the LiveKit v2 schema gives for a single value (cekura-api.md 10.2); the
    #: others get the list forms, which every schema that takes either form has.
    single_overrides: bool = False


def _provider(name: str, path: str, family: Literal["objects", "ids"], **kw: Any) -> Provider:
    return Provider(name, f"/test_framework/v1/{path}/", family, **kw)


_LIMIT_AND_MOCKS = frozenset({"concurrency_limit", "mock_tool_names"})
_MOCKS = frozenset({"mock_tool_names"})


#: Every run-starting endpoint of the reference, by the name the marker's ``provider=`` takes.
#: Paths are the API reference's where it has one, else the official SDK's, with the slash.
PROVIDERS: Mapping[str, Provider] = {
    p.name: p
    for p in (
        _provider(
            "livekit",
            "scenarios-external/run_scenarios_livekit_v2",
            "objects",
            options=_LIMIT_AND_MOCKS | {"livekit_data"},
            single_overrides=True,
        ),
        _provider(
            "livekit_v1",
            "scenarios-external/run_scenarios_livekit",
            "objects",
            takes_frequency=False,
            required_fields=("livekit_room_url", "access_token"),
        ),
        _provider(
            "pipecat", "scenarios/run_scenarios_pipecat_v2", "objects", options=_LIMIT_AND_MOCKS
        ),
        _provider(
            "pipecat_v1",
            "scenarios/run_scenarios_pipecat",
            "objects",
            takes_frequency=False,
            required_fields=("pipecat_room_url",),
            options=_MOCKS,
        ),
        _provider(
            "websocket",
            "scenarios/run_scenarios_with_websockets",
            "objects",
            required_fields=("websocket_url",),
            options=_MOCKS,
        ),
        _provider("voice", "scenarios/run_scenarios", "ids", options=_LIMIT_AND_MOCKS),
        _provider("text", "scenarios/run_scenarios_text", "ids", options=_LIMIT_AND_MOCKS),
        _provider(
            "vapi",
            "scenarios/run_scenarios_vapi_webrtc",
            "ids",
            required_fields=("vapi_assistant_id",),
            options=_LIMIT_AND_MOCKS,
        ),
        _provider(
            "retell",
            "scenarios-external/run_scenarios_retell_webrtc",
            "ids",
            options=_LIMIT_AND_MOCKS,
        ),
        _provider(
            "elevenlabs",
            "scenarios-external/run_scenarios_elevenlabs",
            "ids",
            options=_LIMIT_AND_MOCKS,
        ),
        _provider("sip", "scenarios-external/run_scenarios_sip", "ids", options=_LIMIT_AND_MOCKS),
        _provider("email", "scenarios/run_scenarios_email", "ids"),
        _provider("chirp", "scenarios/run_scenarios_chirp", "ids", options=_LIMIT_AND_MOCKS),
        _provider(
            "agora", "scenarios-external/run_scenarios_agora", "ids", options=_LIMIT_AND_MOCKS
        ),
    )
}
