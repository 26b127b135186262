"""Django REST Framework's field checks, worded as DRF words them: Cekura is a DRF service, so
the 400 bodies ``validation.py`` builds for run-starting requests use the same messages.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

REQUIRED = "This field is required."
NOT_NULL = "This field may not be null."
NOT_BLANK = "This field may not be blank."
NOT_STRING = "Not a valid string."
NOT_INTEGER = "A valid integer is required."


def does_not_exist(pk: int) -> str:
    return f'Invalid pk "{pk}" - object does not exist.'


def text_problem(container: Mapping[str, Any], field: str) -> str | None:
    """DRF CharField checks: required, not null, a string, not blank."""
    if field not in container:
        return REQUIRED
    value = container[field]
    if value is None:
        return NOT_NULL
    if not isinstance(value, str):
        return NOT_STRING
    if not value.strip():
        return NOT_BLANK
    return None


def list_problem(value: Any) -> str | None:
    if isinstance(value, list):
        return None
    return f'Expected a list of items but got type "{json_type(value)}".'


def as_int(value: Any) -> int | None:
    """DRF IntegerField leniency: ints and strings of digits, never bools or fractions."""
    # JSON true/false arrive as bool, which Python treats as int; they are not numbers here.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        digits = value.strip().removeprefix("-")
        if digits.isascii() and digits.isdigit():
            return int(value.strip())
    return None


def json_type(value: Any) -> str:
    names = {dict: "dict", list: "list", str: "str", bool: "bool", int: "int", float: "float"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


__all__ = [
    "NOT_BLANK",
    "NOT_INTEGER",
    "NOT_NULL",
    "NOT_STRING",
    "REQUIRED",
    "as_int",
    "does_not_exist",
    "json_type",
    "list_problem",
    "short",
    "text_problem",
]
