"""Starting Tests-as-Code cases: one ``POST run_scenarios_json`` per validated group, its runs
mapped back to the tests by case name, and a POST that may have reached Cekura never re-sent.

``tests_as_code.py`` groups, validates and prices the cases; this module spends the money.
Like every run-starting POST of the plugin (``submit.post_resolved``), the request carries a
unique name: when it fails after it may have reached Cekura, the result is looked up by that
name and adopted if **exactly one** result has it. None, or more than one, and the group's
tests error with what to look for in the dashboard; the POST is never sent again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .cleanup import Ledger
from .client import CekuraClient
from .connection import sleep
from .errors import (
    ApiError,
    AuthError,
    CekuraError,
    ConfigError,
    RateLimitedError,
    TransportError,
)
from .hookspec import ModifyRequest
from .markers import ScenarioSpec
from .models import Result, Run
from .options import Settings
from .records import Assignment
from .reuse import ResultCache
from .starter import MAYBE_STARTED
from .submit import LOOKUP_DELAYS, reconciled_runs, unique_runs
from .tests_as_code import CaseGroup, Priced, case_spec, planned_runs, provider_of

CaseAssignments = dict[str, tuple[ScenarioSpec, Assignment]]


@dataclass(frozen=True)
class Posted:
    """What one run-starting POST gave: its result, or why there is none."""

    result: Result | None = None
    error: str | None = None


def post_group(
    client: CekuraClient,
    group: CaseGroup,
    *,
    ledger: Ledger,
    deadline: float | None,
    sleep: Callable[[float], None],
) -> Posted:
    """POST the group's suite once; after an ambiguous failure, adopt the one result with the
    group's name. ``AuthError`` propagates (it concerns the session)."""
    agent = group.shape.agent
    ledger.posting(group.name, agent)
    try:
        result = client.start_suite_json(group.body(), deadline=deadline)
    except AuthError:
        ledger.answered(group.name)
        raise
    except RateLimitedError as exc:
        return _nothing_started(ledger, group, f"Cekura kept rate-limiting the request ({exc})")
    except ApiError as exc:
        if exc.status_code < 500:
            return _nothing_started(ledger, group, f"Cekura rejected the request ({exc})")
        failure: CekuraError = exc
    except TransportError as exc:
        if not exc.may_have_reached_server:
            return _nothing_started(ledger, group, f"could not reach Cekura ({exc})")
        failure = exc
    except CekuraError as exc:  # a 2xx we cannot read: runs may exist
        failure = exc
    else:
        ledger.answered(group.name)
        ledger.created(result, name=group.name)
        return Posted(result)
    ledger.answered(group.name)
    return _look_up(client, group, failure, ledger, sleep)


def _nothing_started(ledger: Ledger, group: CaseGroup, why: str) -> Posted:
    ledger.settled(group.name)
    return Posted(error=f"{why}; nothing was started for this case")


def _look_up(
    client: CekuraClient,
    group: CaseGroup,
    failure: CekuraError,
    ledger: Ledger,
    sleep: Callable[[float], None],
) -> Posted:
    """The result of an ambiguous POST, found by its unique name; never a second POST."""
    name, agent = group.name, group.shape.agent
    looked: CekuraError | None = None
    answered = False
    matches: list[Result] = []
    for delay in LOOKUP_DELAYS:
        sleep(delay)
        try:
            matches = [r for r in client.find_results(name=name, agent_id=agent) if r.name == name]
        except AuthError:
            raise
        except CekuraError as exc:
            looked = exc
            continue
        answered = True
        if matches:
            break  # a server that timed out on us may still be creating it: else look again
    if len(matches) == 1:
        try:
            found = client.get_result(matches[0].id)
        except AuthError:
            raise
        except CekuraError:
            found = matches[0]
        ledger.created(found, name=name)
        return Posted(found)
    # Left unresolved in the ledger: the session looks the name up again when it ends, and
    # ends the calls of whatever Cekura has under it.
    if len(matches) > 1:
        ids = ", ".join(str(rid) for rid in sorted(r.id for r in matches))
        what = f"{len(matches)} results are named {name!r} (ids {ids}), so which one is this "
        what += "request's cannot be told"
    elif answered:
        what = f"no result named {name!r} could be found"
    else:
        what = f"looking for a result named {name!r} failed too ({looked})"
    agent_text = f" of agent {agent}" if agent is not None else ""
    return Posted(
        error=(
            f"the request to start these Tests-as-Code cases (run_scenarios_json) failed after "
            f"it may have reached Cekura ({failure}). It was not re-sent, so you are not charged "
            f"twice, and {what}: check the results{agent_text} named {name!r} in Cekura's "
            "dashboard, where its runs may still be going (the session looks it up once more "
            "when it ends, and ends its calls)."
        )
    )


