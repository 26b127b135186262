"""Reports for machines: the JSON report, JUnit properties, each test's ``SummaryRow``
(which travels from xdist workers), and the dashboard links every report uses. The text
for people is ``report.py``."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from .gates import GateResult, gated_metrics
from .metrics import AGGREGATES
from .models import TERMINAL_STATUSES, Run
from .records import TestRecord


def run_url(
    template: str, result_id: int | None, run_id: int, project_id: int | None = None
) -> str:
    """Fill the link template. Without the project (it could not be looked up) a template
    that needs it cannot address the result: the part before ``{project_id}`` (the
    dashboard's start page, which opens the user's project) is the link that still works."""
    if project_id is None and "{project_id}" in template:
        template = template.split("{project_id}", 1)[0]
    return template.format(
        project_id=project_id, result_id="" if result_id is None else result_id, run_id=run_id
    )


def _no_project(_: int) -> int | None:
    return None


@dataclass(frozen=True)
class Links:
    """Dashboard links, computed when a report is written: the template (option
    ``--cekura-dashboard-url``) filled with each run's project, result and run ids.

    The project is the run's agent's (``project_of`` looks each agent up once per session);
    the agent is the run's own, else the test's ``agent=``, else its scenario's agent as
    preflight found it.
    """

    template: str
    project_of: Callable[[int], int | None] = _no_project
    scenario_agents: Mapping[int, int | None] = field(default_factory=dict)

    def run(self, run: Run, result_id: int | None, agent: int | None = None) -> str:
        project = None
        if "{project_id}" in self.template:
            if run.agent is not None:
                agent = run.agent
            elif agent is None and run.scenario is not None:
                agent = self.scenario_agents.get(run.scenario)
            project = self.project_of(agent) if agent is not None else None
        return run_url(self.template, result_id, run.id, project)

    def for_record(self, record: TestRecord, run: Run) -> str:
        """The link of one of a test's runs, in the result the run belongs to."""
        owner = run.result_id
        if owner is None:
            owner = record.assignment.result_of(run.id)
        return self.run(run, owner, record.spec.agent)


def run_record(
    run: Run,
    *,
    result_id: int | None,
    url: str,
    why: str | None = None,
    ended_by_session: bool = False,
) -> dict[str, Any]:
    """A run as the JSON report and JUnit properties show it (no secrets: none are in runs).

    A run that did not succeed carries why (``why``), Cekura's expected-outcome explanation
    and its failing metrics. A call the session ended before it finished is ``"ended"``, not
    the ``"running"`` it was last seen as (``last_seen_status`` keeps that).
    """
    profile = run.test_profile_data or {}
    record: dict[str, Any] = {
        "id": run.id,
        "result_id": result_id,
        "scenario": run.scenario,
        "scenario_name": run.scenario_name,
        "status": run.status,
        "success": run.success,
        "duration_s": run.duration_s,
        "error_message": run.error_message or None,
        "test_profile": profile.get("name"),
        "job_metadata": {"scenario_id": run.scenario, "run_id": run.id},
        "url": url,
        "ended_by_session": False,
    }
    if ended_by_session:
        mark_ended(record)
    if not run.succeeded:
        outcome = run.expected_outcome
        record["why"] = why
        record["expected_outcome"] = (
            None
            if outcome is None
            else {"score": outcome.score, "explanation": list(outcome.explanation)}
        )
        record["failing_metrics"] = [
            {"name": m.name, "score": m.score, "explanation": list(m.explanation)}
            for m in run.failing_metrics
        ]
    return record


def mark_ended(record: dict[str, Any]) -> None:
    """The session ended this call before it finished: say so instead of "running"."""
    if record.get("ended_by_session") or record.get("status") in TERMINAL_STATUSES:
        return
    record["last_seen_status"] = record.get("status")
    record["status"] = "ended"
    record["ended_by_session"] = True


