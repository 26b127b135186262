"""Fault actions: one class per action, holding its options, checks, label and effect.

A rule arrives as a ``[[fault]]`` table, an ``Emulator.inject`` call or a JSON object sent to
``POST /_emulator/faults``; all three go through ``faults.parse_fault``, so they accept and
reject the same things. Each action is a pydantic model: its fields are the options it reads (giving
one it does not read is an error, not ignored, so a misplaced option cannot silently test
nothing), its ``match`` annotation the requests it works with, and ``apply`` what it does to
a request relative to the real work (before, after, instead of the answer). Adding an action
is one class here, its name in ``fault_base.FaultAction`` and in ``AnyFault``; an action with
an option no other action has also adds it to ``faults.FaultRule`` (the public, flat record of
a rule).

One rule fires per request: the first installed rule that matches and has uses left
(``faults.FaultPlan``). Rules count matching requests, so ``times = 1`` breaks exactly one
request and the client's retry sees a healthy server.
"""

from __future__ import annotations

import copy
import json
import math
import threading
from collections.abc import Mapping
from dataclasses import replace
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from pytest_cekura.emulator import fault_edits
from pytest_cekura.emulator.fault_base import (
    DEFAULT_UNKNOWN_STATUS,
    FAULT_ACTIONS,
    MAX_DELAY_S,
    Fault,
    Serve,
)
from pytest_cekura.emulator.tables import Hint, NonEmpty, rule_error
from pytest_cekura.emulator.wire import (
    DROPPED,
    JSON,
    DropMode,
    Response,
    json_response,
)

#: Answers that carry run objects (unknown_status rewrites them) and answers whose runs are a
#: JSON list (omit/duplicate/extra rewrite the list; a result detail's runs are an object).
RunReads = Literal["bulk", "run", "result", "results", "start", "rerun"]
RunLists = Literal["bulk", "start", "rerun"]

_PositiveId = Annotated[StrictInt, Field(gt=0)]
_Ids = Annotated[tuple[_PositiveId, ...], Field(min_length=1)]
_Status = Annotated[
    StrictInt,
    Field(ge=400, le=599),
    Hint("must be an HTTP error status from 400 to 599, e.g. 500"),
]


class _Counted(Fault):
    #: Matching requests it applies to (0 = all).
    times: Annotated[
        StrictInt, Field(ge=0), Hint("must be an integer >= 0 (0 = every matching request)")
    ] = 1


class _Rejects(_Counted):
    status: _Status = 500

    def detail(self) -> object:
        return self.status

    def rejection(self) -> Response:
        return json_response(self.status, {"detail": fault_edits.error_detail(self.status)})


class ErrorBefore(_Rejects):
    """Answer an error status instead of the server: nothing is created."""

    action: Literal["error_before"]

    def apply(self, serve: Serve, kind: str, stopping: threading.Event) -> tuple[Response, bool]:
        return self.rejection(), True


class ErrorAfter(_Rejects):
    """Do the work, then answer an error status: the runs exist, the client cannot know."""

    action: Literal["error_after"]

    def apply(self, serve: Serve, kind: str, stopping: threading.Event) -> tuple[Response, bool]:
        serve()
        return self.rejection(), True


