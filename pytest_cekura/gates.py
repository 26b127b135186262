"""Metric gates: conditions on a test's metrics across its runs, e.g. ``Latency: p95 <= 1200``.

A gate is written as a condition on one metric (by its name in Cekura):

* ``"<aggregate> <op> <number>"``: ``aggregate`` is ``mean``, ``min``, ``p50``, ``p90``,
  ``p95`` or ``max`` for numeric metrics, ``pass_rate`` for binary ones; ``op`` is ``<``,
  ``<=``, ``>`` or ``>=``. E.g. ``"p95 <= 1200"``, ``"pass_rate >= 0.8"``.
* ``"in <value>, <value>, ..."`` or ``{"in": [...]}`` for enum metrics: every run's value
  must be one of these.

On the marker: ``gates={"Latency": "p95 <= 1200", "Sentiment": {"in": ["positive"]}}`` (a
list of conditions gates one metric several ways; ``None`` drops a session default). For the
session (``--cekura-gates`` / ini ``cekura_gates``): one ``Metric: condition`` per line or
separated by ``;``. ``check_gates`` compares them with the runs' metrics (``metrics.py``).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .metrics import (
    AGGREGATES,
    BINARY_AGGREGATES,
    MetricValue,
    MetricValues,
    UnknownMetricError,
    aggregates_of,
    metric_values,
)

if TYPE_CHECKING:  # markers and options parse gates at start-up: no pydantic until runs exist
    from .models import Run

#: Comparison operators a gate may use, longest first (so ``<=`` is not read as ``<``).
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
#: Tolerance for comparing e.g. a pass rate of 4/5 with a threshold written 0.8.
_EPSILON = 1e-9
_CONDITION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|<|>)\s*(\S+)\s*$")
_IN = re.compile(r"^\s*in\s+(.+?)\s*$", re.IGNORECASE | re.DOTALL)
#: How many of the worst runs a broken gate names.
WORST_RUNS = 3
_EXAMPLE = (
    'use "<aggregate> <op> <number>" (aggregates: '
    f'{", ".join(AGGREGATES)}; op: <, <=, >, >=), e.g. "p95 <= 1200" or '
    '"pass_rate >= 0.8", or {"in": ["positive", "neutral"]} for an enum metric'
)


class GateSyntaxError(ValueError):
    """A gate cannot be read; the message names the metric, the value and the fix."""


@dataclass(frozen=True)
class Gate:
    """One condition on one metric's values across a test's runs."""

    metric: str
    #: An aggregate name (``metrics.AGGREGATES``), or ``"in"`` for an enum gate.
    aggregate: str
    #: ``<``, ``<=``, ``>``, ``>=``, or ``"in"``.
    op: str
    threshold: float | None = None
    #: Enum gates: the values every run's value must be one of.
    allowed: tuple[str, ...] = ()

    @property
    def condition(self) -> str:
        """The condition as written: ``p95 <= 1200``, ``in positive, neutral``."""
        if self.op == "in":
            return f"in {', '.join(self.allowed)}"
        return f"{self.aggregate} {self.op} {self.threshold:g}"

    def __str__(self) -> str:
        return f"{self.metric}: {self.condition}"

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "aggregate": self.aggregate,
            "op": self.op,
            "threshold": self.threshold,
            "allowed": list(self.allowed) if self.op == "in" else None,
            "condition": self.condition,
        }


@dataclass(frozen=True)
class GateResult:
    """A gate checked against the runs: held, broken, or could not be checked (``problem``)."""

    gate: Gate
    passed: bool
    #: The aggregate's value (numeric and binary gates); None for enum gates and problems.
    actual: float | None = None
    #: Why the gate could not be checked (unknown metric, wrong kind of metric, no scores).
    problem: str | None = None
    #: The metric across the runs (None when no run has it).
    values: MetricValues | None = None
    #: The runs furthest on the wrong side (broken gates: the ones that broke it).
    worst: tuple[MetricValue, ...] = ()
    #: Enum gates: values outside the allowed ones, with how many runs had each.
    unexpected: Mapping[str, int] | None = None

    @property
    def broken(self) -> bool:
        """Checked, and the runs do not meet it."""
        return self.problem is None and not self.passed

    def describe(self) -> str:
        """One clause for reasons and reports, e.g. ``Latency p95 1530 breaks p95 <= 1200``."""
        gate = self.gate
        if self.problem is not None:
            return f"gate {str(gate)!r} could not be checked: {self.problem}"
        over = f" over {self.values.count} run(s)" if self.values is not None else ""
        if gate.op == "in":
            if self.passed:
                return f"{gate.metric} values all {gate.condition}{over}"
            seen = ", ".join(f"{v} ({n} run(s))" for v, n in (self.unexpected or {}).items())
            return f"{gate.metric} had {seen}{over}, breaking the gate {gate.condition}"
        verb = "meets" if self.passed else "breaks"
        measured = f"{gate.metric} {gate.aggregate} {format_value(self.actual)}{over}"
        return f"{measured} {verb} the gate {gate.condition}"

    def to_json(self) -> dict[str, Any]:
        return {
            **self.gate.to_json(),
            "passed": self.passed,
            "actual": self.actual,
            "problem": self.problem,
            "unexpected": None if self.unexpected is None else dict(self.unexpected),
            "worst_runs": [value.run_id for value in self.worst],
        }


def format_value(value: float | None) -> str:
    """An aggregate as reports show it: ``1650.3``, ``1200``, ``0.8``; ``?`` for None."""
    if value is None:
        return "?"
    return f"{value:.4g}" if abs(value) < 1 else f"{value:.1f}".removesuffix(".0")


def parse_condition(metric: str, value: Any) -> tuple[Gate, ...]:
    """One metric's condition(s) as the marker or ini gives them; ``GateSyntaxError``."""
    if isinstance(value, Mapping):
        if set(value) != {"in"}:
            raise GateSyntaxError(
                f"gates[{metric!r}] = {value!r} is invalid; a dict gate takes the one key "
                f'"in", e.g. {{"in": ["positive", "neutral"]}}'
            )
        return (_enum_gate(metric, value["in"], value),)
    if isinstance(value, list | tuple):
        if not value:
            raise GateSyntaxError(f"gates[{metric!r}] = [] is invalid; {_EXAMPLE}")
        return tuple(gate for item in value for gate in parse_condition(metric, item))
    if not isinstance(value, str):
        raise GateSyntaxError(f"gates[{metric!r}] = {value!r} is invalid; {_EXAMPLE}")
    enum = _IN.match(value)
    if enum is not None:
        allowed = [part.strip() for part in enum.group(1).split(",")]
        return (_enum_gate(metric, allowed, value),)
    match = _CONDITION.match(value)
    if match is None:
        raise GateSyntaxError(f"gates[{metric!r}] = {value!r} is invalid; {_EXAMPLE}")
    aggregate, op, number = match.groups()
    if aggregate not in AGGREGATES:
        raise GateSyntaxError(
            f"gates[{metric!r}] = {value!r} has unknown aggregate {aggregate!r}; use one of: "
            f"{', '.join(AGGREGATES)}"
        )
    try:
        threshold = float(number)
    except ValueError:
        threshold = math.nan
    if not math.isfinite(threshold):
        raise GateSyntaxError(
            f"gates[{metric!r}] = {value!r} compares with {number!r}, which is not a number; "
            f"{_EXAMPLE}"
        )
    if aggregate == "pass_rate" and not 0.0 <= threshold <= 1.0:
        raise GateSyntaxError(
            f"gates[{metric!r}] = {value!r} is invalid; pass_rate is a fraction from 0.0 to 1.0 "
            "(e.g. 0.8 for 80%)"
        )
    return (Gate(metric, aggregate, op, threshold),)


