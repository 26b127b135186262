"""What every fault rule is, whatever its action: the requests it can match, the action
names, and the ``Fault`` base class (the match checked against the action, error wording,
the request-log label). The actions themselves, one class each, are in ``fault_actions.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal, get_args

from pydantic import field_validator
from pydantic_core import ErrorDetails

from pytest_cekura.emulator.tables import TableModel, invalid, rule_error
from pytest_cekura.emulator.wire import DropMode, Response

#: Which requests a fault rule applies to: one endpoint family each, or every Cekura request.
FaultMatch = Literal[
    "start",  # any run-starting POST scenarios/<runner>/
    "bulk",  # GET runs/bulk/
    "result",  # GET results/<id>/
    "results",  # GET results/ (the list)
    "run",  # GET runs/<id>/
    "end_call",  # POST runs/<id>/end_call/ and results/<id>/end_calls/
    "rerun",  # POST results/<id>/rerun/
    "scenario",  # GET scenarios/ and scenarios/<id>/
    "agent",  # GET aiagents/<id>/
    "test_profile",  # GET test-profiles-external/ and test-profiles-external/<id>/
    "any",
]
FaultAction = Literal[
    "error_before",
    "error_after",
    "drop_before",
    "drop_after",
    "rate_limit",
    "slow",
    "malformed_json",
    "unknown_status",
    "omit_runs",
    "duplicate_runs",
    "extra_runs",
    "never_finish",
]
FAULT_MATCHES: tuple[str, ...] = get_args(FaultMatch)
FAULT_ACTIONS: tuple[str, ...] = get_args(FaultAction)
DROP_MODES: tuple[str, ...] = get_args(DropMode)
DEFAULT_UNKNOWN_STATUS = "paused"
#: Upper bound of ``delay_s``: larger values overflow ``Event.wait`` and are always a mistake.
MAX_DELAY_S = 3600.0

#: The real handler, called when (and if) the action lets the request through.
Serve = Callable[[], Response]


class Fault(TableModel):
    """What every fault rule has: the requests it matches and its action."""

    match: FaultMatch
    action: FaultAction

    #: Required options: why the action needs them and an example, for "needs field" errors.
    needs: ClassVar[Mapping[str, str]] = {}
    #: Options of other actions with a message of their own when given to this one.
    unused: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def tag(cls) -> str:
        """The action's name, e.g. ``"error_after"``."""
        return str(get_args(cls.model_fields["action"].annotation)[0])

    @field_validator("match", mode="before")
    @classmethod
    def _match_works_with_action(cls, value: Any) -> Any:
        if value not in FAULT_MATCHES:
            allowed = f"allowed: {', '.join(FAULT_MATCHES)}"
            raise rule_error(invalid("match", value, allowed, FAULT_MATCHES))
        works_with = get_args(cls.model_fields["match"].annotation)
        if value not in works_with:
            allowed = f"action {cls.tag()!r} works with match = {', '.join(works_with)}"
            raise rule_error(invalid("match", value, allowed))
        return value

    @classmethod
    def error_rank(cls, error: ErrorDetails) -> int:
        # As before pydantic: a wrong match is named before a misplaced option.
        return -1 if error["loc"][:1] == ("match",) else super().error_rank(error)

    @classmethod
    def unknown_key(cls, key: str) -> str:
        # parse_fault has refused keys that are no rule's option: this is another action's.
        if key in cls.unused:
            return cls.unused[key]
        from pytest_cekura.emulator.fault_actions import ACTIONS  # the actions subclass Fault

        users = [action.tag() for action in ACTIONS.values() if key in action.model_fields]
        return (
            f"field {key!r} is not used by action {cls.tag()!r}; remove it "
            f"({key} is read by action {' / '.join(users)})"
        )

    @classmethod
    def missing(cls, name: str) -> str:
        return f"action {cls.tag()!r} needs field {name!r}, {cls.needs[name]}"

    def detail(self) -> object:
        """What the request log shows after the action's name, e.g. the status; None: nothing."""
        return None

    @property
    def label(self) -> str:
        """How the request log names the fault when it fires, e.g. ``error_after:500``."""
        detail = self.detail()
        return self.action if detail is None else f"{self.action}:{detail}"

    def apply(self, serve: Serve, kind: str, stopping: threading.Event) -> tuple[Response, bool]:
        """The answer to a request of this ``kind`` with the fault applied, and whether the
        fault fired (False: it found nothing to act on and is not used up)."""
        raise NotImplementedError(f"{self.action} does not act on single requests")
