"""Metrics across runs and gates on them, as pure functions; the catalogue's metric tables."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_cekura.emulator.catalogue import CatalogueError, parse_catalogue
from pytest_cekura.emulator.content import metrics as emulated_metrics
from pytest_cekura.errors import ConfigError
from pytest_cekura.gates import (
    Gate,
    GateSyntaxError,
    check_gates,
    gate_setting,
    parse_condition,
    parse_gates,
)
from pytest_cekura.metrics import UnknownMetricError, metric_names, metric_values, percentile
from pytest_cekura.models import Run
from pytest_cekura.outcome import Outcome, Rule, Rules, decide
from pytest_cekura.poller import RunState


def run(run_id: int, *metrics: dict[str, Any], success: bool = True) -> Run:
    return Run.model_validate(
        {
            "id": run_id,
            "scenario": 30,
            "status": "completed",
            "success": success,
            "evaluation": {"metrics": list(metrics)},
        }
    )


def latency(score: float | None) -> dict[str, Any]:
    return {
        "name": "Latency",
        "type": "numeric",
        "score": score,
        "extra": {"percentiles": {"p50": score, "p90": "bad"}},
    }


def binary(score: float) -> dict[str, Any]:
    return {"name": "Greeting", "type": "binary_qualitative", "score": score}


def enum(value: str) -> dict[str, Any]:
    return {"name": "Sentiment", "type": "enum", "score": 0, "value": value, "enum": value}


RUNS = [
    run(1, latency(100), binary(100), enum("positive")),
    run(2, latency(200), binary(0), enum("positive")),
    run(3, latency(300), binary(100), enum("negative"), success=False),
    run(4, latency(400), binary(100)),
    run(5),  # not evaluated: no metrics at all
]


def test_percentiles_interpolate_between_closest_ranks() -> None:
    assert percentile([100, 200, 300, 400], 0.5) == 250
    assert percentile([400, 100, 300, 200], 0.95) == pytest.approx(385)
    assert percentile([7], 0.9) == 7
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)


def test_numeric_binary_and_enum_aggregates() -> None:
    values = metric_values(RUNS, "Latency")
    assert values.kind == "numeric"
    assert [v.run_id for v in values.values] == [1, 2, 3, 4]
    assert values.missing == ()
    assert values.aggregates() == {
        "mean": 250,
        "min": 100,
        "p50": 250,
        "p90": pytest.approx(370),
        "p95": pytest.approx(385),
        "max": 400,
    }
    # The call's own percentiles are kept, unreadable entries dropped.
    assert values.values[0].percentiles == {"p50": 100.0}
    assert [v.run_id for v in values.worst(2)] == [4, 3]
    assert [v.run_id for v in values.worst(2, high_is_bad=False)] == [1, 2]
    greeting = metric_values(RUNS, "Greeting")
    assert greeting.kind == "binary"
    assert greeting.pass_rate == 0.75
    assert greeting.aggregates() == {"pass_rate": 0.75}
    assert [v.run_id for v in greeting.worst()] == [2]
    sentiment = metric_values(RUNS, "Sentiment")
    assert sentiment.counts == {"positive": 2, "negative": 1}
    assert sentiment.missing == (4,)  # evaluated, but without this metric
    assert sentiment.to_json()["counts"] == {"positive": 2, "negative": 1}
    assert sentiment.aggregates() == {}
    assert metric_names(RUNS) == ("Latency", "Greeting", "Sentiment")
    with pytest.raises(ValueError, match="unknown aggregate 'p99'"):
        values.aggregate("p99")


def test_an_unknown_metric_names_those_that_exist() -> None:
    with pytest.raises(UnknownMetricError) as caught:
        metric_values(RUNS, "latency")
    assert str(caught.value) == (
        "no run has a metric named 'latency' (did you mean 'Latency'?); the runs' metrics "
        "are: Latency, Greeting, Sentiment"
    )
    assert caught.value.known == ("Latency", "Greeting", "Sentiment")
    with pytest.raises(UnknownMetricError, match="no run carries any metric"):
        metric_values([run(9)], "Latency")


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("p95 <= 1200", Gate("Latency", "p95", "<=", 1200.0)),
        ("  mean<900 ", Gate("Latency", "mean", "<", 900.0)),
        ("pass_rate >= 0.8", Gate("Latency", "pass_rate", ">=", 0.8)),
        ("in positive, neutral", Gate("Latency", "in", "in", allowed=("positive", "neutral"))),
        ({"in": ["a b", "c"]}, Gate("Latency", "in", "in", allowed=("a b", "c"))),
    ],
)
def test_conditions(condition: Any, expected: Gate) -> None:
    assert parse_condition("Latency", condition) == (expected,)


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("p95 = 1200", "is invalid; use"),
        ("p95 <= nan", "which is not a number"),
        ("median <= 3", "unknown aggregate 'median'"),
        ({"not_in": ["a"]}, 'takes the one key "in"'),
        ({"in": []}, "list the allowed values"),
        ([], "[] is invalid"),
        (1200, "1200 is invalid"),
    ],
)
def test_bad_conditions(condition: Any, message: str) -> None:
    with pytest.raises(GateSyntaxError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_condition("Latency", condition)


def test_marker_gates_replace_session_gates_metric_by_metric() -> None:
    session = gate_setting("Latency: p95 <= 1500\nGreeting: pass_rate >= 0.9; ", "ini key x")
    assert [str(g) for g in session] == ["Latency: p95 <= 1500", "Greeting: pass_rate >= 0.9"]
    gates = parse_gates({"Latency": ["p95 <= 900", "max < 2000"], "Greeting": None}, session)
    assert [str(g) for g in gates] == ["Latency: p95 <= 900", "Latency: max < 2000"]
    assert parse_gates(None, session) == session
    with pytest.raises(ConfigError, match=r"^--cekura-gates: 'Latency' is invalid; write one"):
        gate_setting("Latency", "--cekura-gates")
    with pytest.raises(GateSyntaxError, match="is not a metric name"):
        parse_gates({" ": "p95 <= 1"})


def test_checks_hold_break_or_cannot_be_made() -> None:
    gates = parse_gates(
        {
            "Latency": ["p95 <= 400", "p95 < 385", "max <= 399"],
            "Greeting": "pass_rate >= 0.75",
            "Sentiment": "in positive",
            "Tone": "mean <= 1",
        }
    )
    results = check_gates(gates, RUNS)
    assert [(r.passed, r.broken) for r in results] == [
        (True, False),
        (False, True),  # exactly on the threshold: "<" is broken, "<=" held
        (False, True),
        (True, False),
        (False, True),
        (False, False),  # cannot be checked: a problem, not broken
    ]
    assert results[2].actual == 400
    assert [v.run_id for v in results[2].worst] == [4, 3, 2]
    assert results[4].unexpected == {"negative": 1}
    assert [v.run_id for v in results[4].worst] == [3]
    assert results[5].problem is not None
    assert "no run has a metric named 'Tone'" in results[5].problem
    wrong = check_gates(parse_gates({"Greeting": "p95 <= 1"}), RUNS)[0]
    assert wrong.problem == (
        "Greeting is a binary metric (type 'binary_qualitative'), and 'p95 <= 1' gates a "
        "numeric one; gate it with pass_rate"
    )
    unscored = check_gates(parse_gates({"Latency": "max < 1"}), [run(1, latency(None))])[0]
    assert unscored.problem == "the runs carry Latency but none has a score"


def states(*runs: Run) -> list[RunState]:
    return [RunState(r) for r in runs]


def test_gates_apply_last_in_decide() -> None:
    ok = [run(i, latency(100 * i)) for i in range(1, 5)]
    held = decide("t", states(*ok), 1.0, (), Rules(), gates=parse_gates({"Latency": "max <= 400"}))
    assert held.outcome is Outcome.PASSED
    assert held.reason is not None
    assert held.reason.rule is Rule.THRESHOLD
    assert held.reason.text.endswith(
        "; metric gates: Latency max 400 over 4 run(s) meets the gate max <= 400"
    )
    broken = decide("t", states(*ok), 1.0, (), Rules(), gates=parse_gates({"Latency": "max < 400"}))
    assert broken.outcome is Outcome.FAILED
    assert broken.reason is not None
    assert broken.reason.rule is Rule.GATE
    assert (broken.reason.metric, broken.reason.gate, broken.reason.actual) == (
        "Latency",
        "max < 400",
        400,
    )
    # A baseline decides the success rate; a broken gate still fails the test.
    compared = decide(
        "t",
        states(*ok),
        1.0,
        (),
        Rules(baseline={"t": 1.0}),
        gates=parse_gates({"Latency": "max < 400"}),
    )
    assert compared.outcome is Outcome.FAILED
    assert compared.reason is not None
    assert compared.reason.rule is Rule.GATE
    assert compared.reason.baseline == 1.0
    # Runs that failed stay failed; an error stays an error; an uncheckable gate errors.
    failing = states(run(1, latency(100), success=False))
    gates = parse_gates({"Latency": "max < 50"})
    assert decide("t", failing, 1.0, (), Rules(), gates=gates).outcome is Outcome.FAILED
    errored = decide("t", states(run(1, latency(100))), 1.0, ("boom",), Rules(), gates=gates)
    assert errored.outcome is Outcome.ERROR
    assert errored.reason is not None
    assert errored.reason.rule is Rule.NOT_RUN
    typo = decide("t", failing, 1.0, (), Rules(), gates=parse_gates({"Latncy": "max < 50"}))
    assert typo.outcome is Outcome.ERROR
    assert typo.reason is not None
    assert typo.reason.rule is Rule.GATE


CATALOGUE_METRICS = """
[[scenario]]
id = 30
metrics = [
  { name = "Latency", min = 900, max = 900 },
  { name = "Greeting", type = "binary", pass_probability = 0 },
  { name = "Sentiment", type = "enum", values = ["calm"], id = 77 },
]
"""


def test_the_catalogue_controls_the_metrics_of_a_scenario() -> None:
    import tomllib

    catalogue = parse_catalogue(tomllib.loads(CATALOGUE_METRICS))
    served = emulated_metrics(catalogue.scenario(30), 90001, "pass")
    by_name = {m["name"]: m for m in served}
    # The catalogue's Latency replaces the built-in one; the built-in binary metric stays.
    assert list(by_name) == ["Instruction Following", "Latency", "Greeting", "Sentiment"]
    assert by_name["Latency"]["score"] == 900
    assert by_name["Latency"]["extra"]["percentiles"] == {"p50": 900, "p90": 1170, "p95": 1350}
    assert (by_name["Greeting"]["type"], by_name["Greeting"]["score"]) == ("binary_qualitative", 0)
    assert (by_name["Sentiment"]["enum"], by_name["Sentiment"]["id"]) == ("calm", 77)
    # Another scenario keeps the built-in metrics only.
    assert [m["name"] for m in emulated_metrics(catalogue.scenario(31), 1, "pass")] == [
        "Instruction Following",
        "Latency",
    ]


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        (
            '[{ name = "Latency", mn = 1 }]',
            "scenario[1] (id=30): metrics[1]: unknown key 'mn' (did you mean 'min'?)",
        ),
        (
            '[{ name = "Tone", type = "enum" }]',
            "metrics[1]: an enum metric needs field 'values'",
        ),
        (
            '[{ name = "Tone", type = "binary", min = 1 }]',
            "metrics[1]: key 'min' is for numeric metrics, and this one has type = 'binary'",
        ),
        ('[{ name = "Latency", min = 5, max = 1 }]', "metrics[1]: min = 5 is above max = 1"),
        ('[{ type = "numeric" }]', "metrics[1]: missing required field 'name'"),
        ('[{ name = "X", type = "score" }]', "field 'type' has invalid value 'score'"),
        ('"Latency"', "field 'metrics' has invalid value 'Latency'; must be a list of tables"),
    ],
)
def test_bad_metric_tables_are_named_precisely(metrics: str, message: str) -> None:
    import tomllib

    with pytest.raises(CatalogueError) as caught:
        parse_catalogue(tomllib.loads(f"[[scenario]]\nid = 30\nmetrics = {metrics}\n"))
    assert message in str(caught.value)
