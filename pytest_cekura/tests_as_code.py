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

``price_cases`` does both and starts nothing; ``case_start.py`` then starts the priced groups.
``CekuraSession.submit`` calls them inside its one submission, so under xdist a single worker
prices and starts the cases, and the manifest carries their assignments
(``assignments_to_json``) to the other workers.

Runs are mapped back to tests by case **name**, which the service shows on every run as
``scenario_name``: names (and keys) are made unique within a generated suite, a repeated one
gets `` (2)``, `` (3)``... Each file's ``defaults`` are applied to its cases here (field by
field; ``metrics`` lists combine), so cases from several files can share one suite.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .errors import ApiError, AuthError, CekuraError, ConfigError
from .hookspec import HookError, ModifyRequest
from .markers import ScenarioSpec
from .options import ENV_API_KEY
from .records import Assignment

if TYPE_CHECKING:
    from .client import CekuraClient
    from .gates import Gate
    from .options import Settings
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
    #: Each case's metric gates, by node id (not sent: judged with the verdict, and a
    #: reused result must have held them).
    gates: dict[str, tuple[Gate, ...]] = field(default_factory=dict)
    #: The body as the ``pytest_cekura_modify_request`` hook left it (``modified``); its
    #: ``spec.scenarios`` is ``cases``, so a case left out after validation is left out of it.
    request: dict[str, Any] | None = None

    def body(self) -> dict[str, Any]:
        if self.request is not None:
            spec = {**self.request["spec"], "scenarios": self.cases}
            return {**self.request, "spec": spec}
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
            gates=self.gates,
            request=self.request,
        )

    def modified(self, modify: ModifyRequest | None) -> str | None:
        """Give the body to the ``pytest_cekura_modify_request`` hook, before it is validated
        and priced (so what is priced is what is sent); the error for the group's tests, if
        the hook raised or left a body that cannot be sent."""
        if modify is None:
            return None
        body = copy.deepcopy(self.body())  # the hook's changes stay in this request
        try:
            modify(provider_of(self), body)
            json.dumps(body, allow_nan=False)
        except HookError as exc:
            return f"{exc}. Nothing was started."
        except (TypeError, ValueError) as exc:
            return (
                "the pytest_cekura_modify_request hook left a request that cannot be sent as "
                f"JSON: {exc}. Nothing was started."
            )
        spec = body.get("spec")
        cases = spec.get("scenarios") if isinstance(spec, dict) else None
        keys = (
            [c.get("key") for c in cases if isinstance(c, dict)] if isinstance(cases, list) else []
        )
        if not isinstance(cases, list) or keys != [c["key"] for c in self.cases]:
            # The plan and the runs come back per case: the tests are mapped to them in order.
            return (
                'the pytest_cekura_modify_request hook changed which cases "spec.scenarios" '
                'holds or their "key"s: change the cases\' fields in place, keep each one and '
                "its key (the plan and the runs are mapped back to the tests by them). "
                "Nothing was started."
            )
        self.request, self.cases = body, cases
        return None


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
        group.gates[nodeid] = spec.gates
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


def provider_of(group: CaseGroup) -> str:
    """The provider a group's tests are reported under (its channel's)."""
    return next((p for p, c in CHANNELS.items() if c == group.shape.channel), "livekit")


def _spec(group: CaseGroup) -> ScenarioSpec:
    return case_spec(provider_of(group), group.shape.agent, Assignment())


def _cost(plan: Mapping[str, Any]) -> float:
    value = plan.get("estimated_cost")
    return float(value) if isinstance(value, int | float) else 0.0


class Priced:
    """The selected cases, validated and priced (nothing started yet): the groups to start,
    and what the others got (the service's rejection, a missing agent)."""

    def __init__(self, outcome: Outcome, runnable: list[CaseGroup]) -> None:
        self.outcome = outcome
        self.runnable = runnable

    def dry_run_assignments(self) -> dict[str, tuple[ScenarioSpec, Assignment]]:
        """Every selected case's assignment in a dry run: the rejected ones' problems, and
        an empty one for each valid case, so it is skipped with a summary row like a marked
        test (without one the summary counted only the rejected cases)."""
        found = dict(self.outcome.assignments)
        for group in self.runnable:
            for nodeid in group.nodeids:
                found.setdefault(nodeid, (_spec(group), Assignment()))
        return found


