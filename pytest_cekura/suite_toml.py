"""The ``cekura_*.toml`` suite file as pydantic models, and its problems in words.

``TomlSuite`` is the file (``[[test]]`` entries only), ``TomlEntry`` one entry: ``name``,
``scenarios`` and the ``cekura_scenario`` marker's keywords. The models check the file's
*shape*, which ``suites.py`` must know to build each entry's marker (unknown keys, ``name``,
``scenarios`` a list); the keywords' *values* are the marker's to check, at setup, so a bad
value errors that entry alone, as it would a marked Python test. Their JSON Schema still
describes the values the marker accepts, for editors (``docs/schemas/toml-suite.schema.json``).

A Tests-as-Code document (``suite_document.py``) is a different thing and a different model:
it holds the scenarios themselves in Cekura's own format, where a TOML entry points at
dashboard scenarios by id and carries the marker's request options and pass threshold (see
docs/toml-suites.md, "TOML suite or tests as code").

Imported only when a suite file is collected: a session without one pays for no pydantic.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    WithJsonSchema,
    create_model,
    field_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from .livekit_data import LIVEKIT_DATA_KEYS

# The marker's own keyword list: an argument added to the marker is accepted here as well.
from .markers import _KEYWORDS as MARKER_KEYWORDS
from .markers import MAX_FREQUENCY, MAX_ID
from .providers import PROVIDERS
from .suites import REQUIRED_KEYS, SUITE_GLOB, TABLE
from .suites import _quoted as quoted

ENTRY_KEYS = (*REQUIRED_KEYS, *MARKER_KEYWORDS)
#: Top-level tables of an emulator catalogue, to recognise one given a suite's name.
CATALOGUE_TABLES = ("scenario", "agent", "test_profile")

_ID: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
_GATE: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "description": 'e.g. "p95 <= 1200" or "pass_rate >= 0.8"'},
        {
            "type": "object",
            "properties": {"in": {"type": "array", "items": {"type": "string"}}},
            "required": ["in"],
            "additionalProperties": False,
        },
    ]
}
#: What editors are told each marker keyword takes (the marker checks it, at setup). A
#: keyword added to the marker without an entry here is described as any value.
VALUE_SCHEMAS: Mapping[str, dict[str, Any]] = {
    "frequency": {"type": "integer", "minimum": 1, "maximum": MAX_FREQUENCY},
    "min_success_rate": {"type": "number", "minimum": 0, "maximum": 1},
    "provider": {"enum": list(PROVIDERS)},
    "agent": _ID,
    "test_profile": _ID,
    "personality": _ID,
    "publish_data_message": {},
    "scenario_fields": {"type": "object"},
    "request_fields": {"type": "object"},
    "concurrency_limit": {"type": "integer", "minimum": 1},
    "mock_tool_names": {"type": "array", "items": {"type": "string", "minLength": 1}},
    "livekit_data": {
        "type": "object",
        "properties": {
            "agent_name": {"type": "string"},
            "url": {"type": "string"},
            "config": {"type": "object"},
        },
        "additionalProperties": False,
    },
    "gates": {
        "type": "object",
        "additionalProperties": {
            "anyOf": [_GATE, {"type": "array", "items": _GATE, "minItems": 1}]
        },
    },
}
assert set(VALUE_SCHEMAS["livekit_data"]["properties"]) == set(LIVEKIT_DATA_KEYS)

#: pydantic error types of the name's own checks (their messages are written here).
_NAME_EMPTY = "suite_name_empty"
_NAME_BREAKS_ID = "suite_name_breaks_id"


def _no_null_defaults(schema: dict[str, Any]) -> None:
    # TOML has no null: an absent keyword is the marker's default, which is no value here.
    for prop in schema.get("properties", {}).values():
        if "default" in prop and prop["default"] is None:
            del prop["default"]


class _Entry(BaseModel):
    """What every entry has; the marker keywords are added from the marker's own list."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_no_null_defaults)

    name: Annotated[
        str,
        Strict(),
        WithJsonSchema(
            {
                "type": "string",
                "pattern": r"^(?!.*::)[^\r\n]*\S[^\r\n]*$",
                "description": "The test's name, unique in the file; no '::', no line breaks.",
            }
        ),
    ]
    scenarios: Annotated[
        list[Any],
        Strict(),
        WithJsonSchema(
            {
                "type": "array",
                "items": _ID,
                "minItems": 1,
                "uniqueItems": True,
                "description": "Ids of scenarios in Cekura's dashboard, e.g. [30, 31].",
            }
        ),
    ]

    @field_validator("name")
    @classmethod
    def _usable_name(cls, name: str) -> str:
        if not name.strip():
            raise PydanticCustomError(_NAME_EMPTY, "empty")
        if "::" in name or any(not char.isprintable() for char in name):
            raise PydanticCustomError(_NAME_BREAKS_ID, "breaks the test id")
        return name


def _keyword(name: str) -> Any:
    schema = {
        **VALUE_SCHEMAS.get(name, {}),
        "description": f"The cekura_scenario marker's {name}= (checked by the marker).",
    }
    return (Annotated[Any, WithJsonSchema(schema)], None)


#: One ``[[test]]`` entry.
TomlEntry: type[_Entry] = create_model(
    "TomlEntry",
    __base__=_Entry,
    __doc__="One [[test]] entry: a cekura_scenario marker written as TOML.",
    **{name: _keyword(name) for name in MARKER_KEYWORDS},
)


