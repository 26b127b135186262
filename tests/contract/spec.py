"""The contract: Cekura's OpenAPI subset plus the overlay, and validators built from it.

``CEKURA_OPENAPI_SPEC`` (a path) points the contract tests at another copy of the spec, e.g. a
newer cut of Cekura's document; the overlay (``CEKURA_OPENAPI_OVERLAY``) applies to it too, and
an entry whose ``expect`` no longer holds fails loudly, so a fix upstream retires it.

Validation is JSON Schema 2020-12 (the dialect of OpenAPI 3.1) with two OpenAPI rules added:
a ``writeOnly`` property must never appear in a response, a ``readOnly`` one never in a
request; and ``date-time`` strings must parse.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal

import jsonschema
from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from jsonschema.protocols import Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

HERE = Path(__file__).parent
SPEC_PATH = Path(os.environ.get("CEKURA_OPENAPI_SPEC", HERE / "cekura-openapi-subset.json"))
OVERLAY_PATH = Path(os.environ.get("CEKURA_OPENAPI_OVERLAY", HERE / "overlay.json"))
SPEC_URI = "urn:cekura-openapi"
METHODS = ("get", "post", "put", "patch", "delete")

Direction = Literal["request", "response"]


def load_raw() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    return data


def load_overlay() -> list[dict[str, Any]]:
    corrections: list[dict[str, Any]] = json.loads(OVERLAY_PATH.read_text(encoding="utf-8"))[
        "corrections"
    ]
    return corrections


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def _unescape(segment: str) -> str:
    return segment.replace("~1", "/").replace("~0", "~")


def matching_pointers(document: Any, pattern: str) -> list[str]:
    """Pointers in ``document`` matching ``pattern``; a segment may hold ``*`` wildcards."""
    found = [("", document)]
    for raw in pattern.strip("/").split("/"):
        segment = _unescape(raw)
        step: list[tuple[str, Any]] = []
        for pointer, node in found:
            if not isinstance(node, dict):
                continue
            for key, child in node.items():
                if fnmatch.fnmatchcase(key, segment) if "*" in segment else key == segment:
                    step.append((f"{pointer}/{_escape(key)}", child))
        found = step
    return [pointer for pointer, _ in found]


def resolve(document: Any, pointer: str) -> Any:
    node = document
    for raw in pointer.strip("/").split("/"):
        node = node[_unescape(raw)]
    return node


def apply_overlay(spec: dict[str, Any], corrections: list[dict[str, Any]]) -> dict[str, Any]:
    """A corrected copy of ``spec``; raises AssertionError when an entry no longer applies."""
    corrected = copy.deepcopy(spec)
    for entry in corrections:
        assert entry.get("reason"), f"overlay entry {entry['id']} gives no reason"
        for pattern in entry["pointers"]:
            pointers = matching_pointers(corrected, pattern)
            assert pointers, f"overlay entry {entry['id']}: {pattern} matches nothing in the spec"
            for pointer in pointers:
                node = resolve(corrected, pointer)
                stale = {k: v for k, v in entry["expect"].items() if node.get(k) != v}
                assert not stale, (
                    f"overlay entry {entry['id']}: at {pointer} the spec no longer says "
                    f"{stale} (it says {node}); remove or update the correction"
                )
                for key in entry.get("remove", []):
                    node.pop(key, None)
                node.update(copy.deepcopy(entry.get("set", {})))
    return corrected


def _write_only(validator: Validator, value: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if value:
        yield ValidationError("a writeOnly property must never be returned")


def _read_only(validator: Validator, value: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if value:
        yield ValidationError("a readOnly property must never be sent")


def _date_time(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    datetime.fromisoformat(instance)  # Python 3.11+ reads RFC 3339, "Z" included
    return True


_FORMATS = FormatChecker(formats=())
_FORMATS.checks("date-time", raises=ValueError)(_date_time)

ResponseValidator = jsonschema.validators.extend(
    Draft202012Validator, {"writeOnly": _write_only}, version="cekura-response"
)
RequestValidator = jsonschema.validators.extend(
    Draft202012Validator, {"readOnly": _read_only}, version="cekura-request"
)


@dataclass(frozen=True)
class Operation:
    template: str  # the spec's path, e.g. /test_framework/v2/results/{id}/
    method: str  # lower case
    node: Mapping[str, Any]

    @property
    def key(self) -> tuple[str, str]:
        return self.template, self.method


class Contract:
    """The corrected spec, with lookups and validators."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        resource: Resource[Any] = DRAFT202012.create_resource(spec)
        self._registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
        self._patterns = [
            (re.compile(_template_regex(template)), template) for template in spec["paths"]
        ]

    # ----------------------------------------------------------------- lookups

    def operations(self) -> list[Operation]:
        return [
            Operation(template, method, node)
            for template, item in self.spec["paths"].items()
            for method, node in item.items()
            if method in METHODS
        ]

    def operation(self, method: str, path: str) -> Operation | None:
        """The spec's operation for a concrete request path (trailing slash optional)."""
        wanted = path if path.endswith("/") else path + "/"
        for pattern, template in self._patterns:
            if pattern.fullmatch(wanted):
                node = self.spec["paths"][template].get(method.lower())
                return None if node is None else Operation(template, method.lower(), node)
        return None

    # -------------------------------------------------------------- validation

    def validator(self, pointer: str, direction: Direction) -> Validator:
        cls = ResponseValidator if direction == "response" else RequestValidator
        schema = {"$ref": f"{SPEC_URI}#{pointer}"}
        validator: Validator = cls(schema, registry=self._registry, format_checker=_FORMATS)
        return validator

    def schema_errors(self, pointer: str, instance: Any, direction: Direction) -> list[str]:
        errors = self.validator(pointer, direction).iter_errors(instance)
        return sorted(_describe(error) for error in errors)

    def response_errors(self, operation: Operation, status: int, body: bytes) -> list[str]:
        """What is wrong with this answer according to the spec; [] when it conforms.

        A status the operation does not document (an injected 500, a 429, DRF's 404 "Invalid
        page.", a 400 on a query parameter) is held to DRF's error shapes: ``{"detail": str}``
        (what the spec documents for the 404s it lists) or ``{"field": ["message", ...]}``."""
        responses = operation.node.get("responses", {})
        documented = responses.get(str(status))
        if documented is None:
            if 200 <= status < 300:
                return [f"status {status} is not documented (documented: {sorted(responses)})"]
            return self._detail_errors(body)
        media = documented.get("content", {}).get("application/json")
        if media is None:
            return [] if not body else [f"status {status} has no body in the spec, got {body!r}"]
        try:
            instance = json.loads(body)
        except ValueError as exc:
            return [f"status {status}: body is not JSON ({exc})"]
        pointer = _pointer_of(self.spec, operation, ("responses", str(status), "content"))
        return self.schema_errors(f"{pointer}/application~1json/schema", instance, "response")

    def undeclared_fields(self, operation: Operation, status: int, body: bytes) -> set[str]:
        """Names of properties in a documented JSON answer that its schema does not declare
        (meaningful with a ``closed()`` spec; other validation errors are ignored)."""
        media = operation.node.get("responses", {}).get(str(status), {}).get("content", {})
        if "application/json" not in media or not body:
            return set()
        pointer = _pointer_of(self.spec, operation, ("responses", str(status), "content"))
        validator = self.validator(f"{pointer}/application~1json/schema", "response")
        names: set[str] = set()
        pending = list(validator.iter_errors(json.loads(body)))
        while pending:
            error = pending.pop()
            pending.extend(error.context or [])
            if error.validator == "unevaluatedProperties":
                names.update(re.findall(r"'([^']+)'", error.message.split("(", 1)[-1]))
        return names

    def request_errors(self, operation: Operation, body: Any) -> list[str]:
        request_body = operation.node.get("requestBody")
        if request_body is None:
            return [] if body in (None, {}) else [f"the spec takes no request body, got {body!r}"]
        if body is None:
            return ["request body missing"] if request_body.get("required") else []
        pointer = _pointer_of(self.spec, operation, ("requestBody", "content"))
        return self.schema_errors(f"{pointer}/application~1json/schema", body, "request")

    def query_errors(self, operation: Operation, query: Mapping[str, str]) -> list[str]:
        """Every query parameter must be one the operation documents, in its type."""
        parameters = {
            p["name"]: p for p in operation.node.get("parameters", []) if p.get("in") == "query"
        }
        problems = [
            f"{name}: required query parameter missing"
            for name, p in parameters.items()
            if p.get("required") and name not in query
        ]
        for name, value in query.items():
            parameter = parameters.get(name)
            if parameter is None:
                problems.append(f"{name}: not a query parameter of {operation.key}")
                continue
            problems += [f"{name}: {e}" for e in _query_value_errors(parameter, value)]
        return problems

    def _detail_errors(self, body: bytes) -> list[str]:
        """DRF's two error shapes: ``{"detail": str}``, or field-keyed lists of messages."""
        try:
            instance = json.loads(body)
        except ValueError as exc:
            return [f"error body is not JSON ({exc})"]
        if isinstance(instance, dict) and isinstance(instance.get("detail"), str):
            return []
        if (
            isinstance(instance, dict)
            and instance
            and all(
                isinstance(v, list) and all(isinstance(m, str) for m in v)
                for v in instance.values()
            )
        ):
            return []
        return [f"error body is not DRF-shaped: {instance!r:.300}"]