def price_cases(
    client: Callable[[], CekuraClient],
    settings: Settings,
    session_id: str,
    cases: Mapping[str, CaseSpec],
    modify: ModifyRequest | None = None,
) -> Priced:
    """Validate and price every generated suite (free); ``ConfigError`` for the session when
    the total is over ``--cekura-max-cost`` or the key is rejected. Starts nothing.

    ``modify`` (the ``pytest_cekura_modify_request`` hook) gets each group's body first, so
    the request validated and priced is the one sent (or reused: ``case_start.cache_key``)."""
    outcome = Outcome()
    groups = plan_groups(cases, settings, session_id)
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
        hook_error = group.modified(modify)
        if hook_error is not None:
            for nodeid in group.nodeids:
                outcome.assignments[nodeid] = (_spec(group), _problem(hook_error))
            continue
        try:
            valid = validate(client(), group, outcome)
        except AuthError as exc:
            raise ConfigError(
                f"pytest-cekura: Cekura rejected the API key ({exc}) when validating the "
                f"Tests-as-Code cases; nothing was started. Check the {ENV_API_KEY} "
                "environment variable (and --cekura-url if you use another deployment)."
            ) from None
        except CekuraError as exc:
            # Free and retried by the client: still failing, the cases cannot be priced, so
            # they are not paid for either.
            for nodeid in group.nodeids:
                outcome.assignments[nodeid] = (
                    _spec(group),
                    _problem(
                        f"could not validate this case with Cekura, so it was not started: {exc}"
                    ),
                )
            continue
        if valid is not None:
            runnable.append(valid)
    total = sum(_cost(plan) for group in runnable for plan in group.plans.values())
    runs = sum(planned_runs(p) for g in runnable for p in g.plans.values())
    for group in runnable:
        for nodeid in group.nodeids:
            plan = group.plans[nodeid]
            outcome.plan_lines.append(
                f"{nodeid}: {planned_runs(plan)} run(s), estimated {_cost(plan):g} credits"
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
    return Priced(outcome, runnable)


def planned_runs(plan: Mapping[str, Any]) -> int:
    """The runs the service plans for a case (its ``frequency`` in the plan)."""
    value = plan.get("frequency")
    return value if isinstance(value, int) and value > 0 else 1


def case_spec(provider: str, agent: int | None, assignment: Assignment) -> ScenarioSpec:
    """The ``ScenarioSpec`` a case is judged and reported by (from its runs)."""
    runs = assignment.runs
    return ScenarioSpec(
        scenario_ids=tuple(dict.fromkeys(r.scenario for r in runs if r.scenario)),
        frequency=max(1, len(runs)),
        provider=provider,
        agent=agent,
    )


def with_gates(
    assignments: Mapping[str, tuple[ScenarioSpec, Assignment]], cases: Mapping[str, CaseSpec]
) -> dict[str, tuple[ScenarioSpec, Assignment]]:
    """Each case's spec with its metric gates. They are pytest's, known on every xdist worker
    (each collects the cases), so the manifest need not carry them."""
    return {
        nodeid: (replace(spec, gates=cases[nodeid].gates) if nodeid in cases else spec, a)
        for nodeid, (spec, a) in assignments.items()
    }


def assignments_to_json(
    assignments: Mapping[str, tuple[ScenarioSpec, Assignment]],
) -> dict[str, dict[str, Any]]:
    """The cases' assignments as the xdist manifest carries them (``xdist.Manifest.cases``)."""
    return {
        nodeid: {"provider": spec.provider, "agent": spec.agent, "assignment": a.to_json()}
        for nodeid, (spec, a) in assignments.items()
    }


def assignments_from_json(
    data: Mapping[str, Mapping[str, Any]],
) -> dict[str, tuple[ScenarioSpec, Assignment]]:
    found = {}
    for nodeid, entry in data.items():
        assignment = Assignment.from_json(entry["assignment"])
        found[nodeid] = (case_spec(entry["provider"], entry["agent"], assignment), assignment)
    return found
