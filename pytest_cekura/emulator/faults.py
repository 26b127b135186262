"""Fault rules (``FaultRule``, ``parse_fault``) and the live plan of installed rules.

The actions, one class each, are in ``fault_actions.py``; how they spoil
answers in ``fault_edits.py``. One rule fires per request: the first installed rule that
matches and has uses left. Rules count matching requests, so ``times = 1`` breaks exactly one
request and the client's retry sees a healthy server, which is what reliability tests need to
prove "retried once, then ok".
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from pytest_cekura.emulator.fault_actions import ACTIONS
from pytest_cekura.emulator.fault_base import (
    FAULT_ACTIONS,
    FAULT_MATCHES,
    Fault,
    FaultAction,
    FaultMatch,
)
from pytest_cekura.emulator.fault_edits import UNKNOWN_RUN_ID
from pytest_cekura.emulator.tables import CatalogueError, invalid, suggest
from pytest_cekura.emulator.wire import DropMode

__all__ = ["RULE_KEYS", "UNKNOWN_RUN_ID", "FaultPlan", "FaultRule", "parse_fault"]


@dataclass(frozen=True)
class FaultRule:
    """One injected fault: which requests it matches, what it does, how many times.

    Options an action does not read must be left as None (or empty); the ones it reads get their
    defaults on construction (``times`` 1, ``status`` 500 or 429, ``drop_mode`` "close",
    ``status_value`` "paused"). An invalid rule raises ``CatalogueError``. Build rules with
    ``parse_fault`` (from TOML or JSON data) or ``Emulator.inject``; constructing one directly
    validates the same way. ``effect`` is the validated action object that does the work.
    """

    match: FaultMatch
    action: FaultAction
    #: Matching requests it applies to (0 = all); None only for never_finish, which lasts
    #: until the faults are cleared.
    times: int | None = None
    status: int | None = None  # error_before, error_after, rate_limit
    retry_after: str | None = None  # rate_limit: the Retry-After header, as sent
    retry_after_ms: int | None = None  # rate_limit: an extra retry-after-ms header
    delay_s: float | None = None  # slow: real seconds to wait before handling the request
    drop_mode: DropMode | None = None  # drop_before, drop_after
    status_value: str | None = None  # unknown_status: the status the runs show
    omit: int | None = None  # omit_runs: leave out the first N runs of the answer
    omit_ids: tuple[int, ...] = ()  # omit_runs: leave out these run ids
    scenario_ids: tuple[int, ...] = ()  # never_finish (required), unknown_status (filter)
    effect: Fault = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        given = {name: getattr(self, name) for name in RULE_KEYS}
        effect = _validate(given, where="FaultRule")
        for name in RULE_KEYS:  # frozen: defaults are filled in once, here
            object.__setattr__(self, name, getattr(effect, name, _UNSET[name]))
        object.__setattr__(self, "effect", effect)

    @property
    def label(self) -> str:
        """How the request log names the fault when it fires, e.g. ``error_after:500``."""
        return self.effect.label

    def as_dict(self) -> dict[str, Any]:
        """The rule's fields as TOML/JSON would give them, unset options left out."""
        out: dict[str, Any] = {}
        for name in RULE_KEYS:
            value = getattr(self, name)
            if value is None or value == ():
                continue
            out[name] = list(value) if isinstance(value, tuple) else value
        return out


#: Every key a fault rule may have, in the order messages list them.
RULE_KEYS: tuple[str, ...] = tuple(f.name for f in fields(FaultRule) if f.name != "effect")
_UNSET: dict[str, Any] = {f.name: f.default for f in fields(FaultRule) if f.name != "effect"}
assert {key for action in ACTIONS.values() for key in action.model_fields} == set(RULE_KEYS), (
    "FaultRule must have a field for every option of every action"
)


def parse_fault(raw: Any, *, where: str = "fault") -> FaultRule:
    """Validate one fault rule given as a mapping (a ``[[fault]]`` table or a JSON object).

    ``where`` starts every error message, e.g. ``"cekura-catalogue.toml: fault[2]"``.
    """
    if not isinstance(raw, Mapping):
        raise CatalogueError(
            f"{where}: a fault rule must be a table (a JSON object) with match and action, "
            f'e.g. {{"match": "start", "action": "error_after", "status": 500}}; got {raw!r}'
        )
    for key in raw:
        if key not in RULE_KEYS:
            raise CatalogueError(
                f"{where}: unknown key {key!r}{suggest(str(key), RULE_KEYS)}; "
                f"allowed keys: {', '.join(RULE_KEYS)}"
            )
    for key, allowed in (("match", FAULT_MATCHES), ("action", FAULT_ACTIONS)):
        if key not in raw:
            raise CatalogueError(
                f"{where}: missing required field {key!r}; add {key} = <one of: "
                f"{', '.join(allowed)}>"
            )
    effect = _validate(raw, where=where)
    return FaultRule(**{name: getattr(effect, name, _UNSET[name]) for name in RULE_KEYS})


def _validate(raw: Mapping[str, Any], *, where: str) -> Fault:
    action = raw.get("action")
    if action not in ACTIONS:
        allowed = f"allowed: {', '.join(FAULT_ACTIONS)}"
        raise CatalogueError(f"{where}: {invalid('action', action, allowed, FAULT_ACTIONS)}")
    # None (and an empty tuple, FaultRule's "unset") means "not given": the default applies.
    given = {key: value for key, value in raw.items() if value is not None and value != ()}
    return ACTIONS[str(action)].validate_table(given, where)


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
