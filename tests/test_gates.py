"""Metric gates end to end: the emulator's runs carry metrics the catalogue controls, and a
test passes only when its runs succeed and its gates hold."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import Suite
from pytest_cekura.gates import format_value
from pytest_cekura.metrics import percentile

CATALOGUE = """
[[scenario]]
id = 40
name = "Slow refill lookup"
duration_s = 20
metrics = [{ name = "Latency", min = 1300, max = 1900 }]

[[scenario]]
id = 41
name = "Rude greeting"
duration_s = 20

[[scenario.metrics]]
name = "Greeting"
type = "binary"
pass_probability = 0

[[scenario.metrics]]
name = "Sentiment"
type = "enum"
values = ["negative"]

[[scenario]]
id = 42
name = "Polite and quick"
duration_s = 20

[[scenario.metrics]]
name = "Greeting"
type = "binary"

[[scenario.metrics]]
name = "Sentiment"
type = "enum"
values = ["positive", "neutral"]

[[scenario]]
id = 50
name = "A long call"
duration_s = 500
"""


@pytest.fixture
def gated(make_suite: Callable[[str], Suite]) -> Suite:
    return make_suite(CATALOGUE)


def _properties(junit: Path) -> list[tuple[str | None, str | None]]:
    return [(p.get("name"), p.get("value")) for p in ET.parse(junit).getroot().iter("property")]


def _test(report: Path, index: int = 0) -> dict[str, Any]:
    tests: list[dict[str, Any]] = json.loads(report.read_text())["tests"]
    return tests[index]


def test_calls_succeed_but_latency_p95_breaks_its_gate(gated: Suite, tmp_path: Path) -> None:
    gated.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(40, frequency=4, gates={"Latency": "p95 <= 1200"})
        def test_refill_is_quick():
            pass
        """
    )
    junit, report = tmp_path / "junit.xml", tmp_path / "cekura.json"
    result = gated.run(f"--junitxml={junit}", f"--cekura-report={report}")
    result.assert_outcomes(failed=1)
    test = _test(report)
    # The runs themselves all succeeded: only the gate failed the test.
    assert (test["succeeded"], test["total"]) == (4, 4)
    scores = [run["metrics"]["Latency"] for run in test["runs"]]
    assert all(1300 <= score <= 1900 for score in scores)
    p95 = percentile(scores, 0.95)
    latency = test["metrics"]["Latency"]
    assert latency["p95"] == pytest.approx(p95)
    assert latency["count"] == 4
    assert latency["kind"] == "numeric"
    (gate,) = test["gates"]
    assert gate["metric"] == "Latency"
    assert gate["condition"] == "p95 <= 1200"
    assert gate["passed"] is False
    assert gate["actual"] == pytest.approx(p95)
    worst = max(test["runs"], key=lambda run: run["metrics"]["Latency"])
    assert gate["worst_runs"][0] == worst["id"]
    assert test["reason"]["rule"] == "metric_gate"
    assert test["reason"]["metric"] == "Latency"
    assert test["reason"]["gate"] == "p95 <= 1200"
    shown = format_value(p95)
    slowest = format_value(worst["metrics"]["Latency"])
    result.stdout.fnmatch_lines(
        [
            "*Cekura: 4 of 4 runs succeeded (100%), but it broke the metric gate "
            "Latency: p95 <= 1200.",
            f"decided by: metric gate rule: Latency p95 {shown} over 4 run(s) breaks the gate "
            "p95 <= 1200 (the success rate alone would pass: threshold rule: 4 of 4 runs*",
            "metric gates:",
            f"  !! Latency p95 {shown} over 4 run(s) breaks the gate p95 <= 1200",
            "     worst runs (Latency):",
            f"       run {worst['id']} · scenario 40 · Latency {slowest} · "
            f"https://dashboard.cekura.ai/1/results/*?call_id={worst['id']}",
            f"FAILED  *::test_refill_is_quick · scenarios 40 · runs 4/4 (100%), broke the metric "
            f"gate Latency: p95 <= 1200 (metric gate) · Latency p95 {shown} (<= 1200)",
        ]
    )
    props = _properties(junit)
    assert ("cekura_rule", "metric_gate") in props
    assert ("cekura_metric:Latency:p95", str(round(p95, 4))) in props
    assert ("cekura_metric:Latency:count", "4") in props
    (gate_json,) = [json.loads(v or "") for n, v in props if n == "cekura_gate_json"]
    assert gate_json["actual"] == pytest.approx(p95)
    assert gate_json["passed"] is False


