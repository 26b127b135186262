"""The emulator's request and response values, and the one place request bodies are parsed.

Independent of sockets (``transport.py`` turns bytes into a ``Request`` and a ``Response``
back into bytes) and of routing, so handlers and fault actions can build answers without
either.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from email.message import Message
from typing import Any, Literal

import msgspec

JSON = "application/json"
HTML = "text/html; charset=utf-8"
NOT_FOUND = "Not found."
INVALID_PAGE = "Invalid page."
#: How a connection is dropped: FIN without an answer, FIN after half a header block, or RST.
DropMode = Literal["close", "partial", "reset"]
#: The status logged for a request whose connection was dropped unanswered.
DROPPED = 0


class BodyError(Exception):
    """The request body is not JSON; ``args[0]`` is the parse error's text."""


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # as sent, without the query string
    query: dict[str, list[str]]
    headers: Message
    body: bytes

    def last(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    def parsed_body(self, default: Any) -> Any:
        """The JSON body, ``default`` when it is empty; raises ``BodyError`` if it does not
        parse (nesting deeper than the parser's recursion limit included: a 400, never a 500).
        """
        if not self.body.strip():
            return default
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BodyError(str(exc)) from None
        except RecursionError:
            raise BodyError("the body is nested too deeply.") from None

    def json_body(self, *, default: Any, where: str = "") -> Any:
        """The JSON body (``default`` when empty), or the 400 ``Response`` to send instead."""
        try:
            return self.parsed_body(default)
        except BodyError as exc:
            return detail(400, f"{where}JSON parse error - {exc}")

    def posted_json(self) -> Any:
        """A POST's JSON body for the request log; None when there is none or it does not parse."""
        if self.method != "POST":
            return None
        try:
            return self.parsed_body(None)
        except BodyError:
            return None


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)
    #: Set: send nothing (or half a header block) and hang up this way instead of answering.
    drop: DropMode | None = None


def json_bytes(payload: Any) -> bytes:
    """``payload`` as UTF-8 JSON, with msgspec: the bulk endpoint renders every run once, and
    ``json`` took half of the emulator's time on the first poll of 10,000 runs (at 0.2 s it
    was most of that poll cycle's 0.5 s target, docs/performance.md). What msgspec refuses
    (lone surrogates, objects it does not know) is left to ``json``."""
    try:
        return msgspec.json.encode(payload)
    except (msgspec.MsgspecError, TypeError, ValueError):
        return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return Response(status, body, JSON, headers or {})


def detail(status: int, message: str) -> Response:
    """A DRF-style ``{"detail": message}`` answer."""
    return json_response(status, {"detail": message})


def is_digits(text: str) -> bool:
    # str.isdigit() alone accepts "²" and other characters int() rejects.
    return text.isascii() and text.isdigit()