def _enum_gate(metric: str, allowed: Any, written: Any) -> Gate:
    if (
        isinstance(allowed, str)
        or not isinstance(allowed, list | tuple)
        or not allowed
        or not all(isinstance(item, str) and item.strip() for item in allowed)
    ):
        raise GateSyntaxError(
            f"gates[{metric!r}] = {written!r} is invalid; list the allowed values as non-empty "
            'strings, e.g. {"in": ["positive", "neutral"]} or "in positive, neutral"'
        )
    return Gate(metric, "in", "in", allowed=tuple(dict.fromkeys(s.strip() for s in allowed)))


def parse_gates(value: Any, defaults: Sequence[Gate] = ()) -> tuple[Gate, ...]:
    """The marker's ``gates=`` over the session's ``defaults``: a metric the marker names
    replaces the defaults' conditions on it (``None`` drops them); ``GateSyntaxError``."""
    if value is None:
        return tuple(defaults)
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise GateSyntaxError(
            f"gates={value!r} is invalid; use a dict of metric names to conditions, e.g. "
            'gates={"Latency": "p95 <= 1200"}'
        )
    own: list[Gate] = []
    for metric, condition in value.items():
        if not metric.strip():
            raise GateSyntaxError(f"gates={value!r} is invalid: {metric!r} is not a metric name")
        if condition is not None:
            own += parse_condition(metric, condition)
    kept = [gate for gate in defaults if gate.metric not in value]
    return (*kept, *own)