def _query_value_errors(parameter: Mapping[str, Any], value: str) -> list[str]:
    schema = parameter.get("schema", {})
    kind = schema.get("type")
    if kind == "array":
        # style=form, explode=false: comma-separated values.
        items = value.split(",") if value else []
        item_type = schema.get("items", {}).get("type")
        return [e for item in items for e in _scalar_errors(item_type, schema.get("items"), item)]
    return _scalar_errors(kind, schema, value)


def _scalar_errors(kind: Any, schema: Mapping[str, Any] | None, value: str) -> list[str]:
    if kind == "integer" and not re.fullmatch(r"-?\d+", value):
        return [f"{value!r} is not an integer"]
    if kind == "number":
        try:
            float(value)
        except ValueError:
            return [f"{value!r} is not a number"]
    if kind == "boolean" and value not in ("true", "false", "True", "False", "1", "0"):
        return [f"{value!r} is not a boolean"]
    enum = (schema or {}).get("enum")
    if enum is not None and value not in enum:
        return [f"{value!r} is not one of {enum}"]
    return []


def _template_regex(template: str) -> str:
    return re.sub(r"\\\{[^/]+?\\\}", r"[^/]+", re.escape(template))


def _pointer_of(spec: Mapping[str, Any], operation: Operation, tail: tuple[str, ...]) -> str:
    parts = ("paths", operation.template, operation.method, *tail)
    return "/" + "/".join(_escape(part) for part in parts)


def _describe(error: ValidationError) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"{where}: {error.message[:300]}"


def closed(spec: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``spec`` where an object may carry only the properties its schema declares.

    The spec never forbids extra properties, so on its own a renamed field would go unnoticed
    (the old name is just an extra). Holding answers to the declared names makes a rename, or
    a field the emulator invents, fail.
    """
    copied = copy.deepcopy(spec)

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("properties"), dict) and "additionalProperties" not in node:
                node["unevaluatedProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(copied.get("components"))
    close(copied.get("paths"))
    return copied


@cache
def contract() -> Contract:
    """The spec with the overlay applied (built once per session)."""
    return Contract(apply_overlay(load_raw(), load_overlay()))


@cache
def closed_contract() -> Contract:
    """``contract()`` where only declared properties are allowed (see ``closed``)."""
    return Contract(closed(apply_overlay(load_raw(), load_overlay())))