def map_runs(
    group: CaseGroup, result_id: int | None, runs: Sequence[Run], **extra: Any
) -> CaseAssignments:
    """Each case's runs (by ``scenario_name``, the case's name) as its test's assignment."""
    by_name: dict[str, list[Run]] = {}
    for run in unique_runs(runs):
        by_name.setdefault(run.scenario_name or "", []).append(run)
    provider = provider_of(group)
    found: CaseAssignments = {}
    for nodeid, case in zip(group.nodeids, group.cases, strict=True):
        own = tuple(by_name.get(case["name"], ()))
        problems = () if own else (f"Cekura's result {result_id} has no run of this case",)
        assignment = Assignment(
            result_id=result_id, runs=own, problems=problems, group_name=group.name, **extra
        )
        found[nodeid] = (case_spec(provider, group.shape.agent, assignment), assignment)
    return found


def errored(
    group: CaseGroup, message: str, nodeids: Sequence[str] | None = None
) -> CaseAssignments:
    provider = provider_of(group)
    assignment = Assignment(problems=(message,), group_name=group.name)
    spec = case_spec(provider, group.shape.agent, assignment)
    return {nodeid: (spec, assignment) for nodeid in (nodeids or group.nodeids)}


def _planned(group: CaseGroup) -> int:
    """How many runs the group's request asks for."""
    return sum(planned_runs(plan) for plan in group.plans.values())


@dataclass(frozen=True)
class Earlier:
    """--cekura-reuse / --cekura-rerun-failed for cases: where results are remembered, how
    old one may be, and whether only the failed runs are started again."""

    cache: ResultCache
    max_age: float
    rerun_failed: bool
    #: Either option was given: look for an earlier result (else only remember this one).
    wanted: bool = True
    #: The ``pytest_cekura_modify_request`` hook, for a --cekura-rerun-failed request.
    modify: ModifyRequest | None = None


def cache_key(group: CaseGroup, api_url: str) -> str:
    """What makes a result of this group reusable: the API, the request shape and every
    generated case as sent (a changed instruction, metric or frequency is a new key)."""
    shape = {"api": api_url, "tests_as_code": {"shape": asdict(group.shape), "cases": group.cases}}
    return json.dumps(shape, sort_keys=True)


def start_group(
    client: CekuraClient,
    group: CaseGroup,
    *,
    ledger: Ledger,
    deadline: float | None,
    sleep: Callable[[float], None],
    earlier: Earlier | None = None,
) -> CaseAssignments:
    """Start one validated group's cases (or build on its last result); each test's
    assignment."""
    if earlier is not None and earlier.wanted:
        built = _from_earlier(client, group, earlier, ledger, deadline, sleep)
        if built is not None:
            return built
    posted = post_group(client, group, ledger=ledger, deadline=deadline, sleep=sleep)
    if posted.result is None:
        return errored(group, posted.error or "nothing was started")
    runs = reconciled_runs(client, posted.result, _planned(group), ledger)
    if earlier is not None:
        key = cache_key(group, client.base_url)
        earlier.cache.remember_key(key, posted.result.id, [run.id for run in runs])
    return map_runs(group, posted.result.id, runs)


