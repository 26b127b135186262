"""Pydantic models of TOML/JSON tables, with error messages a person can act on.

The catalogue's entries and the fault rules are pydantic models (``catalogue.py``,
``fault_actions.py``): the models validate, and their JSON Schemas (``docs/schemas/``) give
editors completion. Pydantic's own messages ("Input should be a valid integer") name neither
the allowed values nor the fix, so ``TableModel.validate_table`` turns the first error into
one sentence in the emulator's style::

    field 'outcome' has invalid value 'maybe'; allowed: pass, fail, error, flaky, hang
    unknown key 'outcom' (did you mean 'outcome'?); allowed keys: id, name, outcome, ...
    missing required field 'id'; add id = <positive integer>

A field says what a valid value looks like with ``Hint`` in its ``Annotated`` metadata
(``Literal`` fields list their values without one); checks across fields raise ``rule_error``
with a complete sentence.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Self, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from pytest_cekura.errors import ConfigError

#: The pydantic error type of ``rule_error``: its message is shown as it is.
_RULE = "cekura_rule"


class CatalogueError(ConfigError, ValueError):
    """The catalogue file cannot be used; the message names file, entry, field and the fix."""


@dataclass(frozen=True)
class Hint:
    """``Annotated`` metadata: what a valid value of the field looks like, for messages."""

    text: str


def rule_error(message: str) -> PydanticCustomError:
    """An error raised by a validator, shown as ``message`` (a complete sentence)."""
    return PydanticCustomError(_RULE, "{message}", {"message": message})


def invalid(name: str, value: Any, allowed: str, options: tuple[str, ...] = ()) -> str:
    hint = suggest(value, options) if isinstance(value, str) and options else ""
    return f"field {name!r} has invalid value {value!r}{hint}; {allowed}"


def suggest(word: str, options: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _non_empty(value: str) -> str:
    # An empty string is more likely a mistake than a value: absence already means "unset".
    if not value.strip():
        raise ValueError("empty")
    return value


#: A string with something in it besides spaces.
NonEmpty = AfterValidator(_non_empty)


def _describe_fields(schema: dict[str, Any], model: type[Any]) -> None:
    """Each field's ``Hint`` as its description in the JSON Schema (editors show it)."""
    for name, prop in schema.get("properties", {}).items():
        hint = model.hint(name)
        if hint is not None and "description" not in prop:
            prop["description"] = hint[:1].upper() + hint[1:] + "."


class TableModel(BaseModel):
    """A TOML table / JSON object: unknown keys are errors, never ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_describe_fields)

    #: What ``missing required field`` messages suggest, by field name.
    missing_hints: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def validate_table(cls, raw: Mapping[str, Any], where: str) -> Self:
        """The validated model, or ``CatalogueError("{where}: <one sentence>")``."""
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            errors = sorted(exc.errors(), key=cls.error_rank)  # stable: pydantic's order next
            raise CatalogueError(f"{where}: {cls.describe(errors[0], raw)}") from None

    @classmethod
    def error_rank(cls, error: ErrorDetails) -> int:
        """Which error to report first: unknown keys, as a misspelt key explains the rest."""
        return 0 if error["type"] == "extra_forbidden" else 1

    @classmethod
    def describe(cls, error: ErrorDetails, raw: Mapping[str, Any]) -> str:
        """One pydantic error as a sentence naming the field and the fix."""
        if error["type"] == _RULE:
            return str((error.get("ctx") or {})["message"])
        name = str(error["loc"][0]) if error["loc"] else ""
        if error["type"] == "extra_forbidden":
            return cls.unknown_key(name)
        if error["type"] == "missing":
            return cls.missing(name)
        # The whole value as given, also when pydantic blames one item of a list.
        value = raw.get(name, error["input"])
        allowed, options = cls.allowed(name)
        return invalid(name, value, allowed, options)

    @classmethod
    def unknown_key(cls, key: str) -> str:
        keys = tuple(cls.model_fields)
        return f"unknown key {key!r}{suggest(key, keys)}; allowed keys: {', '.join(keys)}"

    @classmethod
    def missing(cls, name: str) -> str:
        example = cls.missing_hints.get(name, "<value>")
        return f"missing required field {name!r}; add {name} = {example}"

    @classmethod
    def allowed(cls, name: str) -> tuple[str, tuple[str, ...]]:
        """The field's hint, and its allowed values if it has a closed set (for "did you mean")."""
        info = cls.model_fields.get(name)
        if info is None:
            return "", ()
        options = _literal_values(info.annotation)
        return cls.hint(name) or f"allowed: {', '.join(options)}", options

    @classmethod
    def hint(cls, name: str) -> str | None:
        """The text of the field's ``Hint``; None if it has none."""
        info = cls.model_fields.get(name)
        if info is None:
            return None
        return _hint(info.metadata) or _hint(get_args(info.annotation))


def _hint(metadata: Any) -> str | None:
    """The text of the ``Hint`` in this metadata, also inside ``Annotated[...] | None``."""
    for meta in metadata:
        if isinstance(meta, Hint):
            return meta.text
        if get_origin(meta) is Annotated and (text := _hint(get_args(meta)[1:])):
            return text
    return None


def _literal_values(annotation: Any) -> tuple[str, ...]:
    """The strings of a ``Literal`` annotation (also inside ``Annotated`` / ``| None``)."""
    if get_origin(annotation) is Literal:
        return tuple(str(value) for value in get_args(annotation))
    if get_origin(annotation) is Annotated:
        return _literal_values(get_args(annotation)[0])
    for arg in get_args(annotation):
        if values := _literal_values(arg):
            return values
    return ()