class RateLimit(_Rejects):
    """Answer 429 (or ``status``) with ``Retry-After`` instead of the server."""

    action: Literal["rate_limit"]
    status: _Status = 429
    #: The Retry-After header, as sent: seconds or an HTTP date.
    retry_after: Annotated[
        str,
        Hint(
            'must be seconds >= 0 or an HTTP date, e.g. "2" or "Wed, 21 Oct 2026 07:28:00 GMT" '
            "(printable ASCII)"
        ),
        WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "number", "minimum": 0}]}),
    ]
    #: An extra retry-after-ms header.
    retry_after_ms: Annotated[StrictInt, Field(ge=0), Hint("must be an integer >= 0")] | None = None

    needs: ClassVar[Mapping[str, str]] = {
        "retry_after": 'the Retry-After header to send; add retry_after = "2" (seconds) or an '
        'HTTP date, e.g. "Wed, 21 Oct 2026 07:28:00 GMT"'
    }

    @field_validator("retry_after", mode="before")
    @classmethod
    def _header_value(cls, value: Any) -> Any:
        if _is_number(value) and value >= 0:
            return str(value) if isinstance(value, int) else f"{value:g}"
        # Any other header-safe text is sent as given, so clients' handling of odd values can
        # be tested too; only what cannot be a header value at all is refused.
        if isinstance(value, str) and value.strip() and value.isascii() and value.isprintable():
            return value
        raise ValueError("not a header value")

    def rejection(self) -> Response:
        headers = {"Retry-After": self.retry_after}
        message = fault_edits.error_detail(self.status)
        if self.status == 429 and self.retry_after.isdigit():
            # DRF's Throttled message, which names the wait in the body too.
            unit = "second" if self.retry_after == "1" else "seconds"
            message = f"Request was throttled. Expected available in {self.retry_after} {unit}."
        if self.retry_after_ms is not None:
            headers["retry-after-ms"] = str(self.retry_after_ms)
        return json_response(self.status, {"detail": message}, headers)

    def apply(self, serve: Serve, kind: str, stopping: threading.Event) -> tuple[Response, bool]:
        return self.rejection(), True


class _Drops(_Counted):
    #: close: FIN without an answer; partial: FIN mid-answer; reset: RST.
    drop_mode: DropMode = "close"

    def detail(self) -> object:
        return None if self.drop_mode == "close" else self.drop_mode


class DropBefore(_Drops):
    """Hang up without doing the work."""

    action: Literal["drop_before"]

    def apply(self, serve: Serve, kind: str, stopping: threading.Event) -> tuple[Response, bool]:
        return Response(DROPPED, b"", drop=self.drop_mode), True


class DropAfter(_Drops):
    """Do the work, then hang up: the runs exist."""

    action: Literal["drop_after"]

    def apply(self, serve: Serve, kind: str, stopping: threading.Event) -> tuple[Response, bool]:
        return replace(serve(), drop=self.drop_mode), True


class Slow(_Counted):
    """Wait ``delay_s`` real seconds, then answer normally."""

    action: Literal["slow"]
    delay_s: Annotated[
        StrictFloat,
        Field(ge=0, le=MAX_DELAY_S, allow_inf_nan=False),
        Hint(f"must be a number of seconds from 0 to {MAX_DELAY_S:g}"),
    ]

    needs: ClassVar[Mapping[str, str]] = {
        "delay_s": "the real seconds to wait before answering; add delay_s = 2.0"
    }

    def detail(self) -> object:
        return f"{self.delay_s:g}s"

    def apply(self, serve: Serve, kind: str, stopping: threading.Event) -> tuple[Response, bool]:
        # Real seconds on purpose: the fault is about the client's read timeout, which a fake
        # clock does not drive. Waiting on the stop event keeps Emulator.stop() prompt.
        if stopping.wait(self.delay_s):
            return Response(DROPPED, b"", drop="close"), True
        return serve(), True


class MalformedJson(_Counted):
    """Do the work, then send a cut answer that is not valid JSON."""

    action: Literal["malformed_json"]

    def apply(self, serve: Serve, kind: str, stopping: threading.Event) -> tuple[Response, bool]:
        response = serve()
        return replace(response, body=fault_edits.truncate(response.body)), True


class _RewritesRuns(_Counted):
    """Edits the runs of a successful JSON answer; an error answer has none, so the rule is
    not used up by it."""

    def rewrite(self, kind: str, payload: Any) -> Any:
        raise NotImplementedError

    def apply(self, serve: Serve, kind: str, stopping: threading.Event) -> tuple[Response, bool]:
        response = serve()
        if not 200 <= response.status < 300 or response.content_type != JSON:
            return response, False
        payload = self.rewrite(kind, json.loads(response.body))
        return json_response(response.status, payload, response.headers), True


