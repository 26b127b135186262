"""Validation of run-starting request bodies, with Django-REST-Framework-style 400 bodies.

Cekura is a DRF service, so clients see field-keyed errors such as
``{"frequency": ["Ensure this value is less than or equal to 100."]}``; the emulator uses the
same wording so that client error reporting is exercised with realistic bodies. All field
errors are collected before answering, as DRF does.
"""

from __future__ import annotations

import json
from typing import Any

from pytest_cekura.emulator.state import NewResult

REQUIRED = "This field is required."
NOT_NULL = "This field may not be null."
NOT_INTEGER = "A valid integer is required."
MAX_FREQUENCY = 100
MAX_NAME_LENGTH = 255

Errors = dict[str, list[str]]


class InvalidRequestError(Exception):
    """The body is invalid; ``errors`` is the JSON body of the 400 answer."""

    def __init__(self, errors: dict[str, Any]) -> None:
        super().__init__(errors)
        self.errors = errors


def parse_new_result(body: Any) -> NewResult:
    """Turn a LiveKit v2 / Pipecat v2 request body into a ``NewResult`` or raise."""
    if not isinstance(body, dict):
        kind = _json_type(body)
        raise InvalidRequestError(
            {"non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]}
        )
    errors: Errors = {}
    scenario_ids = _scenarios(body, errors)
    frequency = _frequency(body, errors)
    name = _name(body, errors)
    # The documented field is "agent"; the SDK's CLI sends "agent_id". Accept both.
    agent = _agent(body, "agent", errors) or _agent(body, "agent_id", errors)
    profiles = _id_list(body, "test_profile_ids", errors)
    personalities = _id_list(body, "personality_ids", errors)
    if errors:
        raise InvalidRequestError(dict(errors))
    return NewResult(
        scenario_ids=tuple(scenario_ids),
        frequency=frequency,
        name=name,
        agent=agent,
        # One profile/personality for every run: the LiveKit v2 docs do not say these lists
        # multiply the run count (they do for voice/text), so the emulator does not guess.
        test_profile_id=profiles[0] if profiles else None,
        personality_id=personalities[0] if personalities else None,
    )


def _scenarios(body: dict[str, Any], errors: Errors) -> list[int]:
    if "scenarios" not in body:
        errors["scenarios"] = [REQUIRED]
        return []
    items = body["scenarios"]
    problem = _list_problem(items)
    if problem:
        errors["scenarios"] = [problem]
        return []
    if not items:
        errors["scenarios"] = ["This list may not be empty."]
        return []
    ids: list[int] = []
    messages: list[str] = []
    for index, item in enumerate(items):
        scenario_id = _scenario_id(item)
        if scenario_id is None:
            messages.append(
                f"Invalid scenario: scenarios[{index}] is {_short(item)}; expected "
                '{"scenario": <positive integer id>} or a positive integer id.'
            )
        else:
            ids.append(scenario_id)
    if messages:
        errors["scenarios"] = messages
    return ids


def _scenario_id(item: Any) -> int | None:
    # Object-list family ({"scenario": id, ...extras}) and the CLI's plain id list.
    value = item.get("scenario") if isinstance(item, dict) else item
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def _frequency(body: dict[str, Any], errors: Errors) -> int:
    value = body.get("frequency", 1)
    number = _as_int(value)
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


def _agent(body: dict[str, Any], field: str, errors: Errors) -> int | None:
    value = body.get(field)
    if value is None:
        return None
    number = _as_int(value)
    if number is None:
        errors[field] = ["Incorrect type. Expected pk value, received " + _json_type(value) + "."]
        return None
    if number <= 0:
        errors[field] = [f'Invalid pk "{number}" - object does not exist.']
        return None
    return number


def _id_list(body: dict[str, Any], field: str, errors: Errors) -> list[int]:
    items = body.get(field)
    if items is None:
        return []
    problem = _list_problem(items)
    if problem:
        errors[field] = [problem]
        return []
    ids = [_as_int(item) for item in items]
    bad = [f"{field}[{i}]: {NOT_INTEGER}" for i, n in enumerate(ids) if n is None or n <= 0]
    if bad:
        errors[field] = bad
        return []
    return [n for n in ids if n is not None]


def _list_problem(value: Any) -> str | None:
    if isinstance(value, list):
        return None
    return f'Expected a list of items but got type "{_json_type(value)}".'


def _as_int(value: Any) -> int | None:
    """DRF IntegerField leniency: ints and strings of digits, never bools or fractions."""
    # JSON true/false arrive as bool, which Python treats as int; they are not numbers here.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        digits = value.strip().removeprefix("-")
        if digits.isascii() and digits.isdigit():
            return int(value.strip())
    return None


def _json_type(value: Any) -> str:
    names = {dict: "dict", list: "list", str: "str", bool: "bool", int: "int", float: "float"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."
