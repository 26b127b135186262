"""Lenient field types for Cekura's objects: a value of the wrong type reads as "unknown"
(None, or an empty list) instead of failing the whole object, since Cekura's schema types
many computed fields as strings and one odd field must not hide a run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BeforeValidator


def lenient_int(value: Any) -> int | None:
    """An int, also from a numeric string; None for anything else (a bool too)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def lenient_float(value: Any) -> float | None:
    """A float, also from a numeric string; None for anything else (a bool too)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def lenient_bool(value: Any) -> bool | None:
    """A bool, also from ``"true"``/``"false"``; None for anything else."""
    # ``success`` is typed boolean; anything else (a generator placeholder, a string) is read
    # as "not scored yet" rather than rejected, so one odd run cannot hide the others.
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    return None


def config_flag(value: Any) -> bool | None:
    """A ``*_configured`` flag (typed string by the generator): None when absent."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    return bool(value)


def lower_status(value: Any) -> str:
    """A status as a stripped lower-case string (``""`` for none)."""
    # The SDK upper-cases before comparing; we lower-case once here.
    return "" if value is None else str(value).strip().lower()


def string_list(value: Any) -> list[str]:
    """A list of strings; one string is a list of one, None an empty list."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def optional_status(value: Any) -> str | None:
    """``lower_status``, with None for an empty status."""
    return lower_status(value) or None


def dict_or_none(value: Any) -> Any:
    """A mapping as given; anything else None (the object is then absent, not invalid)."""
    return value if isinstance(value, Mapping) else None


LenientInt = Annotated[int | None, BeforeValidator(lenient_int)]
LenientBool = Annotated[bool | None, BeforeValidator(lenient_bool)]
LenientFloat = Annotated[float | None, BeforeValidator(lenient_float)]
Status = Annotated[str, BeforeValidator(lower_status)]
StringList = Annotated[list[str], BeforeValidator(string_list)]
