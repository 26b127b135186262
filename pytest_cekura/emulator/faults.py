"""Fault injection: which installed rule applies to a request, and how it rewrites answers.

The rules themselves (``FaultRule``) are defined and validated in ``catalogue.py``, because they
arrive from three places that must agree: ``[[fault]]`` tables, ``Emulator.inject`` and
``POST /_emulator/faults``. This module holds the live ``FaultPlan`` (rules plus how often each
has fired) and the pure functions that build the faulty answers; ``server.py`` decides *when*
each action happens relative to the real work (before, after, instead of the answer).

One rule fires per request: the first installed rule that matches and has uses left. Rules
count matching requests, so ``times = 1`` breaks exactly one request and the client's retry
sees a healthy server, which is what reliability tests need to prove "retried once, then ok".
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from pytest_cekura.emulator.catalogue import FaultRule
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


@dataclass(slots=True)
class _Slot:
    rule: FaultRule
    fired: int = 0

    def has_uses_left(self) -> bool:
        return not self.rule.times or self.fired < self.rule.times

    def describe(self) -> dict[str, Any]:
        shown = self.rule.as_dict()
        if self.rule.times is not None:  # never_finish does not count requests
            shown["fired"] = self.fired
            shown["remaining"] = self.rule.times - self.fired if self.rule.times else None
        return shown


class FaultPlan:
    """The installed fault rules, in order, with how often each has fired; thread-safe."""

    def __init__(
        self,
        rules: Iterable[FaultRule] = (),
        *,
        on_change: Callable[[frozenset[int]], None] = lambda never_finish: None,
    ) -> None:
        """``on_change`` gets the never_finish scenario ids whenever the rules change (and
        once now), under the plan's lock, so two concurrent changes cannot leave the
        listener with the set of the older one."""
        self._lock = threading.Lock()
        self._slots = [_Slot(rule) for rule in rules]
        self._on_change = on_change
        with self._lock:
            on_change(self._never_finish())

    def add(self, rules: Iterable[FaultRule]) -> None:
        with self._lock:
            self._slots.extend(_Slot(rule) for rule in rules)
            self._on_change(self._never_finish())

    def replace(self, rules: Iterable[FaultRule]) -> None:
        with self._lock:
            self._slots = [_Slot(rule) for rule in rules]
            self._on_change(self._never_finish())

    def take(self, kind: str) -> FaultRule | None:
        """The rule that applies to a request of this kind, counted as fired; None if none."""
        with self._lock:
            for slot in self._slots:
                rule = slot.rule
                if rule.action == "never_finish" or rule.match not in ("any", kind):
                    continue
                if slot.has_uses_left():
                    slot.fired += 1
                    return rule
        return None

    def give_back(self, rule: FaultRule) -> None:
        """Undo ``take`` for a rule that found nothing to act on (an error answer has no runs)."""
        with self._lock:
            for slot in self._slots:
                if slot.rule is rule and slot.fired > 0:
                    slot.fired -= 1
                    return

    def never_finish(self) -> frozenset[int]:
        """Scenario ids whose runs must stay running while the rules are installed."""
        with self._lock:
            return self._never_finish()

    def _never_finish(self) -> frozenset[int]:
        return frozenset(
            scenario_id
            for slot in self._slots
            if slot.rule.action == "never_finish"
            for scenario_id in slot.rule.scenario_ids
        )

    def describe(self) -> list[dict[str, Any]]:
        """The rules as ``GET /_emulator/faults`` lists them, with ``fired`` and ``remaining``."""
        with self._lock:
            return [slot.describe() for slot in self._slots]


def error_detail(status: int) -> str:
    """The DRF-style ``detail`` text for an injected error status."""
    if status in _DETAILS:
        return _DETAILS[status]
    try:
        return f"{HTTPStatus(status).phrase}."
    except ValueError:  # a status without a standard reason phrase, e.g. 599
        return f"Error {status}."


def rejection(rule: FaultRule) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Status, body and headers of an error_before / error_after / rate_limit answer."""
    status = rule.status if rule.status is not None else 500
    headers: dict[str, str] = {}
    detail = error_detail(status)
    if rule.action == "rate_limit":
        if rule.retry_after is not None:
            headers["Retry-After"] = rule.retry_after
            if status == 429 and rule.retry_after.isdigit():
                # DRF's Throttled message, which names the wait in the body too.
                unit = "second" if rule.retry_after == "1" else "seconds"
                detail = f"Request was throttled. Expected available in {rule.retry_after} {unit}."
        if rule.retry_after_ms is not None:
            headers["retry-after-ms"] = str(rule.retry_after_ms)
    return status, {"detail": detail}, headers


def truncate(body: bytes) -> bytes:
    """A proper prefix of a JSON answer, so it is never valid JSON (objects and lists need
    their closing bracket). Cut right after ``"runs": [`` when there is one: that is where a
    client finds the ids it must keep, so the damage is where it hurts."""
    marker = b'"runs": ['
    cut = body.find(marker)
    if cut >= 0:
        return body[: cut + len(marker)]
    return body[: max(1, len(body) // 2)]


def rewrite_runs(rule: FaultRule, kind: str, payload: Any) -> Any:
    """Apply unknown_status / omit_runs / duplicate_runs / extra_runs to a successful answer
    of the given kind (its runs are edited in place; the payload is a fresh parse)."""
    if rule.action == "unknown_status":
        for run in _run_objects(kind, payload):
            if not rule.scenario_ids or run.get("scenario") in rule.scenario_ids:
                run["status"] = rule.status_value
        if not rule.scenario_ids:
            # Results share the status enum (cekura-api.md 5.1), and clients stop polling on
            # the result's status: it must be able to show an odd value too.
            for result in _result_objects(kind, payload):
                result["status"] = rule.status_value
        return payload
    runs = _run_list(kind, payload)
    if rule.action == "omit_runs":
        if rule.omit_ids:
            edited = [run for run in runs if run.get("id") not in rule.omit_ids]
        else:
            edited = runs[rule.omit or 0 :]
    elif rule.action == "duplicate_runs":
        edited = runs + copy.deepcopy(runs)
    elif rule.action == "extra_runs":
        edited = runs + _strangers(runs)
    else:
        raise AssertionError(f"action {rule.action!r} does not rewrite runs")
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


def _run_objects(kind: str, payload: Any) -> list[dict[str, Any]]:
    if kind == "run":  # one run, or a page of the runs list
        is_page = "results" in payload and "count" in payload
        return list(payload["results"]) if is_page else [payload]
    if kind == "result":
        return list(payload["runs"].values())  # the detail view keys runs by id
    if kind == "results":
        # The list view keys run stubs by id, like the detail view (spec Result.runs).
        return [run for result in payload["results"] for run in _as_list(result["runs"])]
    return _run_list(kind, payload)


def _result_objects(kind: str, payload: Any) -> list[dict[str, Any]]:
    if kind in ("result", "start", "rerun"):
        return [payload]
    if kind == "results":
        return list(payload["results"])
    return []


def _run_list(kind: str, payload: Any) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = payload if kind == "bulk" else _as_list(payload["runs"])
    return runs


def _as_list(runs: Any) -> list[dict[str, Any]]:
    return list(runs.values()) if isinstance(runs, dict) else list(runs)


def _strangers(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
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
