"""Text for people: a failing test's report and the session's terminal summary lines. The
reports for machines (JSON, JUnit properties, summary rows) and the links are
``report_data.py``, re-exported here."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from .client import START_LABEL
from .gates import format_value
from .markers import ScenarioSpec
from .models import Run
from .outcome import Outcome, Rule, RunIssue, Verdict
from .records import TestRecord
from .report_data import (
    JUNIT_RUN_FIELDS,
    REPORT_VERSION,
    Links,
    SummaryRow,
    json_report,
    junit_properties,
    mark_ended,
    run_record,
    run_records,
    run_url,
    summary_row,
)
from .reuse import describe_age
from .submit import Group

TRANSCRIPT_TAIL = 6


def failure_text(record: TestRecord, links: Links, worker_output: Sequence[str] = ()) -> str:
    """The report of a failed or errored Cekura test: what was asked, and each run that fell
    short with its reasons, metrics, transcript tail, job metadata and link."""
    verdict = record.verdict
    assert verdict is not None
    lines = [_headline(record.spec, verdict)]
    if verdict.reason is not None:
        lines.append(f"decided by: {verdict.reason.text}")
    lines.append(_scope(record))
    # What the request changed for the agent, e.g. the room metadata livekit_data.config sent.
    lines += [f"  {line}" for line in record.spec.request_lines()]
    lines += [f"  ! {problem}" for problem in verdict.problems]
    lines += _gate_lines(record, links)
    for issue in verdict.issues:
        lines.append("")
        lines += _run_block(issue, links.for_record(record, issue.run))
    if worker_output:
        lines += ["", f"agent worker output (last {len(worker_output)} lines):"]
        lines += [f"  {line}" for line in worker_output]
    return "\n".join(lines)


def _gate_lines(record: TestRecord, links: Links) -> list[str]:
    """Each metric gate, held or not; a broken one with its worst runs and their links."""
    verdict = record.verdict
    if verdict is None or not verdict.gates:
        return []
    runs = record.result.runs if record.result is not None else record.assignment.runs
    by_id = {run.id: run for run in runs}
    lines = ["", "metric gates:"]
    for result in verdict.gates:
        mark = "ok" if result.passed else "!!" if result.broken else "??"
        lines.append(f"  {mark} {result.describe()}")
        if not result.broken or not result.worst:
            continue
        lines.append(f"     worst runs ({result.gate.metric}):")
        for value in result.worst:
            shown = value.value if value.value is not None else format_value(value.score)
            run = by_id.get(value.run_id)
            link = f" · {links.for_record(record, run)}" if run is not None else ""
            lines.append(
                f"       run {value.run_id} · scenario {value.scenario} · "
                f"{result.gate.metric} {shown}{link}"
            )
    return lines


def _percent(rate: float) -> str:
    return f"{rate * 100:.0f}%"


def _headline(spec: ScenarioSpec, verdict: Verdict) -> str:
    need = f"this test needs {_percent(spec.min_success_rate)}"
    if verdict.reason is not None and verdict.reason.rule is Rule.GATE:
        runs = f"{verdict.succeeded} of {verdict.total} runs succeeded"
        if verdict.outcome is Outcome.ERROR:
            return f"Cekura: {runs}, but a metric gate could not be checked (see below)."
        return f"Cekura: {runs} ({_percent(verdict.success_rate)}), but it {verdict.reason.short}."
    if verdict.outcome is Outcome.ERROR:
        undecided = sum(issue.undecided for issue in verdict.issues)
        if verdict.problems and not verdict.total:
            return "Cekura could not run this test."
        return (
            f"Cekura could not decide this test: {verdict.succeeded} of {verdict.total} runs "
            f"succeeded and {undecided} could not be run or finished; {need}."
        )
    reason = verdict.reason
    if verdict.baseline is not None:
        need = (
            f"the baseline is {_percent(verdict.baseline)} and may fall by at most "
            f"{verdict.tolerance * 100:.0f} points"
        )
    elif reason is not None and reason.lower_bound is not None:
        # The raw rate alone (e.g. 10 of 10) reads like a pass: say what was compared.
        need = (
            f"its Wilson lower bound at {reason.confidence:g} confidence is "
            f"{reason.lower_bound * 100:.1f}% and {need}"
        )
    return (
        f"Cekura: {verdict.succeeded} of {verdict.total} runs succeeded "
        f"({_percent(verdict.success_rate)}); {need}."
    )


def _scope(record: TestRecord) -> str:
    spec, assignment = record.spec, record.assignment
    # "-": a Tests-as-Code case the service rejected has no scenario, nothing was started.
    ids = ", ".join(str(i) for i in spec.scenario_ids) or "-"
    profile = f", test profile {spec.test_profile}" if spec.test_profile is not None else ""
    result = ""
    if assignment.result_id is not None:
        result = f" · result {assignment.result_id}"
    if assignment.reused_age is not None:
        result += f" (reused, {describe_age(assignment.reused_age)} old)"
    rerun = assignment.rerun_label(
        record.result.runs if record.result is not None else assignment.runs
    )
    if rerun is not None:
        result += f" ({rerun})"
    return f"scenarios {ids} x {spec.frequency} ({spec.provider}{profile}){result}"


def _run_block(issue: RunIssue, link: str) -> list[str]:
    run = issue.run
    name = f' "{run.scenario_name}"' if run.scenario_name else ""
    success = {True: "success", False: "not successful", None: "not scored"}[run.success]
    lines = [f"run {run.id} · scenario {run.scenario}{name} · {run.status or '?'}, {success}"]
    lines.append(f"  why: {issue.reason}")
    if run.error_message and run.error_message not in issue.reason:
        lines.append(f"  error: {run.error_message}")
    lines += _expected_outcome(run)
    lines += _metrics(run)
    lines += _transcript(run)
    lines.append(f"  job metadata: {job_metadata(run)}")
    lines.append(f"  link: {link}")
    return lines


def _expected_outcome(run: Run) -> list[str]:
    outcome = run.expected_outcome
    if outcome is None or (outcome.score is None and not outcome.explanation):
        return []
    score = "?" if outcome.score is None else f"{outcome.score:g}"
    return [f"  expected outcome: {score}/100"] + [f"    - {line}" for line in outcome.explanation]


def _metrics(run: Run) -> list[str]:
    failing = run.failing_metrics
    if not failing:
        return []
    lines = ["  failing metrics:"]
    for metric in failing:
        explanation = " ".join(metric.explanation)
        score = "?" if metric.score is None else f"{metric.score:g}"
        because = f": {explanation}" if explanation else ""
        lines.append(f"    - {metric.name} (score {score}){because}")
    return lines


def _transcript(run: Run) -> list[str]:
    if run.transcript_object:
        lines = [
            f"    [{_clock(e.timestamp)}] {e.role}: {e.content}"
            if e.timestamp is not None
            else f"    {e.role}: {e.content}"
            for e in run.transcript_object
        ]
    elif run.transcript:
        lines = [f"    {line}" for line in run.transcript.splitlines() if line.strip()]
    else:
        return []
    tail = lines[-TRANSCRIPT_TAIL:]
    return [f"  transcript (last {len(tail)} of {len(lines)} lines):", *tail]


def _clock(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes):02d}:{rest:04.1f}"


def job_metadata(run: Run) -> str:
    """What the agent received as LiveKit job metadata for this run, to find it in its logs."""
    profile = run.test_profile_data or {}
    name = profile.get("name")
    shown = f", test profile {name!r}" if name else ""
    return f"scenario_id={run.scenario}, run_id={run.id}{shown}"


def summary_lines(rows: Sequence[SummaryRow], request_counts: Mapping[str, int]) -> list[str]:
    lines = []
    for row in rows:
        ids = ",".join(str(i) for i in row.scenario_ids) or "-"
        if row.succeeded is None or not row.total:
            runs = "runs -"
        else:
            runs = f"runs {row.succeeded}/{row.total} ({_percent(row.succeeded / row.total)})"
        need = f"needs {_percent(row.min_success_rate)}"
        if row.reason is not None:
            # "needs N%" alone is the threshold rule; any other rule is named.
            rule = str(row.reason["rule"])
            need = str(row.reason["short"])
            if rule in _RULE_NAMES:
                need += f" ({_RULE_NAMES[rule]})"
        reused = ""
        if row.reused_age is not None:
            reused = f" · reused result {row.result_id} ({describe_age(row.reused_age)} old)"
        if row.rerun is not None:
            reused = f" · {row.rerun}"
        lines.append(
            f"{row.outcome.upper():7} {row.nodeid} · scenarios {ids} · {runs}, {need}{reused}"
            + _gated_aggregates(row)
        )
    outcomes = Counter(row.outcome for row in rows)
    calls = len({run["id"] for row in rows for run in row.runs})
    totals = ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items()))
    order = {START_LABEL: 0, "GET": 1}
    ranked = sorted(request_counts.items(), key=lambda item: (order.get(item[0], 2), item[0]))
    requests = ", ".join(f"{count} {label}" for label, count in ranked)
    lines.append(
        f"cekura: {len(rows)} test(s) ({totals}) over {calls} run(s); "
        f"API requests: {requests or 'none'}"
    )
    saved = sum(row.ended_early for row in rows)
    if saved:
        lines.append(f"cekura: early verdicts ended {saved} call(s) that could not change them")
    return lines


#: Rules named in the summary line; the threshold's "needs N%" says it already (an error's
#: "needs N%" is the threshold it could not be judged against).
_RULE_NAMES = {
    "wilson_lower_bound": "Wilson bound",
    "baseline_regression": "baseline rule",
    "metric_gate": "metric gate",
}


def _gated_aggregates(row: SummaryRow) -> str:
    """`` · Latency p95 1530 (<= 1200)``: each gate's aggregate beside its condition."""
    parts = []
    for gate in row.gates:
        if gate["op"] == "in":
            counts = row.metrics.get(gate["metric"], {}).get("counts", {})
            seen = ", ".join(f"{value} {n}" for value, n in counts.items()) or "-"
            parts.append(f"{gate['metric']} {seen} ({gate['condition']})")
            continue
        actual = gate["actual"]
        shown = "-" if actual is None else format_value(actual)
        parts.append(
            f"{gate['metric']} {gate['aggregate']} {shown} ({gate['op']} {gate['threshold']:g})"
        )
    return "".join(f" · {part}" for part in parts)


def dry_run_lines(groups: Sequence[Group], max_runs: int | None = None) -> list[str]:
    lines = [f"request {n}: {group.describe()}" for n, group in enumerate(groups, start=1)]
    calls = sum(group.run_count for group in groups)
    if max_runs is not None and calls > max_runs:
        lines.append(
            f"cekura dry run: the real run would be REFUSED: {calls} call(s) in {len(groups)} "
            f"request(s) is more than the limit of {max_runs} (--cekura-max-runs / "
            "cekura_max_runs); nothing was submitted"
        )
        return lines
    lines.append(
        f"cekura dry run: would start {calls} call(s) in {len(groups)} request(s); "
        "nothing was submitted"
    )
    return lines


__all__ = [
    "JUNIT_RUN_FIELDS",
    "REPORT_VERSION",
    "TRANSCRIPT_TAIL",
    "Links",
    "SummaryRow",
    "dry_run_lines",
    "failure_text",
    "job_metadata",
    "json_report",
    "junit_properties",
    "mark_ended",
    "run_record",
    "run_records",
    "run_url",
    "summary_lines",
    "summary_row",
]


if __name__ == "__main__":  # python -m pytest_cekura.report merge SHARD.json...
    from .report_merge import main

    raise SystemExit(main())