@dataclass(frozen=True)
class SummaryRow:
    """One Cekura test as the reporting process sees it: plain data, so it can travel from an
    xdist worker on the test's report."""

    nodeid: str
    scenario_ids: tuple[int, ...]
    min_success_rate: float
    succeeded: int | None
    total: int | None
    outcome: str  # pytest's final word: passed, failed, error, skipped
    group: str | None = None
    result_id: int | None = None
    runs: tuple[dict[str, Any], ...] = ()
    problems: tuple[str, ...] = ()
    ended_early: int = 0
    reused_age: float | None = None
    earlier_result_id: int | None = None
    #: --cekura-rerun-failed: where this test's runs came from (``Assignment.rerun_label``).
    rerun: str | None = None
    #: The rule that decided the verdict, as ``Reason.to_json`` gives it (None: no verdict).
    reason: dict[str, Any] | None = None
    #: Each metric gate checked (``GateResult.to_json``), and each gated metric's aggregates
    #: by name (``MetricValues.to_json``: count, mean, p95, pass_rate, counts, ...).
    gates: tuple[dict[str, Any], ...] = ()
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: A link to the test's result anyone can open (``--cekura-share-links``), else None.
    share_link: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The row as plain data (``json_report``, an xdist worker's report). Not
        ``dataclasses.asdict``: its deep copy of every run record was the costliest step of
        reporting a test (docs/performance.md, issue #20). Each run record is copied one
        level (``json_report`` marks runs ended in its copy); nested values are shared, and
        nothing changes them."""
        data = {name: getattr(self, name) for name in _ROW_FIELDS}
        data["runs"] = tuple([dict(run) for run in self.runs])
        data["metrics"] = dict(self.metrics)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SummaryRow:
        keys = ("scenario_ids", "runs", "problems", "gates")
        tuples = {key: tuple(data[key]) for key in keys if key in data}
        return cls(**{**data, **tuples})


_ROW_FIELDS = tuple(f.name for f in fields(SummaryRow))


def run_records(
    record: TestRecord, links: Links, ended: Collection[int] = ()
) -> list[dict[str, Any]]:
    """The test's runs as report records; ``ended``: calls the session has ended."""
    runs = record.result.runs if record.result is not None else record.assignment.runs
    owner = record.assignment.result_of
    why = {} if record.verdict is None else {i.run.id: i.reason for i in record.verdict.issues}
    # Where LiveKit dispatched the call: the request's livekit_data.agent_name (e.g. the
    # session's own worker); None: the name saved on the agent.
    dispatch = record.spec.livekit_data.get("agent_name")
    gated = tuple(dict.fromkeys(gate.metric for gate in record.spec.gates))
    return [
        {
            **run_record(
                run,
                result_id=run.result_id if run.result_id is not None else owner(run.id),
                url=links.for_record(record, run),
                why=why.get(run.id),
                ended_by_session=run.id in ended,
            ),
            "livekit_agent_name": dispatch,
            **({"metrics": gated_run_metrics(run, gated)} if gated else {}),
        }
        for run in runs
    ]


def gated_run_metrics(run: Run, names: Collection[str]) -> dict[str, Any]:
    """A run's values of the gated metrics: the score, or an enum metric's value."""
    found: dict[str, Any] = {}
    for metric in run.evaluation.metrics if run.evaluation is not None else []:
        if metric.name in names and metric.name not in found:
            extra = metric.model_extra or {}
            chosen = extra.get("enum") or extra.get("value")
            enum = metric.type.lower().startswith("enum") and chosen not in (None, "")
            found[metric.name] = str(chosen) if enum else metric.score
    return found


#: The run fields JUnit's ``cekura_run_json`` property carries (one JSON object per run).
JUNIT_RUN_FIELDS = (
    "id",
    "result_id",
    "scenario",
    "status",
    "success",
    "test_profile",
    "ended_by_session",
    "url",
)


def junit_properties(
    record: TestRecord, links: Links, ended: Collection[int] = ()
) -> list[tuple[str, object]]:
    """Properties for JUnit XML (and any reporter reading ``user_properties``): one value
    per property, so a CI dashboard reads them without parsing text."""
    assignment, verdict = record.assignment, record.verdict
    props: list[tuple[str, object]] = []
    if assignment.result_id is not None:
        props.append(("cekura_result_id", assignment.result_id))
    if assignment.reused_age is not None:
        props.append(("cekura_reused_age_s", round(assignment.reused_age)))
    if verdict is not None and verdict.total:
        props.append(("cekura_success_rate", round(verdict.success_rate, 4)))
        props.append(("cekura_runs_succeeded", verdict.succeeded))
        props.append(("cekura_runs_total", verdict.total))
    if verdict is not None and verdict.reason is not None:
        reason = verdict.reason
        props.append(("cekura_rule", reason.rule.value))
        props.append(("cekura_reason", reason.text))
        props.append(("cekura_min_success_rate", reason.needed))
        if reason.lower_bound is not None:
            props.append(("cekura_wilson_lower_bound", round(reason.lower_bound, 4)))
            props.append(("cekura_confidence", reason.confidence))
        if reason.baseline is not None:
            props.append(("cekura_baseline", reason.baseline))
            props.append(("cekura_tolerance", reason.tolerance))
            props.append(("cekura_baseline_below_threshold", reason.baseline_below_threshold))
        if reason.ended_early:
            props.append(("cekura_ended_early", reason.ended_early))
    if verdict is not None:
        props += gate_properties(verdict.gates)
    for run in run_records(record, links, ended):
        profile = f" test_profile={run['test_profile']!r}" if run["test_profile"] else ""
        # The free-text property of earlier versions, kept so existing parsers still work.
        props.append(
            (
                "cekura_run",
                f"{run['id']} scenario_id={run['scenario']} run_id={run['id']}{profile} "
                f"status={run['status']} success={run['success']} {run['url']}",
            )
        )
        fields = {key: run[key] for key in JUNIT_RUN_FIELDS}
        props.append(("cekura_run_json", json.dumps(fields, separators=(",", ":"))))
    return props


def gate_properties(results: Sequence[GateResult]) -> list[tuple[str, object]]:
    """JUnit properties of the metric gates: each gated metric's aggregates, one value per
    property (``cekura_metric:Latency:p95`` = 1530), and each gate as one JSON object."""
    props: list[tuple[str, object]] = []
    for name, metric in gated_metrics(results).items():
        for aggregate in (*AGGREGATES, "count"):
            if metric.get(aggregate) is not None:
                value = metric[aggregate]
                shown = round(value, 4) if isinstance(value, float) else value
                props.append((f"cekura_metric:{name}:{aggregate}", shown))
        if metric.get("counts"):
            props.append((f"cekura_metric:{name}:counts", json.dumps(metric["counts"])))
    for result in results:
        props.append(("cekura_gate_json", json.dumps(result.to_json(), separators=(",", ":"))))
    return props


def summary_row(
    nodeid: str, record: TestRecord, outcome: str, links: Links, ended: Collection[int] = ()
) -> SummaryRow:
    verdict, assignment = record.verdict, record.assignment
    return SummaryRow(
        nodeid=nodeid,
        scenario_ids=record.spec.scenario_ids,
        min_success_rate=record.spec.min_success_rate,
        succeeded=None if verdict is None else verdict.succeeded,
        total=None if verdict is None else verdict.total,
        outcome=outcome,
        group=assignment.group_name,
        result_id=assignment.result_id,
        runs=tuple(run_records(record, links, ended)),
        problems=assignment.problems,
        ended_early=record.ended_early,
        reused_age=assignment.reused_age,
        earlier_result_id=assignment.earlier_result_id,
        rerun=assignment.rerun_label(
            record.result.runs if record.result is not None else assignment.runs
        ),
        reason=None if verdict is None or verdict.reason is None else verdict.reason.to_json(),
        gates=() if verdict is None else tuple(r.to_json() for r in verdict.gates),
        metrics={} if verdict is None else gated_metrics(verdict.gates),
    )


#: JSON report format version: 2 added reasons, run failure details, ended calls and times.
REPORT_VERSION = 2


def json_report(
    rows: Sequence[SummaryRow],
    request_counts: Mapping[str, int],
    *,
    session_id: str,
    api: str,
    started: datetime | None = None,
    finished: datetime | None = None,
    ended_runs: Collection[int] = (),
    ended_results: Collection[int] = (),
    interrupted: bool = False,
    started_results: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Every group (one result each), its runs, and every test's verdict and reason.

    ``interrupted``: the session stopped early (Ctrl-C, SIGTERM, errors during collection),
    so tests it selected may be missing: a merge of CI shards must not call that a pass.
    ``started_results``: every result the session created (``CekuraSession.started_results``),
    which an interrupted session's ``groups`` lack: its tests never got a row.

    ``ended_runs``/``ended_results``: calls the session ended (and results whose calls it
    ended) after the tests' rows were made; a run still unfinished in a row is marked ended.
    """
    tests = [row.to_json() for row in rows]
    for test in tests:
        for run in test["runs"]:
            if run["id"] in ended_runs or run.get("result_id") in ended_results:
                mark_ended(run)
    groups: dict[str, dict[str, Any]] = {}
    for row, test in zip(rows, tests, strict=True):
        if row.group is None:
            continue
        group = groups.setdefault(
            row.group, {"name": row.group, "result_id": row.result_id, "tests": [], "runs": {}}
        )
        group["tests"].append(row.nodeid)
        group["runs"].update({run["id"]: run for run in test["runs"]})
    times: dict[str, Any] = {
        "started_at": _iso(started),
        "finished_at": _iso(finished),
        "duration_s": (
            round((finished - started).total_seconds(), 3)
            if started is not None and finished is not None
            else None
        ),
    }
    return {
        "format_version": REPORT_VERSION,
        "session_id": session_id,
        "api": api,
        **times,
        "requests": dict(request_counts),
        "interrupted": interrupted,
        "started_results": [dict(started) for started in started_results],
        "groups": [
            {**g, "runs": sorted(g["runs"].values(), key=lambda r: r["id"])}
            for g in groups.values()
        ],
        "tests": tests,
    }


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
