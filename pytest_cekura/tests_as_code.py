"""Submitting Tests-as-Code cases (``cekura.tests.json``): priced before paid, one POST a shape.

Selected cases that share a request shape (agent, channel, ``livekit_data``,
``concurrency_limit``) go into one generated suite document and one
``POST run_scenarios_json``. Before that:

1. every generated suite is checked with ``validate_scenarios_json`` (free). A case the
   service rejects (its problems are keyed ``scenarios[i]...``) errors alone, with the
   service's message, and is left out; the rest are validated again and run;
2. the plan's ``estimated_cost`` is added up: ``--cekura-max-cost N`` refuses the session,
   starting nothing, when the total is more than N; ``--cekura-dry-run`` prints each test's
   runs and estimated cost and the total, and starts nothing.

Runs are mapped back to tests by case **name**, which the service shows on every run as
``scenario_name``: names (and keys) are made unique within a generated suite, a repeated one
gets `` (2)``, `` (3)``... Each file's ``defaults`` are applied to its cases here (field by
field; ``metrics`` lists combine), so cases from several files can share one suite.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ApiError, ConfigError, TransportError
from .markers import ScenarioSpec
from .records import Assignment

if TYPE_CHECKING:
    from .client import CekuraClient
    from .options import Settings
    from .session import CekuraSession
    from .testsuite_json import CaseSpec

#: The Tests-as-Code channel for each provider of ``--cekura-provider``; others: ``voice``.
CHANNELS = {
    "livekit": "livekit_v2",
    "pipecat": "pipecat_v2",
    "elevenlabs": "elevenlabs",
    "text": "text",
    "chirp": "chirp",
}
#: Document-level defaults that are request fields, not case fields.
_REQUEST_DEFAULTS = ("concurrency_limit",)


@dataclass(frozen=True)
class Shape:
    """What makes a separate request: cases sharing it share one generated suite."""

    agent: int | None
    channel: str
    livekit_data: str = "{}"
    concurrency_limit: int | None = None


@dataclass
class CaseGroup:
    shape: Shape
    name: str
    nodeids: list[str] = field(default_factory=list)
    cases: list[dict[str, Any]] = field(default_factory=list)
    #: The service's plan entry of each case, by node id, once validated.
    plans: dict[str, Mapping[str, Any]] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        spec = {"version": "1", "suite": {"name": self.name}, "scenarios": self.cases}
        body: dict[str, Any] = {
            "agent_id": self.shape.agent,
            "channel": self.shape.channel,
            "name": self.name,
            "spec": spec,
        }
        livekit = json.loads(self.shape.livekit_data)
        if livekit and self.shape.channel == "livekit_v2":
            body["livekit_data"] = livekit
        if self.shape.concurrency_limit is not None:
            body["concurrency_limit"] = self.shape.concurrency_limit
        return body

    def without(self, rejected: set[str]) -> CaseGroup:
        kept = [i for i, nodeid in enumerate(self.nodeids) if nodeid not in rejected]
        return CaseGroup(
            self.shape,
            self.name,
            [self.nodeids[i] for i in kept],
            [self.cases[i] for i in kept],
        )


def generated_case(spec: CaseSpec) -> dict[str, Any]:
    """The case with its file's defaults applied field by field (``metrics`` combine)."""
    case = dict(spec.case)
    for name, value in spec.defaults.items():
        if name in _REQUEST_DEFAULTS:
            continue
        if name == "metrics":
            case["metrics"] = [*value, *[m for m in case.get("metrics", []) if m not in value]]
        else:
            case.setdefault(name, value)
    case["key"] = spec.key
    return case


def shape_of(spec: CaseSpec, settings: Settings) -> Shape:
    defaults = settings.marker_defaults()
    limit = spec.defaults.get("concurrency_limit", defaults.concurrency_limit)
    return Shape(
        agent=defaults.agent,
        channel=CHANNELS.get(defaults.provider, "voice"),
        livekit_data=json.dumps(dict(defaults.livekit_data), sort_keys=True),
        concurrency_limit=limit if isinstance(limit, int) else None,
    )


