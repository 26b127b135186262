"""Validation of run-starting request bodies, with Django-REST-Framework-style 400 bodies.

Cekura is a DRF service, so clients see field-keyed errors such as
``{"frequency": ["Ensure this value is less than or equal to 100."]}``; the emulator uses the
same wording so that client error reporting is exercised with realistic bodies. All field
errors are collected before answering, as DRF does, and nothing is created on a 400.

The runners and what each requires are in ``runners.py``.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pytest_cekura.emulator.catalogue import Catalogue
from pytest_cekura.emulator.drf_fields import (
    NOT_INTEGER,
    NOT_NULL,
    NOT_STRING,
    REQUIRED,
    as_int,
    does_not_exist,
    json_type,
    list_problem,
    short,
    text_problem,
)
from pytest_cekura.emulator.runners import RUNNERS, Runner
from pytest_cekura.emulator.state import LivekitOverride, NewResult, ScenarioItem

# RUNNERS and Runner were defined here before runners.py; importing them from here still works.
__all__ = ["RUNNERS", "InvalidRequestError", "Runner", "parse_new_result"]

MAX_FREQUENCY = 100
MAX_NAME_LENGTH = 255

Errors = dict[str, Any]
_WEBSOCKET_SCHEMES = ("ws://", "wss://")
_LIVEKIT = "run_scenarios_livekit"


class InvalidRequestError(Exception):
    """The body is invalid; ``errors`` is the JSON body of the 400 answer."""

    def __init__(self, errors: dict[str, Any]) -> None:
        super().__init__(errors)
        self.errors = errors


def parse_new_result(
    body: Any, runner: Runner, catalogue: Catalogue, *, strict: bool = False
) -> NewResult:
    """Turn a run-starting request body into a ``NewResult`` or raise ``InvalidRequestError``.

    ``strict``: also reject what the OpenAPI document forbids but the lenient emulator
    accepts for the official CLI's sake (bare ids where the spec has objects, and the reverse;
    ``agent_id`` where the spec names the field ``agent``).
    """
    if not isinstance(body, dict):
        kind = json_type(body)
        raise InvalidRequestError(
            {"non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]}
        )
    errors: Errors = {}
    if strict:
        _strict_shape(body, runner, errors)
        if errors:
            raise InvalidRequestError(errors)
    items = _scenarios(body, runner, catalogue, errors)
    frequency = _frequency(body, errors) if runner.takes_frequency else 1
    name = _name(body, errors)
    agent = _request_agent(body, runner, catalogue, errors)
    for field in runner.body_fields:
        _text(body, field, errors)
    _documented_types(body, errors)
    profiles = _id_list(body, "test_profile_ids", errors)
    personalities = _id_list(body, "personality_ids", errors)
    profile = _optional_id(body, "test_profile_id", errors)
    personality = _optional_id(body, "personality_id", errors)
    concurrency = _concurrency_limit(body, errors)
    mock_tools = _string_list(body, "mock_tool_names", errors)
    # Only the LiveKit runners have the field; DRF ignores unknown fields elsewhere.
    livekit = _livekit_data(body, errors) if runner.action.startswith(_LIVEKIT) else None
    if errors:
        raise InvalidRequestError(dict(errors))
    # The single-id forms stand for a one-element list; given both, the list wins (a guess:
    # the spec documents both fields without saying how they combine).
    chosen_personalities: list[int | None] = (
        list(personalities) or ([personality] if personality else []) or [None]
    )
    chosen_profiles: list[int | None] = list(profiles) or ([profile] if profile else []) or [None]
    if runner.family == "ids":
        # Voice/text: every personality x test profile combination is a run (cekura-api.md 2.3).
        combinations = list(itertools.product(chosen_personalities, chosen_profiles))
    else:
        # Object-list family: the docs count len(scenarios) x frequency runs; whether these
        # lists multiply it is unverified (cekura-api.md 2.2), so the emulator does not guess
        # and gives every run the first personality and test profile.
        combinations = [(chosen_personalities[0], chosen_profiles[0])]
    return NewResult(
        items=tuple(items),
        frequency=frequency,
        name=name,
        agent=agent,
        combinations=tuple(combinations),
        run_as_text=runner.run_as_text,
        concurrency_limit=concurrency,
        mock_tool_names=tuple(mock_tools),
        livekit_data=livekit,
    )


#: Other fields the spec's run-starting bodies document, with their types: checked when
#: present (DRF validates every declared field), otherwise not used by the emulator.
_STRING_FIELDS = (
    "agent_number",
    "outbound_phone_number",
    "folder_path",
    "retell_agent_id",
    "elevenlabs_agent_id",
    "sip_endpoint",
    "assistant_id",
)
_NULLABLE_STRING_FIELDS = ("agent_email",)
_OBJECT_FIELDS = ("websocket_headers", "elevenlabs_data", "pipecat_data")
_INT_FIELDS = ("project_id",)
_MODES = ("same_number", "different_numbers")


def _documented_types(body: dict[str, Any], errors: Errors) -> None:
    for field in (*_STRING_FIELDS, *_NULLABLE_STRING_FIELDS):
        value = body.get(field)
        if field in body and not isinstance(value, str):
            if value is None and field in _NULLABLE_STRING_FIELDS:
                continue
            errors[field] = [NOT_NULL if value is None else NOT_STRING]
    for field in _OBJECT_FIELDS:
        if field in body and not isinstance(body[field], dict):
            kind = json_type(body[field])
            errors[field] = [f'Expected a dictionary of items but got type "{kind}".']
    for field in _INT_FIELDS:
        if field in body and as_int(body[field]) is None:
            errors[field] = [NOT_INTEGER]
    if "mode" in body and body["mode"] not in _MODES:
        errors["mode"] = [f'"{short(body["mode"])}" is not a valid choice.']
    # The top-level websocket_url of the text runner (the websocket runner has it per item).
    if "websocket_url" in body and not isinstance(body["websocket_url"], str):
        errors["websocket_url"] = [NOT_STRING]


def _strict_shape(body: dict[str, Any], runner: Runner, errors: Errors) -> None:
    """The spec's element and field names, which the live service enforces (section 10.2)."""
    elements = body.get("scenarios")
    if isinstance(elements, list):
        if runner.object_items:
            bad = [{} if isinstance(e, dict) else _not_a_dict(e) for e in elements]
            if any(bad):
                errors["scenarios"] = bad
        elif runner.family == "ids" and any(
            not isinstance(e, int) or isinstance(e, bool) for e in elements
        ):
            errors["scenarios"] = [
                f"scenarios[{i}]: {NOT_INTEGER} Send scenario ids, e.g. [30, 31]."
                for i, e in enumerate(elements)
                if not isinstance(e, int) or isinstance(e, bool)
            ]
    if runner.frequency_required and "frequency" not in body:
        errors["frequency"] = [REQUIRED]
    if runner.agent_field_only and "agent_id" in body:
        errors["agent_id"] = [
            f'{runner.action} takes the agent as "agent" (an id), not "agent_id".'
        ]


