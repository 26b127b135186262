"""The run-starting endpoints the emulator serves, ``POST .../scenarios[-external]/<action>/``.

Every runner of cekura-api.md 2.1 (except the JSON-spec one) is described by a ``Runner``:
which body family it takes, which fields each scenario element or the body must carry, and
whether it takes ``frequency``. ``validation.py`` checks bodies against them; the routing
serves one path per runner.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

Family = Literal["objects", "ids"]


@dataclass(frozen=True)
class Runner:
    """One run-starting endpoint, ``POST .../scenarios[-external]/<action>/``."""

    action: str
    #: ``objects``: ``scenarios: [{"scenario": id, ...}]`` and ``agent``; ``ids``:
    #: ``scenarios: [id, ...]`` and ``agent_id``. Both families accept both element forms,
    #: because the official CLI sends plain ids to the LiveKit/Pipecat v2 endpoints.
    family: Family
    #: Fields each scenario element must carry (objects family).
    item_fields: tuple[str, ...] = ()
    #: Non-empty strings the body must carry (e.g. Vapi's assistant id).
    body_fields: tuple[str, ...] = ()
    #: False for the v1 room-URL runners: one run per element, ``frequency`` is ignored.
    takes_frequency: bool = True
    #: ids family: 400 unless ``agent_id`` or ``assistant_id`` is given.
    agent_required: bool = False
    run_as_text: bool = False
    #: The status of the spec's success answer: 200, but 201 for the text and websocket
    #: runners (their ``responses`` in the OpenAPI document).
    created_status: int = 200
    #: Strict mode: the spec's scenario elements are objects for this runner, so a bare id
    #: is a 400 (the official CLI sends bare ids; the lenient emulator accepts them).
    object_items: bool = False
    #: Strict mode: the spec's body has an ``agent`` field and no ``agent_id``.
    agent_field_only: bool = False
    #: Strict mode: the spec lists ``frequency`` as required (websockets, email).
    frequency_required: bool = False


def _ids(
    action: str,
    *,
    body_fields: tuple[str, ...] = (),
    agent_required: bool = True,
    run_as_text: bool = False,
    created_status: int = 200,
) -> Runner:
    """An id-list runner; they all take ``frequency`` and, but for Vapi, need an agent."""
    return Runner(
        action,
        "ids",
        body_fields=body_fields,
        agent_required=agent_required,
        run_as_text=run_as_text,
        created_status=created_status,
    )


RUNNERS: Mapping[str, Runner] = MappingProxyType(
    {
        runner.action: runner
        for runner in (
            Runner("run_scenarios_livekit_v2", "objects", object_items=True, agent_field_only=True),
            Runner(
                "run_scenarios_livekit",
                "objects",
                item_fields=("livekit_room_url", "access_token"),
                takes_frequency=False,
                object_items=True,
            ),
            Runner("run_scenarios_pipecat_v2", "objects", object_items=True, agent_field_only=True),
            Runner(
                "run_scenarios_pipecat",
                "objects",
                item_fields=("pipecat_room_url",),
                takes_frequency=False,
                object_items=True,
                agent_field_only=True,
            ),
            Runner(
                "run_scenarios_with_websockets",
                "objects",
                item_fields=("websocket_url",),
                created_status=201,
                object_items=True,
                agent_field_only=True,
                frequency_required=True,
            ),
            _ids("run_scenarios"),
            _ids("run_scenarios_text", run_as_text=True, created_status=201),
            # The reference (2.6) says Vapi takes the agent from the first scenario when
            # agent_id is missing, so only the Vapi assistant id is required there.
            _ids(
                "run_scenarios_vapi_webrtc",
                body_fields=("vapi_assistant_id",),
                agent_required=False,
            ),
            _ids("run_scenarios_retell_webrtc"),
            _ids("run_scenarios_elevenlabs"),
            _ids("run_scenarios_sip"),
            Runner(
                "run_scenarios_email",
                "ids",
                agent_required=True,
                run_as_text=True,
                frequency_required=True,
            ),
            _ids("run_scenarios_chirp"),
            _ids("run_scenarios_agora"),
        )
    }
)