def plan_groups(
    cases: Mapping[str, CaseSpec], settings: Settings, session_id: str
) -> list[CaseGroup]:
    groups: dict[Shape, CaseGroup] = {}
    for nodeid, spec in cases.items():
        shape = shape_of(spec, settings)
        if shape not in groups:
            groups[shape] = CaseGroup(shape, f"pytest-cekura {session_id} suite {len(groups) + 1}")
        group = groups[shape]
        case = generated_case(spec)
        # Runs come back by name: names and keys must be unique within the request.
        names = {c["name"] for c in group.cases}
        keys = {c["key"] for c in group.cases}
        base_name, base_key, n = case["name"], case["key"], 1
        while case["name"] in names or case["key"] in keys:
            n += 1
            case["name"], case["key"] = f"{base_name} ({n})", f"{base_key} ({n})"
        group.nodeids.append(nodeid)
        group.cases.append(case)
    return list(groups.values())


@dataclass
class Outcome:
    """What submission gave the cases: each test's assignment, and the plan lines."""

    assignments: dict[str, tuple[ScenarioSpec, Assignment]] = field(default_factory=dict)
    plan_lines: list[str] = field(default_factory=list)


def _problem(message: str) -> Assignment:
    return Assignment(problems=(message,))


def _service_errors(error: ApiError) -> dict[str, list[str]]:
    try:
        body = json.loads(error.body)
    except (TypeError, ValueError):
        return {"request": [str(error)]}
    errors = body.get("errors", body) if isinstance(body, dict) else None
    if not isinstance(errors, dict):
        return {"request": [str(error)]}
    return {
        str(k): [str(m) for m in (v if isinstance(v, list) else [v])] for k, v in errors.items()
    }


def _case_index(where: str) -> int | None:
    if not where.startswith("scenarios["):
        return None
    return int(where[len("scenarios[") : where.index("]")])


def validate(client: CekuraClient, group: CaseGroup, outcome: Outcome) -> CaseGroup | None:
    """The group as the service accepts it (its rejected cases errored), or None."""
    for _ in range(2):
        if not group.nodeids:
            return None
        try:
            answer = client.validate_suite_json(group.body())
        except ApiError as exc:
            if exc.status_code != 400:
                raise
            errors = _service_errors(exc)
            by_case: dict[int, list[str]] = {}
            whole: list[str] = []
            for where, messages in errors.items():
                index = _case_index(where)
                target = by_case.setdefault(index, []) if index is not None else whole
                target.extend(f"{where}: {m}" for m in messages)
            if whole or not by_case:
                text = "; ".join(whole) or str(exc)
                for nodeid in group.nodeids:
                    outcome.assignments[nodeid] = (
                        _spec(group),
                        _problem(f"Cekura rejected the generated suite: {text}"),
                    )
                return None
            rejected = set()
            for index, messages in by_case.items():
                nodeid = group.nodeids[index]
                rejected.add(nodeid)
                text = "; ".join(messages)
                outcome.assignments[nodeid] = (
                    _spec(group),
                    _problem(f"Cekura rejected this case (validate_scenarios_json): {text}"),
                )
            group = group.without(rejected)
            continue
        plan = answer.get("plan") or {}
        entries = plan.get("scenarios") or []
        by_key = {e.get("key"): e for e in entries if isinstance(e, dict)}
        for nodeid, case in zip(group.nodeids, group.cases, strict=True):
            group.plans[nodeid] = by_key.get(case["key"], {})
        return group
    return None


def _spec(group: CaseGroup, runs: int = 1) -> ScenarioSpec:
    provider = next((p for p, c in CHANNELS.items() if c == group.shape.channel), "livekit")
    return ScenarioSpec(scenario_ids=(), frequency=runs, provider=provider, agent=group.shape.agent)


