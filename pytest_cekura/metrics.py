"""A test's metrics across its runs: each run's value of a named metric (Cekura's
``evaluation.metrics``) and the aggregates that gates compare and reports show.

Cekura scores each evaluated run on the metrics configured for the agent. Three kinds matter
here (``cekura-api.md`` section 4, the metric entry):

* **numeric** (``numeric``, ``continuous_qualitative`` and any other scored type): ``score``
  is a number, e.g. a call's latency in ms; a latency metric also carries the call's own
  percentiles under ``extra.percentiles``. Aggregates over the runs' scores: ``mean``,
  ``min``, ``p50``, ``p90``, ``p95``, ``max``.
* **binary** (types starting with ``binary``): a run passes the metric when its ``score`` is
  above 0. Aggregate: ``pass_rate``, the share of runs that passed it.
* **enum**: the run's ``enum`` (else ``value``) is one of the metric's values. Aggregate:
  ``counts``, how many runs had each value.

Percentiles over runs are linear interpolation between the closest ranks (numpy's default):
``p50`` of ``[100, 200, 300, 400]`` is 250, ``p95`` of five runs lies between the largest two.
"""

from __future__ import annotations

import difflib
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pydantic's models load with the first Cekura test, not with the plugin
    from .models import Metric, Run

MetricKind = Literal["numeric", "binary", "enum"]
#: Aggregates of a numeric metric over a test's runs, in the order reports show them.
NUMERIC_AGGREGATES: tuple[str, ...] = ("mean", "min", "p50", "p90", "p95", "max")
#: The aggregate of a binary metric: the share of runs that passed it.
BINARY_AGGREGATES: tuple[str, ...] = ("pass_rate",)
#: Every aggregate name a gate may compare (enum metrics are gated by their allowed values).
AGGREGATES: tuple[str, ...] = NUMERIC_AGGREGATES + BINARY_AGGREGATES
_QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95}


def metric_kind(type_name: str) -> MetricKind:
    """Cekura's metric ``type`` to the kind that says how to aggregate it."""
    name = type_name.strip().lower()
    if name.startswith("binary"):
        return "binary"
    if name.startswith("enum"):
        return "enum"
    return "numeric"