def test_binary_pass_rate_and_enum_gates(gated: Suite, tmp_path: Path) -> None:
    gated.pytester.makepyfile(
        """
        import pytest

        GATES = {
            "Greeting": "pass_rate >= 0.8",
            "Sentiment": {"in": ["positive", "neutral"]},
            "Latency": ["max <= 1500", "mean < 1300"],
        }

        @pytest.mark.cekura_scenario(41, frequency=3, gates=GATES)
        def test_rude():
            pass

        @pytest.mark.cekura_scenario(42, frequency=3, gates=GATES)
        def test_polite():
            pass
        """
    )
    report = tmp_path / "cekura.json"
    result = gated.run(f"--cekura-report={report}")
    result.assert_outcomes(passed=1, failed=1)
    rude, polite = _test(report, 0), _test(report, 1)
    assert rude["outcome"] == "failed"
    assert polite["outcome"] == "passed"
    assert rude["metrics"]["Greeting"]["pass_rate"] == 0.0
    assert rude["metrics"]["Sentiment"]["counts"] == {"negative": 3}
    assert polite["metrics"]["Greeting"]["pass_rate"] == 1.0
    assert set(polite["metrics"]["Sentiment"]["counts"]) <= {"positive", "neutral"}
    assert [g["passed"] for g in polite["gates"]] == [True] * 4
    # The built-in Latency (600-1199 ms) is kept beside the catalogue's own metrics.
    assert polite["metrics"]["Latency"]["max"] < 1200
    result.stdout.fnmatch_lines(
        [
            "*but it broke the metric gate Greeting: pass_rate >= 0.8, "
            "Sentiment: in positive, neutral.",
            "  !! Greeting pass_rate 0 over 3 run(s) breaks the gate pass_rate >= 0.8",
            "     worst runs (Greeting):",
            "       run * · scenario 41 · Greeting 0 · *",
            "  !! Sentiment had negative (3 run(s)) over 3 run(s), breaking the gate "
            "in positive, neutral",
            "  ok Latency max * over 3 run(s) meets the gate max <= 1500",
        ]
    )
    (line,) = [line for line in result.outlines if line.startswith("PASSED  ")]
    counts = ", ".join(f"{v} {n}" for v, n in polite["metrics"]["Sentiment"]["counts"].items())
    latency = polite["metrics"]["Latency"]
    assert line.endswith(
        f"needs 100% · Greeting pass_rate 1 (>= 0.8) · Sentiment {counts} (in positive, neutral)"
        f" · Latency max {format_value(latency['max'])} (<= 1500)"
        f" · Latency mean {format_value(latency['mean'])} (< 1300)"
    )