class TomlSuite(BaseModel):
    """A whole ``cekura_*.toml`` file: its ``[[test]]`` entries."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="pytest-cekura TOML suite")

    test: Annotated[list[TomlEntry], Strict()] = Field(default_factory=list)


class Problem:
    """The first problem of a suite file in words: ``entry`` (0-based, None for the file),
    ``key`` (the key whose own line to point at; None: the entry's header line) and the
    sentence."""

    def __init__(self, message: str, entry: int | None = None, key: str | None = None) -> None:
        self.message, self.entry, self.key = message, entry, key


def first_problem(data: Mapping[str, Any]) -> Problem | None:
    """The file's first problem, in the order a reader meets them: top-level keys, the
    ``test`` table, then entry by entry (an unknown key first, then ``name``, then
    ``scenarios``); None when the shape is right."""
    from pydantic import ValidationError

    try:
        TomlSuite.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
    else:
        return None
    order = {key: index for index, key in enumerate(data)}
    top = [e for e in errors if len(e["loc"]) == 1]
    if top:
        # Every key but ``test`` is a problem of its own, named before what ``test`` holds.
        first = min(top, key=lambda e: (e["loc"][0] == TABLE, order.get(str(e["loc"][0]), 0)))
        key = str(first["loc"][0])
        if key != TABLE:
            return Problem(_top_level_problem(key, data[key]))
        return Problem(_not_entries(data[TABLE]))
    entries: list[Any] = list(data[TABLE])
    by_entry: dict[int, list[ErrorDetails]] = {}
    for error in errors:
        by_entry.setdefault(int(error["loc"][1]), []).append(error)
    index = min(by_entry)
    raw = entries[index]
    keys = {key: n for n, key in enumerate(raw)} if isinstance(raw, dict) else {}
    error = min(by_entry[index], key=lambda e: _rank(e, keys))
    return _entry_problem(index, raw, error)


def _rank(error: ErrorDetails, keys: Mapping[str, int]) -> tuple[int, int]:
    """Unknown keys first (a misspelt key explains the rest), in the file's order."""
    field = str(error["loc"][2]) if len(error["loc"]) > 2 else ""
    if error["type"] == "extra_forbidden":
        return (0, keys.get(field, 0))
    return (1 + (REQUIRED_KEYS.index(field) if field in REQUIRED_KEYS else 0), 0)


def _entry_problem(index: int, raw: Any, error: ErrorDetails) -> Problem:
    if len(error["loc"]) == 2:  # the entry itself is not a table
        return Problem(
            f"{raw!r} is not a table of keys; write each entry as a [[{TABLE}]] table", index
        )
    key = str(error["loc"][2])
    kind = error["type"]
    if kind == "extra_forbidden":
        message = (
            f"unknown key {key!r}{suggest(key, ENTRY_KEYS)}; known keys: {', '.join(ENTRY_KEYS)}"
        )
        return Problem(message, index, key)
    if kind == "missing" and key == "name":
        return Problem(
            "missing required key 'name'; add name = \"...\" (it becomes the test's name, "
            "shown in reports and matched by -k)",
            index,
        )
    if kind == "missing":
        return Problem(
            "missing required key 'scenarios'; add scenarios = [<id>, ...] with the ids shown "
            "in Cekura's scenario list",
            index,
        )
    value = raw[key]
    if key == "name" and kind == _NAME_BREAKS_ID:
        fix = "leave out '::' and line breaks (they would break the test id)"
        return Problem(f"name = {toml(value)} is invalid; {fix}", index, key)
    if key == "name":
        fix = 'use a non-empty string, e.g. name = "refill flow"'
        return Problem(f"name = {toml(value)} is invalid; {fix}", index, key)
    plain_int = isinstance(value, int) and not isinstance(value, bool)
    example = f"[{value}]" if plain_int else "[30, 31]"
    return Problem(
        f"scenarios = {toml(value)} is invalid; use a list of scenario ids, e.g. "
        f"scenarios = {example}",
        index,
        key,
    )


def _not_entries(value: Any) -> str:
    if isinstance(value, dict):
        return f"[{TABLE}] is a single table; write [[{TABLE}]] (double brackets) above each entry"
    return f"{TABLE} = {value!r} is not a list of entries; write each entry as a [[{TABLE}]] table"


def _top_level_problem(key: str, value: Any) -> str:
    if key in CATALOGUE_TABLES:
        return (
            f"unknown top-level table {key!r}: this looks like an emulator catalogue; "
            f"give it a name that does not match {SUITE_GLOB} (e.g. cekura-catalogue.toml) so "
            "pytest does not collect it as a suite"
        )
    if key in ENTRY_KEYS:
        return (
            f"key {key!r} is outside any entry; move it below a [[{TABLE}]] line "
            f"(a key above the first [[{TABLE}]] belongs to no test)"
        )
    kind = "table" if isinstance(value, dict | list) else "key"
    return (
        f"unknown top-level {kind} {key!r}{suggest(key, (TABLE,))}; a suite file holds "
        f"only [[{TABLE}]] entries"
    )


def suggest(word: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def toml(value: Any) -> str:
    """A value roughly as it is written in TOML, so the user finds it in the file."""
    if isinstance(value, str):
        return quoted(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a suite file (published as docs/schemas/toml-suite.schema.json)."""
    return TomlSuite.model_json_schema()