def _from_earlier(
    client: CekuraClient,
    group: CaseGroup,
    earlier: Earlier,
    ledger: Ledger,
    deadline: float | None,
    sleep: Callable[[float], None],
) -> CaseAssignments | None:
    """Reuse the group's last result if every run succeeded, or start only its failed runs
    again (--cekura-rerun-failed); None: start the group afresh."""
    key = cache_key(group, client.base_url)
    remembered = earlier.cache.recall_key(key, earlier.max_age)
    if remembered is None:
        return None
    snapshots = client.get_all_runs(remembered.run_ids)
    runs = [snapshot.run() for snapshot in snapshots]
    per_case: dict[str, list[Run]] = {}
    for run in runs:
        per_case.setdefault(run.scenario_name or "", []).append(run)
    wanted = {
        case["name"]: planned_runs(group.plans.get(nodeid, {}))
        for nodeid, case in zip(group.nodeids, group.cases, strict=True)
    }
    if len(runs) != len(remembered.run_ids) or any(
        len(per_case.get(name, ())) != count for name, count in wanted.items()
    ):
        return None  # not a whole result of exactly these cases: pay for a fresh one
    if all(run.succeeded for run in runs):
        if _breaks_gates(group, runs):
            # After a fix (say, to latency) the calls must run again, as for failed runs.
            return None
        age = earlier.cache.age(remembered)
        return map_runs(group, remembered.result_id, runs, reused_age=age)
    # A failed result is never reused as it is: after fixing the agent, the calls that
    # failed must run again. With --cekura-rerun-failed only those are paid for.
    if not earlier.rerun_failed or not all(run.is_terminal for run in runs):
        return None
    kept = [run for run in runs if run.succeeded]
    lost: dict[str, int] = {}
    for run in runs:
        if not run.succeeded:
            lost[run.scenario_name or ""] = lost.get(run.scenario_name or "", 0) + 1
    again = _rerun_group(group, lost)
    hook_error = again.modified(earlier.modify)  # a request of its own: the hook sees it
    if hook_error is not None:
        posted = Posted(error=hook_error)
    else:
        posted = post_group(client, again, ledger=ledger, deadline=deadline, sleep=sleep)
    kept_ids = frozenset(run.id for run in kept)
    if posted.result is None:
        # The cases whose runs all passed keep them; the others error, nothing re-sent.
        found = map_runs(
            group,
            remembered.result_id,
            kept,
            earlier_result_id=remembered.result_id,
            earlier_run_ids=kept_ids,
        )
        found.update(errored(again, posted.error or "nothing was started"))
        return found
    new = reconciled_runs(client, posted.result, _planned(again), ledger)
    every = [*kept, *new]
    earlier.cache.remember_key(key, posted.result.id, [run.id for run in every])
    return map_runs(
        group,
        posted.result.id,
        every,
        earlier_result_id=remembered.result_id,
        earlier_run_ids=kept_ids,
    )


def _rerun_group(group: CaseGroup, lost: Mapping[str, int]) -> CaseGroup:
    """The group's own request shape with only the cases that lost runs, each run as many
    times as it failed (a case's ``frequency`` is its own in a suite document)."""
    nodeids: list[str] = []
    cases: list[dict[str, Any]] = []
    plans: dict[str, Mapping[str, Any]] = {}
    for nodeid, case in zip(group.nodeids, group.cases, strict=True):
        count = lost.get(case["name"], 0)
        if count:
            nodeids.append(nodeid)
            cases.append({**case, "frequency": count})
            plans[nodeid] = {**group.plans.get(nodeid, {}), "frequency": count}
    return CaseGroup(group.shape, f"{group.name} rerun", nodeids, cases, plans, group.gates)


def _breaks_gates(group: CaseGroup, runs: Sequence[Run]) -> bool:
    """Some case's metric gates are broken by its runs among ``runs``."""
    from .gates import check_gates

    for nodeid, case in zip(group.nodeids, group.cases, strict=True):
        own = [run for run in runs if run.scenario_name == case["name"]]
        if any(result.broken for result in check_gates(group.gates.get(nodeid, ()), own)):
            return True
    return False


def start_cases(
    client: CekuraClient,
    priced: Priced,
    *,
    ledger: Ledger,
    deadline: float | None,
    sleep: Callable[[float], None],
    earlier: Earlier | None = None,
) -> CaseAssignments:
    """Start every priced group, one POST each; every case's test gets its assignment."""
    found: CaseAssignments = dict(priced.outcome.assignments)
    for group in priced.runnable:
        found.update(
            start_group(
                client, group, ledger=ledger, deadline=deadline, sleep=sleep, earlier=earlier
            )
        )
    return found


def start_priced(
    client: CekuraClient,
    priced: Priced,
    settings: Settings,
    cache: ResultCache | None,
    ledger: Ledger,
    *,
    deadline: float | None,
    session_id: str,
    modify: ModifyRequest | None = None,
) -> CaseAssignments:
    """``start_cases`` with the session's settings: reuse and rerun-failed as for marked
    tests; a rejected key is the session's ``ConfigError``. ``modify`` is the
    ``pytest_cekura_modify_request`` hook for rerun requests (``price_cases`` gave it the
    others' bodies before validation)."""
    earlier = None
    if cache is not None:  # every new result is remembered, for a later session to reuse
        wanted = settings.reuse_seconds is not None or settings.rerun_failed
        max_age = settings.reuse_seconds if settings.reuse_seconds is not None else math.inf
        earlier = Earlier(cache, max_age, settings.rerun_failed, wanted, modify)
    try:
        return start_cases(
            client, priced, ledger=ledger, deadline=deadline, sleep=sleep, earlier=earlier
        )
    except AuthError as exc:
        raise ConfigError(
            f"pytest-cekura: Cekura rejected the API key ({exc}) when starting the "
            "Tests-as-Code cases. " + MAYBE_STARTED.format(session_id=session_id)
        ) from None
