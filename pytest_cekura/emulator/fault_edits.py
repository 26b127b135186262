"""How fault actions spoil answers: DRF-style error texts, cut JSON, edited lists of runs.

Pure functions over JSON values, shared by the fault action classes in ``fault_actions.py``.
"""

from __future__ import annotations

import copy
from http import HTTPStatus
from typing import Any

from pytest_cekura.emulator.state import FIRST_RUN_ID

#: Run ids count up from FIRST_RUN_ID and never go back (not even after a reset), so an id
#: below it can never belong to a run: extra_runs uses it for its stranger.
UNKNOWN_RUN_ID = FIRST_RUN_ID - 1

#: DRF's default ``detail`` texts where it has one (exceptions.py), so injected errors look
#: like the ones Cekura's Django REST framework would send.
_DETAILS = {
    400: "Malformed request.",
    401: "Invalid API key.",
    403: "You do not have permission to perform this action.",
    404: "Not found.",
    406: "Could not satisfy the request Accept header.",
    429: "Request was throttled.",
    500: "A server error occurred.",
    502: "Bad gateway.",
    503: "Service temporarily unavailable, try again later.",
    504: "Gateway timeout.",
}


def error_detail(status: int) -> str:
    """The DRF-style ``detail`` text for an injected error status."""
    if status in _DETAILS:
        return _DETAILS[status]
    try:
        return f"{HTTPStatus(status).phrase}."
    except ValueError:  # a status without a standard reason phrase, e.g. 599
        return f"Error {status}."


def truncate(body: bytes) -> bytes:
    """A proper prefix of a JSON answer, so it is never valid JSON (objects and lists need
    their closing bracket). Cut right after ``"runs": [`` when there is one: that is where a
    client finds the ids it must keep, so the damage is where it hurts."""
    marker = b'"runs": ['
    cut = body.find(marker)
    if cut >= 0:
        return body[: cut + len(marker)]
    return body[: max(1, len(body) // 2)]


def run_objects(kind: str, payload: Any) -> list[dict[str, Any]]:
    """Every run object in an answer of this kind (a request's fault ``match``)."""
    if kind == "run":  # one run, or a page of the runs list
        is_page = "results" in payload and "count" in payload
        return list(payload["results"]) if is_page else [payload]
    if kind == "result":
        return list(payload["runs"].values())  # the detail view keys runs by id
    if kind == "results":
        # The list view keys run stubs by id, like the detail view (spec Result.runs).
        return [run for result in payload["results"] for run in _as_list(result["runs"])]
    return run_list(kind, payload)


def result_objects(kind: str, payload: Any) -> list[dict[str, Any]]:
    if kind in ("result", "start", "rerun"):
        return [payload]
    if kind == "results":
        return list(payload["results"])
    return []


def run_list(kind: str, payload: Any) -> list[dict[str, Any]]:
    """The runs of a bulk, start or rerun answer, as a list."""
    runs: list[dict[str, Any]] = payload if kind == "bulk" else _as_list(payload["runs"])
    return runs


def with_runs(kind: str, payload: Any, edited: list[dict[str, Any]]) -> Any:
    """The answer with its runs replaced by ``edited``, in the shape the answer had."""
    if kind == "bulk":
        return edited
    if isinstance(payload["runs"], dict):
        # The rerun answer (the spec's Result) keys runs by id; a run without one (extra_runs'
        # anonymous stranger) is keyed by its position, a duplicate by id and copy number.
        keyed: dict[str, Any] = {}
        for position, run in enumerate(edited):
            key = str(run.get("id", f"missing-{position}"))
            keyed[key if key not in keyed else f"{key}-copy-{position}"] = run
        payload["runs"] = keyed
    else:
        payload["runs"] = edited
    return payload


def _as_list(runs: Any) -> list[dict[str, Any]]:
    return list(runs.values()) if isinstance(runs, dict) else list(runs)


def strangers(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Two finished runs nobody asked for: one with an id no run has, one with no id at all.

    They look like the real ones (same keys) and report success, so a client that attributes
    them to its tests would wrongly pass them: the test should see it does not.
    """
    template = copy.deepcopy(runs[0]) if runs else {"scenario": 1}
    stranger = {**template, "id": UNKNOWN_RUN_ID, "status": "completed"}
    if "success" in template or not runs:
        stranger["success"] = True
    anonymous = copy.deepcopy(stranger)
    del anonymous["id"]
    return [stranger, anonymous]