def aggregates_of(kind: MetricKind) -> tuple[str, ...]:
    """The aggregates a metric of this kind has (none for enum: it has value counts)."""
    return {"numeric": NUMERIC_AGGREGATES, "binary": BINARY_AGGREGATES, "enum": ()}[kind]


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` (0..1) percentile by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    weight = position - lower
    return ordered[lower] + (ordered[upper] - ordered[lower]) * weight


@dataclass(frozen=True)
class MetricValue:
    """One run's value of one metric."""

    run_id: int
    scenario: int | None
    #: The result the run belongs to (for its dashboard link).
    result_id: int | None
    #: Cekura's ``score`` (None when it sent none).
    score: float | None
    #: Enum metrics: the value the run got (``enum``, else ``value``); None for other kinds.
    value: str | None = None
    #: Binary metrics: the run passed the metric (score above 0); None for other kinds.
    passed: bool | None = None
    #: This call's own percentiles (``extra.percentiles``, e.g. ``{"p50": 820, "p90": 1220}``).
    percentiles: Mapping[str, float] = field(default_factory=dict)
    explanation: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "scenario": self.scenario,
            "result_id": self.result_id,
            "score": self.score,
            "value": self.value,
            "passed": self.passed,
            "percentiles": dict(self.percentiles),
            "explanation": list(self.explanation),
        }


@dataclass(frozen=True)
class MetricValues:
    """One metric across a test's runs: each run's value and the aggregates over them.

    ``values`` holds the runs that carry the metric, in run order; ``missing`` the evaluated
    runs (those with any metric) that do not. Aggregates are None when no run has a score.
    """

    name: str
    kind: MetricKind
    #: Cekura's ``type`` as the first run carrying the metric gave it.
    type: str
    values: tuple[MetricValue, ...]
    missing: tuple[int, ...] = ()

    @property
    def count(self) -> int:
        return len(self.values)

    @property
    def scores(self) -> tuple[float, ...]:
        return tuple(v.score for v in self.values if v.score is not None)

    @property
    def mean(self) -> float | None:
        scores = self.scores
        return sum(scores) / len(scores) if scores else None

    @property
    def min(self) -> float | None:
        return min(self.scores, default=None)

    @property
    def max(self) -> float | None:
        return max(self.scores, default=None)

    @property
    def p50(self) -> float | None:
        return self._quantile("p50")

    @property
    def p90(self) -> float | None:
        return self._quantile("p90")

    @property
    def p95(self) -> float | None:
        return self._quantile("p95")

    @property
    def pass_rate(self) -> float | None:
        """Binary metrics: the share of runs (with a score) that passed it."""
        judged = [v.passed for v in self.values if v.passed is not None]
        return sum(judged) / len(judged) if judged else None

    @property
    def counts(self) -> dict[str, int]:
        """Enum metrics: how many runs had each value, most frequent first."""
        return dict(Counter(v.value for v in self.values if v.value is not None).most_common())

    def aggregate(self, name: str) -> float | None:
        """One aggregate by name (``mean``, ``min``, ``p50``, ``p90``, ``p95``, ``max``,
        ``pass_rate``); ``ValueError`` for any other name."""
        if name not in AGGREGATES:
            raise ValueError(f"unknown aggregate {name!r}; use one of: {', '.join(AGGREGATES)}")
        value: float | None = getattr(self, name)
        return value

    def aggregates(self) -> dict[str, float]:
        """The aggregates this metric's kind has, those that could be computed."""
        found = {name: self.aggregate(name) for name in aggregates_of(self.kind)}
        return {name: value for name, value in found.items() if value is not None}

    def worst(self, count: int = 3, *, high_is_bad: bool = True) -> tuple[MetricValue, ...]:
        """The runs furthest on the bad side: highest scores (``high_is_bad``) or lowest;
        for binary metrics the runs that failed it."""
        if self.kind == "binary":
            return tuple(v for v in self.values if v.passed is False)[:count]
        scored = [v for v in self.values if v.score is not None]
        scored.sort(key=lambda v: v.score or 0.0, reverse=high_is_bad)
        return tuple(scored[:count])

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "type": self.type,
            "count": self.count,
            **self.aggregates(),
        }
        if self.kind == "enum":
            data["counts"] = self.counts
        data["missing"] = list(self.missing)
        return data

    def _quantile(self, name: str) -> float | None:
        scores = self.scores
        return percentile(scores, _QUANTILES[name]) if scores else None


class UnknownMetricError(KeyError):
    """No run of the test has a metric of this name; ``known`` lists those they have."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        super().__init__(name)
        self.name = name
        self.known = tuple(known)

    def __str__(self) -> str:
        return unknown_metric_message(self.name, self.known)


def unknown_metric_message(name: str, known: Sequence[str]) -> str:
    """ "no run has metric 'X'; the runs' metrics are: ..." with a "did you mean"."""
    if not known:
        return f"no run has a metric named {name!r}: no run carries any metric"
    lowered = {k.lower(): k for k in known}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1)
    hint = f" (did you mean {lowered[close[0]]!r}?)" if close else ""
    return f"no run has a metric named {name!r}{hint}; the runs' metrics are: {', '.join(known)}"


def metric_names(runs: Iterable[Run]) -> tuple[str, ...]:
    """Every metric name the runs carry, in the order first seen."""
    names: dict[str, None] = {}
    for run in runs:
        for metric in _metrics(run):
            if metric.name:
                names.setdefault(metric.name, None)
    return tuple(names)


def metric_values(runs: Sequence[Run], name: str) -> MetricValues:
    """The metric ``name`` (exact spelling) across ``runs``; ``UnknownMetricError`` when no
    run carries it."""
    values: list[MetricValue] = []
    missing: list[int] = []
    kind: MetricKind | None = None
    type_name = ""
    for run in runs:
        metrics = _metrics(run)
        metric = next((m for m in metrics if m.name == name), None)
        if metric is None:
            if metrics:
                missing.append(run.id)
            continue
        if kind is None:
            type_name, kind = metric.type, metric_kind(metric.type)
        values.append(_value(run, metric, kind))
    if kind is None:
        raise UnknownMetricError(name, metric_names(runs))
    return MetricValues(name, kind, type_name, tuple(values), tuple(missing))


def _metrics(run: Run) -> list[Metric]:
    return run.evaluation.metrics if run.evaluation is not None else []


def _value(run: Run, metric: Metric, kind: MetricKind) -> MetricValue:
    extra = metric.model_extra or {}
    details = extra.get("extra")
    raw = details.get("percentiles") if isinstance(details, Mapping) else None
    percentiles = {
        str(key): float(number)
        for key, number in (raw.items() if isinstance(raw, Mapping) else ())
        if isinstance(number, int | float) and not isinstance(number, bool)
    }
    value = None
    if kind == "enum":
        chosen = extra.get("enum") or extra.get("value")
        value = str(chosen) if chosen not in (None, "") else None
    passed = None
    if kind == "binary" and metric.score is not None:
        passed = metric.score > 0
    return MetricValue(
        run_id=run.id,
        scenario=run.scenario,
        result_id=run.result_id,
        score=metric.score,
        value=value,
        passed=passed,
        percentiles=percentiles,
        explanation=tuple(metric.explanation),
    )