def test_a_gate_that_cannot_be_checked_errors_naming_the_metrics_that_exist(gated: Suite) -> None:
    gated.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(42, gates={"Latncy": "p95 <= 1200"})
        def test_typo():
            pass

        @pytest.mark.cekura_scenario(42, gates={"Sentiment": "p95 <= 2"})
        def test_kind():
            pass
        """
    )
    result = gated.run()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*Cekura: 1 of 1 runs succeeded, but a metric gate could not be checked (see below).",
            "decided by: metric gate rule: gate 'Latncy: p95 <= 1200' could not be checked: no "
            "run has a metric named 'Latncy' (did you mean 'Latency'?); the runs' metrics are: "
            "Instruction Following, Latency, Greeting, Sentiment",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*could not be checked: Sentiment is an enum metric (type 'enum'), and 'p95 <= 2' "
            "gates a numeric one; gate it with in <values>",
            "ERROR   *::test_typo · *metric gate Latncy: p95 <= 1200 not checkable*",
        ]
    )


#: Bad gates, and the message each gets (after "@pytest.mark.cekura_scenario: ").
BAD_GATES = [
    (
        '{"Latency": "p95 =< 1200"}',
        "gates['Latency'] = 'p95 =< 1200' is invalid; use \"<aggregate> <op> <number>\"",
    ),
    (
        '{"Latency": "p99 <= 1200"}',
        "gates['Latency'] = 'p99 <= 1200' has unknown aggregate 'p99'; use one of: mean, "
        "min, p50, p90, p95, max, pass_rate",
    ),
    (
        '{"Greeting": "pass_rate >= 80"}',
        "gates['Greeting'] = 'pass_rate >= 80' is invalid; pass_rate is a fraction from "
        "0.0 to 1.0 (e.g. 0.8 for 80%)",
    ),
    ('["Latency"]', "gates=['Latency'] is invalid; use a dict of metric names to conditions"),
    (
        '{"Sentiment": {"in": "positive"}}',
        "gates['Sentiment'] = {'in': 'positive'} is invalid; list the allowed values",
    ),
    ('{"Latency": "p95 <= fast"}', "gates['Latency'] = 'p95 <= fast' compares with 'fast',"),
]


def test_a_bad_gate_errors_its_test_at_collection_and_starts_nothing_for_it(gated: Suite) -> None:
    tests = "\n".join(
        f"@pytest.mark.cekura_scenario(42, gates={gates})\ndef test_bad_{n}(): pass\n"
        for n, (gates, _) in enumerate(BAD_GATES)
    )
    gated.pytester.makepyfile(f"import pytest\n\n{tests}")
    result = gated.run()
    result.assert_outcomes(errors=len(BAD_GATES))
    out = result.stdout.str()
    for _, message in BAD_GATES:
        # Brackets would be character classes to fnmatch: compare the text itself.
        assert f"\n@pytest.mark.cekura_scenario: {message}" in out
    assert gated.posts() == 0


def test_session_gates_apply_to_every_test_and_a_marker_overrides_them(gated: Suite) -> None:
    gated.pytester.makeini(
        """
        [pytest]
        cekura_gates =
            Latency: max <= 100
            Greeting: pass_rate >= 0.5
        """
    )
    gated.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(42)
        def test_session_gates():
            pass

        @pytest.mark.cekura_scenario(42, gates={"Latency": None})
        def test_latency_gate_dropped():
            pass

        @pytest.mark.cekura_scenario(42, gates={"Latency": "max <= 1300"})
        def test_latency_gate_replaced():
            pass
        """
    )
    result = gated.run()
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["FAILED  *::test_session_gates · *Latency: max <= 100*"])
    # A bad session gate names its source.
    bad = gated.run("--cekura-gates=Latency p95 <= 1")
    assert bad.ret != 0
    bad.stderr.fnmatch_lines(
        ["*--cekura-gates: 'Latency p95 <= 1' is invalid; write one gate as \"Metric: condition\"*"]
    )