def _not_a_dict(value: Any) -> dict[str, list[str]]:
    kind = json_type(value)
    return {"non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]}


def _optional_id(body: dict[str, Any], field: str, errors: Errors) -> int | None:
    value = body.get(field)
    if value is None:
        return None
    number = as_int(value)
    if number is None or number <= 0:
        errors[field] = [NOT_INTEGER]
        return None
    return number


def _concurrency_limit(body: dict[str, Any], errors: Errors) -> int | None:
    value = body.get("concurrency_limit")
    if value is None:
        return None
    number = as_int(value)
    if number is None:
        errors["concurrency_limit"] = [NOT_INTEGER]
    elif number < 1:
        errors["concurrency_limit"] = ["Ensure this value is greater than or equal to 1."]
    else:
        return number
    return None


def _string_list(body: dict[str, Any], field: str, errors: Errors) -> list[str]:
    items = body.get(field)
    if items is None:
        return []
    problem = list_problem(items)
    if problem:
        errors[field] = [problem]
        return []
    bad = [f"{field}[{i}]: {NOT_STRING}" for i, x in enumerate(items) if not isinstance(x, str)]
    if bad:
        errors[field] = bad
        return []
    return list(items)


def _livekit_data(body: dict[str, Any], errors: Errors) -> LivekitOverride | None:
    """``livekit_data`` (spec ``LivekitRunDataOverride``): ``agent_name``, ``url``, ``config``."""
    value = body.get("livekit_data")
    if value is None:
        return None
    if not isinstance(value, dict):
        kind = json_type(value)
        errors["livekit_data"] = {
            "non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]
        }
        return None
    found: dict[str, list[str]] = {}
    for name in ("agent_name", "url"):
        if value.get(name) is not None and not isinstance(value[name], str):
            found[name] = [NOT_STRING]
    if found:
        errors["livekit_data"] = found
        return None
    return LivekitOverride(
        agent_name=value.get("agent_name"),
        url=value.get("url"),
        config=copy.deepcopy(value["config"]) if "config" in value else None,
        has_config="config" in value,
    )


def _scenarios(
    body: dict[str, Any], runner: Runner, catalogue: Catalogue, errors: Errors
) -> list[ScenarioItem]:
    elements = body.get("scenarios")
    selectors = [key for key in ("tags", "folder_path") if body.get(key) not in (None, "", [])]
    by_selection = runner.family == "ids" and (
        (elements is None and selectors) or isinstance(elements, int | str)
    )
    if by_selection and not isinstance(elements, bool):
        # cekura-api.md 2.3 lets voice/text pick scenarios by tags, folder, count or "all";
        # the catalogue has no tags or folders, so say so instead of "This field is required."
        given = ", ".join(selectors) if elements is None else f"scenarios={short(elements)}"
        errors["scenarios"] = [
            f"The emulator selects scenarios by id only; {given} is not emulated. "
            "Send scenarios as a list of ids, e.g. [30, 31]."
        ]
        return []
    if "scenarios" not in body:
        errors["scenarios"] = [REQUIRED]
        return []
    problem = list_problem(elements)
    if problem:
        errors["scenarios"] = [problem]
        return []
    if not elements:
        errors["scenarios"] = ["This list may not be empty."]
        return []
    items: list[ScenarioItem] = []
    messages: list[str] = []
    for index, element in enumerate(elements):
        scenario_id = _scenario_id(element)
        if scenario_id is None:
            messages.append(
                f"Invalid scenario: scenarios[{index}] is {short(element)}; expected "
                '{"scenario": <positive integer id>} or a positive integer id.'
            )
            continue
        extras = dict(element) if isinstance(element, dict) else {}
        extras.pop("scenario", None)
        items.append(ScenarioItem(scenario_id, MappingProxyType(extras)))
    if messages:
        errors["scenarios"] = messages
        return []
    item_errors = [_item_errors(item, runner) for item in items]
    if any(item_errors):
        # DRF's nested-serializer shape: one error object per element, {} for valid ones.
        errors["scenarios"] = item_errors
        return []
    # DRF resolves primary keys one by one and stops at the first that does not exist.
    missing = next((i.scenario_id for i in items if not catalogue.has_scenario(i.scenario_id)), 0)
    if missing:
        errors["scenarios"] = [does_not_exist(missing)]
        return []
    return items


def _item_errors(item: ScenarioItem, runner: Runner) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for field in runner.item_fields:
        message = text_problem(item.extras, field)
        if message is None and field == "websocket_url" and not _is_websocket_url(item.extras):
            message = "Enter a valid WebSocket URL starting with ws:// or wss://."
        if message is not None:
            found[field] = [message]
    return found


def _is_websocket_url(extras: Mapping[str, Any]) -> bool:
    url = extras.get("websocket_url")
    return isinstance(url, str) and url.startswith(_WEBSOCKET_SCHEMES)


def _scenario_id(item: Any) -> int | None:
    # Object-list family ({"scenario": id, ...extras}) and the CLI's plain id list.
    value = item.get("scenario") if isinstance(item, dict) else item
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def _frequency(body: dict[str, Any], errors: Errors) -> int:
    value = body.get("frequency", 1)
    number = as_int(value)
    if value is None:
        errors["frequency"] = [NOT_NULL]
    elif number is None:
        errors["frequency"] = [NOT_INTEGER]
    elif number < 1:
        errors["frequency"] = ["Ensure this value is greater than or equal to 1."]
    elif number > MAX_FREQUENCY:
        errors["frequency"] = [f"Ensure this value is less than or equal to {MAX_FREQUENCY}."]
    else:
        return number
    return 1


def _name(body: dict[str, Any], errors: Errors) -> str | None:
    value = body.get("name")
    if value is None:
        return None
    if not isinstance(value, str):
        errors["name"] = ["Not a valid string."]
        return None
    if len(value) > MAX_NAME_LENGTH:
        errors["name"] = [f"Ensure this field has no more than {MAX_NAME_LENGTH} characters."]
        return None
    return value


def _request_agent(
    body: dict[str, Any], runner: Runner, catalogue: Catalogue, errors: Errors
) -> int | None:
    if runner.family == "objects":
        # The documented field is "agent"; the SDK's CLI sends "agent_id". Accept both.
        fields: tuple[str, ...] = ("agent", "agent_id")
    else:
        fields = ("agent_id",)
    for field in fields:
        agent = _agent(body, field, catalogue, errors)
        if agent is not None or field in errors:
            return agent
    # Voice/text-style runners identify the agent by Cekura id or by the provider's assistant
    # id; with an assistant id the emulator falls back to the scenarios' own agents. A null
    # agent_id counts as missing, so clients that always send the key get the same answer.
    if runner.agent_required and body.get("assistant_id") in (None, ""):
        errors["agent_id"] = [REQUIRED]
    return None


def _agent(body: dict[str, Any], field: str, catalogue: Catalogue, errors: Errors) -> int | None:
    value = body.get(field)
    if value is None:
        return None
    number = as_int(value)
    if number is None:
        errors[field] = ["Incorrect type. Expected pk value, received " + json_type(value) + "."]
        return None
    if not catalogue.has_agent(number):
        errors[field] = [does_not_exist(number)]
        return None
    return number


def _text(body: Mapping[str, Any], field: str, errors: Errors) -> None:
    message = text_problem(body, field)
    if message is not None:
        errors[field] = [message]


def _id_list(body: dict[str, Any], field: str, errors: Errors) -> list[int]:
    items = body.get(field)
    if items is None:
        return []
    problem = list_problem(items)
    if problem:
        errors[field] = [problem]
        return []
    ids = [as_int(item) for item in items]
    bad = [f"{field}[{i}]: {NOT_INTEGER}" for i, n in enumerate(ids) if n is None or n <= 0]
    if bad:
        errors[field] = bad
        return []
    return [n for n in ids if n is not None]