class UnknownStatus(_RewritesRuns):
    """Show runs (and results) with a status value clients do not know."""

    action: Literal["unknown_status"]
    match: RunReads
    status_value: Annotated[
        StrictStr, NonEmpty, Hint('must be a non-empty string, e.g. "paused"')
    ] = DEFAULT_UNKNOWN_STATUS
    #: Only runs of these scenarios (default: every run, and the results too).
    scenario_ids: Annotated[
        _Ids, Hint("must be a non-empty list of positive ids, e.g. [31, 35]")
    ] = ()

    def detail(self) -> object:
        return self.status_value

    def rewrite(self, kind: str, payload: Any) -> Any:
        for run in fault_edits.run_objects(kind, payload):
            if not self.scenario_ids or run.get("scenario") in self.scenario_ids:
                run["status"] = self.status_value
        if not self.scenario_ids:
            # Results share the status enum (cekura-api.md 5.1), and clients stop polling on
            # the result's status: it must be able to show an odd value too.
            for result in fault_edits.result_objects(kind, payload):
                result["status"] = self.status_value
        return payload


class _EditsRunList(_RewritesRuns):
    match: RunLists

    def edit(self, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def rewrite(self, kind: str, payload: Any) -> Any:
        edited = self.edit(fault_edits.run_list(kind, payload))
        return fault_edits.with_runs(kind, payload, edited)


class OmitRuns(_EditsRunList):
    """Leave runs out of the answer: the first ``omit``, or those in ``omit_ids``."""

    action: Literal["omit_runs"]
    omit: Annotated[StrictInt, Field(ge=1), Hint("must be an integer >= 1")] | None = None
    omit_ids: Annotated[
        _Ids, Hint("must be a non-empty list of positive ids, e.g. [90001, 90002]")
    ] = ()

    @model_validator(mode="after")
    def _exactly_one(self) -> OmitRuns:
        if (self.omit is None) == (not self.omit_ids):
            raise rule_error(
                "action 'omit_runs' needs exactly one of 'omit' (leave out the first N runs, "
                "e.g. omit = 2) and 'omit_ids' (leave out these run ids, e.g. omit_ids = [90001])"
            )
        return self

    def detail(self) -> object:
        return self.omit if self.omit is not None else ",".join(map(str, self.omit_ids))

    def edit(self, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.omit_ids:
            return [run for run in runs if run.get("id") not in self.omit_ids]
        return runs[self.omit or 0 :]


class DuplicateRuns(_EditsRunList):
    """Send every run of the answer twice."""

    action: Literal["duplicate_runs"]

    def edit(self, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return runs + copy.deepcopy(runs)


class ExtraRuns(_EditsRunList):
    """Add two finished runs nobody asked for (an unknown id, and no id)."""

    action: Literal["extra_runs"]

    def edit(self, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return runs + fault_edits.strangers(runs)


class NeverFinish(Fault):
    """Runs of these scenarios stay running while the rule is installed; it changes how runs
    play out, not how one request is answered, so it counts no requests."""

    action: Literal["never_finish"]
    match: Literal["any"]
    scenario_ids: Annotated[_Ids, Hint("must be a non-empty list of positive ids, e.g. [31, 35]")]

    needs: ClassVar[Mapping[str, str]] = {
        "scenario_ids": "the scenarios whose runs stay running; add scenario_ids = [31]"
    }
    unused: ClassVar[Mapping[str, str]] = {
        "times": "field 'times' is not used by action 'never_finish' (it lasts until the faults "
        "are cleared); remove it"
    }


#: Every action's class by name.
ACTIONS: dict[str, type[Fault]] = {
    action.tag(): action
    for action in (
        ErrorBefore,
        ErrorAfter,
        DropBefore,
        DropAfter,
        RateLimit,
        Slow,
        MalformedJson,
        UnknownStatus,
        OmitRuns,
        DuplicateRuns,
        ExtraRuns,
        NeverFinish,
    )
}
assert tuple(ACTIONS) == FAULT_ACTIONS, "FaultAction must list every action class, in order"
#: Any fault rule, told apart by its action: the type the JSON Schemas describe.
AnyFault = Annotated[
    ErrorBefore
    | ErrorAfter
    | DropBefore
    | DropAfter
    | RateLimit
    | Slow
    | MalformedJson
    | UnknownStatus
    | OmitRuns
    | DuplicateRuns
    | ExtraRuns
    | NeverFinish,
    Field(discriminator="action"),
]
assert set(get_args(get_args(AnyFault)[0])) == set(ACTIONS.values()), "AnyFault lists every action"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
