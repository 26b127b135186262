"""Query-string parameters and DRF page answers, shared by every list endpoint.

Parameter parsers add DRF-style messages to an ``errors`` dict instead of raising, so one
400 answer names every bad parameter at once, as DRF's filter forms do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from pytest_cekura.emulator.state import ResultPage, slice_page
from pytest_cekura.emulator.wire import (
    INVALID_PAGE,
    Request,
    Response,
    detail,
    is_digits,
    json_response,
)

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
_TRUE = ("true", "True", "1")
_FALSE = ("false", "False", "0")

Errors = dict[str, list[str]]


def int_param(request: Request, name: str, errors: Errors) -> int | None:
    value = request.last(name)
    if value is None or value.strip() == "":
        return None
    if not is_digits(value.strip()):
        errors[name] = ["A valid integer is required."]
        return None
    return int(value)


def id_set_param(request: Request, name: str, errors: Errors) -> frozenset[int] | None:
    value = request.last(name)
    if value is None or value.strip() == "":
        return None
    tokens = [t.strip() for t in value.split(",") if t.strip()]
    if not all(is_digits(t) for t in tokens):
        errors[name] = [f"Enter comma-separated integer ids, e.g. {name}=31,32."]
        return None
    return frozenset(int(t) for t in tokens)


def statuses(exact: str | None, listed: str | None) -> frozenset[str] | None:
    """``status`` and ``status__in`` together: a run must satisfy both when both are given."""
    chosen: frozenset[str] | None = None
    if exact is not None and exact.strip():
        chosen = frozenset({exact.strip().lower()})
    tokens = [token.strip().lower() for token in (listed or "").split(",") if token.strip()]
    if tokens:
        wanted = frozenset(tokens)
        chosen = wanted if chosen is None else chosen & wanted
    return chosen


def bool_param(request: Request, name: str, errors: Errors) -> bool | None:
    value = request.last(name)
    if value is None or value.strip() == "":
        return None
    if value.strip() in _TRUE:
        return True
    if value.strip() in _FALSE:
        return False
    errors[name] = ["Select a valid choice. Use true or false."]
    return None


def datetime_param(request: Request, name: str, errors: Errors) -> datetime | None:
    value = request.last(name)
    if value is None or value.strip() == "":
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace(" ", "+"))
    except ValueError:
        errors[name] = ["Enter a valid date/time."]
        return None
    # A naive time is UTC, Cekura's time zone in every timestamp it sends.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def is_datetime(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _page_number(value: str | None) -> int | None:
    if value is None:
        return 1
    return int(value) if is_digits(value) and int(value) >= 1 else None


def _page_size(value: str | None) -> int:
    # DRF falls back to the default on a bad page_size and clamps to the maximum.
    if value is None or not is_digits(value) or int(value) < 1:
        return DEFAULT_PAGE_SIZE
    return min(int(value), MAX_PAGE_SIZE)


def page_of(request: Request, items: Sequence[dict[str, Any]]) -> Response:
    """One DRF page of an in-memory list; 404 "Invalid page." past the last page."""

    def fetch(page: int, size: int) -> ResultPage | None:
        chosen = slice_page(items, page, size)
        return None if chosen is None else ResultPage(len(items), list(chosen))

    return stored_page(request, {}, fetch)


def stored_page(
    request: Request, errors: Errors, fetch: Callable[[int, int], ResultPage | None]
) -> Response:
    """A DRF-style page of what ``fetch(page, page_size)`` finds, or the query's errors."""
    if errors:
        return json_response(400, errors)
    page = _page_number(request.last("page"))
    size = _page_size(request.last("page_size"))
    found = fetch(page, size) if page is not None else None
    if page is None or found is None:
        return detail(404, INVALID_PAGE)
    body = {
        "count": found.count,
        "next": _page_link(request, page + 1) if page * size < found.count else None,
        "previous": _page_link(request, page - 1) if page > 1 else None,
        "results": found.items,
    }
    return json_response(200, body)


def _page_link(request: Request, page: int) -> str:
    params = {name: values[-1] for name, values in request.query.items() if name != "page"}
    if page > 1:  # DRF drops the parameter for the first page
        params["page"] = str(page)
    host = request.headers.get("Host", "localhost")
    query = urlencode(params)
    return f"http://{host}{request.path}" + (f"?{query}" if query else "")