def parse_gate_lines(text: str) -> tuple[Gate, ...]:
    """``--cekura-gates`` / ini ``cekura_gates``: ``Metric: condition`` per line or ``;``."""
    gates: list[Gate] = []
    for line in re.split(r"[;\n]", text):
        if not line.strip():
            continue
        metric, colon, condition = _split_gate(line)
        if not colon or not metric.strip():
            raise GateSyntaxError(
                f'{line.strip()!r} is invalid; write one gate as "Metric: condition", e.g. '
                '"Latency: p95 <= 1200; Greeting: pass_rate >= 0.8"'
            )
        gates += parse_condition(metric.strip(), condition.strip())
    return tuple(gates)


def _split_gate(line: str) -> tuple[str, str, str]:
    """``Metric: condition`` split at the last colon followed by a condition (an aggregate
    or ``in``), so a metric name may hold colons ("Tool: lookup: p95 <= 900"); with none
    such, at the first colon (the condition's error then says what is wrong with it)."""
    for index in reversed([i for i, char in enumerate(line) if char == ":"]):
        word = re.match(r"\s*([A-Za-z_]\w*)", line[index + 1 :])
        if word is not None and (word.group(1) in AGGREGATES or word.group(1).lower() == "in"):
            return line[:index], ":", line[index + 1 :]
    return line.partition(":")


def gate_setting(value: Any, source: str) -> tuple[Gate, ...]:
    """The session's gates from ``source`` (flag, variable or ini key); ``ConfigError``."""
    if value is None:
        return ()
    try:
        return parse_gate_lines(str(value))
    except GateSyntaxError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def check_gates(gates: Sequence[Gate], runs: Sequence[Run]) -> tuple[GateResult, ...]:
    """Each gate against the metrics of ``runs`` (pure)."""
    return tuple(_check(gate, runs) for gate in gates)


def _check(gate: Gate, runs: Sequence[Run]) -> GateResult:
    try:
        values = metric_values(runs, gate.metric)
    except UnknownMetricError as exc:
        return GateResult(gate, False, problem=str(exc))
    kinds = {"in": "enum", **dict.fromkeys(BINARY_AGGREGATES, "binary")}
    wanted = kinds.get(gate.aggregate, "numeric")
    if values.kind != wanted:
        takes = aggregates_of(values.kind) or ("in <values>",)
        return GateResult(
            gate,
            False,
            problem=(
                f"{gate.metric} is {_a(values.kind)} metric (type {values.type!r}), and "
                f"{gate.condition!r} gates {_a(wanted)} one; gate it with "
                f"{' / '.join(takes)}"
            ),
            values=values,
        )
    if gate.op == "in":
        counts = values.counts
        if not counts:
            return GateResult(gate, False, problem=_no_scores(gate), values=values)
        unexpected = {v: n for v, n in counts.items() if v not in gate.allowed}
        worst = tuple(v for v in values.values if v.value in unexpected)[:WORST_RUNS]
        return GateResult(gate, not unexpected, values=values, worst=worst, unexpected=unexpected)
    actual = values.aggregate(gate.aggregate)
    if actual is None or gate.threshold is None:
        return GateResult(gate, False, problem=_no_scores(gate), values=values)
    passed = _compare(gate.op, actual, gate.threshold)
    worst = values.worst(WORST_RUNS, high_is_bad=gate.op in ("<", "<="))
    return GateResult(gate, passed, actual=actual, values=values, worst=worst)


def _a(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


def _compare(op: str, actual: float, threshold: float) -> bool:
    # Within epsilon counts as equal: 4/5 meets ">= 0.8" and "<= 0.8", not "< 0.8".
    if math.isclose(actual, threshold, rel_tol=_EPSILON, abs_tol=_EPSILON):
        return op in ("<=", ">=")
    return OPERATORS[op](actual, threshold)


def _no_scores(gate: Gate) -> str:
    return f"the runs carry {gate.metric} but none has a {'value' if gate.op == 'in' else 'score'}"


def gated_metrics(results: Sequence[GateResult]) -> dict[str, dict[str, Any]]:
    """Each gated metric's aggregates (``MetricValues.to_json``), by name, for reports."""
    return {
        result.gate.metric: result.values.to_json()
        for result in results
        if result.values is not None
    }


__all__ = [
    "OPERATORS",
    "WORST_RUNS",
    "Gate",
    "GateResult",
    "GateSyntaxError",
    "check_gates",
    "format_value",
    "gate_setting",
    "gated_metrics",
    "parse_condition",
    "parse_gate_lines",
    "parse_gates",
]