def test_metrics_in_the_fixture(gated: Suite) -> None:
    gated.pytester.makepyfile(
        """
        import pytest

        from pytest_cekura.metrics import UnknownMetricError


        @pytest.mark.cekura_scenario(40, 42, frequency=2)
        def test_metrics(cekura_result):
            latency = cekura_result.metric("Latency")
            assert latency.kind == "numeric" and latency.count == 4
            assert [v.run_id for v in latency.values] == [r.id for r in cekura_result.runs]
            assert latency.min <= latency.p50 <= latency.p95 <= latency.max
            assert latency.aggregates()["mean"] == sum(latency.scores) / 4
            assert latency.values[0].percentiles["p90"] > latency.values[0].score
            # Scenario 42 has no Greeting: its runs are listed as missing it.
            greeting = cekura_result.metric("Greeting")
            assert greeting.kind == "binary" and greeting.pass_rate == 1.0
            assert len(greeting.missing) == 2
            sentiment = cekura_result.metric("Sentiment")
            assert sentiment.kind == "enum" and sum(sentiment.counts.values()) == 2
            # Each run keeps its own metrics.
            names = [m.name for m in cekura_result.runs[0].evaluation.metrics]
            assert names == ["Instruction Following", "Latency"]
            with pytest.raises(UnknownMetricError, match="did you mean 'Latency'"):
                cekura_result.metric("latency")
        """
    )
    gated.run().assert_outcomes(passed=1)


def test_no_early_verdict_for_a_gated_test(gated: Suite) -> None:
    gated.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(42, 50, min_success_rate=0.5)
        def test_plain():
            pass
        """
    )
    gated.run("--cekura-early-verdict").assert_outcomes(passed=1)
    assert gated.emulator.count("POST", "end_call") == 1
    gated.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(42, 50, min_success_rate=0.5, gates={"Latency": "max <= 1300"})
        def test_plain():
            pass
        """
    )
    gated.run("--cekura-early-verdict").assert_outcomes(passed=1)
    # The long call ran to its end: a gate could still have been broken by it.
    assert gated.emulator.count("POST", "end_call") == 1


def test_gates_in_a_toml_suite(gated: Suite) -> None:
    gated.pytester.makefile(
        ".toml",
        cekura_gated="""
        [[test]]
        name = "slow refill"
        scenarios = [40]
        gates = { Latency = "max <= 1200" }
        """,
    )
    result = gated.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*broke the metric gate Latency: max <= 1200*"])


def test_gates_under_xdist(gated: Suite, tmp_path: Path) -> None:
    """Each worker judges its tests' gates; the controller's summary and report carry them."""
    gated.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("i", range(2))
        @pytest.mark.cekura_scenario(40, 42, gates={"Latency": "max <= 1200"})
        def test_gated(i):
            pass
        """
    )
    report = tmp_path / "cekura.json"
    result = gated.run("-n", "2", f"--cekura-report={report}", subprocess=True)
    result.assert_outcomes(failed=2)
    assert gated.posts() == 1
    tests = json.loads(report.read_text())["tests"]
    assert [t["gates"][0]["passed"] for t in tests] == [False, False]
    assert all(t["metrics"]["Latency"]["max"] >= 1300 for t in tests)
    result.stdout.fnmatch_lines(["FAILED  *::test_gated* · *Latency max * (<= 1200)"] * 2)


def test_reuse_takes_no_result_that_broke_a_gate(gated: Suite) -> None:
    """--cekura-reuse skips the calls that passed, but a result whose runs succeeded while
    breaking a test's gate is paid for again: after a fix the calls must run again."""
    gated.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(40, gates={"Latency": "max <= 1200"})
        def test_slow():
            pass

        @pytest.mark.cekura_scenario(42, frequency=2, gates={"Latency": "max <= 1200"})
        def test_quick():
            pass
        """
    )
    # Reuse needs pytest's cache: not gated.run, which turns it off.
    poll = "--cekura-poll-interval=0.02"
    gated.pytester.runpytest(poll).assert_outcomes(passed=1, failed=1)
    assert gated.posts() == 2
    result = gated.pytester.runpytest(poll, "--cekura-reuse=1h")
    result.assert_outcomes(passed=1, failed=1)
    assert gated.posts() == 3  # scenario 40's calls again; 42's result reused
    result.stdout.fnmatch_lines(["PASSED  *::test_quick · * · reused result *"])