def _cost(plan: Mapping[str, Any]) -> float:
    value = plan.get("estimated_cost")
    return float(value) if isinstance(value, int | float) else 0.0


def submit_cases(
    cekura: CekuraSession,
    cases: Mapping[str, CaseSpec],
    write_line: Callable[[str], None] | None = None,
) -> Outcome:
    """Validate, price, then (unless a dry run) start every selected case; see the module."""
    settings = cekura.settings
    outcome = Outcome()
    groups = plan_groups(cases, settings, cekura.session_id)
    runnable: list[CaseGroup] = []
    for group in groups:
        if group.shape.agent is None:
            for nodeid in group.nodeids:
                outcome.assignments[nodeid] = (
                    _spec(group),
                    _problem(
                        "Tests-as-Code cases need an agent: set --cekura-agent, the "
                        "cekura_agent ini key or CEKURA_AGENT_ID"
                    ),
                )
            continue
        client = cekura.client()
        valid = validate(client, group, outcome)
        if valid is not None:
            runnable.append(valid)
    total = sum(_cost(plan) for group in runnable for plan in group.plans.values())
    runs = sum(int(p.get("frequency") or 1) for g in runnable for p in g.plans.values())
    for group in runnable:
        for nodeid in group.nodeids:
            plan = group.plans[nodeid]
            outcome.plan_lines.append(
                f"{nodeid}: {int(plan.get('frequency') or 1)} run(s), "
                f"estimated {_cost(plan):g} credits"
            )
    outcome.plan_lines.append(
        f"tests as code: {runs} run(s) in {len(runnable)} request(s), "
        f"estimated {total:g} credits in total"
    )
    limit = settings.max_cost
    if limit is not None and total > limit:
        raise ConfigError(
            f"pytest-cekura: the Tests-as-Code cases would cost an estimated {total:g} credits, "
            f"more than --cekura-max-cost {limit:g}; nothing was started. Select fewer cases "
            "(-k) or raise the limit"
        )
    if settings.dry_run:
        if write_line is not None:
            for line in outcome.plan_lines:
                write_line(line)
        return outcome
    deadline = cekura.deadline or time.monotonic() + settings.timeout
    for group in runnable:
        _start(cekura, group, deadline, outcome)
    return outcome


def _start(cekura: CekuraSession, group: CaseGroup, deadline: float, outcome: Outcome) -> None:
    client = cekura.client()
    ledger = cekura.ledger
    ledger.posting(group.name, group.shape.agent)
    try:
        result = client.start_suite_json(group.body(), deadline=deadline)
    except (ApiError, TransportError) as exc:
        ledger.answered(group.name)
        reached = getattr(exc, "may_have_reached_server", False)
        if not reached:
            ledger.settled(group.name)
        # Never re-sent: it may have started calls (the session looks it up at its end).
        note = " (it may have started calls; not re-sent)" if reached else ""
        for nodeid in group.nodeids:
            outcome.assignments[nodeid] = (_spec(group), _problem(f"{exc}{note}"))
        return
    ledger.answered(group.name)
    ledger.created(result, name=group.name)
    by_name: dict[str, list[Any]] = {}
    for run in result.runs:
        by_name.setdefault(run.scenario_name or "", []).append(run)
    for nodeid, case in zip(group.nodeids, group.cases, strict=True):
        runs = tuple(by_name.get(case["name"], ()))
        problems = () if runs else (f"Cekura's result {result.id} has no run of this case",)
        assignment = Assignment(
            result_id=result.id, runs=runs, problems=problems, group_name=group.name
        )
        spec = _spec(group, max(1, len(runs)))
        spec = ScenarioSpec(
            scenario_ids=tuple(dict.fromkeys(r.scenario for r in runs if r.scenario)),
            frequency=spec.frequency,
            provider=spec.provider,
            agent=spec.agent,
        )
        outcome.assignments[nodeid] = (spec, assignment)
